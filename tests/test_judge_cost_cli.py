"""--dry-run, --budget and --batch on the judging commands, end to end through the CLI and the loopback server."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.judge_helpers import outputs, quality_judge, write_outputs
from tests.openai_server import LoopbackServer

pytest.importorskip("openai")


def _files(tmp_path, n=10):
    a = {("vicuna", f"Question number {i}?"): "GOOD answer " + "word " * i for i in range(n)}
    b = {("vicuna", f"Question number {i}?"): "meh" for i in range(n)}
    return (write_outputs(tmp_path / "a.json", outputs("model-a", a)),
            write_outputs(tmp_path / "b.json", outputs("model-b", b)))


def _pairwise(srv, tmp_path, a, b, out, *extra):
    return run_cli("judge", "pairwise", "--a", str(a), "--b", str(b), "--judge-model", "gpt-4o",
                   "--base-url", srv.base_url, "--api-key", "sk-cost-test", "--out", str(tmp_path / out),
                   "--cache-dir", str(tmp_path / "cache"), "--n-boot", "50", *extra, timeout=120)


def test_pairwise_dry_run_budget_and_rerun(tmp_path):
    a, b = _files(tmp_path)
    with LoopbackServer(quality_judge) as srv:
        r = _pairwise(srv, tmp_path, a, b, "o", "--dry-run")
        assert r.returncode == 0, r.stderr
        assert "dry run: nothing was sent." in r.stdout and "20 requests, 0 cached, 20 to send" in r.stdout
        assert srv.requests == 0 and not (tmp_path / "o").exists()
        # each request reserves its worst case (~330 prompt + 512 max_tokens: ~$0.006 at gpt-4o prices) and
        # costs ~$0.001 (short replies): $0.012 lets a few through, then the next could exceed it
        r = _pairwise(srv, tmp_path, a, b, "o", "--budget", "0.012", "--concurrency", "1")
        assert r.returncode == 2 and "budget reached" in r.stderr and "nothing was published" in r.stderr
        assert not (tmp_path / "o").exists() and 0 < srv.requests < 20
        paid = srv.requests
        r = _pairwise(srv, tmp_path, a, b, "o", "--dry-run")
        assert f"20 requests, {paid} cached, {20 - paid} to send" in r.stdout
        r = _pairwise(srv, tmp_path, a, b, "o", "--budget", "1")
        assert r.returncode == 0, r.stderr
        assert srv.requests == 20 and sorted(srv.served_keys.values()) == [1] * 20
    usage = json.loads((tmp_path / "o" / "summary.json").read_text())["usage"]
    assert usage["total"]["requests_paid"] == 20 - paid and usage["total"]["requests_cached"] == paid
    assert usage["lines"][0]["stage"] == "judge pairwise" and usage["total"]["cost_usd"] > 0


def test_pairwise_batch_and_score_dry_run(tmp_path):
    a, b = _files(tmp_path, n=6)
    with LoopbackServer(quality_judge) as srv:
        r = _pairwise(srv, tmp_path, a, b, "o", "--batch", "--batch-poll", "0.05")
        assert r.returncode == 0, r.stderr
        assert srv.requests == 0 and srv.batch_api.created == 1 and srv.batch_api.lines_answered == 12
    usage = json.loads((tmp_path / "o" / "summary.json").read_text())["usage"]
    assert [(ln["source"], ln["requests"]) for ln in usage["lines"]] == [("batch", 12)]
    data = tmp_path / "selected.jsonl"
    data.write_text("".join(json.dumps({"id": f"x{i}", "instruction": f"Say {i}.", "output": f"{i}"}) + "\n"
                            for i in range(7)))
    with LoopbackServer() as srv:
        r = run_cli("score", "--data", str(data), "--out", str(tmp_path / "s"), "--judge-model", "gpt-4o-mini",
                    "--base-url", srv.base_url, "--cache-dir", str(tmp_path / "cache"), "--dry-run",
                    "--checkpoint-every", "2", timeout=120)
        assert r.returncode == 0, r.stderr
        assert "score [gpt-4o-mini]: 7 requests, 0 cached, 7 to send" in r.stdout  # all checkpoints, one estimate
        assert srv.requests == 0 and not (tmp_path / "s").exists()

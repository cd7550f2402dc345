"""The local transformers judge (tiny random checkpoint): protocol, batching, cache, pairwise, CLI."""

from __future__ import annotations

import json

import pytest

from harness_ext.core.errors import InputError
from harness_ext.core.records import ChatClient, ChatRequest, Turn
from harness_ext.judge.pairwise import judge_pairwise
from harness_ext.llm.local import make_local_client
from tests.conftest import run_cli
from tests.judge_helpers import outputs, write_outputs


def _reqs(n):
    return [ChatRequest("tiny", (Turn("user", f"Explain item {i} " + "please " * i),), (("max_tokens", 6),))
            for i in range(n)]


def test_local_client_batched_greedy_matches_one_by_one_and_caches(tiny_model_dir, tmp_path):
    client = make_local_client(tiny_model_dir, batch_size=3, cache_dir=tmp_path / "c")
    assert isinstance(client, ChatClient)
    out = client.complete_many(_reqs(5))
    assert all(r.ok and r.completion_tokens <= 6 and not r.cached for r in out)
    single = make_local_client(tiny_model_dir, batch_size=1, use_cache=False).complete_many(_reqs(5))
    assert [r.text for r in single] == [r.text for r in out]  # left padding does not change greedy output
    again = make_local_client(tiny_model_dir, cache_dir=tmp_path / "c").complete_many(_reqs(5))
    assert all(r.cached for r in again) and [r.text for r in again] == [r.text for r in out]


def test_local_judge_pairwise_counts_unparseable_replies(tiny_model_dir, tmp_path):
    a = write_outputs(tmp_path / "a.json", outputs("a", {("d", f"q{i}"): f"answer a{i}" for i in range(3)}))
    b = write_outputs(tmp_path / "b.json", outputs("b", {("d", f"q{i}"): f"answer b{i}" for i in range(3)}))
    client = make_local_client(tiny_model_dir, batch_size=6, cache_dir=tmp_path / "c")
    s = judge_pairwise(a, b, tmp_path / "o", client, "tiny", n_boot=20, max_tokens=5).to_dict()
    # a random tiny model does not answer in the required format: every reply is counted, none scored
    assert s["judgments"]["total"] == 6 and s["judgments"]["parse_failures"] + s["judgments"]["parsed"] == 6
    rows = [json.loads(x) for x in (tmp_path / "o" / "judgments.jsonl").read_text().splitlines()]
    assert all(isinstance(r["raw"], str) for r in rows)
    r = run_cli("judge", "pairwise", "--a", str(a), "--b", str(b), "--local-judge", str(tiny_model_dir),
                "--out", str(tmp_path / "o2"), "--max-tokens", "5", "--n-boot", "20", "--cache-dir", str(tmp_path / "c"))
    assert r.returncode == (0 if s["scored_items"] else 1), r.stderr  # exit 1: nothing could be scored
    s2 = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert s2["judge"]["model"] == tiny_model_dir.name and s2["judgments"] == s["judgments"]  # same cached replies


def test_local_judge_rejects_a_non_checkpoint(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        make_local_client(tmp_path)


def test_local_judge_folder_without_weights_or_tokenizer_is_one_clear_error(tiny_model_dir, tmp_path):
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text((tiny_model_dir / "config.json").read_text())  # config only
    client = make_local_client(half, cache_dir=tmp_path / "c")
    with pytest.raises(InputError, match="could not load a model from this folder") as exc:
        client.complete_many(_reqs(1))
    assert str(half) in str(exc.value) and "Fix: give the local judge a checkpoint folder" in str(exc.value)

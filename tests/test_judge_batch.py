"""The Batch API path of the judge client against the loopback server's /v1/files and /v1/batches."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from harness_ext.core.records import ChatRequest, Turn
from harness_ext.llm.batch import batch_line, split_lines
from harness_ext.llm.cache import ChatCache, request_key
from harness_ext.llm.client import make_client
from tests.conftest import ROOT, cli_env
from tests.openai_server import BatchOptions, LoopbackServer

pytest.importorskip("openai")


def _requests(n: int) -> list[ChatRequest]:
    return [ChatRequest("gpt-4o-mini", (Turn("user", f"question {i}"),), (("max_tokens", 16),)) for i in range(n)]


def _client(srv: LoopbackServer, cache, **kw):
    return make_client(base_url=srv.base_url, api_key="sk-test", cache_dir=cache, batch=True,
                       batch_poll_seconds=0.05, **kw)


def test_batch_answers_land_in_the_cache_at_batch_prices(tmp_path):
    reqs = _requests(30)
    with LoopbackServer(batches=BatchOptions(latency=0.2)) as srv:
        client = _client(srv, tmp_path / "c")
        out = client.complete_many(reqs)
        assert [r.text for r in out] == [f"echo: question {i}" for i in range(30)]
        assert srv.requests == 0 and srv.batch_api.created == 1 and srv.batch_api.lines_answered == 30
        assert client.stats["batches_submitted"] == 1 and client.stats["batches_completed"] == 1
        total = client.ledger.block()["total"]
        (line,) = client.ledger.block()["lines"]
        assert line["source"] == "batch" and line["requests"] == 30
        # gpt-4o-mini at the bundled batch rates: $0.075 / $0.30 per 1M tokens
        expect = (line["prompt_tokens"] * 0.075 + line["completion_tokens"] * 0.30) / 1e6
        assert total["cost_usd"] == pytest.approx(expect) and total["requests_paid"] == 30
        # a rerun (batch or live) is answered from the cache
        again = make_client(base_url=srv.base_url, api_key="sk-test", cache_dir=tmp_path / "c").complete_many(reqs)
        assert all(r.cached for r in again) and srv.requests == 0 and srv.batch_api.created == 1


def test_failed_lines_are_retried_live_and_never_cached_as_failures(tmp_path):
    reqs = _requests(20)
    bad = {request_key(r) for r in reqs[:5]}
    with LoopbackServer(batches=BatchOptions(fail=lambda cid: cid in bad)) as srv:
        client = _client(srv, tmp_path / "c")
        out = client.complete_many(reqs)
        assert all(r.ok for r in out) and [r.text for r in out][:2] == ["echo: question 0", "echo: question 1"]
        assert srv.batch_api.lines_answered == 15 and srv.requests == 5  # the 5 failed lines went live
        assert client.stats["batch_failed_lines"] == 5 and client.stats["batch_retried_live"] == 5
        sources = {ln["source"]: ln["requests"] for ln in client.ledger.block()["lines"]}
        assert sources == {"batch": 15, "live": 5}
        assert sorted(srv.served_keys.values()) == [1] * 20  # each answered exactly once


def test_an_expired_batch_keeps_its_partial_output_and_sends_the_rest_live(tmp_path):
    reqs = _requests(12)
    with LoopbackServer(batches=BatchOptions(expire_after=8)) as srv:
        client = _client(srv, tmp_path / "c")
        out = client.complete_many(reqs)
        assert all(r.ok for r in out)
        assert client.stats["batches_expired"] == 1 and srv.batch_api.lines_answered == 8 and srv.requests == 4
        assert sorted(srv.served_keys.values()) == [1] * 12


def test_large_jobs_split_at_the_per_batch_limits(tmp_path):
    reqs = _requests(25)
    lines = [(request_key(r), batch_line(request_key(r), r)) for r in reqs]
    assert [len(c) for c in split_lines(lines, 10, 10**9)] == [10, 10, 5]
    size = len(lines[0][1])
    assert all(sum(len(x) for _, x in c) <= 3 * size + 2 for c in split_lines(lines, 10**6, 3 * size + 2))
    with LoopbackServer() as srv:
        client = _client(srv, tmp_path / "c", batch_max_requests=10)
        assert all(r.ok for r in client.complete_many(reqs))
        assert srv.batch_api.created == 3 and srv.batch_api.lines_answered == 25


_SUBMITTER = textwrap.dedent("""
    import sys
    from harness_ext.llm.client import make_client
    from harness_ext.core.records import ChatRequest, Turn
    reqs = [ChatRequest("gpt-4o-mini", (Turn("user", f"question {i}"),), (("max_tokens", 16),)) for i in range(40)]
    make_client(base_url=sys.argv[1], api_key="k", cache_dir=sys.argv[2], batch=True,
                batch_poll_seconds=0.05).complete_many(reqs)
""")


def test_killed_after_submitting_the_next_run_collects_instead_of_resubmitting(tmp_path):
    script = tmp_path / "submit.py"
    script.write_text(_SUBMITTER)
    reqs = _requests(40)
    with LoopbackServer(batches=BatchOptions(latency=1.5)) as srv:
        proc = subprocess.Popen([sys.executable, str(script), srv.base_url, str(tmp_path / "c")],
                                env=cli_env(), cwd=ROOT)
        deadline = time.monotonic() + 60
        while srv.batch_api.created < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the batch is in progress; its id is in the cache database
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert len(ChatCache(tmp_path / "c").open_batches(srv.base_url.rstrip("/"))) == 1
        client = _client(srv, tmp_path / "c")
        out = client.complete_many(reqs)
        assert [r.text for r in out] == [f"echo: question {i}" for i in range(40)]
        assert srv.batch_api.created == 1 and srv.requests == 0  # collected, not resubmitted or sent live
        assert client.stats["batches_resumed"] == 1 and sorted(srv.served_keys.values()) == [1] * 40
        assert ChatCache(tmp_path / "c").open_batches(srv.base_url.rstrip("/")) == []


def test_budget_keeps_requests_out_of_a_batch_and_releases_them(tmp_path):
    from harness_ext.llm.ledger import max_completion_tokens, prompt_tokens
    from harness_ext.llm.spend import BudgetExceeded

    reqs = _requests(10)
    worst = (prompt_tokens(reqs[0]) * 0.075 + max_completion_tokens(reqs[0]) * 0.30) / 1e6  # gpt-4o-mini batch
    with LoopbackServer() as srv:
        client = _client(srv, tmp_path / "c", budget_usd=worst * 4.5)
        with pytest.raises(BudgetExceeded):
            client.complete_many(reqs)
        assert srv.batch_api.lines_answered == 4 and srv.requests == 0
        assert ChatCache(tmp_path / "c").holders() == {}  # nothing left claimed
        assert all(r.ok for r in _client(srv, tmp_path / "c", budget_usd=1.0).complete_many(reqs))
        assert srv.batch_api.lines_answered == 10 and sorted(srv.served_keys.values()) == [1] * 10

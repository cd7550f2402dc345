"""The OpenAI-compatible judge client against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness_ext.core.errors import ConfigError
from harness_ext.core.records import ChatClient, ChatRequest, Turn
from harness_ext.llm.cache import ChatCache, request_key
from harness_ext.llm.client import RetryPolicy, make_client
from tests.conftest import ROOT, cli_env
from tests.openai_server import LoopbackServer, last_user_text

pytest.importorskip("openai")

FAST_RETRY = RetryPolicy(max_retries=12, base=0.01, cap=0.1)


def _requests(n: int, model: str = "judge-m") -> list[ChatRequest]:
    return [ChatRequest(model, (Turn("system", "be brief"), Turn("user", f"question {i}")),
                        (("temperature", 0.0), ("max_tokens", 32))) for i in range(n)]


def _client(srv: LoopbackServer, cache: Path, **kw):
    retry = kw.pop("retry", FAST_RETRY)
    c = make_client(base_url=srv.base_url, api_key="sk-test-secret-0000", cache_dir=cache,
                    timeout=kw.pop("timeout", 1.0), **kw)
    c.retry = retry
    return c


def test_answers_in_order_and_rerun_sends_nothing(tmp_path):
    reqs = _requests(40)
    with LoopbackServer(latency=0.005) as srv:
        client = _client(srv, tmp_path / "c", concurrency=8)
        assert isinstance(client, ChatClient)
        out = client.complete_many(reqs)
        assert [r.text for r in out] == [f"echo: question {i}" for i in range(40)]
        assert all(r.ok and not r.cached and r.completion_tokens for r in out)
        assert srv.served == 40
        # a fresh client (new process in real life) on the same cache makes zero requests
        again = _client(srv, tmp_path / "c").complete_many(reqs)
        assert srv.requests == 40
        assert [r.text for r in again] == [r.text for r in out] and all(r.cached for r in again)


def test_duplicates_in_a_batch_are_sent_once(tmp_path):
    reqs = _requests(5) * 3
    with LoopbackServer() as srv:
        out = _client(srv, tmp_path / "c").complete_many(reqs)
        assert srv.requests == 5 and len(out) == 15 and out[0].text == out[5].text == out[10].text


def test_params_change_the_cache_key(tmp_path):
    a = ChatRequest("m", (Turn("user", "x"),), (("temperature", 0.0),))
    b = ChatRequest("m", (Turn("user", "x"),), (("temperature", 0.7),))
    c = ChatRequest("other", (Turn("user", "x"),), (("temperature", 0.0),))
    assert len({request_key(a), request_key(b), request_key(c)}) == 3


def test_thirty_percent_faults_every_answer_exactly_once(tmp_path):
    """429 with Retry-After, 500, hangs, truncated bodies: every request still ends with its own answer."""
    reqs = _requests(120)
    with LoopbackServer(latency=0.002, fault_rate=0.3, faults=("429", "500", "hang", "truncate"),
                        retry_after=0.02, hang_seconds=2.0, seed=3) as srv:
        client = _client(srv, tmp_path / "c", concurrency=16, timeout=0.3)
        out = client.complete_many(reqs)
        assert all(r.ok for r in out), [r.error for r in out if not r.ok]
        assert [r.text for r in out] == [f"echo: question {i}" for i in range(120)]
        assert set(srv.fault_counts) == {"429", "500", "hang", "truncate"}
        assert client.stats["retries"] == sum(srv.fault_counts.values())
        assert sorted(srv.served_keys.values()) == [1] * 120  # nothing answered twice
        assert len(ChatCache(tmp_path / "c")) == 120


def test_failures_are_errors_not_cached_and_key_is_redacted(tmp_path, caplog):
    with LoopbackServer(fault_rate=1.0, faults=("500",)) as srv:
        client = _client(srv, tmp_path / "c", retry=RetryPolicy(max_retries=2, base=0.001, cap=0.01))
        out = client.complete_many(_requests(3))
        assert all(not r.ok and "HTTP 500" in r.error and "3 attempts" in r.error for r in out)
        assert srv.requests == 9
        assert len(ChatCache(tmp_path / "c")) == 0
    # once the server recovers, the same requests are sent again (a failure is never replayed)
    with LoopbackServer() as srv2:
        client = _client(srv2, tmp_path / "c")
        assert all(r.ok for r in client.complete_many(_requests(3))) and srv2.requests == 3
    assert "sk-test-secret-0000" not in repr(client)
    for f in (tmp_path / "c").iterdir():  # the database, its WAL and shared-memory files
        assert b"sk-test-secret-0000" not in f.read_bytes()
    assert "sk-test-secret-0000" not in caplog.text


def test_auth_error_is_not_retried_and_key_never_echoed(tmp_path):
    with LoopbackServer(api_key="right-key") as srv:
        client = make_client(base_url=srv.base_url, api_key="wrong-key-abcdefgh12345", cache_dir=tmp_path / "c")
        out = client.complete_many(_requests(1))
        assert not out[0].ok and "HTTP 401" in out[0].error and "Incorrect API key" in out[0].error
        assert "wrong-key-abcdefgh12345" not in out[0].error
        assert srv.requests == 1  # a 4xx other than 408/409/425/429 is final


def test_retry_after_is_honoured(tmp_path):
    with LoopbackServer(fail_first=1, faults=("429",), retry_after=0.4) as srv:
        client = _client(srv, tmp_path / "c")
        t0 = time.monotonic()
        out = client.complete_many(_requests(1))
        assert out[0].ok and time.monotonic() - t0 >= 0.4


def test_requests_per_minute_limit_spaces_requests(tmp_path):
    with LoopbackServer() as srv:
        client = _client(srv, tmp_path / "c", requests_per_minute=120)  # 2/s; the bucket starts full
        t0 = time.monotonic()
        client.complete_many(_requests(122))
        # 120 go at once from the full bucket, the other 2 at 2 per second
        assert time.monotonic() - t0 >= 0.9 and srv.requests == 122
        # the bucket carries over to the next call: a new small batch cannot burst past the limit
        t0 = time.monotonic()
        client.complete_many(_requests(124)[122:])
        assert time.monotonic() - t0 >= 0.9 and srv.requests == 124


def test_missing_key_for_openai_is_a_config_error(monkeypatch, tmp_path):
    for k in ("HARNESS_EXT_JUDGE_API_KEY", "OPENAI_API_KEY", "HARNESS_EXT_JUDGE_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ConfigError, match="HARNESS_EXT_JUDGE_API_KEY"):
        make_client("gpt-4o", cache_dir=tmp_path)
    monkeypatch.setenv("HARNESS_EXT_JUDGE_API_KEY", "sk-from-env-123456")
    assert "sk-from-env" not in repr(make_client("gpt-4o", cache_dir=tmp_path))


@pytest.mark.parametrize("kw,match", [
    ({"timeout": -1}, "timeout must be > 0 seconds, got -1"), ({"timeout": 0}, "timeout must be > 0"),
    ({"concurrency": 0}, "concurrency must be >= 1"), ({"max_retries": -1}, "max_retries must be >= 0"),
    ({"requests_per_minute": 0}, "requests_per_minute must be > 0"), ({"tokens_per_minute": -5}, "tokens_per_minute"),
])
def test_out_of_range_client_settings_are_config_errors(tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match):
        make_client("m", base_url="http://127.0.0.1:9/v1", api_key="k", cache_dir=tmp_path, **kw)


def test_legacy_jsonl_cache_is_imported_once_torn_tail_skipped(tmp_path):
    """A cache written by earlier versions (chat_completions.jsonl) is read: nothing in it is asked again."""
    reqs = _requests(5)
    legacy = tmp_path / "c" / "chat_completions.jsonl"
    legacy.parent.mkdir()
    lines = [json.dumps({"key": request_key(r), "model": r.model, "text": f"old {i}", "prompt_tokens": 3,
                         "completion_tokens": 2, "finish_reason": "stop"}) for i, r in enumerate(reqs[:3])]
    legacy.write_text("\n".join(lines) + "\n" + '{"key": "abc", "te')  # a writer killed mid-line
    with LoopbackServer() as srv:
        out = _client(srv, tmp_path / "c").complete_many(reqs)
        assert srv.requests == 2 and [r.text for r in out[:3]] == ["old 0", "old 1", "old 2"]
        assert out[0].prompt_tokens == 3 and all(r.ok for r in out)
    cache = ChatCache(tmp_path / "c")
    assert len(cache) == 5 and cache.skipped_lines == 0  # imported once: the torn tail is not re-read


_WORKER = textwrap.dedent("""
    import sys
    from harness_ext.llm.client import make_client
    from harness_ext.core.records import ChatRequest, Turn
    reqs = [ChatRequest("judge-m", (Turn("user", f"item {i}"),)) for i in range(int(sys.argv[3]))]
    out = make_client(base_url=sys.argv[1], api_key="k", cache_dir=sys.argv[2], concurrency=4).complete_many(reqs)
    print(sum(r.ok for r in out))
""")


def test_sigkill_then_rerun_loses_nothing_and_repeats_nothing(tmp_path):
    n = 200
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    cache = tmp_path / "c"
    reqs = [ChatRequest("judge-m", (Turn("user", f"item {i}"),)) for i in range(n)]
    key_of = {f"item {i}": request_key(r) for i, r in enumerate(reqs)}
    with LoopbackServer(latency=0.02) as srv:
        proc = subprocess.Popen([sys.executable, str(script), srv.base_url, str(cache), str(n)],
                                env=cli_env(), cwd=ROOT)
        deadline = time.monotonic() + 60
        while srv.served < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        done = {k for k in key_of.values() if k in ChatCache(cache)}
        assert 30 <= len(done) < n
        before = len(srv.bodies)
        # the restart (in this process: the cache file is all that carries over)
        out = make_client(base_url=srv.base_url, api_key="k", cache_dir=cache, concurrency=4).complete_many(reqs)
        assert all(r.ok for r in out) and [r.text for r in out] == [f"echo: item {i}" for i in range(n)]
        resent = {key_of[last_user_text(b)] for b in srv.bodies[before:]}
        assert not resent & done  # nothing completed before the kill was asked again
        assert resent | done == set(key_of.values())  # and everything else was
    assert len(ChatCache(cache)) == n


def test_tokens_per_minute_limit_spaces_requests(tmp_path):
    reqs = [ChatRequest("m", (Turn("user", f"q{i}"),), (("max_tokens", 1000),)) for i in range(61)]
    with LoopbackServer() as srv:
        client = _client(srv, tmp_path / "c", tokens_per_minute=60_000)  # ~1,000 tokens per request
        t0 = time.monotonic()
        assert all(r.ok for r in client.complete_many(reqs))
        # 60 fit the full bucket; the 61st waits for ~1,000 tokens to refill (1 s)
        assert time.monotonic() - t0 >= 0.9 and srv.requests == 61


def test_unserialisable_request_fails_alone(tmp_path):
    good = _requests(2)
    bad = ChatRequest("judge-m", (Turn("user", "x"),), (("temperature", object()),))  # not JSON
    with LoopbackServer() as srv:
        out = _client(srv, tmp_path / "c").complete_many([good[0], bad, good[1]])
    assert out[0].ok and out[2].ok and not out[1].ok and "unexpected" in out[1].error


# ---------------------------------------------------------------- exactly once across processes

_SHARED_WORKER = textwrap.dedent("""
    import sys, time
    from harness_ext.llm.client import make_client
    from harness_ext.core.records import ChatRequest, Turn
    url, cache, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    reqs = [ChatRequest("judge-m", (Turn("user", f"item {i}"),)) for i in range(n)]
    if sys.argv[5] == "reverse":
        reqs.reverse()
    client = make_client(base_url=url, api_key="k", cache_dir=cache, concurrency=8)
    time.sleep(max(0.0, start - time.time()))  # all processes start asking at the same moment
    out = client.complete_many(reqs)
    print(sum(r.ok and r.text.endswith(r_.messages[0].content) for r, r_ in zip(out, reqs)))
""")


@pytest.mark.parametrize("stagger", [0.0, 0.15])
def test_four_processes_sharing_a_cache_send_each_request_once(tmp_path, stagger):
    """4 processes judging the same 120 requests, together or staggered: 120 sent, all 4 get all 120."""
    n = 120
    script = tmp_path / "worker.py"
    script.write_text(_SHARED_WORKER)
    with LoopbackServer(latency=0.02) as srv:
        start = time.time() + 2.0  # interpreter start-up and imports happen before this
        procs = [subprocess.Popen([sys.executable, str(script), srv.base_url, str(tmp_path / "c"), str(n),
                                   str(start + i * stagger), "reverse" if i % 2 else "forward"],
                                  env=cli_env(), cwd=ROOT, stdout=subprocess.PIPE, text=True) for i in range(4)]
        outs = [p.communicate(timeout=120)[0].strip() for p in procs]
        assert [p.returncode for p in procs] == [0] * 4
        assert outs == [str(n)] * 4
        assert srv.requests == n and sorted(srv.served_keys.values()) == [1] * n


def test_threads_with_their_own_clients_send_each_request_once(tmp_path):
    import threading

    reqs = _requests(60)
    with LoopbackServer(latency=0.01) as srv:
        clients = [_client(srv, tmp_path / "c", concurrency=4) for _ in range(3)]
        shared = clients[0]
        outs: list[list] = [[] for _ in range(4)]
        # two threads share one client object, two more have their own: 4 callers, one cache
        threads = [threading.Thread(target=lambda i=i, c=c: outs[i].extend(c.complete_many(reqs)))
                   for i, c in enumerate([shared, shared, clients[1], clients[2]])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all([r.text for r in o] == [f"echo: question {i}" for i in range(60)] for o in outs)
        assert srv.requests == 60


_HOLDER = textwrap.dedent("""
    import sys
    from harness_ext.llm.client import make_client
    from harness_ext.core.records import ChatRequest, Turn
    reqs = [ChatRequest("judge-m", (Turn("user", f"item {i}"),)) for i in range(3)]
    make_client(base_url=sys.argv[1], api_key="k", cache_dir=sys.argv[2], timeout=60).complete_many(reqs)
""")


def test_a_killed_holders_claims_are_taken_over(tmp_path):
    """A process SIGKILLed while its requests are in flight leaves claims; the next caller takes them over
    (at once on this host, where the holder's pid is visibly gone) instead of waiting forever."""
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    reqs = [ChatRequest("judge-m", (Turn("user", f"item {i}"),)) for i in range(3)]
    with LoopbackServer(fail_first=3, faults=("hang",), hang_seconds=60) as srv:
        proc = subprocess.Popen([sys.executable, str(script), srv.base_url, str(tmp_path / "c")],
                                env=cli_env(), cwd=ROOT)
        deadline = time.monotonic() + 60
        while srv.requests < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(ChatCache(tmp_path / "c").holders()) == 3  # claimed and in flight
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        out = make_client(base_url=srv.base_url, api_key="k", cache_dir=tmp_path / "c").complete_many(reqs)
        assert [r.text for r in out] == [f"echo: item {i}" for i in range(3)]
        assert time.monotonic() - t0 < 5 and srv.requests == 6 and srv.served == 3
    assert ChatCache(tmp_path / "c").holders() == {}


def test_a_claim_of_another_host_is_waited_for_until_it_expires(tmp_path):
    """A claim whose holder cannot be checked (another host) is honoured until its expiry, then taken over."""
    import sqlite3

    reqs = _requests(2)
    cache = ChatCache(tmp_path / "c")
    db = sqlite3.connect(cache.path)
    with db:
        db.execute("INSERT INTO claims VALUES (?,?,?,?,?)",
                   (request_key(reqs[0]), "elsewhere:1:x", 1, "another-host", time.time() + 1.5))
    with LoopbackServer() as srv:
        client = _client(srv, tmp_path / "c")
        t0 = time.monotonic()
        out = client.complete_many(reqs)
        waited = time.monotonic() - t0
        assert all(r.ok for r in out) and srv.requests == 2
        assert 1.3 <= waited < 5 and client.stats["waits"] > 0


def test_a_failed_request_releases_its_claim_and_is_not_cached(tmp_path):
    with LoopbackServer(fault_rate=1.0, faults=("500",)) as srv:
        client = _client(srv, tmp_path / "c", retry=RetryPolicy(max_retries=0))
        assert not client.complete_many(_requests(2))[0].ok
    cache = ChatCache(tmp_path / "c")
    assert len(cache) == 0 and cache.holders() == {}

"""Cost ledger, dry-run estimate, budget stop and rate-limit pacing of the judge client (loopback server)."""

from __future__ import annotations

import json

import pytest

from harness_ext.core.errors import ConfigError, InputError
from harness_ext.core.records import ChatRequest, Turn
from harness_ext.llm.cache import ChatCache
from harness_ext.llm.client import RetryPolicy, make_client
from harness_ext.llm.ledger import load_prices, prompt_tokens, usage_block
from harness_ext.llm.spend import BudgetExceeded, DryRunFinished
from tests.openai_server import LoopbackServer, RateLimits, prompt_token_count

pytest.importorskip("openai")


def _requests(n: int, model: str = "gpt-4o", max_tokens: int = 64) -> list[ChatRequest]:
    return [ChatRequest(model, (Turn("system", "judge briefly"), Turn("user", f"question number {i}")),
                        (("max_tokens", max_tokens), ("temperature", 0.0))) for i in range(n)]


def _client(srv: LoopbackServer, cache, **kw):
    return make_client(base_url=srv.base_url, api_key="sk-test", cache_dir=cache, **kw)


def _body(r: ChatRequest) -> dict:
    return {"messages": [{"role": t.role, "content": t.content} for t in r.messages]}


def test_ledger_counts_the_servers_usage_and_prices_it(tmp_path):
    reqs = _requests(12)
    with LoopbackServer() as srv:
        client = _client(srv, tmp_path / "c", stage="judge pairwise")
        out = client.complete_many(reqs)
        block = usage_block(client)
        (line,) = block["lines"]
        prompt = sum(prompt_token_count(_body(r)) for r in reqs)
        completion = sum(len(r.text.split()) for r in out)
        assert line == {"stage": "judge pairwise", "model": "gpt-4o", "source": "live", "requests": 12,
                        "prompt_tokens": prompt, "completion_tokens": completion, "estimated": 0,
                        "cost_usd": pytest.approx((prompt * 2.50 + completion * 10.00) / 1e6)}
        assert block["total"]["requests_paid"] == 12 and block["prices"]["date"] == load_prices().date
        # a rerun pays nothing: its answers are counted as cached, at no cost
        again = _client(srv, tmp_path / "c", stage="judge pairwise")
        again.complete_many(reqs)
        total = usage_block(again)["total"]
        assert total["requests_cached"] == 12 and total["requests_paid"] == 0 and total["cost_usd"] == 0


def test_missing_usage_is_estimated_and_flagged(tmp_path):
    reqs = _requests(3)
    with LoopbackServer() as srv:
        srv.send_usage = False
        client = _client(srv, tmp_path / "c")
        client.complete_many(reqs)
        (line,) = usage_block(client)["lines"]
        assert line["estimated"] == 3 and line["prompt_tokens"] == sum(prompt_tokens(r) for r in reqs) > 0
        assert line["completion_tokens"] > 0


def test_user_price_file_overrides_and_unknown_models_cost_null(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("date: 2026-01-01\nmodels:\n  my-vllm-judge: {input: 0.2, output: 0.4}\n  gpt-4o: {input: 1, output: 2}\n")
    table = load_prices(prices)
    assert table.price("gpt-4o").input == 1 and table.price("my-vllm-judge").batch_output == 0.2  # half by default
    assert table.price("gpt-4o-mini-2024-07-18").input == 0.15  # the bundled entry, by prefix
    with LoopbackServer() as srv:
        client = _client(srv, tmp_path / "c")
        client.complete_many(_requests(2, model="unlisted-model"))
        total = usage_block(client)["total"]
        assert total["cost_usd"] is None and total["unpriced_models"] == ["unlisted-model"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": {"gpt-4o": {"input": -1, "output": 2}}}))
    with pytest.raises(InputError, match="input must be a number >= 0"):
        load_prices(bad)


def test_dry_run_counts_uncached_requests_and_sends_nothing(tmp_path):
    reqs = _requests(10)
    with LoopbackServer() as srv:
        _client(srv, tmp_path / "c").complete_many(reqs[:4])
        sent = srv.requests
        client = _client(srv, tmp_path / "c", dry_run=True, stage="judge pairwise")
        with pytest.raises(DryRunFinished) as info:
            client.complete_many(reqs + reqs[:2])  # duplicates count once
        assert srv.requests == sent  # nothing sent
    (est,) = info.value.estimates
    assert (est.requests, est.cached, est.to_send) == (10, 4, 6)
    assert est.prompt_tokens == sum(prompt_tokens(r) for r in reqs[4:])
    assert est.completion_tokens_max == 6 * 64
    mean = ChatCache(tmp_path / "c").mean_completion_tokens("gpt-4o")
    assert est.completion_tokens == 6 * round(mean)  # the cached replies' mean length
    assert est.cost_usd == pytest.approx((est.prompt_tokens * 2.5 + est.completion_tokens * 10) / 1e6)
    assert "6 to send" in info.value.report and info.value.exit_code == 0


def test_budget_stops_before_exceeding_and_a_larger_budget_continues(tmp_path):
    reqs = _requests(20, max_tokens=1000)
    worst = (prompt_tokens(reqs[0]) * 2.5 + 1000 * 10) / 1e6  # ~ $0.0101 per request at gpt-4o prices
    with LoopbackServer(lambda body: "long " * 950) as srv:  # replies near max_tokens: ~$0.0096 each
        client = _client(srv, tmp_path / "c", budget_usd=worst * 5.5, concurrency=1)
        with pytest.raises(BudgetExceeded) as info:
            client.complete_many(reqs)
        spent = client.ledger.spent()
        assert spent <= worst * 5.5 and info.value.skipped > 0
        paid = srv.requests
        assert 5 <= paid < 20 and len(ChatCache(tmp_path / "c")) == paid  # what was paid is kept
        more = _client(srv, tmp_path / "c", budget_usd=1.0)
        assert all(r.ok for r in more.complete_many(reqs))
        assert srv.requests == 20 and sorted(srv.served_keys.values()) == [1] * 20  # nothing paid twice
        assert usage_block(more)["total"]["requests_cached"] == paid


def test_budget_needs_a_price(tmp_path):
    with pytest.raises(ConfigError, match="needs a price for model 'my-local-judge'"):
        make_client("my-local-judge", base_url="http://127.0.0.1:9/v1", api_key="k", cache_dir=tmp_path,
                    budget_usd=1.0)


def _paced_run(tmp_path, pace: bool) -> tuple[LoopbackServer, object]:
    reqs = _requests(48, max_tokens=80)  # ~95 tokens each by the server's count, ~4,600 in all
    with LoopbackServer(limits=RateLimits(tpm=120_000, burst_s=0.5)) as srv:  # 2,000 tokens/s, 1,000 banked
        client = _client(srv, tmp_path / ("p" if pace else "n"), concurrency=16, pace_to_headers=pace)
        client.retry = RetryPolicy(max_retries=1000, base=0.01, cap=0.05)  # a storm must not exhaust them
        assert all(r.ok for r in client.complete_many(reqs))
    return srv, client


def test_pacing_to_rate_limit_headers_avoids_429_storms(tmp_path):
    srv, client = _paced_run(tmp_path, pace=True)
    blind, _ = _paced_run(tmp_path, pace=False)
    assert blind.limiter.limited > 20  # without the headers: a retry storm
    assert srv.limiter.limited <= 3 and client.stats["http_429"] == srv.limiter.limited


@pytest.mark.parametrize("name", ["harness_ext.llm.ledger", "harness_ext.llm.pacing", "harness_ext.llm.batch"])
def test_doctests(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0

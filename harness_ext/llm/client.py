"""An OpenAI-compatible chat client for judges: bounded concurrency, rate limits, retries, cache.

Works with any server that speaks `/v1/chat/completions` (OpenAI, vLLM `vllm serve`, llama.cpp,
TGI, the loopback test server). One `complete_many` call answers a batch in input order:

* identical requests in a batch are sent once, and answers already in the on-disk cache are not
  sent at all, so a rerun or a resumed run pays for nothing twice;
* at most `concurrency` requests are in flight, and an optional requests-/tokens-per-minute
  limiter spaces them out;
* 429 (honouring Retry-After), 5xx, timeouts, connection errors and truncated or invalid bodies
  are retried with exponential backoff and full jitter; other 4xx errors are not (retrying a bad
  request or a wrong key only burns quota);
* a request that still fails becomes `ChatResult(error=...)`: never raised, never cached;
* each answer is committed to the cache the moment it arrives, so a SIGKILLed run loses at most
  the requests in flight; processes and threads sharing a cache claim each request before sending
  it, so each distinct request is sent once (llm/cache.py);
* requests pace themselves to the endpoint's x-ratelimit-* headers (llm/pacing.py);
* every answer's tokens and cost go to a ledger (llm/ledger.py); `ClientOptions` (llm/options.py)
  adds a dry run, a budget (llm/spend.py) and the Batch API (llm/batch.py).

The API key is held privately and scrubbed from every error message; reprs never show it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness_ext.core.errors import ConfigError, require
from harness_ext.core.paths import cache_dir
from harness_ext.core.records import ChatRequest, ChatResult
from harness_ext.core.secrets import public_url, register, register_url, scrub
from harness_ext.llm.cache import ChatCache, new_holder, request_key
from harness_ext.llm.ledger import Ledger, check_priced, load_prices, max_completion_tokens, prompt_tokens
from harness_ext.llm.options import ClientOptions
from harness_ext.llm.pacing import HeaderPacer
from harness_ext.llm.spend import Budget, BudgetExceeded, DryRunFinished, Estimate, format_estimates

log = logging.getLogger(__name__)

KEY_ENVS = ("HARNESS_EXT_JUDGE_API_KEY", "OPENAI_API_KEY")
BASE_URL_ENVS = ("HARNESS_EXT_JUDGE_BASE_URL", "OPENAI_BASE_URL")
RETRY_STATUS = frozenset({408, 409, 425, 429})


def redact(text: str, secret: str | None) -> str:
    """Remove an API key (and anything shaped like one) from `text`.

    >>> redact("Incorrect API key provided: sk-abcdef123456", None)
    'Incorrect API key provided: [redacted]'
    >>> redact("key=my-own-secret-key rejected", "my-own-secret-key")
    'key=[redacted] rejected'
    """
    return scrub(text, secret)


def resolve_api_key(api_key: str | None, base_url: str | None) -> str:
    """The key from the argument, else $HARNESS_EXT_JUDGE_API_KEY, else $OPENAI_API_KEY.

    A self-hosted endpoint (vLLM without --api-key) needs no key; the SDK still wants a string,
    so "EMPTY" is sent, as vLLM's docs do. api.openai.com without a key is a config error.
    """
    if api_key:
        register(api_key)
        return api_key
    for name in KEY_ENVS:
        if os.environ.get(name):
            register(os.environ[name])
            return os.environ[name]
    if base_url:
        return "EMPTY"
    raise ConfigError(
        "no API key for the OpenAI API.",
        hint=f"set {KEY_ENVS[0]} or {KEY_ENVS[1]}, pass --api-key, or give --base-url of a "
        "self-hosted server (e.g. http://127.0.0.1:8000/v1 for `vllm serve`).",
    )


def resolve_base_url(base_url: str | None) -> str | None:
    """The base URL from the argument, else $HARNESS_EXT_JUDGE_BASE_URL / $OPENAI_BASE_URL, else None (OpenAI)."""
    for url in (base_url, *(os.environ.get(name) for name in BASE_URL_ENVS)):
        if url:
            register_url(url)  # credentials in the URL (user:KEY@, ?api-key=) are secrets too
            return url
    return None


class RateLimiter:
    """Token buckets for requests and tokens per minute (either may be None = unlimited)."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.rpm, self.tpm = rpm, tpm
        self._req = float(rpm or 0)
        self._tok = float(tpm or 0)
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    def new_loop(self) -> None:
        """A fresh lock for the next event loop (asyncio locks bind to the loop that first uses them)."""
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self._lock:  # one waiter at a time keeps the order fair
            while True:
                now = time.monotonic()
                dt, self._last = now - self._last, now
                if self.rpm:
                    self._req = min(float(self.rpm), self._req + dt * self.rpm / 60)
                if self.tpm:
                    self._tok = min(float(self.tpm), self._tok + dt * self.tpm / 60)
                    tokens = min(tokens, int(self.tpm))  # a request larger than a minute's budget still goes
                need_req = 0.0 if not self.rpm or self._req >= 1 else (1 - self._req) * 60 / self.rpm
                need_tok = 0.0 if not self.tpm or self._tok >= tokens else (tokens - self._tok) * 60 / self.tpm
                wait = max(need_req, need_tok)
                if wait <= 0:
                    if self.rpm:
                        self._req -= 1
                    if self.tpm:
                        self._tok -= tokens
                    return
                await asyncio.sleep(wait)


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter: sleep U(0.5, 1.5) x min(cap, base x 2^attempt)."""

    max_retries: int = 8
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 300.0  # a server asking for longer is obeyed only this far

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}.", hint="use e.g. --max-retries 8")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = min(self.cap, self.base * (2 ** attempt)) * rng.uniform(0.5, 1.5)
        if retry_after is not None:  # the server said when; add a little jitter so waiters spread out
            return min(self.max_retry_after, retry_after) * rng.uniform(1.0, 1.2)
        return backoff


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class _Fatal(Exception):
    """A failure that retrying cannot fix (4xx other than 408/409/425/429)."""


class OpenAIChatClient:
    """A records.ChatClient over the openai SDK's AsyncOpenAI, with cache, limiter, pacing, retries,
    a cost ledger, and the dry-run, budget and Batch API modes of `ClientOptions`."""

    def __init__(self, options: ClientOptions | None = None, *, retry: RetryPolicy | None = None,
                 seed: int | None = None) -> None:
        o = self.options = options or ClientOptions()
        self.model = o.model
        self.base_url = resolve_base_url(o.base_url)
        self.__api_key = resolve_api_key(o.api_key, self.base_url)
        self.concurrency = o.concurrency
        self.requests_per_minute = o.requests_per_minute
        self.tokens_per_minute = o.tokens_per_minute
        self.timeout = o.timeout
        self.retry = retry or RetryPolicy(max_retries=o.max_retries)
        self.progress = o.progress
        self.cache = ChatCache(Path(o.cache_dir) if o.cache_dir else _default_cache()) if o.use_cache else None
        self.stats: Counter[str] = Counter()  # sent, retries, cache_hits, failures, deduplicated, shared, waits
        self.ledger = Ledger(load_prices(o.prices))
        self.estimates: dict[str, Estimate] = {}  # dry run: by model
        self.budget: Budget | None = None
        if o.budget_usd is not None:
            if o.model:
                check_priced(self.ledger.prices, o.model, "--budget")
            self.budget = Budget(o.budget_usd, self.ledger.spent)
        self.pacer = HeaderPacer() if o.pace_to_headers else None
        self._over_budget: set[str] = set()  # batch mode: keys the budget kept out of a batch
        self._rng = random.Random(seed)
        self._limiter: RateLimiter | None = None

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def __repr__(self) -> str:
        return (f"OpenAIChatClient(model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key='[redacted]', concurrency={self.concurrency}, cache={self.cache!r})")

    # ------------------------------------------------------------ public

    def complete_many(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """Answer `requests` in input order (sync facade; safe to call inside a running event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.acomplete_many(requests))
        box: dict[str, Any] = {}

        def worker() -> None:
            try:
                box["value"] = asyncio.run(self.acomplete_many(requests))
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc

        t = threading.Thread(target=worker)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def complete(self, request: ChatRequest) -> ChatResult:
        return self.complete_many([request])[0]

    async def acomplete_many(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """Async version of `complete_many`. Raises DryRunFinished in a dry run, BudgetExceeded at the budget."""
        requests = [self._with_model(r) for r in requests]
        keys = [request_key(r) for r in requests]
        results: dict[str, ChatResult] = {}
        todo: dict[str, ChatRequest] = {}
        for key, req in zip(keys, requests, strict=True):
            if key in todo:
                self.stats["deduplicated"] += 1
            else:
                todo[key] = req
        if self.cache is not None:
            hits = self.cache.get_many(todo)
            self.stats["cache_hits"] += len(hits)
            for key, res in hits.items():
                self.ledger.record(self.options.stage, todo[key], "cache", res.prompt_tokens,
                                   res.completion_tokens, res.text)
            results.update(hits)
            todo = {k: r for k, r in todo.items() if k not in hits}
        if self.dry_run:
            self._estimate(requests, todo)
        if self.budget is not None:
            for req in todo.values():
                check_priced(self.ledger.prices, req.model, "--budget")
        if todo:
            await (self._run(todo, results, None) if self.cache is None else self._run_claimed(todo, results))
        if self.budget is not None and self.budget.skipped:
            paid = sum(ln.requests for ln in self.ledger.lines.values() if ln.source != "cache")
            raise BudgetExceeded(self.budget.limit, self.ledger.spent(), paid, self.budget.skipped)
        return [_copy(results[k]) for k in keys]

    def _estimate(self, requests: list[ChatRequest], todo: dict[str, ChatRequest]) -> None:
        """Count and price the uncached requests, then end the command (a dry run sends nothing)."""
        for req in {request_key(r): r for r in requests}.values():
            est = self.estimates.setdefault(req.model, Estimate(self.options.stage, req.model, batch=self.options.batch))
            est.requests += 1
        expected = {m: self.cache.mean_completion_tokens(m) if self.cache is not None else None
                    for m in {r.model for r in todo.values()}}
        for req in todo.values():
            self.estimates[req.model].add(req, expected[req.model], self.ledger.prices)
        for est in self.estimates.values():
            est.cached = est.requests - sum(1 for r in todo.values() if r.model == est.model)
        found = list(self.estimates.values())
        raise DryRunFinished(format_estimates(found, self.ledger.prices), found)

    async def _run_claimed(self, todo: dict[str, ChatRequest], results: dict[str, ChatResult]) -> None:
        """Send each request this call claims in the shared cache; wait for the ones another process
        or thread is asking, reusing its answer, and claim them if it gives up or dies."""
        assert self.cache is not None
        holder = new_holder()
        pause = 0.02
        while todo:
            claimed, found = self.cache.claim(todo, holder)
            self.stats["shared"] += len(found)  # answered by another process while we looked
            for key, res in found.items():
                self.ledger.record(self.options.stage, todo[key], "cache", res.prompt_tokens,
                                   res.completion_tokens, res.text)
                results[key] = res
                del todo[key]
            mine = {k: todo.pop(k) for k in claimed}
            if mine and self.options.batch:
                from harness_ext.llm.batch import run_batch

                await run_batch(self, self._sdk(), mine, results, holder)
            elif mine:
                await self._run(mine, results, holder)
            if mine:
                pause = 0.02
            elif todo:
                self.stats["waits"] += 1
                await asyncio.sleep(pause)
                pause = min(0.5, pause * 1.5)

    # ------------------------------------------------------------ internals

    def _with_model(self, r: ChatRequest) -> ChatRequest:
        if r.model:
            return r
        if not self.model:
            raise ConfigError("a ChatRequest has no model and the client has no default model.",
                              hint="pass model= to make_client or set ChatRequest.model.")
        return ChatRequest(self.model, r.messages, r.params)

    def _sdk(self) -> Any:
        openai = require("openai", extra="judge", purpose="the OpenAI-compatible judge client")
        base_url, query = _split_query(self.base_url)  # a key in the query string stays a query parameter
        return openai.AsyncOpenAI(api_key=self.__api_key, base_url=base_url, default_query=query,
                                  timeout=self.timeout, max_retries=0)  # retries are ours: jitter, Retry-After, invalid bodies

    def _store(self, key: str, req: ChatRequest, res: ChatResult, holder: str | None, source: str) -> None:
        """Record a fresh answer (or failure) in the ledger and the cache (which drops its claim)."""
        if res.ok:
            self.ledger.record(self.options.stage, req, source, res.prompt_tokens, res.completion_tokens, res.text)
        if self.cache is not None and holder is not None:
            if res.ok:
                self.cache.put(key, req.model, res, source=source)
            else:
                self.cache.release([key], holder)  # a waiter elsewhere may try it

    async def _run(self, todo: dict[str, ChatRequest], results: dict[str, ChatResult], holder: str | None) -> None:
        openai = require("openai", extra="judge", purpose="the OpenAI-compatible judge client")
        sdk = self._sdk()
        sem = asyncio.Semaphore(self.concurrency)
        # The buckets outlive this call, so a caller sending many small batches (checkpointed
        # stages) still stays under the limits; only the lock is per event loop.
        if self._limiter is None or (self._limiter.rpm, self._limiter.tpm) != (self.requests_per_minute,
                                                                              self.tokens_per_minute):
            self._limiter = RateLimiter(self.requests_per_minute, self.tokens_per_minute)
        limiter = self._limiter
        limiter.new_loop()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc="judge requests", unit="req")

        async def one(key: str, req: ChatRequest) -> None:
            async with sem:
                res = await self._budgeted(sdk, openai, limiter, req)
            self._store(key, req, res, holder, "live")
            results[key] = res
            if bar is not None:
                bar.update(1)

        heartbeat = asyncio.ensure_future(self._heartbeat(list(todo), holder)) if holder else None
        try:
            await asyncio.gather(*(one(k, r) for k, r in todo.items()))
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            if self.cache is not None and holder is not None:
                self.cache.release([k for k in todo if k not in results], holder)  # cancelled: let others go
            if bar is not None:
                bar.close()
            if self.cache is not None:
                self.cache.flush()
            await sdk.close()

    async def _budgeted(self, sdk: Any, openai: Any, limiter: RateLimiter, req: ChatRequest) -> ChatResult:
        """Send `req` unless its worst-case cost could take the run past the budget."""
        if self.budget is None:
            return await self._with_retries(sdk, openai, limiter, req)
        price = check_priced(self.ledger.prices, req.model, "--budget")
        worst = price.cost(prompt_tokens(req), max_completion_tokens(req))
        if not self.budget.reserve(worst):
            return ChatResult(text=None, error="not sent: it could exceed --budget")
        try:
            return await self._with_retries(sdk, openai, limiter, req)
        finally:
            self.budget.settle(worst)  # the ledger now holds what was actually paid

    async def _heartbeat(self, keys: list[str], holder: str) -> None:
        """Renew this call's claims every third of their lifetime while its requests are in flight."""
        assert self.cache is not None
        while True:
            await asyncio.sleep(self.cache.claim_ttl / 3)
            self.cache.renew(keys, holder)

    async def _with_retries(self, sdk: Any, openai: Any, limiter: RateLimiter, req: ChatRequest) -> ChatResult:
        params = req.params_dict()
        est_tokens = sum(len(t.content) for t in req.messages) // 4 + int(params.get("max_tokens") or 512)
        last = ""
        for attempt in range(self.retry.max_retries + 1):
            await limiter.acquire(est_tokens)
            ticket = await self.pacer.acquire(est_tokens) if self.pacer is not None else None
            self.stats["sent"] += 1
            try:
                return await self._once(sdk, openai, req, params, ticket)
            except _Retryable as exc:
                last = str(exc)
                if exc.status == 429:
                    self.stats["http_429"] += 1
                if attempt == self.retry.max_retries:
                    break
                self.stats["retries"] += 1
                delay = self.retry.delay(attempt, exc.retry_after, self._rng)
                log.debug("retrying in %.2fs after: %s", delay, last)
                await asyncio.sleep(delay)
            except _Fatal as exc:
                self.stats["failures"] += 1
                return ChatResult(text=None, error=str(exc))
            except Exception as exc:  # anything else is this request's failure, never the batch's
                self.stats["failures"] += 1
                log.debug("unexpected error for one request", exc_info=True)
                return ChatResult(text=None, error=redact(f"unexpected {type(exc).__name__}: {exc}"[:500],
                                                          self.__api_key))
            finally:
                if ticket is not None:
                    ticket.release()
        self.stats["failures"] += 1
        n = self.retry.max_retries + 1
        return ChatResult(text=None, error=f"gave up after {n} attempt{'s' if n > 1 else ''}: {last}")

    async def _once(self, sdk: Any, openai: Any, req: ChatRequest, params: dict[str, Any], ticket: Any) -> ChatResult:
        body = {**params, "model": req.model,
                "messages": [{"role": t.role, "content": t.content} for t in req.messages]}
        try:
            # The SDK's generic POST, cast to its raw HTTP response: its auth, timeouts and typed
            # errors, without the per-call TypedDict transform and pydantic model building of
            # chat.completions.create (~30% of the client's CPU per request, benchmarks/bench_judge.py),
            # and with the response headers the pacer reads. Parameters the SDK does not know
            # (vLLM's min_tokens, top_k) travel in the same body.
            raw = await sdk.post("/chat/completions", body=body, cast_to=_raw_response_type())
        except openai.APIStatusError as exc:
            status = exc.status_code
            if ticket is not None and exc.response is not None:
                ticket.observe(exc.response.headers)
            msg = redact(f"HTTP {status}: {exc.message}", self.__api_key)
            if status in RETRY_STATUS or status >= 500:
                raise _Retryable(msg, _retry_after(exc.response), status) from None
            raise _Fatal(msg) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            where = public_url(self.base_url) or "https://api.openai.com/v1"  # never its credentials
            raise _Retryable(redact(f"{type(exc).__name__}: {exc} ({where})", self.__api_key)) from None
        if ticket is not None:
            ticket.observe(raw.headers)
        try:
            resp = json.loads(raw.content)
        except ValueError as exc:  # truncated / non-JSON body
            raise _Retryable(redact(f"invalid response body: {type(exc).__name__}: {exc}"[:300],
                                    self.__api_key)) from None
        return _parse_completion(resp)


def _split_query(base_url: str | None) -> tuple[str | None, dict[str, str] | None]:
    """A base URL's query (`...?api-key=K`, `?api-version=V`) as parameters sent with every request:
    the SDK appends paths to the URL as a string, which would put them after the query.

    >>> _split_query("http://h/v1?api-version=2024")
    ('http://h/v1', {'api-version': '2024'})
    """
    if not base_url or "?" not in base_url:
        return base_url, None
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(query="")), dict(parse_qsl(parts.query, keep_blank_values=True)) or None


def _parse_completion(resp: Any) -> ChatResult:
    """A ChatResult from a chat-completion JSON body; a body without usable text is retryable."""
    try:
        choice = resp["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _Retryable("response body has no choices[0].message.content") from None
    if not isinstance(text, str):
        raise _Retryable("response message content is not text")
    usage = resp.get("usage") or {}
    return ChatResult(
        text=text,
        prompt_tokens=usage.get("prompt_tokens") if isinstance(usage, dict) else None,
        completion_tokens=usage.get("completion_tokens") if isinstance(usage, dict) else None,
        finish_reason=choice.get("finish_reason"),
    )


def _retry_after(response: Any) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None  # an HTTP-date Retry-After falls back to our own backoff


def _copy(r: ChatResult) -> ChatResult:
    return ChatResult(r.text, r.error, r.prompt_tokens, r.completion_tokens, r.finish_reason, r.cached)


def _default_cache() -> Path:
    return cache_dir() / "judge"


def make_client(model: str | None = None, **options: Any) -> OpenAIChatClient:
    """An OpenAI-compatible ChatClient; `options` are `ClientOptions` fields (cache defaults to <cache_dir()>/judge)."""
    return OpenAIChatClient(ClientOptions(model=model, **options))


@lru_cache(maxsize=1)
def _raw_response_type() -> type:
    """The HTTP response class the installed openai SDK returns for `cast_to` (httpx's or httpx2's)."""
    try:
        from openai._httpx2 import http_response_types  # SDKs built on httpx2

        return http_response_types()[0]
    except ImportError:
        import httpx

        return httpx.Response

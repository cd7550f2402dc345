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
* each answer is appended to the cache the moment it arrives, so a SIGKILLed run loses at most
  the requests in flight.

The API key is held privately and scrubbed from every error message; reprs never show it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.errors import ConfigError, require
from harness_ext.llm.cache import ChatCache, request_key
from harness_ext.core.paths import cache_dir
from harness_ext.core.records import ChatRequest, ChatResult
from harness_ext.core.secrets import public_url, register, register_url, scrub

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
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Fatal(Exception):
    """A failure that retrying cannot fix (4xx other than 408/409/425/429)."""


class OpenAIChatClient:
    """A records.ChatClient over the openai SDK's AsyncOpenAI, with cache, limiter and retries."""

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        concurrency: int = 32,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        seed: int | None = None,
        progress: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}.", hint="use e.g. --concurrency 32")
        if not timeout > 0:  # 0 or less times out every request; nan compares false
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout}.", hint="use e.g. --timeout 120")
        for name, limit in (("requests_per_minute", requests_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if limit is not None and not limit > 0:
                raise ConfigError(f"{name} must be > 0 (or unset for no limit), got {limit}.",
                                  hint="use e.g. --rpm 500, or leave the limit out")
        self.model = model
        self.base_url = resolve_base_url(base_url)
        self.__api_key = resolve_api_key(api_key, self.base_url)
        self.concurrency = concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.progress = progress
        self.cache = ChatCache(Path(cache_dir) if cache_dir else _default_cache()) if use_cache else None
        self.stats: Counter[str] = Counter()  # sent, retries, cache_hits, failures, deduplicated
        self._rng = random.Random(seed)
        self._limiter: RateLimiter | None = None

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
        """Async version of `complete_many`."""
        requests = [self._with_model(r) for r in requests]
        keys = [request_key(r) for r in requests]
        results: dict[str, ChatResult] = {}
        todo: dict[str, ChatRequest] = {}
        for key, req in zip(keys, requests, strict=True):
            if key in results or key in todo:
                self.stats["deduplicated"] += 1
                continue
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                self.stats["cache_hits"] += 1
                results[key] = hit
            else:
                todo[key] = req
        if todo:
            await self._run(todo, results)
        return [_copy(results[k]) for k in keys]

    # ------------------------------------------------------------ internals

    def _with_model(self, r: ChatRequest) -> ChatRequest:
        if r.model:
            return r
        if not self.model:
            raise ConfigError("a ChatRequest has no model and the client has no default model.",
                              hint="pass model= to make_client or set ChatRequest.model.")
        return ChatRequest(self.model, r.messages, r.params)

    async def _run(self, todo: dict[str, ChatRequest], results: dict[str, ChatResult]) -> None:
        openai = require("openai", extra="judge", purpose="the OpenAI-compatible judge client")
        base_url, query = _split_query(self.base_url)
        sdk = openai.AsyncOpenAI(api_key=self.__api_key, base_url=base_url, default_query=query, timeout=self.timeout,
                                 max_retries=0)  # retries are ours: jitter, Retry-After, invalid bodies
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
                res = await self._with_retries(sdk, openai, limiter, req)
            if res.ok and self.cache is not None:
                self.cache.put(key, req.model, res)
            results[key] = res
            if bar is not None:
                bar.update(1)

        try:
            await asyncio.gather(*(one(k, r) for k, r in todo.items()))
        finally:
            if bar is not None:
                bar.close()
            if self.cache is not None:
                self.cache.flush()
            await sdk.close()

    async def _with_retries(self, sdk: Any, openai: Any, limiter: RateLimiter, req: ChatRequest) -> ChatResult:
        params = req.params_dict()
        est_tokens = sum(len(t.content) for t in req.messages) // 4 + int(params.get("max_tokens") or 512)
        last = ""
        for attempt in range(self.retry.max_retries + 1):
            await limiter.acquire(est_tokens)
            self.stats["sent"] += 1
            try:
                return await self._once(sdk, openai, req, params)
            except _Retryable as exc:
                last = str(exc)
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
        self.stats["failures"] += 1
        n = self.retry.max_retries + 1
        return ChatResult(text=None, error=f"gave up after {n} attempt{'s' if n > 1 else ''}: {last}")

    async def _once(self, sdk: Any, openai: Any, req: ChatRequest, params: dict[str, Any]) -> ChatResult:
        body = {**params, "model": req.model,
                "messages": [{"role": t.role, "content": t.content} for t in req.messages]}
        try:
            # The SDK's generic POST: its auth, timeouts and typed errors, without the per-call
            # TypedDict transform and pydantic model building of chat.completions.create, which
            # cost ~30% of the client's CPU per request (benchmarks/bench_judge.py). Parameters
            # the SDK does not know (vLLM's min_tokens, top_k) travel in the same body.
            resp = await sdk.post("/chat/completions", body=body, cast_to=dict)
        except openai.APIStatusError as exc:
            status = exc.status_code
            msg = redact(f"HTTP {status}: {exc.message}", self.__api_key)
            if status in RETRY_STATUS or status >= 500:
                raise _Retryable(msg, _retry_after(exc.response)) from None
            raise _Fatal(msg) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            where = public_url(self.base_url) or "https://api.openai.com/v1"  # never its credentials
            raise _Retryable(redact(f"{type(exc).__name__}: {exc} ({where})", self.__api_key)) from None
        except (openai.APIResponseValidationError, ValueError) as exc:  # truncated / non-JSON body
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


def make_client(
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    cache_dir: str | Path | None = None,
    concurrency: int = 32,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    timeout: float = 120.0,
    max_retries: int = 8,
    use_cache: bool = True,
    progress: bool = False,
) -> OpenAIChatClient:
    """An OpenAI-compatible ChatClient; see OpenAIChatClient. Cache defaults to <cache_dir()>/judge."""
    return OpenAIChatClient(
        model, base_url=base_url, api_key=api_key, cache_dir=cache_dir, use_cache=use_cache,
        concurrency=concurrency, requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute, timeout=timeout, retry=RetryPolicy(max_retries=max_retries),
        progress=progress,
    )

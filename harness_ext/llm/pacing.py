"""Pace requests to the endpoint's own rate-limit headers, so a run at the account's limit sees few 429s.

OpenAI (and vLLM gateways, Azure, OpenRouter in the same shape) answer every request with

    x-ratelimit-limit-requests / -tokens       the per-minute limits
    x-ratelimit-remaining-requests / -tokens   what is left now
    x-ratelimit-reset-requests / -tokens       time until the limit is whole again ("1s", "6m0s", "20ms")

`HeaderPacer` keeps a local bucket per dimension, re-synchronised by every response: after a
header, the bucket holds `remaining` minus what this client sent since (in flight, not yet
counted in any header), and refills at `limit` per minute (or jumps to `limit` at the reset time
when the limit is not given). A request waits until its estimated tokens fit, instead of being
sent to collect a 429 and a Retry-After.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping

COLD_START_WAIT = 2.0  # seconds the others wait for the first response's headers

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None) -> float | None:
    """Seconds in an OpenAI reset header, None when absent or unreadable.

    >>> parse_duration("6m0s"), parse_duration("20ms"), parse_duration("1.5s"), parse_duration("2")
    (360.0, 0.02, 1.5, 2.0)
    >>> parse_duration("soon") is None
    True
    """
    if text is None:
        return None
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


class _Bucket:
    def __init__(self) -> None:
        self.limit: float | None = None
        self.cap: float | None = None  # what the bucket holds when whole (remaining + reset x rate)
        self.level: float | None = None  # None: no header seen yet, nothing to pace
        self.reset_at = 0.0
        self.stamp = time.monotonic()
        self.in_flight = 0.0

    def observe(self, limit: float | None, remaining: float | None, reset: float | None) -> None:
        if remaining is None:
            return
        now = time.monotonic()
        self.limit = limit if limit else self.limit
        if self.limit and reset is not None:
            self.cap = remaining + reset * self.limit / 60.0
        # the header counted the request it answers; requests still in flight may be uncounted
        self.level = remaining - self.in_flight
        self.reset_at = now + (reset or 0.0)
        self.stamp = now

    def refill(self, now: float) -> None:
        if self.level is None:
            return
        if self.limit:
            self.level = min(self.cap or self.limit, self.level + (now - self.stamp) * self.limit / 60.0)
        elif now >= self.reset_at:
            self.level = max(self.level, 0.0)  # reset passed without a known limit: allow again
            self.reset_at = float("inf")
        self.stamp = now

    def wait_for(self, amount: float, now: float) -> float:
        if self.level is None or self.level >= amount:
            return 0.0
        if self.limit:
            amount = min(amount, self.cap or self.limit)  # a request larger than the bucket still goes when full
            return (amount - self.level) * 60.0 / self.limit
        return max(0.0, self.reset_at - now) if self.reset_at != float("inf") else 0.0


class HeaderPacer:
    """Waits before each request until the endpoint's reported budget allows it (see module doc)."""

    def __init__(self) -> None:
        self.requests = _Bucket()
        self.tokens = _Bucket()
        self.waited = 0.0  # seconds spent pacing (for stats)
        # None until the first response: until then one request goes alone, so a cold start at the
        # limit does not fire `concurrency` requests blind; False: the server sends no such headers.
        self.seen: bool | None = None
        self._lock: asyncio.Lock | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        """Update from one response's headers (any response, 429s included)."""
        def get(name: str) -> str | None:
            return headers.get(name)

        has = get("x-ratelimit-remaining-tokens") is not None or get("x-ratelimit-remaining-requests") is not None
        self.seen = True if has else (self.seen or False)

        self.requests.observe(_number(get("x-ratelimit-limit-requests")), _number(get("x-ratelimit-remaining-requests")),
                              parse_duration(get("x-ratelimit-reset-requests")))
        self.tokens.observe(_number(get("x-ratelimit-limit-tokens")), _number(get("x-ratelimit-remaining-tokens")),
                            parse_duration(get("x-ratelimit-reset-tokens")))

    async def acquire(self, tokens: int) -> _Ticket:
        """Wait until `tokens` (and one request) fit; the ticket returned releases them from in-flight."""
        if self._lock is None or self._lock._loop not in (None, asyncio.get_running_loop()):  # type: ignore[attr-defined]
            self._lock = asyncio.Lock()
        async with self._lock:  # one waiter at a time keeps the order fair
            deadline = time.monotonic() + COLD_START_WAIT  # a first request that hangs must not stall the run
            while self.seen is None and self.requests.in_flight >= 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            while True:
                now = time.monotonic()
                self.requests.refill(now)
                self.tokens.refill(now)
                wait = max(self.requests.wait_for(1, now), self.tokens.wait_for(tokens, now))
                if wait <= 0:
                    break
                self.waited += wait
                await asyncio.sleep(min(wait, 5.0))  # re-check: a fresh header may arrive meanwhile
            for bucket, amount in ((self.requests, 1), (self.tokens, tokens)):
                bucket.in_flight += amount
                if bucket.level is not None:
                    bucket.level -= amount
        return _Ticket(self, tokens)

    def release(self, tokens: int) -> None:
        """The request was answered (its cost is in the header that came with it) or failed."""
        self.requests.in_flight = max(0.0, self.requests.in_flight - 1)
        self.tokens.in_flight = max(0.0, self.tokens.in_flight - tokens)


class _Ticket:
    """One request's share of the in-flight counts; released once (before its response's headers are read,
    so the header's count of this request is not subtracted a second time)."""

    def __init__(self, pacer: HeaderPacer, tokens: int) -> None:
        self.pacer, self.tokens, self.done = pacer, tokens, False

    def release(self) -> None:
        if not self.done:
            self.done = True
            self.pacer.release(self.tokens)

    def observe(self, headers: Mapping[str, str]) -> None:
        self.release()
        self.pacer.observe(headers)

"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks `/v1/chat/completions`, `/v1/completions` and `/v1/models` (what the openai SDK,
our judge client and alpaca_eval's `openai_completions` call), answers with scripted text (a
function of the request), sleeps a configurable latency, injects faults at a configurable rate,
and counts what it served. Faults are the ways real endpoints fail:

    "429"       status 429 with a Retry-After header
    "500"       status 500
    "hang"      no answer until the client gives up (bounded by `hang_seconds`)
    "truncate"  status 200 with a JSON body cut in half
    "garbage"   status 200 with a well-formed body whose text is unparseable by any judge parser

`echo_credentials=N` refuses the first N completion requests with a 401 whose message repeats the
Authorization header and the URL (path and query) the server received, as OpenAI's "Incorrect API
key provided" does: the test of secret scrubbing (tests/test_secret_sweep.py) uses it.

Usage::

    with LoopbackServer(reply=lambda req: "Scores: 7 3", latency=0.01) as srv:
        client = make_client("judge", base_url=srv.base_url, api_key="sk-test")

With `limits=RateLimits(tpm=...)` it enforces a tokens-per-minute limit (429 with Retry-After,
x-ratelimit-* headers on every answer), and it implements the Batch API's `/v1/files` and
`/v1/batches` (failed lines, expiry with partial output); see tests/openai_batches.py.

The server is bounded: it stops by itself after `max_lifetime` seconds, and `stop()` (or leaving
the `with` block) wakes hanging handlers so nothing outlives the test.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.openai_batches import BatchAPI, TokenLimiter

FAULTS = ("429", "500", "hang", "truncate", "garbage")
GARBAGE_TEXT = "I cannot decide; both are fine I guess."


def request_key(body: dict[str, Any]) -> str:
    """A stable key for a request body's model + messages/prompt (what the counters are keyed by)."""
    core = {"model": body.get("model"), "messages": body.get("messages"), "prompt": body.get("prompt")}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()


def prompt_token_count(body: dict[str, Any]) -> int:
    """The server's token count of a request's prompt (whitespace-separated words of its JSON)."""
    return len(json.dumps(body.get("messages") or body.get("prompt") or "").split())


@dataclass
class RateLimits:
    """Per-minute limits the server enforces with 429s and reports in x-ratelimit-* headers."""

    tpm: float | None = None
    rpm: float | None = None
    burst_s: float = 60.0  # seconds of the rate a bucket holds when full (OpenAI's: a minute)


@dataclass
class BatchOptions:
    """How the Batch API behaves: seconds until a batch completes, lines that fail, early expiry."""

    latency: float = 0.0
    fail: Callable[[str], bool] | None = None  # custom_id -> this line lands in the error file
    expire_after: int | None = None  # a batch answers only its first N lines, then expires


def last_user_text(body: dict[str, Any]) -> str:
    """The last user message (chat) or the prompt (completions) of a request body."""
    if body.get("messages"):
        for m in reversed(body["messages"]):
            if m.get("role") == "user":
                content = m.get("content")
                if isinstance(content, list):  # content parts
                    return "".join(p.get("text", "") for p in content if isinstance(p, dict))
                return str(content)
        return ""
    prompt = body.get("prompt", "")
    return prompt[0] if isinstance(prompt, list) else str(prompt)


class LoopbackServer:
    """An OpenAI-compatible server in a background thread; see the module docstring."""

    def __init__(
        self,
        reply: Callable[[dict[str, Any]], str] | None = None,
        *,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        retry_after: float = 0.05,
        hang_seconds: float = 5.0,
        seed: int = 0,
        max_lifetime: float = 900.0,
        fail_first: int = 0,
        api_key: str | None = None,
        limits: RateLimits | None = None,
        batches: BatchOptions | None = None,
        echo_credentials: int = 0,
        top_logprobs: Callable[[dict[str, Any]], dict[str, float]] | None = None,
    ) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; allowed: {FAULTS}")
        self.reply = reply or (lambda body: "echo: " + last_user_text(body)[:200])
        self.latency = latency
        self.fault_rate = fault_rate
        self.faults = faults
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.max_lifetime = max_lifetime
        self.fail_first = fail_first  # the first N requests fail (deterministic fault tests)
        self.send_usage = True
        self.api_key = api_key  # when set, other keys get a 401 that echoes them, as real APIs do
        self.echo_credentials = echo_credentials  # the first N requests: a 401 echoing what was received
        self._echoed = 0
        # token -> probability of the first generated token; sent (as vLLM does) when a chat request
        # asks for logprobs=true, limited to its top_logprobs most likely tokens
        self.top_logprobs = top_logprobs
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests = 0  # every HTTP request received
        self.served = 0  # successful completions (status 200 with a usable body)
        self.fault_counts: Counter[str] = Counter()
        self.served_keys: Counter[str] = Counter()  # request_key -> times served successfully
        self.bodies: list[dict[str, Any]] = []  # every completion request body, in arrival order
        # rate limits and the Batch API (tests/openai_batches.py)
        limits = limits or RateLimits()
        self.limiter = TokenLimiter(limits.tpm, limits.rpm, limits.burst_s) if limits.tpm or limits.rpm else None
        b = batches or BatchOptions()
        self.batch_api = BatchAPI(self._batch_answer, latency=b.latency, fail=b.fail, expire_after=b.expire_after)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> LoopbackServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; with Nagle's algorithm on, the body waits for
            # the client's delayed ACK of the headers (~40 ms per request on Linux).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/_stats":  # counters, for a server run in another process
                    with server._lock:
                        stats = {"requests": server.requests, "served": server.served,
                                 "faults": dict(server.fault_counts),
                                 "rate_limited": server.limiter.limited if server.limiter else 0,
                                 "tokens_charged": server.limiter.charged if server.limiter else 0,
                                 "batches_created": server.batch_api.created,
                                 "batch_lines_answered": server.batch_api.lines_answered}
                    server._send_json(self, 200, stats)
                elif "/files" in self.path or "/batches" in self.path:
                    server._batch_route(self, "GET", b"")
                elif self.path.rstrip("/").endswith("/models"):
                    server._send_json(self, 200, {"object": "list", "data": [
                        {"id": "loopback-judge", "object": "model", "created": 0, "owned_by": "tests"}]})
                else:
                    server._send_json(self, 404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                server._handle_post(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ handling

    def _pick_fault(self) -> str | None:
        with self._lock:
            self.requests += 1
            if self.requests <= self.fail_first:
                return self.faults[(self.requests - 1) % len(self.faults)]
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.faults)
        return None

    def _logprobs(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if self.top_logprobs is None or not body.get("logprobs"):
            return None
        return _first_token_logprobs(self.top_logprobs(body), int(body.get("top_logprobs") or 1))

    @staticmethod
    def _send_json(h: BaseHTTPRequestHandler, status: int, obj: Any, headers: dict[str, str] | None = None,
                   truncate: bool = False) -> None:
        data = json.dumps(obj).encode()
        if truncate:
            data = data[: len(data) // 2]
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer

    def _batch_route(self, h: BaseHTTPRequestHandler, method: str, raw: bytes) -> None:
        status, payload, kind = self.batch_api.handle(method, h.path, h.headers, raw)
        if kind == "json":
            self._send_json(h, status, payload)
            return
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/octet-stream")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _batch_answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One batch line's answer: a chat completion, counted like a served live request."""
        payload = self._completion(body, self.reply(body), chat=True)
        with self._lock:
            self.served_keys[request_key(body)] += 1
        return 200, payload

    def _charge(self, body: dict[str, Any]) -> tuple[bool, dict[str, str]]:
        """Admit a request under the per-minute limits: prompt tokens + max_tokens, charged on arrival."""
        if self.limiter is None:
            return True, {}
        return self.limiter.admit(prompt_token_count(body) + int(body.get("max_tokens") or 16))

    def _echo_credentials(self, h: BaseHTTPRequestHandler) -> bool:
        """Refuse the request with a 401 that repeats its credentials, while `echo_credentials` lasts."""
        with self._lock:
            if self._echoed >= self.echo_credentials:
                return False
            self._echoed += 1
            self.requests += 1
        auth = h.headers.get("Authorization") or ""
        self._send_json(h, 401, {"error": {
            "message": f"Incorrect API key provided: {auth!r} (from {auth.partition(' ')[2]}) for {h.path}.",
            "type": "invalid_request_error"}})
        return True

    def _handle_post(self, h: BaseHTTPRequestHandler) -> None:
        # The latency is time to answer: counted from when the request was read, so the server's
        # own parsing and reply building do not add to it (as with a real endpoint's latency).
        deadline = time.monotonic() + self.latency
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if "/files" in h.path or "/batches" in h.path:
            self._batch_route(h, "POST", raw)
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(h, 400, {"error": {"message": "request body is not JSON"}})
            return
        route = h.path.partition("?")[0].rstrip("/")  # a query (?api-version=, ?api-key=) is not the route
        chat = route.endswith("/chat/completions")
        if not chat and not route.endswith("/completions"):
            self._send_json(h, 404, {"error": {"message": f"no route {h.path}"}})
            return
        if self.api_key is not None:
            got = (h.headers.get("Authorization") or "").removeprefix("Bearer ")
            if got != self.api_key:
                with self._lock:
                    self.requests += 1
                self._send_json(h, 401, {"error": {"message": f"Incorrect API key provided: {got}.",
                                                   "type": "invalid_request_error"}})
                return
        if self._echo_credentials(h):
            return
        admitted, limit_headers = self._charge(body)
        if not admitted:
            with self._lock:
                self.requests += 1
            self._send_json(h, 429, {"error": {"message": "Rate limit reached for tokens per min (TPM).",
                                               "type": "tokens", "code": "rate_limit_exceeded"}},
                            headers=limit_headers)
            return
        fault = self._pick_fault()
        with self._lock:
            self.bodies.append(body)
            if fault:
                self.fault_counts[fault] += 1
        if self.latency:
            self._stopping.wait(max(0.0, deadline - time.monotonic()))
        if fault == "429":
            self._send_json(h, 429, {"error": {"message": "rate limit reached", "type": "rate_limit"}},
                            headers={"Retry-After": f"{self.retry_after:g}"})
            return
        if fault == "500":
            self._send_json(h, 500, {"error": {"message": "internal error", "type": "server_error"}})
            return
        if fault == "hang":
            self._stopping.wait(self.hang_seconds)
            h.close_connection = True
            return
        text = GARBAGE_TEXT if fault == "garbage" else self.reply(body)
        payload = self._completion(body, text, chat)
        if fault == "truncate":
            self._send_json(h, 200, payload, truncate=True)
            return
        with self._lock:  # "garbage" is a well-formed 200 too: from the wire it is a served answer
            self.served += 1
            self.served_keys[request_key(body)] += 1
        self._send_json(h, 200, payload, headers=limit_headers)

    def _completion(self, body: dict[str, Any], text: str, chat: bool) -> dict[str, Any]:
        """A chat or text completion body answering `body` with `text`, usage included."""
        prompt_tokens = prompt_token_count(body)
        completion_tokens = max(1, len(text.split()))
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text},
                      "finish_reason": "stop", "logprobs": self._logprobs(body)}
            obj_type = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
            obj_type = "text_completion"
        payload = {
            "id": f"cmpl-{self.requests}", "object": obj_type, "created": int(time.time()),
            "model": body.get("model", "loopback-judge"), "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
        if not self.send_usage:  # some servers (older llama.cpp, proxies) send none
            del payload["usage"]
        return payload


def _first_token_logprobs(probs: dict[str, float], top: int) -> dict[str, Any]:
    """OpenAI's chat `logprobs` object for one generated token: the most likely of `probs`, with the
    `top` most likely tokens as top_logprobs."""
    import math

    ranked = sorted(probs.items(), key=lambda kv: -kv[1])[:max(1, top)]
    entries = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in ranked if p > 0]
    return {"content": [{**entries[0], "top_logprobs": entries}]}


def main() -> None:
    """Serve in the foreground (for benchmarks and manual checks): prints the base URL, then serves."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="OpenAI-compatible loopback server")
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--reply", choices=["echo", "pairwise"], default="echo",
                    help="echo the prompt, or score pairwise prompts like tests.judge_helpers.quality_judge")
    ap.add_argument("--max-lifetime", type=float, default=900.0)
    ap.add_argument("--tpm", type=float, default=None, help="tokens-per-minute limit (429 + x-ratelimit-* headers)")
    ap.add_argument("--burst-s", type=float, default=60.0, help="seconds of --tpm the bucket holds when full")
    ap.add_argument("--batch-latency", type=float, default=0.0, help="seconds until a batch completes")
    args = ap.parse_args()
    reply = None
    if args.reply == "pairwise":
        from tests.judge_helpers import quality_judge

        reply = quality_judge
    srv = LoopbackServer(reply, latency=args.latency, fault_rate=args.fault_rate, max_lifetime=args.max_lifetime,
                         limits=RateLimits(tpm=args.tpm, burst_s=args.burst_s), batches=BatchOptions(latency=args.batch_latency))
    srv.start()
    print(srv.base_url, flush=True)
    try:
        while not srv._stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        srv.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()

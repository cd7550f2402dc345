"""The study's web server: stdlib http.server, one static page plus a two-route JSON API.

GET  /                      the page (our own HTML/JS, no CDN; works offline)
GET  /api/next?annotator=X  the annotator's next unvoted pair, anonymized, in seeded screen order
POST /api/vote              {annotator, pair_id, choice: left|tie|right}; answers with the next pair

Both API routes need the annotator's invite token (`harness-ext study invite`) in the
`X-Study-Token` header. A vote is stored only when the token is valid, the body is declared
`application/json` (a cross-site form or `text/plain` POST cannot declare it without a CORS
preflight, which this server never grants) and the Origin, when sent, is this server's own:
anything else is refused (403 / 415) and stores nothing.

Sized for a classroom: a listen backlog of 128 and a bounded pool of worker threads; a client
that sends less than its Content-Length is dropped after `READ_TIMEOUT` seconds instead of holding
a thread; clients that disconnect early are logged at debug level, not as tracebacks.
"""

from __future__ import annotations

import json
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from harness_ext.core.artifacts import to_json
from harness_ext.core.paths import resources_dir
from harness_ext.study.store import Store, a_shown_first, valid_annotator

log = logging.getLogger(__name__)

#: Seconds a client may take to send its request (headers and body) before it is dropped.
READ_TIMEOUT = 10.0
#: Worker threads answering requests; more connections wait in the listen backlog.
WORKERS = 32
BACKLOG = 128
MAX_BODY = 1 << 16
TOKEN_HEADER = "X-Study-Token"
_QUIET = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError, socket.timeout)


class StudyServer(HTTPServer):
    """An HTTP server bound to one study store and one order seed, answering from a thread pool."""

    request_queue_size = BACKLOG
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], store: Store, seed: int = 0, workers: int = WORKERS) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.seed = seed
        self.page = (resources_dir() / "study.html").read_bytes()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="study")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def invite_url(self, annotator: str, token: str) -> str:
        from urllib.parse import urlencode

        return f"{self.url}?{urlencode({'annotator': annotator, 'token': token})}"

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._work, request, client_address)

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, _QUIET):  # the client went away or stalled: nothing to report
            log.debug("client %s: %s", client_address, type(exc).__name__)
            return
        log.exception("error answering %s", client_address)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def state(self, annotator: str) -> dict[str, Any]:
        """What the page shows next for this annotator."""
        pair, done, total = self.store.next_pair(annotator)
        if pair is None:
            return {"finished": True, "done": done, "total": total}
        first = a_shown_first(pair.id, annotator, self.seed)
        left, right = (pair.response_a, pair.response_b) if first else (pair.response_b, pair.response_a)
        return {"finished": False, "done": done, "total": total,
                "pair": {"id": pair.id, "instruction": pair.instruction, "left": left, "right": right}}


class _Handler(BaseHTTPRequestHandler):
    server: StudyServer
    disable_nagle_algorithm = True  # headers and body go in two writes; don't hold the body for an ACK
    timeout = READ_TIMEOUT  # socket timeout: a stalled client cannot hold a worker forever

    def log_message(self, fmt: str, *args: Any) -> None:  # route access logs to logging, not stderr
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")  # the page URL carries the token
            self.end_headers()
            self.wfile.write(body)
        except _QUIET:
            self.close_connection = True

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, to_json(obj).encode("utf-8"), "application/json; charset=utf-8")

    def _authorized(self, annotator: Any) -> str | None:
        """The annotator id when it is well formed and the request carries its token; else answer."""
        if not valid_annotator(annotator):
            self._json(400, {"error": f"annotator id {annotator!r} is not 1-64 letters, digits or _.@-"})
            return None
        if not self.server.store.check_token(annotator, self.headers.get(TOKEN_HEADER)):
            self._json(403, {"error": "missing or invalid invite token: open the link from `harness-ext study "
                                      "invite`"})
            return None
        return annotator

    def _foreign_origin(self) -> bool:
        origin = self.headers.get("Origin")
        site = self.headers.get("Sec-Fetch-Site")
        if site and site not in ("same-origin", "none"):
            return True
        return origin is not None and origin != f"http://{self.headers.get('Host', '')}"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        if url.path in ("/", "/index.html"):
            self._send(200, self.server.page, "text/html; charset=utf-8")
        elif url.path == "/api/next":
            annotator = self._authorized(parse_qs(url.query).get("annotator", [None])[0])
            if annotator:
                self._json(200, self.server.state(annotator))
        else:
            self._json(404, {"error": f"no such path {url.path!r}"})

    def _read_body(self) -> Any:
        """The JSON request body, or None after answering why not."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            self._json(415, {"error": "votes must be sent as application/json"})
            return None
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._json(411, {"error": "Content-Length required"})
            return None
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._json(413, {"error": f"body larger than {MAX_BODY} bytes"})
            return None
        raw = self.rfile.read(length)  # bounded by the socket timeout
        if len(raw) < length:
            self.close_connection = True
            return None  # the client closed early: nothing to answer
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": "body must be JSON"})
            return None
        if not isinstance(body, dict):
            self._json(400, {"error": "body must be a JSON object"})
            return None
        return body

    def do_POST(self) -> None:  # noqa: N802
        if urlparse(self.path).path != "/api/vote":
            self._json(404, {"error": "POST only to /api/vote"})
            return
        if self._foreign_origin():
            self.close_connection = True
            self._json(403, {"error": "cross-site request refused"})
            return
        try:
            body = self._read_body()
        except _QUIET:  # the body never came (read timeout) or the client left
            self.close_connection = True
            return
        if body is None:
            return
        annotator = self._authorized(body.get("annotator"))
        if not annotator:
            return
        pair = self.server.store.pair(str(body.get("pair_id")))
        choice = body.get("choice")
        if pair is None or choice not in ("left", "right", "tie"):
            self._json(400, {"error": f"unknown pair {body.get('pair_id')!r} or choice {choice!r} (left|tie|right)"})
            return
        first = a_shown_first(pair.id, annotator, self.server.seed)
        # Map the screen position back to a/b so the stored vote does not depend on the shuffle.
        ab = "tie" if choice == "tie" else ("a" if (choice == "left") == first else "b")
        self.server.store.record(pair.id, annotator, ab, first)
        self._json(200, self.server.state(annotator))


def make_server(store: Store, host: str = "127.0.0.1", port: int = 8765, seed: int = 0) -> StudyServer:
    """Bind (port 0 picks a free port); call serve_forever() to run."""
    return StudyServer((host, port), store, seed)

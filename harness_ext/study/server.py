"""The study's web server: stdlib http.server, one static page plus a two-route JSON API.

GET  /                      the page (our own HTML/JS, no CDN; works offline)
GET  /api/next?annotator=X  the annotator's next unvoted pair, anonymized, in seeded screen order
POST /api/vote              {annotator, pair_id, choice: left|tie|right}; answers with the next pair
"""

from __future__ import annotations

import json
import logging
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from harness_ext.core.artifacts import to_json
from harness_ext.core.paths import resources_dir
from harness_ext.study.store import Store, a_shown_first

log = logging.getLogger(__name__)
ANNOTATOR_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class StudyServer(ThreadingHTTPServer):
    """An HTTP server bound to one study store and one order seed."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: Store, seed: int = 0) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.seed = seed
        self.page = (resources_dir() / "study.html").read_bytes()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

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

    def log_message(self, fmt: str, *args: Any) -> None:  # route access logs to logging, not stderr
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, to_json(obj).encode("utf-8"), "application/json; charset=utf-8")

    def _annotator(self, value: Any) -> str | None:
        if isinstance(value, str) and ANNOTATOR_RE.match(value):
            return value
        self._json(400, {"error": f"annotator id {value!r} is not 1-64 letters, digits or _.@-"})
        return None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        if url.path in ("/", "/index.html"):
            self._send(200, self.server.page, "text/html; charset=utf-8")
        elif url.path == "/api/next":
            annotator = self._annotator(parse_qs(url.query).get("annotator", [None])[0])
            if annotator:
                self._json(200, self.server.state(annotator))
        else:
            self._json(404, {"error": f"no such path {url.path!r}"})

    def do_POST(self) -> None:  # noqa: N802
        if urlparse(self.path).path != "/api/vote":
            self._json(404, {"error": "POST only to /api/vote"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(min(length, 1 << 16)) or b"{}")
        except (ValueError, json.JSONDecodeError):
            self._json(400, {"error": "body must be JSON"})
            return
        if not isinstance(body, dict):
            self._json(400, {"error": "body must be a JSON object"})
            return
        annotator = self._annotator(body.get("annotator"))
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

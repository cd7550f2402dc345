"""The loopback server's Batch API and rate-limit parts (tests/openai_server.py routes to them).

* `/v1/files`: multipart upload (purpose=batch), `GET /v1/files/{id}/content`;
* `/v1/batches`: create and retrieve. A batch is `in_progress` until `latency` seconds after it
  was created, then answers its lines with the server's reply function. `fail(custom_id)` picks
  lines that land in the error file instead; `expire_after=N` makes a batch expire after
  answering only its first N lines (a partial output file), as a 24-hour window running out does;
* `TokenLimiter`: a tokens-per-minute (and optional requests-per-minute) bucket that charges each
  request its prompt tokens plus max_tokens on arrival, as OpenAI does, answers 429 with
  Retry-After when the bucket is short, and reports itself in x-ratelimit-* headers.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any


class TokenLimiter:
    """Per-minute token (and request) buckets with OpenAI's x-ratelimit-* headers."""

    def __init__(self, tpm: float | None, rpm: float | None = None, burst_s: float = 60.0) -> None:
        self.tpm, self.rpm = tpm, rpm
        # the buckets hold `burst_s` seconds of the rate (OpenAI's hold a minute; tests use less)
        self.tok_cap = (tpm or 0) * burst_s / 60
        self.req_cap = max(1.0, (rpm or 0) * burst_s / 60)
        self._tok = self.tok_cap
        self._req = self.req_cap
        self._t = time.monotonic()
        self._lock = threading.Lock()
        self.limited = 0  # requests answered 429
        self.charged = 0  # tokens admitted

    def _refill(self) -> None:
        now = time.monotonic()
        dt, self._t = now - self._t, now
        if self.tpm:
            self._tok = min(self.tok_cap, self._tok + dt * self.tpm / 60)
        if self.rpm:
            self._req = min(self.req_cap, self._req + dt * self.rpm / 60)

    def admit(self, tokens: int) -> tuple[bool, dict[str, str]]:
        """(admitted, headers): charges the buckets when admitted; else the 429's headers."""
        with self._lock:
            self._refill()
            tokens = min(tokens, int(self.tok_cap)) if self.tpm else tokens
            short_tok = self.tpm and self._tok < tokens
            short_req = self.rpm and self._req < 1
            ok = not short_tok and not short_req
            if ok:
                self._tok -= tokens if self.tpm else 0
                self._req -= 1 if self.rpm else 0
                self.charged += tokens
            else:
                self.limited += 1
            headers = self._headers()
            if not ok:
                wait = max((tokens - self._tok) * 60 / self.tpm if short_tok else 0.0,
                           (1 - self._req) * 60 / self.rpm if short_req else 0.0)
                headers["Retry-After"] = f"{max(wait, 0.001):.3f}"
            return ok, headers

    def _headers(self) -> dict[str, str]:
        h: dict[str, str] = {}
        for name, limit, level, cap in (("tokens", self.tpm, self._tok, self.tok_cap),
                                        ("requests", self.rpm, self._req, self.req_cap)):
            if limit:
                h[f"x-ratelimit-limit-{name}"] = str(int(limit))
                h[f"x-ratelimit-remaining-{name}"] = str(max(0, math.floor(level)))
                h[f"x-ratelimit-reset-{name}"] = f"{max(0.0, cap - level) * 60 / limit:.3f}s"
        return h


class BatchAPI:
    """In-memory files and batches; `answer(body) -> (status, payload)` answers one request body."""

    def __init__(self, answer: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]], *, latency: float = 0.0,
                 fail: Callable[[str], bool] | None = None, expire_after: int | None = None) -> None:
        self.answer = answer
        self.latency = latency
        self.fail = fail or (lambda custom_id: False)
        self.expire_after = expire_after
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.lines_answered = 0  # successful batch lines (paid)
        self.created = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------ routes

    def handle(self, method: str, path: str, headers: Any, raw: bytes) -> tuple[int, Any, str]:
        """(status, payload, kind): kind 'json' or 'bytes'."""
        parts = [p for p in path.split("?")[0].split("/") if p][1:]  # drop the leading 'v1'
        if method == "POST" and parts == ["files"]:
            return self._upload(headers, raw)
        if method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
            data = self.files.get(parts[1])
            return (200, data, "bytes") if data is not None else (404, _err(f"no file {parts[1]}"), "json")
        if method == "POST" and parts == ["batches"]:
            return self._create(json.loads(raw or b"{}"))
        if method == "GET" and len(parts) == 2 and parts[0] == "batches":
            batch = self._advance(parts[1])
            return (200, batch, "json") if batch else (404, _err(f"no batch {parts[1]}"), "json")
        return 404, _err(f"no route {path}"), "json"

    def _upload(self, headers: Any, raw: bytes) -> tuple[int, Any, str]:
        msg = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {headers.get('Content-Type')}\r\n\r\n".encode() + raw)
        fields = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
        if "file" not in fields:
            return 400, _err("multipart upload without a 'file' part"), "json"
        data = fields["file"].get_payload(decode=True) or b""
        with self._lock:
            fid = f"file-{len(self.files) + 1}"
            self.files[fid] = data
        return 200, _file_object(fid, data, fields["file"].get_filename() or "upload.jsonl"), "json"

    def _create(self, body: dict[str, Any]) -> tuple[int, Any, str]:
        fid = body.get("input_file_id")
        if fid not in self.files:
            return 400, _err(f"unknown input_file_id {fid}"), "json"
        with self._lock:
            self.created += 1
            bid = f"batch_{self.created}"
            self.batches[bid] = {
                "id": bid, "object": "batch", "endpoint": body.get("endpoint"), "input_file_id": fid,
                "completion_window": body.get("completion_window", "24h"), "status": "in_progress",
                "created_at": int(time.time()), "output_file_id": None, "error_file_id": None,
                "request_counts": {"total": self.files[fid].count(b"\n"), "completed": 0, "failed": 0},
                "_due": time.monotonic() + self.latency,
            }
            return 200, _public(self.batches[bid]), "json"

    def _advance(self, bid: str) -> dict[str, Any] | None:
        with self._lock:
            batch = self.batches.get(bid)
            if batch is None:
                return None
            if batch["status"] == "in_progress" and time.monotonic() >= batch["_due"]:
                self._finish(batch)
            return _public(batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        out, err = [], []
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]].splitlines() if x.strip()]
        expired = self.expire_after is not None and len(lines) > self.expire_after
        for i, line in enumerate(lines):
            cid = line["custom_id"]
            if expired and i >= self.expire_after:
                err.append({"id": f"req_{i}", "custom_id": cid, "response": None,
                            "error": {"code": "batch_expired", "message": "This request could not be executed "
                                      "before the completion window expired."}})
                continue
            if self.fail(cid):
                err.append({"id": f"req_{i}", "custom_id": cid, "response": {
                    "status_code": 500, "request_id": f"r{i}", "body": _err("internal error")}, "error": None})
                continue
            status, payload = self.answer(line["body"])
            row = {"id": f"req_{i}", "custom_id": cid, "response": {"status_code": status, "request_id": f"r{i}",
                                                                   "body": payload}, "error": None}
            (out if status == 200 else err).append(row)
            self.lines_answered += status == 200
        for kind, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                fid = f"file-{len(self.files) + 1}"
                self.files[fid] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[kind] = fid
        batch["status"] = "expired" if expired else "completed"
        batch["request_counts"].update(completed=len(out), failed=len(err))


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _file_object(fid: str, data: bytes, name: str) -> dict[str, Any]:
    return {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
            "filename": name, "purpose": "batch", "status": "processed"}


def _err(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error"}}

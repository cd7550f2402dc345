"""A content-addressed, crash-safe cache of chat completions.

Keys are sha256 of (model, messages, params); values hold only what the model answered (text,
token counts, finish reason). No API key, base URL or header ever reaches the file. Only
successful answers are stored; a failure is retried on the next run, never replayed.

Storage is one append-only JSONL file. Each record is written with a single `os.write` on an
O_APPEND descriptor, so a process killed with SIGKILL leaves at most one torn final line, and
several processes may share a cache. Torn or foreign lines are skipped when loading (counted in
`skipped_lines`), and a file that does not end with a newline gets one before the next append so
the torn line never swallows a good record.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import stable_hash
from harness_ext.core.records import ChatRequest, ChatResult

CACHE_FILE = "chat_completions.jsonl"


def request_key(request: ChatRequest) -> str:
    """The content hash that keys a request: sha256 over model, messages and sampling params."""
    return stable_hash({
        "model": request.model,
        "messages": [[t.role, t.content] for t in request.messages],
        "params": sorted([k, v] for k, v in request.params),
    })


class ChatCache:
    """Completed chat answers keyed by `request_key`, persisted in `folder/chat_completions.jsonl`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / CACHE_FILE
        self.skipped_lines = 0
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = rec["key"]
                text = rec["text"]
            except (ValueError, KeyError, TypeError):
                self.skipped_lines += 1  # a torn tail from a killed writer, or a foreign line
                continue
            if isinstance(key, str) and isinstance(text, str):
                self._entries[key] = rec

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> ChatResult | None:
        rec = self._entries.get(key)
        if rec is None:
            return None
        return ChatResult(
            text=rec["text"],
            prompt_tokens=rec.get("prompt_tokens"),
            completion_tokens=rec.get("completion_tokens"),
            finish_reason=rec.get("finish_reason"),
            cached=True,
        )

    def put(self, key: str, model: str, result: ChatResult) -> None:
        """Append a successful answer; failures are refused so they can never be replayed."""
        if not result.ok:
            raise ValueError("only successful results are cached")
        rec = {
            "key": key,
            "model": model,
            "text": result.text,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "finish_reason": result.finish_reason,
        }
        line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            fd = self._open()
            view = memoryview(line)
            while view:  # one write for normal lines; loop only if the kernel writes partially
                n = os.write(fd, view)
                view = view[n:]
            self._entries[key] = rec

    def _open(self) -> int:
        if self._fd is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            size = os.fstat(self._fd).st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        os.write(self._fd, b"\n")  # isolate a torn tail left by a killed writer
        return self._fd

    def flush(self) -> None:
        """fsync the log (SIGKILL needs nothing: written bytes are in the page cache; this is for power loss)."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def __repr__(self) -> str:
        return f"ChatCache({str(self.path)!r}, entries={len(self)})"

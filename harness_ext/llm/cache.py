"""A content-addressed cache of chat completions that any number of processes may share.

Keys are sha256 of (model, messages, params); values hold only what the model answered (text,
token counts, finish reason, how it was obtained). No API key, base URL or header ever reaches
the file. Only successful answers are stored; a failure is retried on the next run, never replayed.

Storage is one SQLite database in WAL mode, `folder/chat_cache.sqlite3`:

* `results`: one row per answered request;
* `claims`: who is asking which request right now (holder id, pid, host, expiry). A process
  claims a request in one IMMEDIATE transaction before sending it; another process (or thread)
  that needs the same request sees the live claim, waits and reuses the answer. A holder renews
  its claims while the request is in flight; a holder that crashed stops renewing, so its claim
  expires (at once when the holder's pid is gone on this host) and a waiter takes over;
* `batches`: Batch API jobs submitted and not yet collected (llm/batch.py), so a process killed
  after submitting collects on the next run instead of paying twice.

SQLite commits are atomic and survive SIGKILL (WAL, synchronous=NORMAL), so a killed run loses at
most the requests in flight. The JSONL cache of earlier versions (`chat_completions.jsonl`) is
imported once, on first open; its torn or foreign lines are skipped (counted in `skipped_lines`).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import stable_hash
from harness_ext.core.records import ChatRequest, ChatResult

DB_FILE = "chat_cache.sqlite3"
LEGACY_FILE = "chat_completions.jsonl"  # the JSONL cache of earlier versions, imported once
CLAIM_TTL = 60.0  # seconds a claim lives without renewal; holders renew every TTL/3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, model TEXT, text TEXT NOT NULL, prompt_tokens INTEGER,
    completion_tokens INTEGER, finish_reason TEXT, source TEXT, created REAL);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY, holder TEXT NOT NULL, pid INTEGER, host TEXT, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, endpoint TEXT, keys TEXT NOT NULL, requests TEXT NOT NULL,
    status TEXT NOT NULL, created REAL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
"""


def request_key(request: ChatRequest) -> str:
    """The content hash that keys a request: sha256 over model, messages and sampling params."""
    return stable_hash({
        "model": request.model,
        "messages": [[t.role, t.content] for t in request.messages],
        "params": sorted([k, v] for k, v in request.params),
    })


def new_holder() -> str:
    """A claim holder id, unique per call: host, pid and a random part (threads of one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ChatCache:
    """Completed chat answers keyed by `request_key`, in `folder/chat_cache.sqlite3` (see module doc)."""

    def __init__(self, folder: str | Path, *, claim_ttl: float = CLAIM_TTL) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_FILE
        self.claim_ttl = claim_ttl
        self.skipped_lines = 0
        self._lock = threading.Lock()
        self._host = socket.gethostname()
        self.folder.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        if new:
            os.chmod(self.path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._import_legacy()

    # ------------------------------------------------------------ plumbing

    def _tx(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def _import_legacy(self) -> None:
        """Import `chat_completions.jsonl` once (the bytes imported are remembered, so a file an
        older version kept appending to is imported up to its current end on the next open)."""
        legacy = self.folder / LEGACY_FILE
        if not legacy.exists():
            return
        row = self._tx("SELECT value FROM meta WHERE name='legacy_bytes'")
        done = int(row[0][0]) if row else 0
        data = legacy.read_bytes()
        if len(data) <= done:
            return
        rows = []
        for line in data[done:].split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key, text = rec["key"], rec["text"]
            except (ValueError, KeyError, TypeError):
                self.skipped_lines += 1  # a torn tail from a killed writer, or a foreign line
                continue
            if isinstance(key, str) and isinstance(text, str):
                rows.append((key, rec.get("model"), text, rec.get("prompt_tokens"), rec.get("completion_tokens"),
                             rec.get("finish_reason"), "legacy", time.time()))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO results VALUES (?,?,?,?,?,?,?,?)", rows)
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('legacy_bytes', ?)", (str(len(data)),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------ results

    def __len__(self) -> int:
        return int(self._tx("SELECT COUNT(*) FROM results")[0][0])

    def __contains__(self, key: object) -> bool:
        return bool(self._tx("SELECT 1 FROM results WHERE key=?", (key,)))

    def get(self, key: str) -> ChatResult | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, ChatResult]:
        """The cached answers among `keys` (absent keys are left out)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, ChatResult] = {}
        for i in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, text, pt, ct, fr in self._tx(
                    f"SELECT key, text, prompt_tokens, completion_tokens, finish_reason FROM results "
                    f"WHERE key IN ({marks})", chunk):
                out[key] = ChatResult(text=text, prompt_tokens=pt, completion_tokens=ct, finish_reason=fr,
                                      cached=True)
        return out

    def put(self, key: str, model: str, result: ChatResult, *, source: str = "live") -> None:
        """Store a successful answer and drop its claim; failures are refused so they are never replayed."""
        if not result.ok:
            raise ValueError("only successful results are cached")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?)",
                                 (key, model, result.text, result.prompt_tokens, result.completion_tokens,
                                  result.finish_reason, source, time.time()))
                self._db.execute("DELETE FROM claims WHERE key=?", (key,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def mean_completion_tokens(self, model: str) -> float | None:
        """The mean reply length of this model's cached answers (a dry run's expectation), None if none."""
        row = self._tx("SELECT AVG(completion_tokens) FROM results WHERE model=? AND completion_tokens IS NOT NULL",
                       (model,))
        return float(row[0][0]) if row and row[0][0] is not None else None

    # ------------------------------------------------------------ claims

    def claim(self, keys: Iterable[str], holder: str) -> tuple[set[str], dict[str, ChatResult]]:
        """Claim every key that has no answer and no live claim of another holder.

        Returns (claimed keys, answers found meanwhile). Keys in neither are being asked by someone
        else: wait for them (`get_many`) and claim again if their holder gives up or dies.
        """
        keys = list(dict.fromkeys(keys))
        claimed: set[str] = set()
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                done = self._answered(keys)
                for key in keys:
                    if key in done:
                        continue
                    row = self._db.execute("SELECT holder, pid, host, expires FROM claims WHERE key=?",
                                           (key,)).fetchone()
                    if row is not None and row[0] != holder and not self._stale(row, now):
                        continue
                    self._db.execute("INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?)",
                                     (key, holder, os.getpid(), self._host, now + self.claim_ttl))
                    claimed.add(key)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return claimed, self.get_many(done) if done else {}

    def _answered(self, keys: list[str]) -> set[str]:
        done: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            done.update(r[0] for r in self._db.execute(f"SELECT key FROM results WHERE key IN ({marks})", chunk))
        return done

    def _stale(self, row: tuple[Any, ...], now: float) -> bool:
        _, pid, host, expires = row
        if expires <= now:
            return True
        return host == self._host and isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid)

    def renew(self, keys: Iterable[str], holder: str) -> None:
        """Extend this holder's claims on `keys` by another TTL (the in-flight heartbeat)."""
        keys = list(keys)
        expires = time.time() + self.claim_ttl
        with self._lock:
            self._db.executemany("UPDATE claims SET expires=? WHERE key=? AND holder=?",
                                 [(expires, k, holder) for k in keys])

    def release(self, keys: Iterable[str], holder: str) -> None:
        """Give up this holder's claims (a request failed: a waiter may try it)."""
        with self._lock:
            self._db.executemany("DELETE FROM claims WHERE key=? AND holder=?", [(k, holder) for k in keys])

    def holders(self) -> dict[str, str]:
        """key -> holder of every claim (for tests and diagnostics)."""
        return {k: h for k, h in self._tx("SELECT key, holder FROM claims")}

    # ------------------------------------------------------------ batches (llm/batch.py)

    def add_batch(self, batch_id: str, endpoint: str, keys: list[str], requests: list[dict[str, Any]]) -> None:
        self._tx("INSERT OR REPLACE INTO batches VALUES (?,?,?,?,?,?)",
                 (batch_id, endpoint, json.dumps(keys), json.dumps(requests), "submitted", time.time()))

    def open_batches(self, endpoint: str) -> list[tuple[str, list[str], list[dict[str, Any]]]]:
        """(batch id, request keys, request bodies) of batches submitted to `endpoint` and not yet collected."""
        rows = self._tx("SELECT batch_id, keys, requests FROM batches WHERE endpoint=? AND status='submitted' "
                        "ORDER BY created", (endpoint,))
        return [(b, json.loads(k), json.loads(r)) for b, k, r in rows]

    def close_batch(self, batch_id: str, status: str) -> None:
        self._tx("UPDATE batches SET status=? WHERE batch_id=?", (status, batch_id))

    # ------------------------------------------------------------ lifecycle

    def flush(self) -> None:
        """Checkpoint the WAL into the database (SIGKILL needs nothing: commits are already durable)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ChatCache({str(self.path)!r})"

"""Pairs files and the SQLite vote store of a human preference study."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import iter_jsonl
from harness_ext.core.errors import InputError

#: Annotator ids: 1-64 letters, digits or _.@- and nothing else (matched whole: `alice\n` is not alice).
ANNOTATOR_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
PAIR_FIELDS = ("id", "instruction", "response_a", "model_a", "response_b", "model_b")
CHOICES = ("a", "b", "tie")


@dataclass(frozen=True)
class Pair:
    """One instruction with two responses; model names are never shown to annotators."""

    id: str
    instruction: str
    response_a: str
    model_a: str
    response_b: str
    model_b: str


@dataclass(frozen=True)
class Vote:
    """One annotator's verdict on one pair; `choice` is in terms of a/b, not screen position."""

    pair_id: str
    annotator: str
    choice: str
    a_shown_first: bool
    created_at: str


def read_pairs(path: str | Path) -> list[Pair]:
    """Read a pairs JSONL; each row needs id, instruction, response_a, model_a, response_b, model_b."""
    pairs: list[Pair] = []
    seen: set[str] = set()
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise InputError(f"expected an object, got {type(row).__name__}.", path=path, line=lineno,
                             hint=f"write one JSON object per line with {', '.join(PAIR_FIELDS)}.")
        missing = [k for k in PAIR_FIELDS if k not in row]
        if missing:
            raise InputError(f"pair lacks field(s) {missing}.", path=path, line=lineno,
                             hint=f"each line needs {', '.join(PAIR_FIELDS)}.")
        bad = [k for k in PAIR_FIELDS if not isinstance(row[k], (str, int)) or (k != "id" and not str(row[k]).strip())]
        if bad:
            raise InputError(f"field(s) {bad} must be non-empty strings (got {[row[k] for k in bad]!r}).",
                             path=path, line=lineno, hint="give every pair field a non-empty text.")
        pid = str(row["id"])
        if pid in seen:
            raise InputError(f"duplicate pair id {pid!r}.", path=path, line=lineno, hint="give every pair a unique id.")
        seen.add(pid)
        pairs.append(Pair(**{k: str(row[k]) for k in PAIR_FIELDS}))
    if not pairs:
        raise InputError("no pairs in the file.", path=path,
                         hint=f"write one JSON object per line with {', '.join(PAIR_FIELDS)}.")
    return pairs


def valid_annotator(value: object) -> bool:
    """True for a well-formed annotator id, matched whole (no trailing newline, no spaces)."""
    return isinstance(value, str) and ANNOTATOR_RE.fullmatch(value) is not None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def a_shown_first(pair_id: str, annotator: str, seed: int = 0) -> bool:
    """Seeded screen order per (pair, annotator): stable across reloads, balanced across people."""
    digest = hashlib.sha256(f"{seed}\x00{pair_id}\x00{annotator}".encode()).digest()
    return digest[0] % 2 == 0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS pairs (
  id TEXT PRIMARY KEY, position INTEGER NOT NULL, instruction TEXT NOT NULL,
  response_a TEXT NOT NULL, model_a TEXT NOT NULL, response_b TEXT NOT NULL, model_b TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS votes (
  pair_id TEXT NOT NULL REFERENCES pairs(id), annotator TEXT NOT NULL,
  choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie')), a_shown_first INTEGER NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (pair_id, annotator));
CREATE TABLE IF NOT EXISTS annotators (
  id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL, created_at TEXT NOT NULL);
"""


_DB_HINT = "pass the .sqlite file that `harness-ext study serve --pairs FILE --db FILE` created."


class Store:
    """SQLite store: the study's pairs (copied in once) and one vote per (pair, annotator)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """Open the study database at `path`; with `create`, a new or empty file gets the tables.

        A file that is not SQLite, or a SQLite file of something else, is an InputError (nothing
        is added to it)."""
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError("is a folder, expected the study's SQLite file.", path=self.path, hint=_DB_HINT)
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, "rb") as f:  # SQLite takes a file shorter than a page for an empty database
                if f.read(16) != b"SQLite format 3\x00":
                    raise InputError("is not a SQLite database (it does not start with SQLite's header).",
                                     path=self.path, hint=_DB_HINT)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the server's request threads; `_lock` keeps their statements from
        # interleaving (a sqlite3 connection is not safe for concurrent use).
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)  # `with self._db` = one transaction
        try:
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if (tables and not {"pairs", "votes"} <= tables) or (not tables and not create):
                raise InputError(
                    f"is not a study database (its tables: {', '.join(sorted(tables)) or 'none'}).",
                    path=self.path, hint=_DB_HINT)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:  # "file is not a database", "unable to open database file"
            self._db.close()
            raise InputError(f"cannot open it as a SQLite database ({exc}).", path=self.path, hint=_DB_HINT) from None
        except InputError:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def load_pairs(self, pairs: list[Pair]) -> None:
        """Copy pairs in; a pair id already stored with different content is an error (votes would lie)."""
        known = {p.id: p for p in self.pairs()}
        changed = [p.id for p in pairs if p.id in known and known[p.id] != p]
        if changed:
            raise InputError(
                f"pair id(s) {changed[:5]} are already in the study with different content.", path=self.path,
                hint="use a new --db for a new pairs file, or give changed pairs new ids.",
            )
        start = len(known)
        new = [p for p in pairs if p.id not in known]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(p.id, start + i, p.instruction, p.response_a, p.model_a, p.response_b, p.model_b)
                 for i, p in enumerate(new)],
            )

    def pairs(self) -> list[Pair]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, instruction, response_a, model_a, response_b, model_b FROM pairs ORDER BY position"
            ).fetchall()
        return [Pair(*r) for r in rows]

    def pair(self, pair_id: str) -> Pair | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, instruction, response_a, model_a, response_b, model_b FROM pairs WHERE id = ?",
                (pair_id,)).fetchone()
        return Pair(*row) if row else None

    def next_pair(self, annotator: str) -> tuple[Pair | None, int, int]:
        """The first pair this annotator has not voted on (None when done), votes cast, total pairs."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, instruction, response_a, model_a, response_b, model_b FROM pairs WHERE id NOT IN "
                "(SELECT pair_id FROM votes WHERE annotator = ?) ORDER BY position LIMIT 1", (annotator,)).fetchone()
            done = self._db.execute("SELECT COUNT(*) FROM votes WHERE annotator = ?", (annotator,)).fetchone()[0]
            total = self._db.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
        return (Pair(*row) if row else None), done, total

    def record(self, pair_id: str, annotator: str, choice: str, shown_first: bool) -> bool:
        """Store a vote; False when this annotator already voted on this pair (first vote stands)."""
        if choice not in CHOICES:
            raise ValueError(f"choice {choice!r} not in {CHOICES}")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO votes VALUES (?, ?, ?, ?, ?)",
                (pair_id, annotator, choice, int(shown_first), stamp))
        return cur.rowcount == 1

    def invite(self, annotator: str) -> str:
        """A new secret token for `annotator` (only its sha256 is stored; a new invite replaces the
        old token, so a leaked link is revoked by inviting again)."""
        if not valid_annotator(annotator):
            raise InputError(f"annotator id {annotator!r} is not 1-64 letters, digits or _.@-.",
                             hint="choose ids like alice, bob.2 or a@lab.")
        token = secrets.token_urlsafe(24)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO annotators VALUES (?, ?, ?)", (annotator, _token_hash(token), stamp))
        return token

    def annotators(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM annotators ORDER BY id")]

    def check_token(self, annotator: object, token: object) -> bool:
        """True when `token` is the invited `annotator`'s current token (compared in constant time)."""
        if not valid_annotator(annotator) or not isinstance(token, str) or not token:
            return False
        with self._lock:
            row = self._db.execute("SELECT token_sha256 FROM annotators WHERE id = ?", (annotator,)).fetchone()
        return row is not None and hmac.compare_digest(row[0], _token_hash(token))

    def votes(self) -> list[Vote]:
        with self._lock:
            rows = self._db.execute(
                "SELECT v.pair_id, v.annotator, v.choice, v.a_shown_first, v.created_at FROM votes v "
                "JOIN pairs p ON p.id = v.pair_id ORDER BY p.position, v.annotator").fetchall()
        return [Vote(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def export_rows(self) -> list[dict[str, Any]]:
        """Votes de-anonymized: which model won, in the pair's a/b terms and by name."""
        pairs = {p.id: p for p in self.pairs()}
        out = []
        for v in self.votes():
            p = pairs[v.pair_id]
            winner = {"a": p.model_a, "b": p.model_b, "tie": "tie"}[v.choice]
            out.append({"pair_id": v.pair_id, "annotator": v.annotator, "choice": v.choice, "winner": winner,
                        "model_a": p.model_a, "model_b": p.model_b, "a_shown_first": v.a_shown_first,
                        "created_at": v.created_at})
        return out


def open_study(db: str | Path, pairs_file: str | Path | None = None) -> Store:
    """Open (or create) a study database, loading `pairs_file` into it when given."""
    db = Path(db)
    if pairs_file is None and not db.exists():
        raise InputError("study database not found.", path=db, hint="start it with `harness-ext study serve --pairs FILE --db FILE`.")
    pairs = read_pairs(pairs_file) if pairs_file is not None else None  # a bad pairs file creates no database
    store = Store(db, create=pairs is not None)
    if pairs is not None:
        try:
            store.load_pairs(pairs)
        except BaseException:
            store.close()
            raise
    return store

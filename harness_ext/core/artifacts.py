"""Reading and writing the files stages exchange: atomic writes, JSON/JSONL with line-precise
errors, content hashes, provenance, and append-only logs that resume after a crash.

Every JSON writer here emits strict JSON (RFC 8259): a NaN or infinite float, which strict
parsers reject, is written as null.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from harness_ext import __version__
from harness_ext.core.errors import InputError

# ---------------------------------------------------------------- hashing


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of `obj` (sorted keys, no whitespace)."""
    return sha256_text(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str))


# ---------------------------------------------------------------- atomic writes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file the user asked for, not our temp name
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        # mkstemp creates 0600 files; give the result the mode a plain open() would (umask applies).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _finite(obj: Any) -> Any:
    """`obj` with every NaN / infinite float (at any depth of dicts, lists, tuples) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON text of `obj`: NaN and +-Infinity become null (json.dumps would write bare
    NaN / Infinity); objects JSON cannot encode are written as their str()."""
    kw: dict[str, Any] = {"indent": indent, "ensure_ascii": False, "default": str, "allow_nan": False}
    try:
        return json.dumps(obj, **kw)
    except ValueError:  # a non-finite float somewhere: the rare case pays for the extra pass
        return json.dumps(_finite(obj), **kw)


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    return to_json(obj, indent) + "\n"


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, dumps_json(obj, indent))


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    lines = [to_json(r) for r in rows]
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


@contextlib.contextmanager
def staged_dir(out: str | Path) -> Iterator[Path]:
    """Build a whole output folder in a sibling temp folder; publish it with one rename on success.

    Files already in `out` that the stage does not rewrite are carried over (hard links, so this is
    cheap), and the finished folder replaces `out` in a single atomic exchange: a reader sees the
    previous run or this one, never a mix, and a process killed at any point leaves `out` whole.
    On failure nothing in `out` changes and the temp folder is removed; temp folders left by a
    killed run (`.OUT.PID.*.partial`, `.OUT.PID.*.old`) are removed by the next run.
    """
    out = Path(out)
    if out.is_symlink():  # publish into the folder the link points at; the link stays
        out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = _check_writable(out)
    clean_orphans(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".partial", dir=out.parent))
    except OSError as exc:  # name the folder the user asked for, not our temp name
        raise OSError(exc.errno, exc.strerror, str(out)) from exc
    try:
        yield tmp
        if out.is_dir():
            _carry_over(out, tmp)
        os.chmod(tmp, mode)  # mkdtemp makes 0700 folders; keep OUT's mode, or a plain mkdir's
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_writable(out: Path) -> int:
    """The mode to publish `out` with; an existing `out` that is read-only (no owner write bit, or
    not writable by us) is refused up front, before any work, with the user's path in the error."""
    if not out.is_dir():
        return 0o777 & ~_umask()
    mode = stat.S_IMODE(out.stat().st_mode)
    if not mode & stat.S_IWUSR or not os.access(out, os.W_OK):
        raise PermissionError(errno.EACCES, "Permission denied (the output folder is read-only)", str(out))
    return mode


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link (or copy) into `new` every file of `old` that `new` does not have."""
    for src in sorted(old.rglob("*")):
        dest = new / src.relative_to(old)
        if src.is_dir() and not src.is_symlink():
            dest.mkdir(parents=True, exist_ok=True)
        elif not os.path.lexists(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                os.symlink(os.readlink(src), dest)
                continue
            try:
                os.link(src, dest)
            except OSError:  # another file system or no hard links: copy
                shutil.copy2(src, dest)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _publish(tmp: Path, out: Path) -> None:
    """Make `tmp` be `out`: one atomic exchange where the file system has it, else two renames
    whose only gap (no `out` at all) the next run's `clean_orphans` repairs."""
    if not out.exists():
        os.rename(tmp, out)
        return
    if _exchange(tmp, out):  # tmp now holds the previous run
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = out.parent / f".{out.name}.{os.getpid()}.{tmp.name.rsplit('.', 2)[-2]}.old"
    os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_orphans(out: str | Path) -> list[Path]:
    """Remove the temp folders of `out` left by killed runs; restore `out` if a kill fell between
    the two renames of a publication without atomic exchange. Returns what was removed."""
    out = Path(out)
    removed: list[Path] = []
    if not out.parent.is_dir():
        return removed
    for path in sorted(out.parent.glob(f".{glob_escape(out.name)}.*")):
        kind = path.name.rsplit(".", 1)[-1]
        if kind not in ("partial", "old") or not path.is_dir():
            continue
        pid_text = path.name[len(out.name) + 2:].split(".", 1)[0]
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue  # a live run's work in progress
        if kind == "old" and not out.exists():
            os.rename(path, out)  # the previous run, whole: put it back
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def glob_escape(name: str) -> str:
    """`name` with glob metacharacters escaped (folder names may contain [ or *)."""
    import glob

    return glob.escape(name)


# ---------------------------------------------------------------- reading


def _read_text(path: Path) -> str:
    require_files(path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}).",
            path=path,
            line=line,
            hint="re-save the file as UTF-8.",
        ) from None


def require_files(*paths: str | Path) -> None:
    """Raise the same clear InputError `read_json` would for the first path that is not a file."""
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise InputError("file not found." if not p.exists() else "is a folder, expected a file.", path=p,
                             hint="check the path (relative paths are resolved from the current folder).")


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; errors name the file, line and column."""
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise InputError("file is empty.", path=path, hint="point at a file with data.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON at column {exc.colno}: {exc.msg}.", path=path, line=exc.lineno,
            hint="fix the JSON (a JSONL file should have a .jsonl extension).",
        ) from None


def iter_jsonl(path: str | Path, *, allow_truncated_tail: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield (line_number, value) for each non-blank line of a JSONL file, streaming.

    `allow_truncated_tail` tolerates a final line without a newline that does not parse: what a
    writer killed mid-line leaves behind in an append-only log. Anything else malformed raises.
    """
    path = Path(path)
    require_files(path)
    for _row, line, raw in iter_jsonl_lines(path):
        try:
            value = parse_jsonl_line(raw, path, line)
        except InputError:
            if allow_truncated_tail and not raw.endswith(b"\n"):  # only the last line can lack one
                return
            raise
        yield line, value


def read_jsonl(path: str | Path, **kw: Any) -> list[Any]:
    return [v for _, v in iter_jsonl(path, **kw)]


# ---------------------------------------------------------------- rows of data files (JSON or JSONL)
#
# The one reader of "a file of rows" that every stage takes as input (instruction data, suites,
# model outputs, contamination sets, training data): a JSON array, a JSON object holding the array,
# or JSONL, with the line of every row so errors read file:line.


class RowAt(NamedTuple):
    """One row of a data file: its 0-based position, the 1-based line it starts on, its value.

    `line` is None for rows taken from inside a JSON object ({"data": [...]}, keyed rows).
    """

    row: int
    line: int | None
    value: Any


ROW_LIST_KEYS = ("data", "examples", "rows", "train")  # {"data": [...]} and friends hold the rows


def iter_rows(path: str | Path, *, keyed: bool = False) -> Iterator[RowAt]:
    """Yield every row of a JSON or JSONL data file, streaming JSONL in constant memory.

    JSONL: `.jsonl`/`.ndjson`, a `.json` file holding one object per line, or another suffix whose
    content starts with an object. JSON: a top-level array, or an object holding it under one of
    ROW_LIST_KEYS; with `keyed`, any other object's values are its rows ({id: row, ...}).
    A UTF-8 BOM is skipped; bad UTF-8 or JSON is one InputError naming file:line.
    """
    path = Path(path)
    require_files(path)
    if is_jsonl(path):
        for row, line, raw in iter_jsonl_lines(path):
            yield RowAt(row, line, parse_jsonl_line(raw, path, line))
    else:
        yield from _iter_json_rows(path, keyed)


def is_jsonl(path: Path) -> bool:
    """JSONL by extension, or a file that is neither .json nor .jsonl whose content opens an object."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return True
    if suffix == ".json":
        return False
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def iter_jsonl_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """Yield (row, line, raw bytes) for each non-blank line, unparsed (parsing can go to workers)."""
    row = 0
    with open(path, "rb") as f:
        for line, raw in enumerate(f, start=1):
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            yield row, line, raw
            row += 1


def parse_jsonl_line(raw: bytes, path: Path, line: int) -> Any:
    """Decode and parse one JSONL line; errors name file:line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}).",
                         path=path, line=line, hint="re-save the file as UTF-8.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON line (column {exc.colno}: {exc.msg}).", path=path, line=line,
            hint="fix or delete that line; each line of a JSONL file must be one JSON value.",
        ) from None


def _iter_json_rows(path: Path, keyed: bool) -> Iterator[RowAt]:
    """Rows of a JSON file, each array element decoded on its own so its line is known."""
    text = _read_text(path)
    dec = json.JSONDecoder()

    def fail(pos: int, msg: str) -> InputError:
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return InputError(f"malformed JSON at column {col}: {msg}.", path=path, line=line,
                          hint="fix the JSON (a file of one object per line should end in .jsonl).")

    i = _skip_ws(text, 0)
    if i >= len(text):
        raise InputError("file is empty.", path=path, hint="point at a file with rows.")
    if text[i] == "[":
        yield from _iter_json_array(text, i, dec, fail)
        return
    try:
        value, end = dec.raw_decode(text, i)
    except json.JSONDecodeError as exc:
        raise fail(exc.pos, exc.msg) from None
    if isinstance(value, dict) and _skip_ws(text, end) < len(text):
        for row, line, raw in iter_jsonl_lines(path):  # one object per line in a file named .json
            yield RowAt(row, line, parse_jsonl_line(raw, path, line))
        return
    if isinstance(value, dict):
        rows = next((value[k] for k in ROW_LIST_KEYS if isinstance(value.get(k), list)), None)
        if rows is None and keyed:
            rows = list(value.values())
        if rows is not None:
            yield from (RowAt(row, None, item) for row, item in enumerate(rows))
            return
    raise InputError(f"expected a JSON list of rows at the top level, found {_json_kind(value)}.", path=path,
                     line=1, hint="wrap the rows in a JSON array [...], or write one object per line to a .jsonl file.")


def _json_kind(value: Any) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)


def _iter_json_array(text: str, i: int, dec: json.JSONDecoder, fail: Any) -> Iterator[RowAt]:
    n, line, last, row = len(text), 1, 0, 0
    i = _skip_ws(text, i + 1)
    if i < n and text[i] == "]":
        return
    while True:
        try:
            value, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise fail(exc.pos, exc.msg) from None
        line += text.count("\n", last, i)
        last = i
        yield RowAt(row, line, value)
        row += 1
        i = _skip_ws(text, end)
        if i < n and text[i] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if i < n and text[i] == "]":
            if _skip_ws(text, i + 1) < n:
                raise fail(_skip_ws(text, i + 1), "extra data after the list")
            return
        raise fail(i, "expected ',' or ']' after an element")


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in " \t\r\n":
        i += 1
    return i


class AppendLog:
    """An append-only JSONL file that survives SIGKILL: each record is one flushed, fsynced line.

    On open, a torn last line (from a killed writer) is cut off so later appends stay parseable.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                with open(self.path, "r+b") as f:
                    f.truncate(keep)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for appends

    def records(self) -> list[Any]:
        return read_jsonl(self.path) if self.path.stat().st_size else []

    def append(self, record: Any) -> None:
        self._f.write(to_json(record) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- provenance


def git_hash(start: str | Path | None = None) -> str | None:
    """The commit of the checkout this package runs from, if any (None for wheel installs)."""
    where = Path(start) if start else Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(**extra: Any) -> dict[str, Any]:
    """The provenance block every output records: version, git commit, python, time, plus `extra`."""
    info: dict[str, Any] = {
        "package": "harness-ext",
        "version": __version__,
        "git_commit": git_hash(),
        "python": platform.python_version(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    info.update(extra)
    return info

"""One pass over a data file: parse, validate, measure, and keep the top k (or everything).

The pass streams: a JSONL file is read line by line and handed to worker processes in blocks, so
memory stays bounded by the block window plus the k kept examples, whatever the file size.
For longest-k (shortest-k) the parent keeps a min-heap of the best k so far; its worst length is
sent with every block as a threshold, and a worker skips the exact count of any example whose
cheap upper (lower) bound proves it cannot beat that threshold. The threshold a worker sees can only
be older, hence lower (higher), than the current one, so pruning stays exact. Pruning is strict
(bound < threshold), so every example whose length equals the final cutoff is measured and ties at
the cutoff are counted exactly. Ties are broken by original row order (lower row first).
"""

from __future__ import annotations

import hashlib
import heapq
import multiprocessing as mp
import os
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import is_jsonl, iter_jsonl_lines, parse_jsonl_line
from harness_ext.core.errors import ConfigError, HarnessError, InputError
from harness_ext.core.records import Example
from harness_ext.data.loaders import RowConverter, check_file, detect_format, iter_raw_rows
from harness_ext.selection.units import Unit, make_unit, measured_text

BLOCK_ROWS = 512
BLOCK_BYTES = 4 << 20
PARALLEL_MIN_BYTES = 8 << 20


@dataclass
class ScanResult:
    """What one pass saw: kept (example, length) pairs, length histogram, and counted drops."""

    kept: list[tuple[Example, int]]
    lengths: Counter[int] = field(default_factory=Counter)
    drops: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    rows_read: int = 0
    pool: int = 0
    pruned: int = 0
    fmt: str = "auto"
    workers: int = 1


@dataclass
class _Job:
    where: str
    fmt: str
    source_field: str | None
    strict: bool
    unit_spec: str
    count_on: str
    mode: str  # "longest", "shortest" or "all"
    prune: bool
    dedup: bool


_STATE: dict[str, Any] = {}


def _init_worker(job: _Job) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _STATE["job"] = job
    _STATE["unit"] = make_unit(job.unit_spec)


def _process(block: list[tuple[int, int | None, Any]], threshold: int | None) -> Any:
    """Worker side: rows -> (row, key or None when pruned, example or None, digest) + drops."""
    job: _Job = _STATE["job"]
    unit: Unit = _STATE["unit"]
    conv = RowConverter(job.where, job.fmt, job.source_field, job.strict)
    sign = -1 if job.mode == "shortest" else 1
    use_bound = job.prune and threshold is not None and (
        unit.has_upper_bound if sign == 1 else unit.has_lower_bound)
    out: list[tuple[int, int | None, Example | None, bytes | None, str]] = []
    to_measure: list[int] = []
    texts: list[str] = []
    # Without dedup, pruned rows travel back as counts only (row order does not matter for them).
    pruned = 0
    pruned_sources: Counter[str] = Counter()
    where = Path(job.where)
    for row, line, payload in block:
        value = parse_jsonl_line(payload, where, line or 0) if isinstance(payload, bytes) else payload
        ex = conv.convert(value, row, line)
        if ex is None:
            continue
        digest = hashlib.blake2b(f"{ex.instruction}\x00{ex.input}".encode(), digest_size=16).digest() \
            if job.dedup else None
        text = measured_text(ex.instruction, ex.input, ex.response, job.count_on)
        if use_bound:
            bound = unit.upper_bound(text) if sign == 1 else -unit.lower_bound(text)
            if bound < threshold:  # type: ignore[operator]
                if job.dedup:
                    out.append((row, None, None, digest, ex.source))
                else:
                    pruned += 1
                    pruned_sources[ex.source] += 1
                continue
        out.append((row, 0, ex, digest, ex.source))
        to_measure.append(len(out) - 1)
        texts.append(text)
    counts = unit.count_many(texts)
    for i, n in zip(to_measure, counts, strict=True):
        row, _, ex, digest, source = out[i]
        key = sign * n
        # Only examples that could still enter the heap travel back whole.
        keep_ex = job.mode == "all" or threshold is None or key >= threshold
        out[i] = (row, key, ex if keep_ex else None, digest, source)
    return ("ok", out, conv.drops, conv.rows_read, pruned, pruned_sources)


def _process_safe(block: list[tuple[int, int | None, Any]], threshold: int | None) -> Any:
    """Pool side of `_process`: user errors travel back as data (they may not unpickle)."""
    try:
        return _process(block, threshold)
    except HarnessError as exc:
        return ("error", type(exc).__name__, str(exc))


def _rebuild_error(name: str, text: str) -> HarnessError:
    cls = {"InputError": InputError, "ConfigError": ConfigError}.get(name, HarnessError)
    exc = cls.__new__(cls)
    Exception.__init__(exc, text)
    exc.message, exc.hint = text, None
    return exc


def _blocks(data: str | Path, where: str) -> Iterator[list[tuple[int, int | None, Any]]]:
    """Rows in blocks; JSONL lines stay raw bytes so parsing happens in the workers."""
    block: list[tuple[int, int | None, Any]] = []
    size = 0
    if not (isinstance(data, str) and data.startswith("hf:")) and is_jsonl(Path(data)) \
            and Path(data).suffix.lower() != ".parquet":
        for row, line, raw in iter_jsonl_lines(Path(data)):
            block.append((row, line, raw))
            size += len(raw)
            if len(block) >= BLOCK_ROWS or size >= BLOCK_BYTES:
                yield block
                block, size = [], 0
    else:
        for item in iter_raw_rows(data):
            block.append(item)
            if len(block) >= BLOCK_ROWS:
                yield block
                block = []
    if block:
        yield block


def _peek_format(data: str | Path, fmt: str) -> str:
    """Fix an 'auto' format from the first row that has a recognisable shape."""
    if fmt != "auto":
        return fmt
    for i, (_row, _line, value) in enumerate(iter_raw_rows(data)):
        shape = detect_format(value)
        if shape is not None:
            return shape
        if i >= 1000:
            break
    return "auto"


@dataclass
class ScanSpec:
    """What one pass measures and keeps (the scan's options, grouped)."""

    unit: str
    count_on: str = "response"
    mode: str = "longest"  # "longest", "shortest" or "all"
    k: int | None = None
    fmt: str = "auto"
    source_field: str | None = None
    strict: bool = False
    dedup: bool = False
    prune: bool = True
    workers: int | None = None


class _Collector:
    """Parent side of the pass: folds worker replies into a ScanResult and the running top k."""

    def __init__(self, spec: ScanSpec, result: ScanResult) -> None:
        self.spec, self.result = spec, result
        self.heap: list[tuple[int, int, Example]] = []
        self.everything: list[tuple[Example, int]] = []
        self.seen: set[bytes] = set()
        self.threshold: int | None = None

    def consume(self, reply: Any) -> None:
        if reply[0] == "error":
            raise _rebuild_error(reply[1], reply[2])
        _, rows, drops, read, pruned, pruned_sources = reply
        res, k, mode = self.result, self.spec.k, self.spec.mode
        res.drops.update(drops)
        res.rows_read += read
        res.pruned += pruned
        res.pool += pruned
        res.sources.update(pruned_sources)
        for row, key, ex, digest, source in rows:
            if digest is not None:
                if digest in self.seen:
                    res.drops["duplicate"] += 1
                    continue
                self.seen.add(digest)
            res.pool += 1
            res.sources[source] += 1
            if key is None:
                res.pruned += 1
                continue
            res.lengths[abs(key)] += 1
            if ex is None:
                continue
            if mode == "all":
                self.everything.append((ex, key))
            elif k is not None and len(self.heap) < k:
                heapq.heappush(self.heap, (key, -row, ex))
            elif k:
                heapq.heappushpop(self.heap, (key, -row, ex))
        if k and mode != "all" and len(self.heap) >= k:
            self.threshold = self.heap[0][0]

    def finish(self) -> ScanResult:
        if self.spec.mode == "all":
            self.result.kept = self.everything
        else:
            sign = -1 if self.spec.mode == "shortest" else 1
            self.result.kept = [(ex, sign * key) for key, _neg_row, ex in sorted(self.heap, reverse=True)]
        return self.result


def scan(data: str | Path, spec: ScanSpec | None = None, **options: Any) -> ScanResult:
    """One streaming pass; `spec.mode` "longest"/"shortest" keeps the top k, "all" keeps every example.

    Pass a ScanSpec, or its fields as keywords. `kept` is in rank order for longest/shortest (best
    first) and in row order for "all".
    """
    spec = spec or ScanSpec(**options)
    if spec.k is not None and spec.k < 1 and spec.mode != "all":
        raise ConfigError(f"k must be at least 1 (got {spec.k}).", hint="e.g. --k 1000")
    where = str(data)
    is_hf = isinstance(data, str) and data.startswith("hf:")
    if not is_hf:
        check_file(data)
    fmt = _peek_format(data, RowConverter(where, spec.fmt).fmt)
    job = _Job(where, fmt, spec.source_field, spec.strict, spec.unit, spec.count_on, spec.mode,
               spec.prune and spec.mode != "all" and spec.k is not None, spec.dedup)
    workers = spec.workers
    if workers is None:
        big = not is_hf and Path(data).stat().st_size >= PARALLEL_MIN_BYTES
        workers = min(2, os.cpu_count() or 1) if big else 1
    col = _Collector(spec, ScanResult(kept=[], fmt=fmt, workers=workers))
    if workers <= 1:
        _init_worker(job)
        for block in _blocks(data, where):
            col.consume(_process(block, col.threshold))
    else:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
            pending: deque = deque()
            for block in _blocks(data, where):
                pending.append(pool.apply_async(_process_safe, (block, col.threshold)))
                while len(pending) > 2 * workers:
                    col.consume(pending.popleft().get())
            while pending:
                col.consume(pending.popleft().get())
    if col.result.rows_read == 0:
        raise InputError("holds no rows.", path=where, hint="point --data at a file with examples.")
    return col.finish()

"""Run judge requests in batches with a SIGKILL-safe progress log, so interrupted stages resume.

Each unit of work (a "job": one MT-Bench match, one example to score or refine) has a key and
one or more ChatRequests. A finished job's record is appended to the progress log together with
the hashes of its requests; a rerun skips every job whose key and request hashes are already
there, so changing the judge model or prompt re-judges instead of reusing stale verdicts.
Requests that fail at the transport level are never recorded: they are reported and retried
on the next run (the client's cache makes completed requests free even inside a killed batch).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import AppendLog, iter_jsonl, read_jsonl, stable_hash, to_json
from harness_ext.core.errors import RequestsFailed, StageError
from harness_ext.core.records import ChatClient, ChatRequest, ChatResult

log = logging.getLogger(__name__)


def request_sha256(request: ChatRequest) -> str:
    """Content hash of what is asked: model, messages and sampling parameters."""
    return stable_hash({
        "model": request.model,
        "messages": [[t.role, t.content] for t in request.messages],
        "params": sorted([k, v] for k, v in request.params),
    })


@dataclass
class Job:
    """One unit of work: its key, its requests, and how to turn the answers into a record."""

    key: str
    requests: list[ChatRequest]
    build: Callable[[list[ChatResult]], dict[str, Any]]

    def hashes(self) -> list[str]:
        return [request_sha256(r) for r in self.requests]


@dataclass
class Outcome:
    """What a run produced: records by key (reused and new) and the jobs whose requests failed."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    reused: int = 0
    new: int = 0

    def raise_if_failed(self, stage: str, progress: Path, allow_failures: bool) -> None:
        """RequestsFailed naming the failures unless the caller accepts publishing without them."""
        if self.failed and not allow_failures:
            key, err = self.failed[0]
            total = len(self.failed) + len(self.records)
            raise RequestsFailed(
                f"{stage}: {len(self.failed)} of {total} items got no judge answer after retries "
                f"(first: {key}: {err}); the {len(self.records)} completed are saved in {progress}, "
                "nothing was published."
            )


def client_stats(client: ChatClient) -> dict[str, int]:
    """The client's request counters (sent, retries, cache hits, failures) when it keeps any."""
    stats = getattr(client, "stats", None)
    return {str(k): int(v) for k, v in stats.items()} if isinstance(stats, dict) else {}


def load_progress(path: Path) -> dict[str, dict[str, Any]]:
    """The progress log's entries by key (a later entry for the same key wins)."""
    entries: dict[str, dict[str, Any]] = {}
    if path.exists() and path.stat().st_size:
        for _, entry in iter_jsonl(path, allow_truncated_tail=True):
            if isinstance(entry, dict) and "key" in entry and "record" in entry:
                entries[str(entry["key"])] = entry
    return entries


def published_records(path: Path) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """Completed records of a stage's published log (id -> (request hashes, record)), for `previous`:
    a rerun after the stage finished reuses them instead of asking again. Failed requests are not reused."""
    previous: dict[str, tuple[list[str], dict[str, Any]]] = {}
    if path.exists():
        for rec in read_jsonl(path):
            if isinstance(rec, dict) and "request_sha256" in rec and not rec.get("request_failed"):
                previous[str(rec["id"])] = (rec["request_sha256"], rec)
    return previous


def _not_done(jobs: Sequence[Job], logged: dict[str, dict[str, Any]],
              previous: dict[str, tuple[list[str], dict[str, Any]]], outcome: Outcome) -> list[Job]:
    """The jobs to run; those in the progress log or `previous` with the same request hashes go to `outcome`."""
    pending: list[Job] = []
    for job in jobs:
        hashes = job.hashes()
        entry = logged.get(job.key)
        if entry is not None and entry.get("request_sha256") == hashes:
            outcome.records[job.key] = entry["record"]
        elif job.key in previous and previous[job.key][0] == hashes:
            outcome.records[job.key] = previous[job.key][1]
        else:
            pending.append(job)
    return pending


# Over 60 lines with its signature and docstring (under 50 of code): claim, send, log and publish
# must share one loop so a kill between any two steps loses at most the requests in flight.
def run_jobs(
    jobs: Sequence[Job],
    client: ChatClient,
    progress: Path,
    *,
    previous: dict[str, tuple[list[str], dict[str, Any]]] | None = None,
    batch_size: int = 64,
    desc: str = "judging",
) -> Outcome:
    """Run every job not already done (in `previous` or the progress log) and log each result.

    `previous` maps keys to (request hashes, record) from an already published output, so a
    rerun that only adds models or examples judges just the new ones.
    """
    if batch_size < 1:
        raise StageError(f"batch size must be >= 1, got {batch_size}.")
    counts = Counter(j.key for j in jobs)
    if len(counts) != len(jobs):
        dup = next(k for k, n in counts.items() if n > 1)
        raise StageError(f"{desc}: duplicate work item '{dup}'.", hint="remove duplicate ids from the input.")
    outcome = Outcome()
    pending = _not_done(jobs, load_progress(progress), previous or {}, outcome)
    outcome.reused = len(outcome.records)
    if outcome.reused:
        log.info("%s: %d of %d already done, %d to run", desc, outcome.reused, len(jobs), len(pending))
    if not pending:
        return outcome

    if getattr(client, "dry_run", False):  # all of them in one call: the estimate covers the whole stage
        client.complete_many([r for job in pending for r in job.requests])  # raises DryRunFinished
    from tqdm import tqdm

    AppendLog(progress).close()  # cuts a line torn by a killed run, so appends stay parseable
    # One write + fsync per batch rather than per record: a per-record fsync costs ~5 ms, minutes
    # over a 52k-example scoring run; a kill mid-batch loses at most that batch, whose answers the
    # client has cached anyway.
    with open(progress, "a", encoding="utf-8") as out, tqdm(total=len(pending), desc=desc, unit="item") as bar:
        for i in range(0, len(pending), batch_size):
            batch = pending[i : i + batch_size]
            flat = [r for job in batch for r in job.requests]
            results = client.complete_many(flat)
            if len(results) != len(flat):
                raise StageError(
                    f"{desc}: the judge client returned {len(results)} results for {len(flat)} requests."
                )
            pos, lines = 0, []
            for job in batch:
                mine = results[pos : pos + len(job.requests)]
                pos += len(job.requests)
                bad = next((r for r in mine if not r.ok), None)
                if bad is not None:
                    outcome.failed.append((job.key, bad.error or "empty reply"))
                    continue
                record = job.build(list(mine))
                entry = {"key": job.key, "request_sha256": job.hashes(), "record": record}
                lines.append(to_json(entry) + "\n")
                outcome.records[job.key] = record
                outcome.new += 1
            out.write("".join(lines))
            out.flush()
            os.fsync(out.fileno())
            bar.update(len(batch))
    return outcome

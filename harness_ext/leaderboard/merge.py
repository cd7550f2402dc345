"""Merge entries and boards without losing or silently overwriting anything.

Two metrics with the same identity (suite, name, test set, baseline, epoch, judge) and the same
value are one metric; with different values they are a conflict. Conflicts are always reported, and
fail the merge unless the caller says which side wins (`prefer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness_ext.core.errors import ConfigError, HarnessError
from harness_ext.leaderboard.model import Entry, Leaderboard

PREFER = ("existing", "incoming")


@dataclass(frozen=True)
class Conflict:
    """Same model and field/metric, two different values."""

    model: str
    what: str
    existing: Any
    incoming: Any

    def __str__(self) -> str:
        return f"{self.model}: {self.what}: existing {self.existing!r} vs incoming {self.incoming!r}"


class MergeConflictError(HarnessError):
    """Raised when a merge meets conflicting values and no side was preferred."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        shown = "; ".join(str(c) for c in conflicts[:8])
        more = f" (and {len(conflicts) - 8} more)" if len(conflicts) > 8 else ""
        super().__init__(
            f"{len(conflicts)} conflicting value(s), nothing written: {shown}{more}.",
            hint="rerun with --prefer existing|incoming (add) or --prefer first|last (merge) to choose a side, "
            "or rename one model.",
        )
        self.conflicts = conflicts


def _check_prefer(prefer: str | None) -> None:
    if prefer is not None and prefer not in PREFER:
        raise ConfigError(f"prefer={prefer!r} is not one of {', '.join(PREFER)}.")


def merge_entry(target: Entry, incoming: Entry, prefer: str | None = None) -> list[Conflict]:
    """Fold `incoming` into `target` in place; return the conflicts met (resolved per `prefer`)."""
    _check_prefer(prefer)
    conflicts: list[Conflict] = []
    for name in Entry.DESCRIPTORS:
        new, old = getattr(incoming, name), getattr(target, name)
        if new is None or new == old:
            continue
        if old is None:
            setattr(target, name, new)
            continue
        conflicts.append(Conflict(target.model, name, old, new))
        if prefer == "incoming":
            setattr(target, name, new)
    index = {m.key: i for i, m in enumerate(target.metrics)}
    for metric in incoming.metrics:
        i = index.get(metric.key)
        if i is None:
            index[metric.key] = len(target.metrics)
            target.metrics.append(metric)
            continue
        old_metric = target.metrics[i]
        if old_metric.same_value(metric):
            continue
        conflicts.append(Conflict(target.model, metric.label(), old_metric.value, metric.value))
        if prefer == "incoming":
            target.metrics[i] = metric
    return conflicts


def merge_into(board: Leaderboard, entries: list[Entry], prefer: str | None = None) -> list[Conflict]:
    """Add `entries` to `board`; on any unresolved conflict raise and leave `board` unchanged."""
    _check_prefer(prefer)
    import copy

    staged = copy.deepcopy(board)
    conflicts: list[Conflict] = []
    for entry in entries:
        existing = staged.get(entry.model)
        if existing is None:
            staged.entries.append(copy.deepcopy(entry))
        else:
            conflicts += merge_entry(existing, entry, prefer)
    if conflicts and prefer is None:
        raise MergeConflictError(conflicts)
    board.entries = staged.entries
    return conflicts


def merge_boards(boards: list[Leaderboard], prefer: str | None = None, name: str | None = None
                 ) -> tuple[Leaderboard, list[Conflict]]:
    """Merge boards left to right into a new board; prefer='incoming' lets later boards win."""
    if not boards:
        raise ConfigError("merge needs at least one leaderboard.")
    out = Leaderboard(name=name or boards[0].name, description=boards[0].description)
    conflicts: list[Conflict] = []
    for board in boards:
        conflicts += merge_into(out, board.entries, prefer)
    return out, conflicts

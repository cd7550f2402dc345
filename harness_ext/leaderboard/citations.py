"""Filter a leaderboard by the paper table or figure its numbers cite ("Table 2", "Fig. 4", "human").

Each published number's provenance cites where it was read, e.g. "Zhao et al. 2024, arXiv:2402.04833,
Table 2, row 'LIMA-1k', column Llama-2-13B". A value two tables share cites both, joined by " | ".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness_ext.core.errors import ConfigError
from harness_ext.leaderboard.model import Entry, Leaderboard, Metric

_CITED = re.compile(r"\b(Table|Fig\.)\s*(\d+)\b")
_SPEC = re.compile(r"^\s*(?:(table|tab\.?|t)|(figure|fig\.?|f))?\s*(\d+)\s*$", re.IGNORECASE)


def cited(metric: Metric) -> set[str]:
    """The tables and figures a metric cites, as 'Table N' / 'Fig. N' (plus 'human' for the user study).

    >>> from harness_ext.leaderboard.model import Provenance
    >>> p = Provenance(date="2024-06-04", citation="x, Table 1, row 'a' | x, Table 8, row 'b'")
    >>> sorted(cited(Metric(suite="alpaca_eval", name="win_rate", value=1.0, provenance=p)))
    ['Table 1', 'Table 8']
    """
    found = {f"{kind} {num}" for kind, num in _CITED.findall(metric.provenance.citation or "")}
    if metric.suite == "human":
        found.add("human")
    return found


def normalize(spec: str) -> str:
    """'2', 'table 2', 'T2' -> 'Table 2'; 'fig 4', 'Figure 4' -> 'Fig. 4'; 'human' stays.

    >>> [normalize(s) for s in ("2", "Table 2", "fig. 4", "Figure 5", "human")]
    ['Table 2', 'Table 2', 'Fig. 4', 'Fig. 5', 'human']
    """
    if spec.strip().lower() == "human":
        return "human"
    m = _SPEC.match(spec)
    if not m:
        raise ConfigError(f"--table {spec!r} names no table or figure.",
                          hint="use a table number (2 or 'Table 2'), a figure ('Fig. 4') or 'human'.")
    return f"Fig. {m.group(3)}" if m.group(2) else f"Table {m.group(3)}"


def select_tables(board: Leaderboard, specs: Iterable[str]) -> Leaderboard:
    """Keep, on the paper's entries, only the metrics citing one of `specs`; other entries are untouched.

    Paper entries left with no metric are dropped. Unknown tables are an error listing those available.
    """
    wanted = {normalize(s) for s in specs}
    available = {c for e in board.entries if e.origin == "paper" for m in e.metrics for c in cited(m)}
    missing = sorted(wanted - available)
    if missing:
        raise ConfigError(f"the board's paper numbers cite no {', '.join(missing)}.",
                          hint="available: " + ", ".join(sorted(available, key=_order)) + ".")
    entries: list[Entry] = []
    for e in board.entries:
        if e.origin != "paper":
            entries.append(e)
            continue
        kept = [m for m in e.metrics if cited(m) & wanted]
        if kept:
            entries.append(Entry(**{**{k: getattr(e, k) for k in ("model", "origin", *Entry.DESCRIPTORS)},
                                    "metrics": kept}))
    return Leaderboard(name=board.name, description=board.description, entries=entries)


def _order(label: str) -> tuple[int, int]:
    kind, _, num = label.partition(" ")
    return ({"Table": 0, "Fig.": 1}.get(kind, 2), int(num) if num.isdigit() else 0)

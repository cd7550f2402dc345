"""`select compare`: what different selections picked, side by side.

In: selection folders written by `harness-ext select` (their selected.jsonl), or selection files:
a FastChat list as the paper released its subsets (`identity_<row>` ids, human/gpt turns), an
Alpaca-style JSON list, or JSONL rows. Out: overlap counts and the Jaccard matrix, length
distributions, the source mix and the distribution of every numeric score field per selection, as a
text table, compare.json and compare.png.

Rows are matched by their source row (`row` in our files, the number in `identity_<row>`) when every
selection carries one, else by the response text; the two only agree when the selections were drawn
from the same pool.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.errors import InputError

_IDENTITY = re.compile(r"(?:^|_)identity_(\d+)$")
_NOT_SCORES = {"length", "row"}


@dataclass
class Selection:
    """One selection, reduced to what a comparison needs."""

    name: str
    rows: list[int | None]
    responses: list[str]
    sources: list[str]
    scores: dict[str, list[float]] = field(default_factory=dict)


def _row_of(rec: dict[str, Any]) -> int | None:
    if isinstance(rec.get("row"), int) and rec["row"] >= 0:
        return rec["row"]
    m = _IDENTITY.search(str(rec.get("id", "")))
    return int(m.group(1)) if m else None


def _response_of(rec: dict[str, Any]) -> str:
    if isinstance(rec.get("conversations"), list):
        for turn in rec["conversations"]:
            if isinstance(turn, dict) and turn.get("from") in ("gpt", "assistant"):
                return str(turn.get("value", ""))
        return ""
    for key in ("response", "output"):
        if isinstance(rec.get(key), str):
            return rec[key]
    return ""


def _records(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():
        path = path / "selected.jsonl"
    if not path.is_file():
        raise InputError("not a selection folder or file (no selected.jsonl here).", path=path,
                         hint="give folders written by `harness-ext select`, or FastChat/Alpaca JSON files.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            recs = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            recs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}, line {exc.lineno}).", path=path) from exc
    if not isinstance(recs, list) or not all(isinstance(r, dict) for r in recs):
        raise InputError("expected a list of rows (objects).", path=path)
    return recs


def load_selection(path: str | Path) -> Selection:
    """Read one selection folder or file (see the module doc)."""
    path = Path(path)
    recs = _records(path)
    sel = Selection(path.name if path.is_dir() else path.stem, [_row_of(r) for r in recs],
                    [_response_of(r) for r in recs], [str(r.get("source") or "(none)") for r in recs])
    fields: dict[str, list[float]] = {}
    for r in recs:
        flat = {**{k: v for k, v in r.items() if k not in ("metadata", "conversations")}, **(r.get("metadata") or {})}
        for k, v in flat.items():
            if k not in _NOT_SCORES and isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
                fields.setdefault(k, []).append(float(v))
    sel.scores = {k: v for k, v in sorted(fields.items())}
    return sel


def keys_of(sels: list[Selection]) -> tuple[str, list[set]]:
    """The match key ('row' or 'response') and each selection's set of keys."""
    if all(r is not None for s in sels for r in s.rows):
        return "row", [set(s.rows) for s in sels]
    return "response", [{hashlib.blake2b(t.strip().encode(), digest_size=12).hexdigest() for t in s.responses}
                         for s in sels]


def _dist(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    v = sorted(values)
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return {"count": len(v), "min": v[0], "p25": q[0], "median": q[1], "p75": q[2], "max": v[-1],
            "mean": round(statistics.fmean(v), 4)}


def compare(paths: list[str | Path], unit: str = "nltk-words") -> dict[str, Any]:
    """The comparison of the selections at `paths` (a JSON-ready dict, also what compare.json holds)."""
    from harness_ext.selection.units import make_unit

    sels = [load_selection(p) for p in paths]
    names = _unique([s.name for s in sels])
    measure = make_unit(unit)
    key, sets = keys_of(sels)
    n = len(sels)
    overlap = [[len(sets[i] & sets[j]) for j in range(n)] for i in range(n)]
    jaccard = [[round(len(sets[i] & sets[j]) / max(len(sets[i] | sets[j]), 1), 4) for j in range(n)]
               for i in range(n)]
    per = {}
    for name, s in zip(names, sels, strict=True):
        lengths = measure.count_many(s.responses)
        per[name] = {"rows": len(s.responses), "unique": len(sets[names.index(name)]),
                     "length": _dist([float(x) for x in lengths]), "lengths": lengths,
                     "sources": dict(Counter(s.sources).most_common()),
                     "scores": {k: _dist(v) for k, v in s.scores.items()}}
    return {"selections": names, "paths": [str(p) for p in paths], "match_key": key, "unit": unit,
            "overlap": overlap, "jaccard": jaccard, "per_selection": per}


def _unique(names: list[str]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def render_table(result: dict[str, Any]) -> str:
    """Plain-text tables: per-selection summary, then the overlap counts / Jaccard matrix."""
    names = result["selections"]
    w = max(12, *(len(n) for n in names))
    lines = [f"{'selection':<{w}}  {'rows':>5}  {'len median':>10}  {'len mean':>9}  {'len p25-p75':>13}  sources (top 3)"]
    for name in names:
        p = result["per_selection"][name]
        d = p["length"]
        src = ", ".join(f"{k} {v}" for k, v in list(p["sources"].items())[:3])
        lines.append(f"{name:<{w}}  {p['rows']:>5}  {d.get('median', 0):>10g}  {d.get('mean', 0):>9g}  "
                     f"{d.get('p25', 0):>6g}-{d.get('p75', 0):<6g}  {src}")
        for field_name, sd in p["scores"].items():
            lines.append(f"{'':<{w}}  {field_name}: median {sd['median']:.4g}, "
                         f"mean {sd['mean']:.4g}, range {sd['min']:.4g}..{sd['max']:.4g}")
    lines.append("")
    lines.append(f"overlap (rows in both; matched by {result['match_key']}) / Jaccard")
    lines.append(f"{'':<{w}}  " + "  ".join(f"{n[:14]:>14}" for n in names))
    for i, name in enumerate(names):
        cells = [f"{result['overlap'][i][j]:>6} / {result['jaccard'][i][j]:.3f}" for j in range(len(names))]
        lines.append(f"{name:<{w}}  " + "  ".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> Path:
    """compare.png: response-length distributions (left) and the Jaccard matrix (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result["selections"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100)
    top = max((max(p["lengths"], default=0) for p in result["per_selection"].values()), default=1)
    bins = [top * i / 40 for i in range(41)] if top else 10
    for name in names:
        ax.hist(result["per_selection"][name]["lengths"], bins=bins, histtype="step", linewidth=1.5, label=name)
    ax.set_xlabel(f"response length ({result['unit']})")
    ax.set_ylabel("examples")
    ax.legend(fontsize=8)
    im = bx.imshow(result["jaccard"], vmin=0, vmax=1, cmap="viridis")
    bx.set_xticks(range(len(names)), [n[:16] for n in names], rotation=45, ha="right", fontsize=8)
    bx.set_yticks(range(len(names)), [n[:16] for n in names], fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            v = result["jaccard"][i][j]
            bx.text(j, i, f"{v:.2f}", ha="center", va="center", color="k" if v > 0.5 else "w", fontsize=8)
    bx.set_title(f"Jaccard overlap (by {result['match_key']})")
    fig.colorbar(im, ax=bx)
    fig.tight_layout(pad=1.5)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path

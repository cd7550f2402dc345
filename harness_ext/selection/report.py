"""The selection report (report.json) and the pool-length histogram (lengths.png)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_ext import __version__

if TYPE_CHECKING:
    from harness_ext.selection.scan import ScanResult
    from harness_ext.selection.strategies import Picked


def length_stats(lengths: Counter[int]) -> dict[str, Any]:
    """count/min/median/mean/max of a length histogram (median of an even count: mean of the middle two)."""
    total = sum(lengths.values())
    if not total:
        return {"count": 0, "min": None, "median": None, "mean": None, "max": None}
    keys = sorted(lengths)

    def nth(i: int) -> int:
        seen = 0
        for key in keys:
            seen += lengths[key]
            if seen > i:
                return key
        return keys[-1]

    mid = total // 2
    median = nth(mid) if total % 2 else (nth(mid - 1) + nth(mid)) / 2
    mean = sum(key * c for key, c in lengths.items()) / total
    return {"count": total, "min": keys[0], "median": median, "mean": round(mean, 3), "max": keys[-1]}


# Ten parameters: each is a field report.json records for reproducibility; a dataclass here would
# only repeat the same names once more.
def build_report(scan: ScanResult, picked: Picked, *, strategy: str, k: int | None, unit: str,
                 count_on: str, seed: int, options: dict[str, Any], input_info: dict[str, Any],
                 tie_rule: str) -> dict[str, Any]:
    """Everything a reader needs to trust and reproduce one selection run."""
    drops = Counter(scan.drops)
    drops.update(picked.drops)
    selected_lengths = Counter(n for _, n in picked.kept)
    cutoff = picked.cutoff
    ties = None
    if cutoff is not None:
        at_cut_selected = sum(1 for _, n in picked.kept if n == cutoff)
        total = scan.lengths.get(cutoff, 0)
        ties = {"length": cutoff, "in_pool": total, "selected": at_cut_selected,
                "not_selected": max(total - at_cut_selected, 0)}
    pool_stats = length_stats(scan.lengths)
    pool_stats["complete"] = scan.pruned == 0
    pool_stats["not_measured"] = scan.pruned
    return {
        "strategy": strategy,
        "k": k,
        "unit": unit,
        "count_on": count_on,
        "seed": seed,
        "tie_rule": tie_rule,
        "options": options,
        "input": input_info,
        "counts": {
            "rows_read": scan.rows_read,
            "dropped": sum(scan.drops.values()),
            "pool": scan.pool,
            "set_aside_by_strategy": sum(picked.drops.values()),
            "selected": len(picked.kept),
        },
        "drops": dict(sorted(drops.items())),
        "lengths": {"pool": pool_stats, "selected": length_stats(selected_lengths)},
        "cutoff": cutoff,
        "ties_at_cutoff": ties,
        "per_source": {
            "pool": dict(sorted(scan.sources.items())),
            "selected": dict(sorted(Counter(ex.source for ex, _ in picked.kept).items())),
        },
        "strategy_notes": picked.notes,
        "workers": scan.workers,
        "package_version": __version__,
    }


def plot_lengths(lengths: Counter[int], cutoff: int | None, path: Path, *, unit: str, pruned: int = 0,
                 title: str = "") -> Path:
    """A histogram of measured pool lengths with the cutoff as a vertical line (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if lengths:
        values = sorted(lengths)
        ax.hist(values, bins=min(60, max(1, len(values))), weights=[lengths[v] for v in values],
                color="#4c72b0", edgecolor="white", linewidth=0.3)
    if cutoff is not None:
        ax.axvline(cutoff, color="#c44e52", linestyle="--", linewidth=1.5, label=f"cutoff = {cutoff}")
        ax.legend(loc="upper right")
    ax.set_yscale("log")
    ax.set_xlabel(f"length ({unit})")
    ax.set_ylabel("examples (log scale)")
    ax.set_title(title or "pool lengths")
    if pruned:
        ax.text(0.99, 0.80, f"{pruned} examples not counted exactly\n(a cheap bound proved they cannot pass the cutoff)",
                transform=ax.transAxes, ha="right", va="top", fontsize=8, color="#555555")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path

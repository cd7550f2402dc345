"""PNG plots of a leaderboard, modelled on the paper's figures (matplotlib, Agg backend).

Each function returns the path it wrote, or None when the board holds no data for that plot, so
a report simply shows the plots it can.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from harness_ext.core.artifacts import atomic_write_bytes, iter_jsonl
from harness_ext.core.errors import InputError
from harness_ext.leaderboard.model import Leaderboard

COLORS = {"win": "#4881b8", "tie": "#9fc3e0", "loss": "#e8a37c"}
PLOTS = ("pairwise", "lengths", "epochs", "loss", "radar")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def plot_pairwise(board: Leaderboard, path: Path) -> Path | None:
    """Stacked win/tie/loss bars, one panel per test set (paper Fig. 2)."""
    data: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for e in board.entries:
        for m in e.metrics:
            if m.suite in ("pairwise", "human") and m.name in COLORS and m.epoch is None:
                label = f"{e.model} vs {m.baseline}" + (f" [{m.provenance.judge}]" if m.provenance.judge else "")
                data[m.test_set or "all"].setdefault(label, {})[m.name] = m.value
    if not data:
        return None
    plt = _pyplot()
    sets = list(data)
    # Panels stacked vertically, each listing only its own comparisons (labels can be long).
    fig, axes = plt.subplots(len(sets), 1, figsize=(9, 0.5 * sum(len(data[s]) for s in sets) + 1.2 * len(sets) + 0.6),
                             squeeze=False, gridspec_kw={"height_ratios": [len(data[s]) + 0.8 for s in sets]})
    for ax, name in zip((row[0] for row in axes), sets, strict=True):
        labels = list(data[name])
        for y, label in enumerate(labels):
            left = 0.0
            for outcome, color in COLORS.items():
                value = data[name][label].get(outcome, 0.0)
                ax.barh(y, value, left=left, color=color, edgecolor="white", height=0.6,
                        label=outcome if y == 0 else None)
                if value >= 8:
                    ax.text(left + value / 2, y, f"{value:.0f}", ha="center", va="center", fontsize=8)
                left += value
        ax.set_title(name, fontsize=10)
        ax.set_xlim(0, 100)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
    axes[-1][0].set_xlabel("%")
    fig.subplots_adjust(hspace=0.5)
    axes[0][0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.suptitle("Pairwise judgments: win / tie / loss", fontsize=11)
    return _save(fig, path)


def _length_metric(entry):
    for suite, names in (("length", None), ("alpaca_eval", ("avg_length",))):
        for m in entry.metrics:
            if m.suite == suite and m.epoch is None and m.test_set is None and (names is None or m.name in names):
                return m
    return None


def plot_lengths(board: Leaderboard, path: Path) -> Path | None:
    """Average response length per model (paper Fig. 1b)."""
    rows = [(e.model, m) for e in board.entries if (m := _length_metric(e))]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4))
    ax.barh(range(len(rows)), [m.value for _, m in rows], color="#4881b8")
    ax.set_yticks(range(len(rows)), [model for model, _ in rows], fontsize=8)
    ax.invert_yaxis()
    units = {m.unit or "" for _, m in rows}
    ax.set_xlabel(f"average response length ({', '.join(sorted(units))})")
    for y, (_, m) in enumerate(rows):
        ax.text(m.value, y, f" {m.value:.0f}", va="center", fontsize=8)
    ax.set_title("Average response length", fontsize=11)
    return _save(fig, path)


def plot_epochs(board: Leaderboard, path: Path) -> Path | None:
    """Win rate and response length against training epoch, one line per model (paper Fig. 7)."""
    win: dict[str, list[tuple[float, float]]] = defaultdict(list)
    length: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for e in board.entries:
        for m in e.metrics:
            if m.epoch is None:
                continue
            if m.unit == "%" and m.name in ("win", "win_rate", "lc_win_rate"):
                win[f"{e.model} {m.suite}:{m.name}" + (f" ({m.test_set})" if m.test_set else "")].append((m.epoch, m.value))
            elif m.unit in ("tokens", "characters"):
                length[f"{e.model} ({m.unit})"].append((m.epoch, m.value))
    if not win and not length:
        return None
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, series, ylabel in ((ax1, win, "win rate (%)"), (ax2, length, "average response length")):
        for label, points in series.items():
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7)
    fig.suptitle("Across training epochs", fontsize=11)
    return _save(fig, path)


def read_loss_log(path: str | Path) -> list[tuple[float, float]]:
    """(step, loss) from a training log JSONL; rows without 'loss' (e.g. eval rows) are skipped."""
    points = []
    for lineno, row in iter_jsonl(path, allow_truncated_tail=True):
        if not isinstance(row, dict) or "loss" not in row:
            continue
        step, loss = row.get("step"), row.get("loss")
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (step, loss))
        if not ok:
            raise InputError(f"row needs numeric 'step' and 'loss', got step={step!r} loss={loss!r}.",
                             path=path, line=lineno)
        points.append((float(step), float(loss)))
    if not points:
        raise InputError("no rows with 'step' and 'loss'.", path=path,
                         hint="pass the training log JSONL written by `harness-ext train`.")
    return sorted(points)


def plot_loss_curves(logs: Mapping[str, str | Path], path: Path) -> Path | None:
    """Training loss divided by its first value, one line per run (paper Fig. 20)."""
    if not logs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, log in logs.items():
        points = read_loss_log(log)
        first = points[0][1] or 1.0  # a zero first loss cannot be normalized; plot it raw
        ax.plot([s for s, _ in points], [v / first for _, v in points], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss / initial loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Normalized training loss", fontsize=11)
    return _save(fig, path)


def plot_mt_bench_radar(board: Leaderboard, path: Path) -> Path | None:
    """MT-Bench score per category, one polygon per model."""
    series: dict[str, dict[str, float]] = {}
    for e in board.entries:
        cats = {m.test_set: m.value for m in e.metrics
                if m.suite == "mt_bench" and m.name == "average" and m.test_set and m.epoch is None}
        if len(cats) >= 3:
            series[e.model] = cats
    if not series:
        return None
    plt = _pyplot()
    cats = list(dict.fromkeys(c for s in series.values() for c in s))
    angles = [2 * math.pi * i / len(cats) for i in range(len(cats))]
    fig = plt.figure(figsize=(6.5, 6.5))
    ax = fig.add_subplot(polar=True)
    for model, values in series.items():
        vals = [values.get(c, 0.0) for c in cats]
        ax.plot(angles + angles[:1], vals + vals[:1], marker="o", label=model)
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.1)
    ax.set_xticks(angles, cats)
    ax.set_ylim(0, 10)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize=8)
    ax.set_title("MT-Bench by category", fontsize=11)
    return _save(fig, path)


def make_plots(board: Leaderboard, out_dir: Path, plots: tuple[str, ...] | list[str] = PLOTS,
               loss_logs: Mapping[str, str | Path] | None = None) -> list[Path]:
    """Write every requested plot the board has data for into out_dir; return the files written."""
    from harness_ext.core.errors import unknown

    for name in plots:
        if name not in PLOTS:
            raise unknown("plot", name, PLOTS)
    makers = {
        "pairwise": lambda: plot_pairwise(board, out_dir / "pairwise_win_tie_loss.png"),
        "lengths": lambda: plot_lengths(board, out_dir / "response_length.png"),
        "epochs": lambda: plot_epochs(board, out_dir / "epochs.png"),
        "loss": lambda: plot_loss_curves(loss_logs or {}, out_dir / "loss_curves.png"),
        "radar": lambda: plot_mt_bench_radar(board, out_dir / "mt_bench_radar.png"),
    }
    return [p for name in plots if (p := makers[name]()) is not None]

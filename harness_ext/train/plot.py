"""Normalized training-loss curves (loss / initial loss) of several runs, as in the paper's Fig. 20."""

from __future__ import annotations

from pathlib import Path

from harness_ext.core.artifacts import atomic_write_bytes
from harness_ext.core.errors import ConfigError, InputError, did_you_mean
from harness_ext.train.callbacks import LOG_FILE, read_log


def normalized_curve(run: Path) -> tuple[list[float], list[float]]:
    """(epochs, loss / first logged loss) from RUN/train_log.jsonl (or a log file given directly)."""
    path = run / LOG_FILE if run.is_dir() else run
    if not path.is_file():
        raise InputError("no training log here.", path=path, hint="pass a folder written by `harness-ext train`.")
    points = [r for r in read_log(path) if r.get("type") == "train" and r.get("loss") is not None]
    if not points:
        raise InputError("the training log has no loss records.", path=path)
    first = float(points[0]["loss"])
    if first <= 0:
        raise InputError(f"initial loss {first} is not positive; cannot normalize.", path=path)
    return [float(r["epoch"]) for r in points], [float(r["loss"]) / first for r in points]


def plot_runs(runs: list[Path], out: Path, labels: list[str] | None = None, title: str | None = None) -> Path:
    """Draw one normalized loss curve per run into `out` (PNG, PDF or SVG by extension)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureCanvasBase

    if labels and len(labels) != len(runs):
        raise InputError(f"{len(labels)} labels given for {len(runs)} runs.", hint="give one --label per run.")
    fmt = out.suffix.lstrip(".").lower() or "png"
    supported = sorted(FigureCanvasBase.get_supported_filetypes())
    if fmt not in supported:
        raise ConfigError(
            f"--out {out}: '.{fmt}' is not an image format matplotlib writes.{did_you_mean(fmt, supported)}",
            hint=f"end --out in .png, .pdf or .svg (also: {', '.join(f for f in supported if f not in ('png', 'pdf', 'svg'))}).",
        )
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, run in enumerate(runs):
        epochs, values = normalized_curve(run)
        name = labels[i] if labels else (run.name if run.is_dir() else run.parent.name)
        ax.plot(epochs, values, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss / initial loss")
    ax.set_title(title or "Normalized training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, bbox_inches="tight", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(out, buf.getvalue())

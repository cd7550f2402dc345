"""`harness-ext train-plot`: normalized loss curves of several training runs (paper Fig. 20)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "plot normalized training-loss curves (loss / initial loss) of several runs"
DESCRIPTION = (
    "Plot loss / initial loss against epoch for each RUN (a folder written by `harness-ext train`,\n"
    "or its train_log.jsonl), as in Fig. 20 of arXiv 2402.04833.\n\n"
    "  harness-ext train-plot runs/longest runs/random --out loss.png"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    parser.add_argument("--out", type=Path, required=True, help="image file (.png, .pdf or .svg)")
    parser.add_argument("--label", action="append", help="legend label per run, in order (default: folder name)")
    parser.add_argument("--title", help="plot title")


def run(args: argparse.Namespace) -> int:
    from harness_ext.train.plot import plot_runs

    print(plot_runs(args.runs, args.out, labels=args.label, title=args.title))
    return 0

"""Leaderboards: schema-versioned JSON of results from every suite, with provenance, merging,
rendering (terminal, Markdown, CSV, HTML) and plots.

Pipeline API:
    board = Leaderboard.load(path)                      # or Leaderboard(name=...)
    add_results(board, results_file, kind="auto", model=..., base_model=..., ...)
    board.save(path)
    render_html(board, out_dir, plots=PLOTS, loss_logs={"run": "train_log.jsonl"})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_text, staged_dir
from harness_ext.core.errors import ConfigError, InputError, did_you_mean
from harness_ext.core.paths import leaderboards_dir
from harness_ext.leaderboard.importers import IMPORTERS, detect_kind, read_results
from harness_ext.leaderboard.merge import Conflict, MergeConflictError, merge_boards, merge_into
from harness_ext.leaderboard.model import Entry, Leaderboard, Metric, Provenance
from harness_ext.leaderboard.plots import PLOTS, make_plots
from harness_ext.leaderboard.render import render_csv, render_html_page, render_markdown, render_text

__all__ = [
    "IMPORTERS", "PLOTS", "Conflict", "Entry", "Leaderboard", "MergeConflictError", "Metric", "Provenance",
    "add_results", "detect_kind", "merge_boards", "paper_board", "read_results", "render_csv", "render_html",
    "render_markdown", "render_text",
]

PAPER_FILE = "long_is_more_2402.04833.json"


def paper_board() -> Leaderboard:
    """The paper's published numbers (arXiv 2402.04833) shipped in leaderboards/."""
    return Leaderboard.load(leaderboards_dir() / PAPER_FILE)


# Nine parameters: the keyword-only ones are the `leaderboard add` flags, one to one, so a script reads
# like the command line; grouping them in a dataclass would only add a name to learn.
def add_results(
    board: Leaderboard,
    path: str | Path,
    kind: str = "auto",
    *,
    model: str | None = None,
    all_models: bool = False,
    name: str | None = None,
    epoch: float | None = None,
    prefer: str | None = None,
    date: str | None = None,
    **entry_fields: Any,
) -> list[Conflict]:
    """Import one results file into `board` (in memory); return the conflicts met.

    `model` picks a model from files that hold several (alpaca_eval CSV, MT-Bench judgments);
    `all_models` imports every one. `name` renames the entry; `epoch` tags every metric (for
    across-epoch plots); `entry_fields` sets descriptors (base_model, ift_data, ift_data_size,
    preference_data_size, selection, refinement, neftune_alpha, notes). Conflicting values raise
    MergeConflictError unless `prefer` is 'existing' or 'incoming'; on error `board` is unchanged.
    """
    unknown_fields = set(entry_fields) - set(Entry.DESCRIPTORS)
    if unknown_fields:
        raise ConfigError(f"unknown entry field(s) {sorted(unknown_fields)}.",
                          hint=f"use {', '.join(Entry.DESCRIPTORS)}.")
    results = read_results(path, kind, date=date)
    if model is not None:
        if model not in results:
            raise InputError(f"model {model!r} is not in this results file.{did_you_mean(model, results)}",
                             path=path, hint=f"it holds: {', '.join(sorted(results)[:20])}.")
        chosen = {model: results[model]}
    elif all_models or len(results) == 1:
        chosen = results
    else:
        raise InputError(f"the file holds {len(results)} models; say which.", path=path,
                         hint=f"pass --model NAME (one of {', '.join(sorted(results)[:10])}...) or --all.")
    if name is not None and len(chosen) != 1:
        raise ConfigError("--name renames one model; it cannot be combined with --all.")
    entries = []
    for model_name, metrics in chosen.items():
        if epoch is not None:
            metrics = [dataclasses.replace(m, epoch=epoch) for m in metrics]
        entries.append(Entry(model=name or model_name, metrics=list(metrics), origin="run", **entry_fields))
    return merge_into(board, entries, prefer)


def with_paper(board: Leaderboard, tables: list[str] | None = None) -> Leaderboard:
    """`board` followed by the paper's entries (those not already on it), for side-by-side views.

    `tables` ("Table 2", "Fig. 4", "human", ...) keeps only the paper numbers that cite one of them.
    """
    paper = paper_board()
    if tables:
        from harness_ext.leaderboard.citations import select_tables

        paper = select_tables(paper, tables)
    names = {e.model for e in board.entries}
    return Leaderboard(name=board.name, description=board.description,
                       entries=board.entries + [e for e in paper.entries if e.model not in names])


def render_html(
    board: Leaderboard,
    out_dir: str | Path,
    plots: tuple[str, ...] | list[str] = PLOTS,
    loss_logs: Mapping[str, str | Path] | None = None,
) -> Path:
    """Write out_dir/index.html (plots embedded), out_dir/README.md and the PNGs beside them.

    The folder is built aside and published only when everything rendered; returns index.html.
    """
    out_dir = Path(out_dir)
    with staged_dir(out_dir) as tmp:
        images = make_plots(board, tmp, plots, loss_logs)
        atomic_write_text(tmp / "index.html", render_html_page(board, images))
        atomic_write_text(tmp / "README.md", render_markdown(board, images))
    return out_dir / "index.html"

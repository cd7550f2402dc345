"""`harness-ext leaderboard`: build, merge, validate and render leaderboard JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "build, merge, validate and render leaderboards (add | merge | show | export | validate | render)"
DESCRIPTION = """Leaderboards are schema-versioned JSON files: one entry per model, each metric with its
provenance (source file sha256, judge, prompt hash, date). The paper's published numbers
(arXiv 2402.04833) ship with the package and are shown beside yours unless --no-paper."""
EPILOG = """examples:
  harness-ext leaderboard add board.json results_2024.json --model my-7b --base-model Llama-2-7B
  harness-ext leaderboard add board.json leaderboard.csv --model my-7b --kind alpaca_eval_csv
  harness-ext leaderboard add board.json model_judgment/gpt-4_single.jsonl --all
  harness-ext leaderboard merge a.json b.json -o merged.json
  harness-ext leaderboard show board.json
  harness-ext leaderboard export board.json -o board.md --format markdown
  harness-ext leaderboard validate board.json
  harness-ext leaderboard render board.json --out report/ --loss-log run=train_log.jsonl
"""

DESCRIPTOR_OPTIONS = (
    ("--base-model", "base_model", str, "base model, e.g. Llama-2-7B"),
    ("--ift-data", "ift_data", str, "instruction-tuning data name, e.g. Alpaca-1k-longest"),
    ("--ift-size", "ift_data_size", int, "number of IFT examples"),
    ("--preference-size", "preference_data_size", int, "number of preference pairs (0 for SFT only)"),
    ("--selection", "selection", str, "selection strategy, e.g. longest"),
    ("--refinement", "refinement", str, "refinement applied, e.g. introspection"),
    ("--neftune-alpha", "neftune_alpha", float, "NEFTune noise alpha"),
    ("--notes", "notes", str, "free text"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    from harness_ext.leaderboard.importers import IMPORTERS

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("add", help="import a results file into a board (created if missing)")
    p.add_argument("board", type=Path, help="leaderboard JSON to update")
    p.add_argument("results", type=Path, help="results file to import")
    p.add_argument("--kind", default="auto", choices=["auto", *IMPORTERS.names()],
                   help="results format (default: detect from content)")
    p.add_argument("--model", help="which model of a multi-model file (alpaca_eval CSV, MT-Bench)")
    p.add_argument("--all", dest="all_models", action="store_true", help="import every model in the file")
    p.add_argument("--name", help="name the entry differently from the model name in the file")
    p.add_argument("--epoch", type=float, help="tag every metric with this training epoch")
    p.add_argument("--prefer", choices=["existing", "incoming"], help="resolve conflicting values")
    p.add_argument("--board-name", default="leaderboard", help="name of a newly created board")
    for flag, dest, typ, text in DESCRIPTOR_OPTIONS:
        p.add_argument(flag, dest=dest, type=typ, help=text)

    p = sub.add_parser("merge", help="merge boards; conflicts are reported and fail unless --prefer")
    p.add_argument("boards", type=Path, nargs="+")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--prefer", choices=["first", "last"], help="which board wins a conflict")
    p.add_argument("--name", help="name of the merged board (default: the first board's)")

    p = sub.add_parser("show", help="print a board as a table")
    p.add_argument("board", type=Path)
    p.add_argument("--format", choices=["text", "markdown", "csv"], default="text")
    p.add_argument("--no-paper", dest="paper", action="store_false", help="leave out the paper's numbers")
    p.add_argument("--table", action="append", default=[], metavar="TABLE",
                   help="only the paper numbers citing this table or figure (repeatable): 2, 'Table 2', 'Fig. 4', human")

    p = sub.add_parser("export", help="write a board as JSON, Markdown or CSV")
    p.add_argument("board", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--format", choices=["json", "markdown", "csv"], help="default: from the output suffix")
    p.add_argument("--with-paper", action="store_true", help="include the paper's numbers")
    p.add_argument("--table", action="append", default=[], metavar="TABLE",
                   help="only the paper numbers citing this table or figure (repeatable): 2, 'Table 2', 'Fig. 4', human")

    p = sub.add_parser("validate", help="check files against the shipped JSON Schema; list every problem")
    p.add_argument("files", type=Path, nargs="+")

    p = sub.add_parser("render", help="write an HTML report with PNG plots (and README.md) into a folder")
    p.add_argument("board", type=Path)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--plots", default="all", help="comma list of pairwise,lengths,epochs,loss,radar or 'all'")
    p.add_argument("--loss-log", action="append", default=[], metavar="LABEL=PATH",
                   help="training log JSONL with step/loss rows (repeatable) for the loss-curve plot")
    p.add_argument("--no-paper", dest="paper", action="store_false", help="leave out the paper's numbers")
    p.add_argument("--table", action="append", default=[], metavar="TABLE",
                   help="only the paper numbers citing this table or figure (repeatable): 2, 'Table 2', 'Fig. 4', human")


def run(args: argparse.Namespace) -> int:
    return {"add": _add, "merge": _merge, "show": _show, "export": _export, "validate": _validate,
            "render": _render}[args.action](args)


def _load_or_new(path: Path, name: str):
    from harness_ext.leaderboard import Leaderboard

    return Leaderboard.load(path) if path.exists() else Leaderboard(name=name)


def _report(conflicts) -> None:
    for c in conflicts:
        print(f"conflict resolved: {c}", file=sys.stderr)


def _add(args: argparse.Namespace) -> int:
    from harness_ext.leaderboard import add_results

    board = _load_or_new(args.board, args.board_name)
    fields = {dest: getattr(args, dest) for _, dest, _, _ in DESCRIPTOR_OPTIONS if getattr(args, dest) is not None}
    before = {e.model: len(e.metrics) for e in board.entries}
    conflicts = add_results(board, args.results, args.kind, model=args.model, all_models=args.all_models,
                            name=args.name, epoch=args.epoch, prefer=args.prefer, **fields)
    board.save(args.board)
    _report(conflicts)
    for e in board.entries:
        added = len(e.metrics) - before.get(e.model, 0)
        if added or e.model not in before:
            print(f"{e.model}: +{added} metrics -> {args.board}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from harness_ext.leaderboard import Leaderboard, merge_boards

    boards = [Leaderboard.load(p) for p in args.boards]
    prefer = {"first": "existing", "last": "incoming", None: None}[args.prefer]
    merged, conflicts = merge_boards(boards, prefer, args.name)
    merged.save(args.output)
    _report(conflicts)
    print(f"merged {len(args.boards)} boards: {len(merged.entries)} entries -> {args.output}")
    return 0


def _board_for_view(path: Path, paper: bool, tables: list[str] | None = None):
    from harness_ext.leaderboard import Leaderboard, with_paper
    from harness_ext.leaderboard.citations import select_tables

    board = Leaderboard.load(path)
    if tables and any(e.origin == "paper" for e in board.entries):  # e.g. the paper's own file
        board = select_tables(board, tables)
    return with_paper(board, tables) if paper else board


def _show(args: argparse.Namespace) -> int:
    from harness_ext.leaderboard import render_csv, render_markdown, render_text

    board = _board_for_view(args.board, args.paper, args.table)
    render = {"text": render_text, "markdown": render_markdown, "csv": render_csv}[args.format]
    sys.stdout.write(render(board))
    return 0


def _export(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import atomic_write_text
    from harness_ext.core.errors import ConfigError
    from harness_ext.leaderboard import render_csv, render_markdown

    fmt = args.format or {".json": "json", ".md": "markdown", ".csv": "csv"}.get(args.output.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot tell the format from {args.output.name!r}.",
                          hint="pass --format json|markdown|csv or use a .json/.md/.csv name.")
    board = _board_for_view(args.board, args.with_paper, args.table)
    if fmt == "json":
        board.save(args.output)
    else:
        atomic_write_text(args.output, (render_markdown if fmt == "markdown" else render_csv)(board))
    print(f"{fmt}: {len(board.entries)} entries -> {args.output}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import read_json
    from harness_ext.core.errors import HarnessError
    from harness_ext.leaderboard.schema import schema_errors

    bad = 0
    for path in args.files:
        try:
            errors = schema_errors(read_json(path))
        except HarnessError as exc:
            errors = [str(exc)]
        for err in errors:
            print(f"{path}: {err}", file=sys.stderr)
        if errors:
            bad += 1
        else:
            print(f"{path}: valid")
    return 1 if bad else 0


def _render(args: argparse.Namespace) -> int:
    from harness_ext.core.errors import ConfigError
    from harness_ext.leaderboard import PLOTS, render_html

    plots = PLOTS if args.plots == "all" else tuple(p.strip() for p in args.plots.split(",") if p.strip())
    logs = {}
    for item in args.loss_log:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ConfigError(f"--loss-log {item!r} is not LABEL=PATH.", hint="e.g. --loss-log run1=out/train_log.jsonl")
        logs[label] = Path(path)
    board = _board_for_view(args.board, args.paper, args.table)
    index = render_html(board, args.out, plots, logs)
    print(f"report -> {index}")
    return 0

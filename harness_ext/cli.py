"""The `harness-ext` command line.

Each subcommand lives in harness_ext/commands/<name>.py and exposes:

    HELP: str                                  one line for `harness-ext --help`
    def configure(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int | None

Command modules import only light things at module level; torch, transformers, lm_eval, openai
and friends are imported inside `run`, so `harness-ext --help` stays fast on the base install.
User-fixable problems are `HarnessError`s, printed here as one line with a non-zero exit.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from harness_ext import __version__
from harness_ext.core.errors import HarnessError, InputError
from harness_ext.core.secrets import install_log_filter, scrub
from harness_ext.llm.spend import DryRunFinished

# name -> module (harness_ext/commands/<module>.py)
COMMANDS: dict[str, str] = {
    # the order is the pipeline's: what --help shows
    "demo": "harness_ext.commands.demo",
    "run": "harness_ext.commands.run",
    "select": "harness_ext.commands.select",
    "score": "harness_ext.commands.score",
    "refine": "harness_ext.commands.refine",
    "train": "harness_ext.commands.train",
    "train-plot": "harness_ext.commands.train_plot",
    "generate": "harness_ext.commands.generate",
    "judge": "harness_ext.commands.judge",
    "mt-bench": "harness_ext.commands.mt_bench",
    "lm-eval": "harness_ext.commands.lm_eval",
    "lm-eval-tasks": "harness_ext.commands.lm_eval_tasks",
    "ifs": "harness_ext.commands.ifs",
    "sweep": "harness_ext.commands.sweep",
    "contamination": "harness_ext.commands.contamination",
    "leaderboard": "harness_ext.commands.leaderboard",
    "study": "harness_ext.commands.study",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness-ext",
        description="Select, refine, fine-tune and evaluate instruction-tuning data "
        "(the 'Long Is More for Alignment' recipe) with lm-eval, AlpacaEval and MT-Bench.",
    )
    parser.add_argument("--version", action="version", version=f"harness-ext {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(p)
        p.set_defaults(_module=module)
    return parser


# `--out` arguments that name a FILE; every other `--out` / `--cache-dir` names a folder, and every
# `--output` / `--db` a file. Keyed by the command, or by "command action" for commands with actions.
_FILE_OUTS = {("contamination", "out"), ("ifs", "out"), ("train-plot", "out"), ("judge alpaca-winrate", "out")}
_DIR_ARGS = ("out", "cache_dir", "dest")
_FILE_ARGS = ("output", "db")
_EXAMPLE_SUFFIX = {"train-plot": ".png", "study export": ".jsonl", "db": ".sqlite"}


def _command_name(args: argparse.Namespace) -> str:
    sub = next((getattr(args, a) for a in ("judge_command", "action", "mt_bench_command") if getattr(args, a, None)), None)
    return f"{args.command} {sub}" if sub else args.command


def _example_name(command: str, dest: str) -> str:
    return "out" + _EXAMPLE_SUFFIX.get(dest, _EXAMPLE_SUFFIX.get(command, ".json"))


def _check_output_paths(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output folder that is a file or an output file that is a folder."""
    name = _command_name(args)
    for dest in (*_DIR_ARGS, *_FILE_ARGS):
        value = getattr(args, dest, None)
        if not value or not isinstance(value, (str, Path)):
            continue
        path = Path(value)
        flag = "--" + dest.replace("_", "-")
        wants_file = dest in _FILE_ARGS or (name, dest) in _FILE_OUTS
        if wants_file and path.is_dir():
            raise InputError(f"{flag} names a folder, but a file is needed here.", path=path,
                             hint=f"give a file name, e.g. {path / _example_name(name, dest)}")
        if not wants_file and path.exists() and not path.is_dir():
            raise InputError(f"{flag} names an existing file, but a folder is needed here.", path=path,
                             hint="choose another folder name, or move that file away.")
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise InputError(f"{flag} {path}: '{blocker}' is a file, so nothing can be written under it.",
                             hint="choose a path whose parent folders are folders.")


_OS_HINTS = {
    errno.EACCES: "choose a location you can write to (or fix its permissions).",
    errno.EPERM: "choose a location you can write to (or fix its permissions).",
    errno.EROFS: "the file system is read-only; choose another location.",
    errno.ENOSPC: "the disk is full; free space and rerun the same command (finished work is kept).",
    errno.EEXIST: "a file is in the way where a folder is needed; move it or choose another path.",
    errno.ENOTDIR: "a file is in the way where a folder is needed; move it or choose another path.",
    errno.EISDIR: "a folder is in the way where a file is needed; choose a file name.",
    errno.ENOENT: "check the path.",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    install_log_filter()  # no API key in any log line, ours or a library's (httpx logs request URLs)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        _check_output_paths(args)
        code = args._module.run(args)
    except DryRunFinished as exc:  # --dry-run: the estimate is the command's output
        print(exc.report)
        return 0
    except HarnessError as exc:
        print(scrub(f"harness-ext {args.command}: error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # The file system refused something (permissions, a file where a folder belongs, a full
        # disk). Say which path and what to do; -v keeps the traceback for a bug report.
        if args.verbose:
            logging.getLogger(__name__).exception("file system error")
        where = f"'{exc.filename}': " if exc.filename else ""
        hint = _OS_HINTS.get(exc.errno or 0)
        print(scrub(f"harness-ext {args.command}: error: {where}{exc.strerror or exc}."
                    + (f" Fix: {hint}" if hint else "")), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"harness-ext {args.command}: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())

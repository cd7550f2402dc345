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
import importlib
import logging
import sys
from collections.abc import Sequence

from harness_ext import __version__
from harness_ext.errors import HarnessError

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        code = args._module.run(args)
    except HarnessError as exc:
        print(f"harness-ext {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"harness-ext {args.command}: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())

"""Judge flags for the commands that ask an LLM (mt-bench judge, score, refine).

The endpoint flags (--judge-model, --base-url, --local-judge, key handling, concurrency, rate
limits, retries, cache) are the ones every judge command shares (commands/judge.py); these
stages add their checkpoint size and the choice to publish despite failed requests.
"""

from __future__ import annotations

import argparse

from harness_ext.commands.judge import add_client_options, client_from_args, positive_int, print_usage
from harness_ext.core.records import ChatClient


def add_client_args(parser: argparse.ArgumentParser) -> None:
    """The shared endpoint flags plus --checkpoint-every and --allow-failures."""
    add_client_options(parser)
    g = parser.add_argument_group("progress")
    g.add_argument("--checkpoint-every", type=positive_int, default=64, metavar="N",
                   help="work items per progress checkpoint; a killed run loses at most this many "
                   "(and their answers are cached anyway) (default 64)")
    g.add_argument("--allow-failures", action="store_true",
                   help="publish even if some requests still fail after retries, recording them as "
                   "errors (default: stop, keep progress, rerun to retry only those)")


__all__ = ["add_client_args", "build_client", "print_usage"]


def build_client(args: argparse.Namespace) -> tuple[ChatClient, str]:
    """(client, judge model name) for the flags: the OpenAI-compatible client or a local judge."""
    return client_from_args(args)

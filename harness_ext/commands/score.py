"""`harness-ext score`: AlpaGasus-style 1-5 quality scores for every example of a dataset."""

from __future__ import annotations

import argparse

from harness_ext.commands._judge_options import add_client_args, build_client, print_usage
from harness_ext.core.artifacts import to_json

HELP = "score each example 1-5 with an LLM judge (AlpaGasus-style) for score-threshold selection"
DESCRIPTION = """\
Asks a judge to grade every instruction/response pair from 1 to 5 in 0.5 steps (AlpaGasus,
Chen et al. 2023, arXiv 2307.08701) with our prompt in judges/alpagasus/, and writes the
dataset back with a `score` field for `select --strategy score-threshold --score-field score`.
Replies without a usable score are counted and get score null; raw judge text is kept.
Interrupted runs resume; answers are cached, so a rerun pays for nothing twice.
"""
EPILOG = """\
output files in OUT: scored.jsonl, score_judgments.jsonl, score_report.json

example:
  harness-ext score --data selected.jsonl --out runs/scored --judge-model gpt-4
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="examples in any format `harness-ext select` reads (Example JSONL, Alpaca JSON, "
                        "FastChat/ShareGPT, parquet)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--template", default="alpagasus",
                        help="judge prompt folder: bundled name or path to your own (default alpagasus)")
    add_client_args(parser)


def run(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import require_files
    from harness_ext.refine.quality import score_dataset

    if not str(args.data).startswith("hf:"):  # a missing input is reported before credentials are asked for
        require_files(args.data)
    client, judge_model = build_client(args)
    report = score_dataset(args.data, args.out, client, judge_model, template=args.template,
                           batch_size=args.checkpoint_every, allow_failures=args.allow_failures)
    keys = ("examples", "scored", "parse_failures", "request_failures", "mean_score", "histogram")
    print(to_json({k: report[k] for k in keys}, indent=2))
    print(f"wrote {args.out}/scored.jsonl")
    print_usage(client)
    return 0

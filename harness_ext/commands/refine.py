"""`harness-ext refine`: introspection refinement of selected examples (paper Sec. 4.1)."""

from __future__ import annotations

import argparse

from harness_ext.commands._judge_options import add_client_args, build_client, print_usage
from harness_ext.core.artifacts import to_json

HELP = "rewrite each selected answer with an LLM that first critiques it (introspection refinement)"
DESCRIPTION = """\
For each example, an LLM explains where the answer falls short on helpfulness, relevance,
accuracy, level of detail and structure, then writes a better answer with the same content
between delimiter lines (Long Is More for Alignment, arXiv 2402.04833, Sec. 4.1, Fig. 3; our
prompt is in judges/refine/). When no complete delimited answer comes back, the original is
kept and the reason counted. Interrupted runs resume; answers are cached.
"""
EPILOG = """\
output files in OUT: refined.jsonl, refine_log.jsonl, refine_report.json

example:
  harness-ext refine --data selected.jsonl --out runs/refined --judge-model gpt-4
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="examples in any format `harness-ext select` reads (Example JSONL, Alpaca JSON, "
                        "FastChat/ShareGPT, parquet)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--template", default="refine",
                        help="prompt folder: bundled name or path to your own (default refine)")
    add_client_args(parser)


def run(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import require_files
    from harness_ext.refine.introspect import refine_dataset

    if not str(args.data).startswith("hf:"):  # a missing input is reported before credentials are asked for
        require_files(args.data)
    client, judge_model = build_client(args)
    report = refine_dataset(args.data, args.out, client, judge_model, template=args.template,
                            batch_size=args.checkpoint_every, allow_failures=args.allow_failures)
    keys = ("examples", "refined", "kept", "kept_by_reason", "request_failures", "length_before", "length_after")
    print(to_json({k: report[k] for k in keys}, indent=2))
    print(f"wrote {args.out}/refined.jsonl")
    print_usage(client)
    return 0

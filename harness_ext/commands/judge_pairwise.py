"""`harness-ext judge pairwise`: head-to-head A vs B with both answer orders (paper Sec. 3.2)."""

from __future__ import annotations

import argparse
import json

from harness_ext.commands.judge import add_client_options, client_from_args, print_usage

HELP = "head-to-head A vs B, both answer orders, win/tie/loss with bootstrap CIs"
EPILOG = """\
Reads AlpacaEval model_outputs.json files or JSONL ({id?, instruction, output, dataset?, generator?})
and matches items by instruction (and dataset when both files have one).

The judge is any OpenAI-compatible endpoint (--base-url; key from $HARNESS_EXT_JUDGE_API_KEY or
$OPENAI_API_KEY, never written anywhere), or a local checkpoint with --local-judge. Answers are cached
under $HARNESS_EXT_CACHE/judge, so rerunning an interrupted command resumes it and a finished one
makes no requests. If a request still fails after --max-retries, nothing is written to --out and the
command exits 2; rerunning sends only the failed requests. --allow-failures publishes anyway, with
those judgments recorded as request errors (unscored). A reply that arrives but does not parse is a
parse failure: counted in summary.json, never a reason to stop.

Example:
  harness-ext judge pairwise --a runs/ours/model_outputs.json --b runs/base/model_outputs.json \\
      --judge-model Qwen/Qwen2.5-7B-Instruct --base-url http://127.0.0.1:8000/v1 --out runs/ours_vs_base
"""


DESCRIPTION = HELP + "."


def configure(p: argparse.ArgumentParser) -> None:
    from harness_ext.judge.scoring import RULES

    p.add_argument("--a", required=True, metavar="OUTPUTS_A", help="outputs of model A (the one reported)")
    p.add_argument("--b", required=True, metavar="OUTPUTS_B", help="outputs of model B (the baseline)")
    p.add_argument("--out", required=True, help="output folder (judgments.jsonl, items.jsonl, summary.json, report.md)")
    p.add_argument("--rule", default="paper", help="how replies are read and the two orders combined: "
                   + "; ".join(f"{n}: {RULES.doc(n)}" for n in RULES.names()))
    p.add_argument("--template", default=None, help="pairwise judge template YAML (default judges/pairwise/default.yaml)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples, >= 1 (default 2000)")
    p.add_argument("--max-tokens", type=int, default=None, help="judge reply token limit (default: the template's)")
    p.add_argument("--allow-failures", action="store_true",
                   help="publish even if some requests still fail after retries, recording them as request "
                   "errors (default: publish nothing, exit 2; rerun to retry only those)")
    add_client_options(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness_ext.core.artifacts import require_files
    from harness_ext.judge.pairwise import PairwiseOptions, judge_pairwise
    from harness_ext.judge.scoring import RULES, check_n_boot

    RULES.get(args.rule)  # fail on a bad rule or resample count before any request is sent
    check_n_boot(args.n_boot)
    require_files(args.a, args.b)  # and on a missing input before asking for credentials
    client, judge_model = client_from_args(args)
    options = PairwiseOptions(rule=args.rule, seed=args.seed, template=args.template, n_boot=args.n_boot,
                              max_tokens=args.max_tokens, allow_failures=args.allow_failures)
    summary = judge_pairwise(args.a, args.b, Path(args.out), client, judge_model, options)
    print((Path(args.out) / "report.md").read_text(encoding="utf-8"))
    stats = dict(getattr(client, "stats", {}))
    if stats:
        print("client: " + json.dumps(stats, sort_keys=True))
    print_usage(client)
    import sys

    errors = summary.judgments.request_errors
    if summary.judgments.parse_failures_scored:
        print(f"harness-ext judge pairwise: {summary.judgments.parse_failures_scored} item(s) include a judge reply "
              f"that did not parse, scored as rule '{summary.rule}' says (the authors' code counts it as [-1, -1], "
              "a tie for that order); --rule paper-strict leaves such items unscored.", file=sys.stderr)
    if errors:
        print(f"harness-ext judge pairwise: {errors} judge request(s) failed after retries and were published "
              "as unscored (--allow-failures); rerun the same command to retry only those (answers received "
              "are cached).", file=sys.stderr)
    return 0 if summary.scored_items else 1

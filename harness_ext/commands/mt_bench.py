"""`harness-ext mt-bench judge|show`: MT-Bench judging with FastChat's protocol, and its results."""

from __future__ import annotations

import argparse

from harness_ext.commands._judge_options import add_client_args, build_client, print_usage
from harness_ext.core.artifacts import to_json

HELP = "MT-Bench: judge answers with FastChat's prompts (single or pairwise-baseline) and show results"
DESCRIPTION = """\
MT-Bench judging that follows FastChat's llm_judge protocol and file formats, against any
OpenAI-compatible endpoint. Inputs come from FastChat's repository
(https://github.com/lm-sys/FastChat, folder fastchat/llm_judge/data/): mt_bench/question.jsonl,
mt_bench/reference_answer/gpt-4.jsonl and judge_prompts.jsonl; model answers are
model_answer/<model_id>.jsonl files (FastChat's gen_model_answer.py or `harness-ext generate`).
"""
EPILOG = """\
examples:
  harness-ext mt-bench judge --question-file data/mt_bench/question.jsonl \\
      --answer-dir data/mt_bench/model_answer --judge-prompts data/judge_prompts.jsonl \\
      --ref-answers data/mt_bench/reference_answer/gpt-4.jsonl --model-list my-model \\
      --judge-model gpt-4 --out runs/mt_bench
  harness-ext mt-bench show --judgment-file runs/mt_bench/model_judgment/gpt-4_single.jsonl
"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mt_bench_command", metavar="{judge,show}", required=True)
    j = sub.add_parser("judge", help="judge model answers and write model_judgment/<judge>_{single,pair}.jsonl",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    j.add_argument("--question-file", required=True, help="FastChat mt_bench/question.jsonl")
    j.add_argument("--answer-dir", required=True, help="folder of model_answer/<model_id>.jsonl files")
    j.add_argument("--judge-prompts", required=True, help="FastChat judge_prompts.jsonl")
    j.add_argument("--ref-answers", help="reference answers for math/reasoning/coding (FastChat "
                   "reference_answer/gpt-4.jsonl); required when those categories are judged")
    j.add_argument("--model-list", nargs="+", metavar="MODEL_ID",
                   help="models to judge (default: every <model_id>.jsonl in --answer-dir)")
    j.add_argument("--mode", choices=["single", "pairwise-baseline"], default="single",
                   help="single: 1-10 score per turn; pairwise-baseline: A/B/tie against --baseline-model, "
                   "both answer orders (default single)")
    j.add_argument("--baseline-model", help="baseline model id for pairwise-baseline mode")
    j.add_argument("--first-n", type=int, help="judge only the first N questions (a cheap trial run)")
    j.add_argument("--out", required=True, help="output folder; judgments go to OUT/model_judgment/")
    add_client_args(j)
    j.set_defaults(_mt_bench=_judge)

    s = sub.add_parser("show", help="print turn 1, turn 2 and average per model and per category")
    s.add_argument("--judgment-file", required=True, help="a model_judgment/*_single.jsonl or *_pair.jsonl")
    s.add_argument("--question-file", help="question.jsonl, for categories when the records lack them "
                   "(FastChat's own judgment files)")
    s.add_argument("--model-list", nargs="+", metavar="MODEL_ID", help="only these models")
    s.add_argument("--baseline-model", help="pairwise: the baseline (default: inferred)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    s.set_defaults(_mt_bench=_show)


def _judge(args: argparse.Namespace) -> int:
    from harness_ext.judge.mt_bench import judge_mt_bench
    from harness_ext.judge.mt_bench_show import render

    client, judge_model = build_client(args)
    report = judge_mt_bench(
        question_file=args.question_file, answer_dir=args.answer_dir, judge_prompts=args.judge_prompts,
        judge_model=judge_model, client=client, out=args.out, mode=args.mode,
        models=args.model_list, baseline_model=args.baseline_model, ref_answers=args.ref_answers,
        first_n=args.first_n, batch_size=args.checkpoint_every, allow_failures=args.allow_failures,
    )
    print(render(report["summary"]))
    print(f"\n{report['matches']} matches ({report['reused']} reused, {report['requested']} judged now, "
          f"{len(report['request_failures'])} failed); wrote {report['judgment_file']}")
    print_usage(client)
    return 0


def _show(args: argparse.Namespace) -> int:
    from harness_ext.judge.mt_bench_show import load_judgments, render, summarize

    records = load_judgments(args.judgment_file, args.question_file)
    if args.model_list:
        keep = set(args.model_list) | ({args.baseline_model} if args.baseline_model else set())
        records = [r for r in records if r.get("model", r.get("model_1")) in keep]
        if not records:
            from harness_ext.core.errors import ConfigError

            raise ConfigError(f"no judgments for models {', '.join(args.model_list)} in {args.judgment_file}.",
                              hint="check the model ids (run without --model-list to see all).")
    summary = summarize(records, baseline_model=args.baseline_model)
    print(to_json(summary, indent=2) if args.json else render(summary))
    return 0


def run(args: argparse.Namespace) -> int:
    return args._mt_bench(args)

"""`harness-ext sweep`: IFS and ObjecQA over every checkpoint of a training run."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "IFS and ObjecQA on every checkpoint of a training run: the IFS plateau and the ObjecQA shift after it"
DESCRIPTION = """\
Evaluate the Instruction Following Score (answer-like tone) and ObjecQA (objective answers to
questions of taste) on every checkpoint a training run kept (train with keep_checkpoints: true and
a small save_steps), as "Becoming self-instruct" (arXiv 2307.03692, Fig. 4) does. Each checkpoint
answers with greedy decoding in the prompt format the run was trained in. Writes OUT/sweep.json,
sweep.csv, sweep.md and one figure, sweep.png, with both curves over training steps and the step
where IFS plateaus; reports how far ObjecQA moved after it (the "minimal instruct tuning" point).
Scores are cached per checkpoint under OUT/checkpoints/: a rerun evaluates only new or changed
checkpoints. ObjecQA needs a judge: an OpenAI-compatible endpoint (--judge-model, --base-url),
a local checkpoint (--local-judge) or --lexicon-judge (an offline heuristic, not the paper's judge)."""
EPILOG = """\
examples:
  harness-ext sweep runs/alpaca-smollm2 --out runs/sweep --base-model smollm2 \\
      --judge-model gpt-4o-mini --base-url https://api.openai.com/v1
  harness-ext sweep runs/alpaca-smollm2 --out runs/sweep --lexicon-judge"""


def configure(parser: argparse.ArgumentParser) -> None:
    from harness_ext.commands.judge import add_client_options, positive_int

    parser.add_argument("run", type=Path, help="the --out folder of `harness-ext train`")
    parser.add_argument("--out", type=Path, required=True, help="folder for the table, figure and per-checkpoint cache")
    parser.add_argument("--base-model", default=None, metavar="MODEL",
                        help="also evaluate this model as step 0 (e.g. smollm2, or the run's base_model)")
    parser.add_argument("--prompt-format", default=None,
                        help="format to ask in (default: the one the run was trained in)")
    parser.add_argument("--ifs-instructions", default=None, metavar="FILE",
                        help="IFS instructions (default: the training monitor's bundled list)")
    parser.add_argument("--ifs-data", type=Path, default=None, metavar="DATA",
                        help="instruction set the IFS tone classifier trains on (default: $HARNESS_EXT_IFS_DATA "
                        "or the bundled demo set)")
    parser.add_argument("--questions", default=None, metavar="FILE",
                        help="ObjecQA questions, JSONL with 'question' (default: tasks/objecqa/test.jsonl)")
    parser.add_argument("--ifs-max-new-tokens", type=positive_int, default=32)
    parser.add_argument("--objecqa-max-new-tokens", type=positive_int, default=64)
    parser.add_argument("--patience", type=positive_int, default=2,
                        help="IFS plateaus after this many checkpoints without a gain of --min-delta (default 2)")
    parser.add_argument("--min-delta", type=float, default=0.02, help="smallest IFS gain that counts (default 0.02)")
    parser.add_argument("--lexicon-judge", action="store_true",
                        help="judge ObjecQA with the offline marker heuristic (no model; not the paper's judge)")
    add_client_options(parser)


def judge_from_args(args: argparse.Namespace):
    """The ObjecQA judge the flags name."""
    from harness_ext.core.errors import ConfigError
    from harness_ext.evals.objecqa import LexiconJudge, ObjecQAJudge

    if args.lexicon_judge:
        if args.judge_model or args.local_judge:
            raise ConfigError("--lexicon-judge cannot be combined with --judge-model or --local-judge.",
                              hint="pick one judge.")
        return LexiconJudge()
    if not (args.judge_model or args.local_judge):
        raise ConfigError("ObjecQA needs a judge.",
                          hint="pass --judge-model NAME (with --base-url), --local-judge PATH, or --lexicon-judge.")
    from harness_ext.commands.judge import client_from_args

    client, name = client_from_args(args)
    return ObjecQAJudge(client, name)


def run(args: argparse.Namespace) -> int:
    from harness_ext.evals.ifs import load_tone_classifier
    from harness_ext.evals.sweep import SweepSettings, find_checkpoints, summary_line, sweep

    judge = judge_from_args(args)
    if args.base_model is None:
        find_checkpoints(args.run)  # a run without checkpoints fails before the classifier is trained
    settings = SweepSettings(
        prompt_format=args.prompt_format, ifs_instructions=args.ifs_instructions, objecqa_questions=args.questions,
        ifs_max_new_tokens=args.ifs_max_new_tokens, objecqa_max_new_tokens=args.objecqa_max_new_tokens,
        patience=args.patience, min_delta=args.min_delta, base_model=args.base_model,
    )
    result = sweep(args.run, args.out, classifier=load_tone_classifier(args.ifs_data), judge=judge, settings=settings)
    print(f"{'step':>6}  {'IFS':>5}  {'ObjecQA':>7}")
    for r in result.rows:
        print(f"{r.step:>6}  {r.ifs:5.3f}  {r.objecqa:7.3f}{'  (cached)' if r.cached else ''}")
    print(summary_line(result.plateau))
    print(f"table: {result.files['markdown']}  figure: {result.files.get('figure')}")
    return 0

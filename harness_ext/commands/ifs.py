"""`harness-ext ifs`: Instruction Following Score of a file of generations."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Instruction Following Score (share of answer-like responses) of a generations file"
DESCRIPTION = """\
Score generations with the IFS response-tone classifier (arXiv 2307.03692): the share of
responses that read as answers rather than as continuations of their instruction. Input: an
Alpaca-style JSON list or JSONL with "instruction" (optional "input") and "output" (or
"response"), e.g. an AlpacaEval model_outputs.json. Empty responses count as not answer-like.
The classifier trains on first use from --train (default $HARNESS_EXT_IFS_DATA or the bundled
demo set) and is cached."""
EPILOG = """\
example:
  harness-ext ifs ../shared/data/alpaca_eval/gpt4_1106_preview_model_outputs.json \\
      --train ../shared/data/alpaca/alpaca_data.json --out runs/ifs.json"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("generations", type=Path, help="JSON/JSONL rows with instruction and output")
    parser.add_argument("--train", type=Path, default=None, metavar="DATA",
                        help="instruction set to train the classifier on (Alpaca-style JSON/JSONL)")
    parser.add_argument("--seed", type=int, default=0, help="classifier training seed (default 0)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="write the score and per-row labels as JSON")


def run(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import atomic_write_json, provenance, sha256_file
    from harness_ext.core.errors import InputError
    from harness_ext.evals.ifs import ifs_score, load_tone_classifier, read_instruction_rows

    rows = read_instruction_rows(args.generations, keep_empty=True)
    if not rows:
        raise InputError("no rows to score.", path=args.generations)
    clf = load_tone_classifier(args.train, seed=args.seed)
    instructions = [r[0] for r in rows]
    responses = [r[1] for r in rows]
    flags = clf.answer_like(instructions, responses)
    score = ifs_score(clf, instructions, responses)
    print(f"IFS {score:.4f} ({sum(flags)}/{len(flags)} answer-like) {args.generations}")
    if args.out is not None:
        atomic_write_json(args.out, {
            "ifs": score, "answer_like": sum(flags), "rows": len(flags),
            "labels": [{"index": i, "answer_like": f} for i, f in enumerate(flags)],
            "classifier": clf.meta,
            "provenance": provenance(generations=str(args.generations), generations_sha256=sha256_file(args.generations)),
        })
    return 0

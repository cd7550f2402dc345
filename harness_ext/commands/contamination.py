"""`harness-ext contamination`: n-gram and exact-instruction overlap between training and eval sets."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "find eval examples that overlap a training set (13-gram overlap, exact instruction matches)"
DESCRIPTION = """\
List the eval rows that share a word n-gram (13 by default, lm-eval's decontamination unit) or an
identical normalized instruction with any training row, with the training rows they match.
Files: JSON lists or JSONL, Alpaca-style, FastChat/ShareGPT conversations, MT-Bench questions,
AlpacaEval sets, or any JSON objects (all their strings count as text)."""
EPILOG = """\
example:
  harness-ext contamination --train lima.json --eval hellaswag_val.jsonl mt_bench.jsonl --out contamination.json"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", required=True, type=Path, metavar="DATA", help="training set file")
    parser.add_argument("--eval", required=True, type=Path, nargs="+", metavar="DATA", help="eval set file(s)")
    parser.add_argument("--ngram", type=int, default=13, metavar="N", help="n-gram length in words (default 13)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the JSON report here")
    parser.add_argument("--show", type=int, default=5, metavar="K", help="overlapping rows to print per eval set")
    parser.add_argument("--fail-on-overlap", action="store_true",
                        help="exit with status 1 when any overlap is found (for CI)")


def run(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import atomic_write_json
    from harness_ext.data.contamination import check_contamination

    report = check_contamination(args.train, args.eval, n=args.ngram)
    found = False
    print(f"train: {report['train']['path']} ({report['train']['rows']} rows), {report['ngram']}-grams")
    for s in report["eval_sets"]:
        found = found or bool(s["overlaps"])
        print(f"{s['path']}: {s['ngram_contaminated']}/{s['rows']} rows share a {report['ngram']}-gram "
              f"({100 * s['ngram_contaminated_share']:.1f}%), {s['exact_instruction_matches']} exact instruction matches")
        for o in s["overlaps"][: max(0, args.show)]:
            m = o["train_matches"][0]
            kind = "exact instruction" if m["exact_instruction"] else f"{m['shared_ngrams']} shared n-grams"
            print(f"  eval #{o['eval_index']} ({o['eval_id']}) ~ train #{m['train_index']} ({m['train_id']}): {kind}"
                  + (f" e.g. \"{m['example_ngram']}\"" if m["example_ngram"] else ""))
    if args.out is not None:
        atomic_write_json(args.out, report)
        print(f"report: {args.out}")
    return 1 if (found and args.fail_on_overlap) else 0

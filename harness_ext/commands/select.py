"""`harness-ext select`: pick a training subset (1k-longest and its baselines) and export it."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness_ext.core.artifacts import to_json
from harness_ext.core.errors import InputError

HELP = "select training examples (longest-k, baselines) from an instruction dataset"
DESCRIPTION = """Select examples from an instruction dataset and write them, with a report, to --out.

Outputs in --out: selected.jsonl, alpaca.json, fastchat.json (the paper's released format),
report.json (counts, drops by reason, lengths, cutoff, ties, per-source counts, provenance)
and lengths.png (pool-length histogram with the cutoff marked).

Example (the paper's Alpaca-1k-longest, arXiv 2402.04833):
  harness-ext select --data alpaca_data.json --strategy longest --k 1000 --unit nltk-words --out runs/alpaca-1k
Superfiltering's IFD (scored with the embedded SmolLM2-135M unless --score-model), and k-center diversity:
  harness-ext select --data alpaca_data.json --strategy ifd --k 1000 --out runs/alpaca-1k-ifd
  harness-ext select --data alpaca_data.json --strategy diverse --diverse-oversample 2 --k 1000 --out runs/div
Compare selections (folders from select, or the paper's released FastChat files):
  harness-ext select compare runs/alpaca-1k runs/alpaca-1k-ifd runs/div --out runs/compare
"""


#: --k when --data is not given: the bundled demo set is small (about 250 examples), so its
#: default keeps the longest 50 rather than the paper's 1,000.
DEMO_K = 50


def default_data() -> Path:
    """The bundled demo dataset, used when --data is not given."""
    from harness_ext.core.paths import resources_dir

    return resources_dir() / "demo" / "instructions.jsonl"


def _epilog() -> str:
    from harness_ext.selection.strategies import strategies_help
    from harness_ext.selection.units import units_help

    return f"strategies:\n{strategies_help()}\n\nunits (--unit):\n{units_help()}"


def __getattr__(name: str) -> str:
    # The epilog is built from the registries on first use (cli.py reads module.EPILOG).
    if name == "EPILOG":
        return _epilog()
    raise AttributeError(name)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["compare"],
                   help="compare: compare the selections named after it instead of selecting")
    p.add_argument("selections", nargs="*", metavar="DIR",
                   help="(compare) selection folders or files (FastChat/Alpaca JSON, JSONL)")
    p.add_argument("--data", help="data file (.json Alpaca/FastChat list, .jsonl, .parquet) or hf:NAME[:CONFIG][@SPLIT]; "
                   "default: the bundled demo dataset")
    p.add_argument("--out", help="output folder (default: ./selection; compare: ./selection-compare)")
    p.add_argument("--strategy", default="longest", help="selection strategy (listed below; default longest)")
    p.add_argument("--k", type=int, default=None,
                   help=f"examples to keep (default 1000; {DEMO_K} on the bundled demo set; dedup keeps all)")
    p.add_argument("--unit", default="nltk-words", help="length unit (listed below; default nltk-words)")
    p.add_argument("--count-on", choices=["response", "all"], default="response",
                   help="measure the response (default) or instruction+input+response")
    p.add_argument("--seed", type=int, default=0, help="seed for random and score-threshold (default 0)")
    p.add_argument("--format", default="auto",
                   help="row format: auto, alpaca, evol-instruct, sharegpt, fastchat, openhermes, messages")
    p.add_argument("--source-field", help="row field naming each example's source (default: 'source')")
    p.add_argument("--mix", help="LIMIT mixture: keep ALL of this file (set A) plus k chosen from --data")
    p.add_argument("--mix-strategy", help="how the k of --data are chosen in a mixture (default: --strategy, "
                   "or longest with --strategy mixture)")
    p.add_argument("--score-field", default="score", help="score field for top-score / score-threshold")
    p.add_argument("--threshold", type=float, default=4.5, help="score-threshold cut (AlpaGasus: 4.5)")
    p.add_argument("--dedup", action="store_true", help="drop exact duplicates (instruction+input) first")
    p.add_argument("--allow-fewer", action="store_true", help="keep the whole pool when it is smaller than --k")
    p.add_argument("--strict", action="store_true", help="fail on the first unusable row instead of dropping it")
    p.add_argument("--exact-stats", action="store_true",
                   help="count every row exactly (no pruning), for exact pool statistics in report.json")
    p.add_argument("--workers", type=int, help="worker processes (default: 2 on files >= 8 MB, else 1)")
    g = p.add_argument_group("model scores (strategies ifd and diverse; --score-field ifd)")
    g.add_argument("--score-model", help="causal LM for IFD and embeddings: folder, hub id, or "
                   "smollm2-135m-instruct (default, embedded, offline)")
    g.add_argument("--score-max-length", type=int, help="IFD truncation in tokens (default 1024, as Superfiltering)")
    g.add_argument("--score-batch-tokens", type=int, help="padded tokens per forward pass (default: 1024 on a CPU, 16384 on a GPU)")
    g.add_argument("--ifd-below", type=float, help="ifd: eligible rows have IFD below this (default 1)")
    g.add_argument("--embed-model", help="diverse: a sentence-transformers model (default: mean-pooled "
                   "hidden states of --score-model)")
    g.add_argument("--diverse-rank", help="diverse: length (default), none, or a numeric field (ifd, score)")
    g.add_argument("--diverse-oversample", type=float,
                   help="diverse: pick oversample*k diverse rows, keep the k best by --diverse-rank (default 1)")
    p.add_argument("--compare-unit", default="nltk-words", help="(compare) length unit (default nltk-words)")


_SCORE_FLAGS = ("score_model", "score_max_length", "score_batch_tokens", "ifd_below", "embed_model",
                "diverse_rank", "diverse_oversample")


def run_compare(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import atomic_write_json, staged_dir
    from harness_ext.core.errors import ConfigError
    from harness_ext.selection.compare import compare, plot, render_table

    if len(args.selections) < 2:
        raise ConfigError("select compare needs at least two selections.",
                          hint="harness-ext select compare DIR_A DIR_B [...] [--out FOLDER]")
    result = compare(args.selections, unit=args.compare_unit)
    table = render_table(result)
    out = Path(args.out or "selection-compare")
    with staged_dir(out) as tmp:
        atomic_write_json(tmp / "compare.json", result)
        (tmp / "compare.txt").write_text(table + "\n", encoding="utf-8")
        plot(result, tmp / "compare.png")
    print(table)
    print(f"\nwritten: {out}/compare.json, compare.txt, compare.png")
    return 0


def run(args: argparse.Namespace) -> int:
    from harness_ext.selection.run import select_to_dir

    if args.action == "compare":
        return run_compare(args)
    if args.selections:
        from harness_ext.core.errors import ConfigError

        raise ConfigError(f"unexpected argument(s): {' '.join(args.selections)}.",
                          hint="did you mean `harness-ext select compare DIR...`?")
    data, k = args.data, args.k
    if data is None:
        data = default_data()
        if k is None and args.strategy != "dedup":
            k = DEMO_K
        if not data.exists():
            raise InputError("the bundled demo dataset is missing from this install.", path=data,
                             hint="pass --data PATH (or reinstall harness-ext).")
    options: dict = {"format": args.format, "score_field": args.score_field, "threshold": args.threshold,
                     "allow_fewer": args.allow_fewer, "dedup": args.dedup, "exact_stats": args.exact_stats,
                     "workers": args.workers}
    options.update({f: getattr(args, f) for f in _SCORE_FLAGS if getattr(args, f) is not None})
    strategy = args.strategy
    if args.mix_strategy:
        options["mix_strategy"] = args.mix_strategy
        if args.mix and strategy != "mixture":
            strategy = "mixture"
    out = Path(args.out or "selection")
    report = select_to_dir(str(data), out, strategy=strategy, k=k, unit=args.unit,
                           seed=args.seed, count_on=args.count_on, mix=args.mix,
                           source_field=args.source_field, strict=args.strict, **options)
    c = report["counts"]
    summary = {"selected": c["selected"], "pool": c["pool"], "dropped": c["dropped"],
               "cutoff": report["cutoff"], "unit": report["unit"], "out": str(out)}
    print(to_json(summary))
    return 0

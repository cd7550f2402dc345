"""`harness-ext judge alpaca-winrate`: win rate and length-controlled win rate from alpaca_eval annotations."""

from __future__ import annotations

import argparse

HELP = "win rate and an offline length-controlled win rate from an alpaca_eval annotations.json"
EPILOG = """\
Missing preferences (alpaca_eval stores failed or unparsed annotations as null) are counted and left
out. The length-controlled win rate regresses the preference on tanh(standardised length difference)
and reports the intercept's win rate (after Dubois et al. 2024, arXiv 2404.04475), without the
instruction-difficulty term that alpaca_eval downloads from the hub.
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotations", required=True, help="annotations.json written by `alpaca_eval evaluate`")
    p.add_argument("--out", default=None, help="also write the report as JSON here")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")


def run(args: argparse.Namespace) -> int:
    from harness_ext.core.artifacts import atomic_write_json, provenance
    from harness_ext.judge.alpaca_eval import alpaca_winrates

    report = alpaca_winrates(args.annotations, n_boot=args.n_boot, seed=args.seed)
    report["provenance"] = provenance(stage="judge alpaca-winrate", seed=args.seed)
    print(f"{'model':30s} {'n':>5s} {'unparsed':>8s} {'win rate':>9s} {'95% CI':>15s} {'LC win rate':>11s}")
    for model, r in report["models"].items():
        if not r["n"]:
            print(f"{model:30s} {0:5d} {r['unparsed']:8d} {'-':>9s}")
            continue
        lo, hi = r["win_rate_ci95"]
        print(f"{model[:30]:30s} {r['n']:5d} {r['unparsed']:8d} {r['win_rate']:9.2f} "
              f"{f'[{lo:.1f}, {hi:.1f}]':>15s} {r['length_controlled_win_rate']:11.2f}")
    if args.out:
        atomic_write_json(args.out, report)
    return 0

"""`harness-ext judge alpaca-winrate`: win rate, avg_length and length-controlled win rate from alpaca_eval annotations."""

from __future__ import annotations

import argparse

HELP = "alpaca_eval's win rate, avg_length and length-controlled win rate from an annotations.json, offline"
EPILOG = """\
Every number is computed as alpaca_eval computes it, under its name. Missing preferences (alpaca_eval
stores failed or unparsed annotations as null) are counted as unparsed and left out of the win rate;
avg_length (alpaca_eval: int of the mean character length of every model output) and the LC prediction
still cover them.

The length-controlled win rate fits alpaca_eval's GLM (Dubois et al. 2024, arXiv 2404.04475). Its
default model (length_controlled_v1) needs df_gamed.csv from the tatsu-lab/alpaca_eval dataset on the
Hugging Face hub: download it once and pass --lc-gamed-baseline. With only --lc-instruction-difficulty
(instruction_difficulty.csv) the GLM is length_controlled_noreg; with neither, length_controlled_minimal.
The report names the GLM used (lc_glm), gives a bootstrap 95% CI over instructions, and warns, by
alpaca_eval's rule, when LC and the raw win rate are far apart.
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotations", required=True, help="annotations.json written by `alpaca_eval evaluate`")
    p.add_argument("--out", default=None, help="also write the report as JSON here")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples for the win rate (default 2000)")
    p.add_argument("--lc-n-boot", type=int, default=200,
                   help="bootstrap resamples for the LC win rate, each a GLM refit (default 200)")
    p.add_argument("--lc-gamed-baseline", default=None, metavar="DF_GAMED_CSV",
                   help="alpaca_eval's df_gamed.csv: fit its default LC model, length_controlled_v1")
    p.add_argument("--lc-instruction-difficulty", default=None, metavar="CSV",
                   help="alpaca_eval's instruction_difficulty.csv (alone: length_controlled_noreg)")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from harness_ext.core.artifacts import atomic_write_json, provenance, require_files
    from harness_ext.judge.alpaca_eval import alpaca_winrates
    from harness_ext.judge.lc_winrate import LCFiles

    given = [f for f in (args.lc_gamed_baseline, args.lc_instruction_difficulty) if f]
    require_files(args.annotations, *given)
    files = LCFiles(gamed_baseline=Path(args.lc_gamed_baseline) if args.lc_gamed_baseline else None,
                    instruction_difficulty=Path(args.lc_instruction_difficulty)
                    if args.lc_instruction_difficulty else None)
    report = alpaca_winrates(args.annotations, n_boot=args.n_boot, seed=args.seed, lc_files=files,
                             lc_n_boot=args.lc_n_boot)
    report["provenance"] = provenance(stage="judge alpaca-winrate", seed=args.seed)
    print(f"{'model':30s} {'n':>5s} {'unparsed':>8s} {'win rate':>9s} {'95% CI':>15s} {'LC win rate':>11s} "
          f"{'LC 95% CI':>15s} {'avg_length':>10s}")
    for model, r in report["models"].items():
        if not r["n"]:
            print(f"{model:30s} {0:5d} {r['unparsed']:8d} {'-':>9s}")
            continue
        lo, hi = r["win_rate_ci95"]
        lc, ci = r["length_controlled_winrate"], r["lc_ci95"]
        print(f"{model[:30]:30s} {r['n']:5d} {r['unparsed']:8d} {r['win_rate']:9.2f} "
              f"{f'[{lo:.1f}, {hi:.1f}]':>15s} {'-' if lc is None else f'{lc:.2f}':>11s} "
              f"{'-' if not ci else f'[{ci[0]:.1f}, {ci[1]:.1f}]':>15s} {r['avg_length']:10d}")
        if r["lc_warning"]:
            print(f"warning: {model}: {r['lc_warning']}", file=sys.stderr)
    print(f"LC model: {next(iter(report['models'].values())).get('lc_glm', files.glm)} (alpaca_eval GLM_INFO)")
    if args.out:
        atomic_write_json(args.out, report)
    return 0

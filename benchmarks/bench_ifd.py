"""IFD scoring throughput: ours (batched, length-sorted) against a per-example loop as the reference does it.

Run (from the project root; the machine is shared, so run it niced and compare the two figures of the
same run, not absolute times):

    nice -n 10 python benchmarks/bench_ifd.py [--rows 512] [--threads 2] [--model smollm2-135m-instruct]

The baseline is Superfiltering's code_ifd/data_analysis.py loop (tianyi-lab/Superfiltering), written
out: per row, one `model(input_ids, labels=...)` call for the response alone and one for prompt +
response, each with full-vocabulary logits. Ours is harness_ext.selection.ifd.Scorer with an empty
cache. Both use the same model weights, dtype (float32) and torch thread count. Prints rows/s of
each, the speed-up, the largest IFD difference, and the peak RSS after scoring growing pools (a
bounded peak means memory does not grow with the pool).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def load(path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def reference_loop(tok, model, rows: list[tuple[str, str, str]], max_length: int) -> list[float]:
    """Superfiltering's per-example computation (two model calls per row), IFD per row."""
    import torch

    out = []
    for instruction, input_text, response in rows:
        prompt = f"{instruction}\n{input_text}\n" if input_text else f"{instruction}\n"
        whole = prompt + response
        plen = tok.encode(prompt, return_tensors="pt", truncation=True, max_length=max_length).shape[1]
        with torch.no_grad():
            alone = tok.encode(response, return_tensors="pt", truncation=True, max_length=max_length - plen + 1)
            ppl_r = torch.exp(model(alone, labels=alone.contiguous()).loss).item()
            ids = tok.encode(whole, return_tensors="pt", truncation=True, max_length=max_length)
            labels = ids.clone()
            labels[0, : len(tok.encode(whole[: whole.rfind(response)]))] = -100
            ppl_c = torch.exp(model(ids, labels=labels).loss).item()
        out.append(ppl_c / ppl_r if ppl_r else math.nan)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--data", help="Alpaca JSON (default: $HARNESS_EXT_SHARED_DATA/alpaca/alpaca_data.json)")
    args = ap.parse_args()

    import torch

    from harness_ext.core.paths import shared_data_dir
    from harness_ext.selection.ifd import ScoreConfig, Scorer, row_key
    from harness_ext.train.basemodel import resolve_base_model

    torch.set_num_threads(args.threads)
    data = Path(args.data) if args.data else shared_data_dir() / "alpaca" / "alpaca_data.json"
    if not data.is_file():
        print(f"skip: {data} not found (set HARNESS_EXT_SHARED_DATA or pass --data)")
        return 0
    raw = json.loads(data.read_text())[: args.rows]
    rows = [(r["instruction"], r.get("input", ""), r["output"]) for r in raw]
    path = resolve_base_model(args.model)
    print(f"{len(rows)} Alpaca rows, {args.model}, max_length {args.max_length}, torch threads {args.threads}, "
          f"cpu count {os.cpu_count()} (shared machine: compare the two figures, not absolute times)")

    with tempfile.TemporaryDirectory() as cache:
        cfg = ScoreConfig(model=str(path), max_length=args.max_length, batch_tokens=args.batch_tokens,
                          cache=Path(cache), progress=False, device="cpu")
        sizes = sorted({max(1, len(rows) // 4), max(1, len(rows) // 2), len(rows)})
        scorer = Scorer(cfg)
        scorer.score(rows[:4])  # load the model outside the timed part (the reference loads it untimed too)
        done = 4
        t0 = time.perf_counter()
        peaks = []
        for n in sizes:  # growing pools: each step scores the rows not yet cached
            scorer.score(rows[done:n] if n > done else [])
            done = max(done, n)
            peaks.append((n, round(peak_rss_mb())))
        ours_s = time.perf_counter() - t0
        scores, _ = scorer.score(rows)
    ours_n = len(rows) - 4

    tok, model = load(path)
    t0 = time.perf_counter()
    ref = reference_loop(tok, model, rows[4:], args.max_length)
    ref_s = time.perf_counter() - t0

    diffs = []
    for r, want in zip(rows[4:], ref, strict=True):
        got = scores[row_key(*r)].ifd
        if math.isnan(got) or math.isnan(want):
            assert math.isnan(got) and math.isnan(want), (got, want)
            continue
        diffs.append(abs(got - want) / abs(want))
    print(f"reference loop : {ours_n / ref_s:7.2f} rows/s ({ref_s:.1f} s)")
    print(f"ours (batched) : {ours_n / ours_s:7.2f} rows/s ({ours_s:.1f} s)")
    print(f"speed-up       : {ref_s / ours_s:.2f}x")
    print(f"max relative IFD difference: {max(diffs):.2e} over {len(diffs)} rows")
    print("peak RSS after scoring pools of " + ", ".join(f"{n} rows: {mb} MB" for n, mb in peaks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

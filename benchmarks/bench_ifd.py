"""IFD scoring throughput: ours (batched, length-sorted) against a per-example loop as the reference does it.

Run (from the project root; the machine is shared, so run it niced and compare the two figures of the
same run, not absolute times):

    nice -n 10 python benchmarks/bench_ifd.py [--rows 512] [--threads 2] [--model smollm2-135m-instruct]

The baseline is Superfiltering's code_ifd/data_analysis.py loop (tianyi-lab/Superfiltering), written
out: the model loaded with output_hidden_states=True as there; per row, one `model(input_ids,
labels=...)` call for the response alone and one for prompt + response, each with full-vocabulary
logits, a failing call giving perplexity 0 as its try/except does, and IFD 0 on a zero division as
put_analysis_to_data.py does. Ours is harness_ext.selection.ifd.Scorer with an empty cache. Both use
the same model weights, dtype (float32) and torch thread count. Prints rows/s of each, the
speed-up, the largest IFD difference, and the peak RSS after scoring growing pools (a bounded peak
means memory does not grow with the pool).

It also prints how close each side runs to what the machine can do: the floating-point work each
one must do (matrix products of the body, the output layer at the positions it computes, attention)
and this machine's float32 matrix-product rate measured on the model's own weight shapes in the
same run. The work is fixed by the model and the rows, so the speed-up cannot exceed the
reference's time divided by ours at that rate; the benchmark prints that bound next to the result.
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

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.config.output_hidden_states = True  # as data_analysis.py loads it (every call returns all layers)
    return AutoTokenizer.from_pretrained(path), model.eval()


def reference_loop(tok, model, rows: list[tuple[str, str, str]], max_length: int) -> list[float]:
    """Superfiltering's per-example computation (two model calls per row), IFD per row."""
    import torch

    def ppl_whole(text, limit):
        try:
            ids = tok.encode(text, return_tensors="pt", truncation=True, max_length=limit)
            with torch.no_grad():
                return torch.exp(model(ids, labels=ids.contiguous()).loss).item()
        except Exception:  # noqa: BLE001 - the reference's bare except: perplexity 0
            return 0

    def ppl_part(text, span, limit):
        try:
            ids = tok.encode(text, return_tensors="pt", truncation=True, max_length=limit)
            labels = ids.clone()
            labels[0, : len(tok.encode(text[: text.rfind(span)]))] = -100
            with torch.no_grad():
                return torch.exp(model(ids, labels=labels).loss).item()
        except Exception:  # noqa: BLE001
            return 0

    out = []
    for instruction, input_text, response in rows:
        prompt = f"{instruction}\n{input_text}\n" if input_text else f"{instruction}\n"
        plen = tok.encode(prompt, return_tensors="pt", truncation=True, max_length=max_length).shape[1]
        if response == "":
            out.append(math.nan)  # the reference writes {} and put_analysis_to_data reads NaN
            continue
        ppl_r = ppl_whole(response, max_length - plen + 1)
        ppl_c = ppl_part(prompt + response, response, max_length)
        out.append(ppl_c / ppl_r if ppl_r else 0.0)  # ZeroDivisionError -> 0, as put_analysis_to_data.py
    return out


def work_gflop(model, tokenized) -> tuple[float, float]:
    """Floating-point work (GFLOP) of the reference and of ours on these rows.

    Both run the body over every token of both sequences. The reference applies the output layer
    at every position; ours only where a token is scored. Attention is counted as 2 x 2 x width x
    (its causal half of L^2) per layer and sequence. Norms and activations are left out.
    """
    cfg = model.config
    head = model.get_output_embeddings().weight
    embed = model.get_input_embeddings().weight
    body = sum(p.numel() for p in model.base_model.parameters()) - embed.numel()
    per_token, per_logit = 2 * body, 2 * head.numel()
    width = getattr(cfg, "hidden_size", head.shape[1])
    layers = getattr(cfg, "num_hidden_layers", 0)
    ref = ours = 0.0
    for t in tokenized:
        for seq_len, scored in ((len(t.conditional), max(0, len(t.conditional) - max(t.cond_start, 1))),
                                (len(t.response), max(0, len(t.response) - 1))):
            if seq_len == 0:
                continue
            common = seq_len * per_token + 2 * layers * width * seq_len * seq_len
            ref += common + seq_len * per_logit
            ours += common + scored * per_logit
    return ref / 1e9, ours / 1e9


def gemm_gflops(model, threads: int) -> tuple[float, str]:
    """float32 matrix-product rate of this machine (GFLOP/s) on the model's own weight shapes, 1024
    rows at a time, each weight shape timed as often as one layer uses it; the better of `threads`
    torch threads on one product and `threads` products at once on one thread each (how our lanes
    run), best of 5. Returns the rate and how it was reached."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    weights = [m.weight for m in model.base_model.layers[0].modules() if isinstance(m, torch.nn.Linear)] \
        if hasattr(model.base_model, "layers") else [model.get_output_embeddings().weight]
    xs = {w.shape[1]: torch.randn(1024, w.shape[1]) for w in weights}
    flop = sum(2 * 1024 * w.shape[0] * w.shape[1] for w in weights)

    def one_layer(_=None):
        with torch.inference_mode():
            for w in weights:
                torch.nn.functional.linear(xs[w.shape[1]], w)

    def best_of(fn, work):
        fn()
        best = math.inf
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return work / best / 1e9

    torch.set_num_threads(threads)
    together = best_of(lambda: [one_layer() for _ in range(threads)], threads * flop)
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(threads) as pool:
            apart = best_of(lambda: list(pool.map(one_layer, range(threads))), threads * flop)
    finally:
        torch.set_num_threads(threads)
    if apart > together:
        return apart, f"{threads} products at once, one thread each"
    return together, f"{threads} threads per product"

def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--batch-tokens", type=int, default=None, help="default: the scorer's (1024 on a CPU)")
    ap.add_argument("--data", help="Alpaca JSON (default: $HARNESS_EXT_SHARED_DATA/alpaca/alpaca_data.json)")
    args = ap.parse_args()

    import torch

    from harness_ext.core.paths import shared_data_dir
    from harness_ext.selection.ifd import ScoreConfig, Scorer, row_key, tokenize_row
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
                          chunk_rows=max(64, len(rows) // 4), cache=Path(cache), progress=False, device="cpu")
        scorer = Scorer(cfg)
        scorer.score(rows[:4])  # load the model outside the timed part (the reference loads it untimed too)
        peaks = []  # peak RSS after each chunk of rows is written: flat if memory does not grow with the pool
        t0 = time.perf_counter()
        scores, _ = scorer.score(rows, on_chunk=lambda done: peaks.append((4 + done, round(peak_rss_mb()))))
        ours_s = time.perf_counter() - t0
    ours_n = len(rows) - 4

    tok, model = load(path)
    t0 = time.perf_counter()
    ref = reference_loop(tok, model, rows[4:], args.max_length)
    ref_s = time.perf_counter() - t0

    diffs, undefined = [], 0
    for r, want in zip(rows[4:], ref, strict=True):
        got = scores[row_key(*r)].ifd
        if math.isnan(got) or math.isnan(want) or want == 0:
            # no IFD: ours says NaN, the reference NaN or 0 (its failed call or zero division)
            assert math.isnan(got) and (math.isnan(want) or want == 0), (r[:2], got, want)
            undefined += 1
            continue
        diffs.append(abs(got - want) / abs(want))
    toks = [tokenize_row(tok, *r, args.max_length) for r in rows[4:]]
    ref_gf, ours_gf = work_gflop(model, toks)
    peak, how = gemm_gflops(model, args.threads)
    print(f"reference loop : {ours_n / ref_s:7.2f} rows/s ({ref_s:.1f} s)")
    print(f"ours (batched) : {ours_n / ours_s:7.2f} rows/s ({ours_s:.1f} s)")
    print(f"speed-up       : {ref_s / ours_s:.2f}x")
    print(f"max relative IFD difference: {max(diffs):.2e} over {len(diffs)} rows "
          f"({undefined} rows have no IFD in either)")
    print("peak RSS after scoring pools of " + ", ".join(f"{n} rows: {mb} MB" for n, mb in peaks))
    print(f"work           : reference {ref_gf:,.0f} GFLOP, ours {ours_gf:,.0f} GFLOP "
          f"(ours skips the output layer where nothing is scored)")
    print(f"float32 matrix products on this machine: {peak:.0f} GFLOP/s (the model's shapes, {how})")
    print(f"achieved       : reference {ref_gf / ref_s:.0f} GFLOP/s ({ref_gf / ref_s / peak:.0%} of that), "
          f"ours {ours_gf / ours_s:.0f} GFLOP/s ({ours_gf / ours_s / peak:.0%})")
    print(f"bound          : ours at 100% of that rate would take {ours_gf / peak:.1f} s, "
          f"a speed-up of at most {ref_s / (ours_gf / peak):.2f}x over this reference run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

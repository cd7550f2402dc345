"""Selection speed and memory, with same-run baselines.

    python benchmarks/bench_select.py            # full: Alpaca-52k + a 1,000,000-row synthetic JSONL
    python benchmarks/bench_select.py --quick    # Alpaca-52k + a 100,000-row synthetic JSONL
    python benchmarks/bench_select.py --n 200000 --skip-alpaca

(a) Alpaca-52k, unit nltk-words: the streaming longest-1000 selection against the bare cost of
    tokenizing every response once with the same tokenizer (the limit an exhaustive method hits).
(b) A synthetic heavy-tailed JSONL (Pareto response lengths, seeded) with a byte-level BPE tokenizer
    unit trained here: the streaming top-k (exact pruning, 2 workers) against the naive baseline
    (load every row, tokenize every response, sort all). Both must return the same rows; peak RSS
    of each run is measured in a fresh subprocess.
Alpaca is read from $HARNESS_EXT_SHARED_DATA/alpaca/alpaca_data.json (or --alpaca); skipped if absent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rows_hash(rows: list[int]) -> str:
    return hashlib.sha256("\n".join(map(str, sorted(rows))).encode()).hexdigest()


def peak_mb() -> tuple[float, float]:
    """(this process, largest child) peak RSS in MB."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


# ---------------------------------------------------------------- child runs (fresh process each)


def child(variant: str, path: str, unit: str, k: int) -> dict:
    from harness_ext.selection.scan import scan
    from harness_ext.selection.units import make_unit

    t0 = time.perf_counter()
    if variant == "limit":  # tokenize every response once, nothing else (load time excluded)
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
        u = make_unit(unit)
        texts = [r["output"] for r in rows if isinstance(r.get("output"), str) and r["output"].strip()]
        t0 = time.perf_counter()
        total = sum(u.count_many(texts))
        return {"wall_s": time.perf_counter() - t0, "rows": len(texts), "tokens": total}
    if variant in ("naive", "batched"):  # load all, measure all, sort all
        u = make_unit(unit)
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        texts = [r["output"] for r in rows]
        counts: list[int] = []
        if variant == "naive":  # the usual script: one tokenizer call per example
            counts = [u.count(t) for t in texts]
        else:  # a strong baseline: Rust batch encoding on all cores
            for i in range(0, len(texts), 10000):
                counts.extend(u.count_many(texts[i : i + 10000]))
        order = sorted(range(len(rows)), key=lambda i: (-counts[i], i))[:k]
        return {"wall_s": time.perf_counter() - t0, "rows": len(rows), "hash": rows_hash(order),
                "cutoff": counts[order[-1]]}
    if variant == "stream":
        res = scan(path, unit=unit, mode="longest", k=k)
        return {"wall_s": time.perf_counter() - t0, "rows": res.rows_read, "hash": rows_hash([e.row for e, _ in res.kept]),
                "cutoff": res.kept[-1][1], "pruned": res.pruned, "workers": res.workers}
    raise SystemExit(f"unknown variant {variant}")


def run_child(variant: str, path: Path, unit: str, k: int) -> dict:
    cmd = [sys.executable, __file__, "--_child", variant, "--_path", str(path), "--_unit", unit, "--k", str(k)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- synthetic data


def response_words(rng: random.Random, tail: str) -> int:
    """Response length in words. lognormal: median 40, sigma 1.1 (a long right tail like real
    instruction sets); pareto: alpha 1.3, median ~8, capped at 4000 (an extreme tail)."""
    if tail == "pareto":
        return min(4000, int(5 * rng.paretovariate(1.3)))
    return max(1, min(8000, int(rng.lognormvariate(3.69, 1.1))))


def make_synthetic(path: Path, n: int, tail: str = "lognormal", seed: int = 0) -> None:
    """n JSONL rows with heavy-tailed response lengths (see response_words), seeded."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    vocab += [",", ".", "!", "é", "naïve", "42", "(x)"]
    sources = ["airoboros", "glaive", "camel", "metamath", "cot"]
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(n):
            words = response_words(rng, tail)
            resp = " ".join(rng.choices(vocab, k=words))
            f.write(json.dumps({"instruction": f"Task {i}: " + " ".join(rng.choices(vocab, k=6)), "input": "",
                                "output": resp, "source": sources[i % 5]}, ensure_ascii=False) + "\n")
    tmp.replace(path)


def make_tokenizer(out: Path, sample: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = []
    with open(sample, encoding="utf-8") as f:
        for i, line in enumerate(f):
            texts.append(json.loads(line)["output"])
            if i >= 20000:
                break
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))  # all the hf-tokens unit needs from a local folder


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="synthetic rows (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="synthetic rows = 100,000")
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--alpaca", help="path of alpaca_data.json")
    ap.add_argument("--skip-alpaca", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--tail", choices=["lognormal", "pareto"], default="lognormal",
                    help="response-length distribution of the synthetic file (default lognormal)")
    ap.add_argument("--workdir", help="where the synthetic file and tokenizer are kept (default: a temp dir)")
    ap.add_argument("--_child"), ap.add_argument("--_path"), ap.add_argument("--_unit")
    args = ap.parse_args()
    if args._child:
        res = child(args._child, args._path, args._unit, args.k)
        res["peak_rss_mb"], res["peak_rss_child_mb"] = (round(x, 1) for x in peak_mb())
        print(json.dumps(res))
        return
    n = 100_000 if args.quick else args.n
    print(f"bench_select: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")

    if not args.skip_alpaca:
        from harness_ext.core.paths import shared_data_dir

        alpaca = Path(args.alpaca) if args.alpaca else shared_data_dir() / "alpaca" / "alpaca_data.json"
        if not alpaca.exists():
            print(f"(a) skipped: {alpaca} not found (set HARNESS_EXT_SHARED_DATA or --alpaca)")
        else:
            limit = run_child("limit", alpaca, "nltk-words", args.k)
            ours = run_child("stream", alpaca, "nltk-words", args.k)
            per_limit = limit["wall_s"] / limit["rows"] * 1e6
            per_ours = ours["wall_s"] / ours["rows"] * 1e6
            print(f"(a) Alpaca-52k nltk-words, longest-{args.k}:")
            print(f"    limit (tokenize every response once, 1 core): {limit['wall_s']:.2f} s, {per_limit:.0f} us/example")
            print(f"    harness-ext streaming select ({ours['workers']} workers, parse + prune + count + top-k): "
                  f"{ours['wall_s']:.2f} s, {per_ours:.0f} us/example, cutoff {ours['cutoff']}, "
                  f"{ours['pruned']} of {ours['rows']} not tokenized")
            print(f"    ratio limit/ours = {limit['wall_s'] / ours['wall_s']:.2f}x; "
                  f"peak RSS {ours['peak_rss_mb']:.0f} MB (+ worker {ours['peak_rss_child_mb']:.0f} MB)")

    if not args.skip_synthetic:
        work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_select_"))
        work.mkdir(parents=True, exist_ok=True)
        data = work / f"synthetic_{args.tail}_{n}.jsonl"
        if not data.exists():
            t = time.perf_counter()
            make_synthetic(data, n, args.tail)
            print(f"    (made {data.name}: {data.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s)")
        tok = work / "bpe-tokenizer"
        if not (tok / "tokenizer.json").exists():
            make_tokenizer(tok, data)
        unit = f"hf-tokens:{tok}"
        naive = run_child("naive", data, unit, args.k)
        batched = run_child("batched", data, unit, args.k)
        ours = run_child("stream", data, unit, args.k)
        same = all(b["hash"] == ours["hash"] and b["cutoff"] == ours["cutoff"] for b in (naive, batched))
        print(f"(b) synthetic {args.tail}-tailed JSONL, {n:,} rows ({data.stat().st_size / 1e6:.0f} MB), "
              f"byte-level BPE unit, longest-{args.k}:")
        print(f"    naive (load all, tokenize each row with one call, sort all): {naive['wall_s']:.2f} s, "
              f"peak RSS {naive['peak_rss_mb']:.0f} MB")
        print(f"    batched baseline (load all, Rust batch-tokenize all on all cores, sort all): "
              f"{batched['wall_s']:.2f} s, peak RSS {batched['peak_rss_mb']:.0f} MB")
        print(f"    streaming top-k ({ours['workers']} workers, exact pruning): {ours['wall_s']:.2f} s, "
              f"peak RSS parent {ours['peak_rss_mb']:.0f} MB + largest worker {ours['peak_rss_child_mb']:.0f} MB, "
              f"{ours['pruned']:,} of {ours['rows']:,} not tokenized")
        print(f"    speedup naive/streaming = {naive['wall_s'] / ours['wall_s']:.2f}x, "
              f"batched/streaming = {batched['wall_s'] / ours['wall_s']:.2f}x; same rows and cutoff: {same}")
        if not same:
            raise SystemExit("streaming and naive selections differ")


if __name__ == "__main__":
    main()

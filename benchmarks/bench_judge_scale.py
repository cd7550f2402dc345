"""Judging at an account's rate limit, and through the Batch API (issue 15, "Measure").

    python benchmarks/bench_judge_scale.py                          # 1,030 prompts x 2 orders at 30k TPM
    python benchmarks/bench_judge_scale.py --n 1030 --tpm 1500000   # same judgments, a faster clock

Against the loopback server (its own process) enforcing a tokens-per-minute limit the way OpenAI
does (each request charged prompt tokens + max_tokens on arrival; 429 with Retry-After and
x-ratelimit-* headers when short), prints side by side from one run:

  * harness_ext judge_pairwise (pacing to the headers): wall time vs the TPM bound (tokens charged
    / TPM) and the share of requests answered 429;
  * alpaca_eval's decoder (openai_completions) on the same server and prompts: the same two figures;
  * the same judgments through --batch (a fresh cache): HTTP requests sent, batches, and the cost at
    batch vs live prices of --price-model (bundled price table).

The server's bucket holds --burst-s seconds of the rate (1 s by default, so the bound is not
softened by a free first minute). At 30k TPM the 2,060 judgments take ~50 minutes by the bound
alone (each is charged ~330 prompt + 512 max_tokens); --tpm scales the clock while keeping the
requests, their tokens and the bucket's shape. Run from the repository root.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness_ext.judge.pairwise import judge_pairwise, load_template  # noqa: E402
from harness_ext.llm.client import make_client  # noqa: E402
from harness_ext.llm.ledger import load_prices  # noqa: E402
from tests.judge_helpers import outputs, write_outputs  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_judge import _chatml, server_process, stats  # noqa: E402  (the loopback server's helpers)


def _inputs(n: int, work: Path) -> tuple[Path, Path, dict, dict]:
    a_rows, b_rows = {}, {}
    for i in range(n):
        key = ("vicuna" if i % 3 else "lima", f"Benchmark question {i}: explain topic {i}.")
        a_rows[key] = ("GOOD " if i % 4 else "plain ") + "detail " * (i % 50)
        b_rows[key] = ("GOOD " if i % 5 == 0 else "plain ") + "word " * (i % 30)
    return (write_outputs(work / "a.json", outputs("model-a", a_rows)),
            write_outputs(work / "b.json", outputs("model-b", b_rows)), a_rows, b_rows)


def run_alpaca_eval(url: str, work: Path, a_rows: dict, b_rows: dict, concurrency: int) -> float:
    os.environ["OPENAI_API_BASE"] = url  # read by alpaca_eval at import time
    os.environ["OPENAI_API_KEY"] = "bench"
    os.environ["OPENAI_CLIENT_CONFIG_PATH"] = str(work / "none.yaml")
    from alpaca_eval.decoders.openai import openai_completions

    for name in ("httpx", "httpx2", "httpcore"):  # alpaca_eval turns INFO logging on at import
        logging.getLogger(name).setLevel(logging.WARNING)

    tpl = load_template()
    prompts = []
    for key in a_rows:
        prompts.append(_chatml(tpl.render(key[1], a_rows[key], b_rows[key])))
        prompts.append(_chatml(tpl.render(key[1], b_rows[key], a_rows[key])))
    t0 = time.perf_counter()
    res = openai_completions(prompts, model_name="bench-judge-ae", max_tokens=tpl.max_tokens, temperature=0,
                             num_procs=concurrency, requires_chatml=True)
    assert len(res["completions"]) == len(prompts)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1030, help="prompts (each judged in both orders)")
    ap.add_argument("--tpm", type=float, default=30_000, help="the server's tokens-per-minute limit")
    ap.add_argument("--burst-s", type=float, default=1.0, help="seconds of the rate the server's bucket holds")
    ap.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--price-model", default="gpt-4o", help="judge model name sent (and priced)")
    ap.add_argument("--skip-alpaca-eval", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for name in ("httpx", "httpx2", "httpcore", "harness_ext"):  # one line per HTTP request would bury the table
        logging.getLogger(name).setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench_judge_scale_"))
    a, b, a_rows, b_rows = _inputs(args.n, work)
    n_req = 2 * args.n
    model = args.price_model
    import openai  # noqa: F401  (imported before timing)

    rows = []
    flags = ["--latency", str(args.latency), "--tpm", str(args.tpm), "--burst-s", str(args.burst_s)]
    with server_process(*flags) as url:
        client = make_client(model, base_url=url, api_key="bench", concurrency=args.concurrency,
                             cache_dir=work / "cache_live", max_retries=50)
        t0 = time.perf_counter()
        summary = judge_pairwise(a, b, work / "out", client, model, n_boot=200)
        wall = time.perf_counter() - t0
        st = stats(url)
        assert summary.judgments.parsed == n_req, summary.judgments
        rows.append(("harness_ext (paced)", wall, st["tokens_charged"], st["rate_limited"], st["requests"]))
    if not args.skip_alpaca_eval:
        with server_process(*flags) as url:
            wall = run_alpaca_eval(url, work, a_rows, b_rows, args.concurrency)
            st = stats(url)
            rows.append(("alpaca_eval decoder", wall, st["tokens_charged"], st["rate_limited"], st["requests"]))
    with server_process("--latency", str(args.latency), "--batch-latency", "1") as url:
        client = make_client(model, base_url=url, api_key="bench", cache_dir=work / "cache_batch", batch=True,
                             batch_poll_seconds=0.2)
        t0 = time.perf_counter()
        summary = judge_pairwise(a, b, work / "out_batch", client, model, n_boot=200)
        batch_wall = time.perf_counter() - t0
        st = stats(url)
    usage = summary.usage
    price = load_prices().price(model)
    line = next(ln for ln in usage["lines"] if ln["source"] == "batch")
    live_cost = price.cost(line["prompt_tokens"], line["completion_tokens"])

    print(f"pairwise judgments: {n_req} ({args.n} prompts x 2 orders); server: {args.tpm:,.0f} TPM "
          f"(bucket {args.burst_s:g} s), latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}")
    print(f"{'':22s} {'wall s':>8s} {'TPM bound s':>12s} {'wall/bound':>10s} {'HTTP requests':>14s} {'429s':>6s} {'429 share':>9s}")
    for name, wall, charged, limited, requests in rows:
        bound = charged / args.tpm * 60
        print(f"{name:22s} {wall:8.1f} {bound:12.1f} {wall / bound:10.2f} {requests:14d} {limited:6d} "
              f"{limited / max(requests, 1):9.2%}")
    print(f"--batch ({model}):      {batch_wall:.1f} s wall, {st['requests']} HTTP chat requests, "
          f"{st['batches_created']} batch(es), {st['batch_lines_answered']} lines answered")
    print(f"  tokens {line['prompt_tokens']:,} prompt + {line['completion_tokens']:,} completion: "
          f"${line['cost_usd']:.4f} at batch prices vs ${live_cost:.4f} live "
          f"({line['cost_usd'] / live_cost:.0%}); prices {load_prices().date}")
    print("(timings on a shared 2-core machine; compare the rows of one run, not across runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

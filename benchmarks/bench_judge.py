"""Pairwise judging throughput against the loopback OpenAI server (issue 5, "Performance").

    python benchmarks/bench_judge.py                    # 1,030 prompts x 2 orders, 200 ms, concurrency 32
    python benchmarks/bench_judge.py --n 200 --latency 0.05

Prints, from one run:
  * our judge_pairwise wall time vs the ideal n_requests x latency / concurrency (target <= 1.2x);
  * alpaca_eval's own decoder (openai_completions, num_procs = concurrency) on the same server and
    the same prompts, and the ratio of the two;
  * the requests a rerun sends (must be 0: everything comes from the cache).
Run from the repository root (it imports tests/openai_server.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness_ext.judge.pairwise import judge_pairwise, load_template  # noqa: E402
from harness_ext.llm.client import make_client  # noqa: E402
from tests.judge_helpers import outputs, write_outputs  # noqa: E402


@contextlib.contextmanager
def server_process(*flags: str) -> Iterator[str]:
    """The loopback server in its own process (as a real endpoint is), yielding its base URL.
    `flags` are tests/openai_server.py's own (--latency, --tpm, ...)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.openai_server", "--reply", "pairwise", *flags],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/_stats") as r:
        return json.load(r)


def _chatml(turns) -> str:
    return "".join(f"<|im_start|>{t.role}\n{t.content}\n<|im_end|>\n" for t in turns)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1030, help="prompts (each judged in both orders)")
    ap.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--skip-alpaca-eval", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    work = Path(tempfile.mkdtemp(prefix="bench_judge_"))
    os.environ["HARNESS_EXT_CACHE"] = str(work / "cache")
    a_rows, b_rows = {}, {}
    for i in range(args.n):
        key = ("vicuna" if i % 3 else "lima", f"Benchmark question {i}: explain topic {i}.")
        a_rows[key] = ("GOOD " if i % 4 else "plain ") + "detail " * (i % 50)
        b_rows[key] = ("GOOD " if i % 5 == 0 else "plain ") + "word " * (i % 30)
    a = write_outputs(work / "a.json", outputs("model-a", a_rows))
    b = write_outputs(work / "b.json", outputs("model-b", b_rows))
    n_req = 2 * args.n
    ideal = n_req * args.latency / args.concurrency

    import openai  # noqa: F401  (imported before timing, as alpaca_eval's is below)

    with server_process("--latency", str(args.latency)) as url:
        client = make_client("bench-judge", base_url=url, api_key="bench", concurrency=args.concurrency,
                             cache_dir=work / "cache" / "judge")
        t0, c0 = time.perf_counter(), time.process_time()
        summary = judge_pairwise(a, b, work / "out", client, "bench-judge", n_boot=1000)
        ours, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
        served = stats(url)["served"]
        assert summary.judgments.parsed == n_req, summary.judgments

        before = stats(url)["requests"]
        t0 = time.perf_counter()
        judge_pairwise(a, b, work / "out2", make_client("bench-judge", base_url=url, api_key="bench",
                                                         cache_dir=work / "cache" / "judge"), "bench-judge", n_boot=1000)
        rerun = time.perf_counter() - t0
        rerun_requests = stats(url)["requests"] - before

        theirs = None
        if not args.skip_alpaca_eval:
            os.environ["OPENAI_API_BASE"] = url  # read by alpaca_eval at import time
            os.environ["OPENAI_API_KEY"] = "bench"
            os.environ["OPENAI_CLIENT_CONFIG_PATH"] = str(work / "none.yaml")
            from alpaca_eval.decoders.openai import openai_completions

            tpl = load_template()
            prompts = []
            for (_, ins) in a_rows:
                prompts.append(_chatml(tpl.render(ins, a_rows[(_, ins)], b_rows[(_, ins)])))
                prompts.append(_chatml(tpl.render(ins, b_rows[(_, ins)], a_rows[(_, ins)])))
            t0 = time.perf_counter()
            res = openai_completions(prompts, model_name="bench-judge-ae", max_tokens=512, temperature=0,
                                     num_procs=args.concurrency, requires_chatml=True)
            theirs = time.perf_counter() - t0
            assert len(res["completions"]) == n_req

    print(f"pairwise judgments: {n_req} ({args.n} prompts x 2 orders), latency {args.latency * 1000:.0f} ms, "
          f"concurrency {args.concurrency}")
    print(f"ideal (n x latency / concurrency): {ideal:8.2f} s")
    print(f"harness_ext judge_pairwise:        {ours:8.2f} s  = {ours / ideal:.2f} x ideal (target <= 1.2)  "
          f"[{served} requests served; identical requests are sent once]")
    print(f"  client process CPU: {ours_cpu:.2f} s ({1000 * ours_cpu / max(served, 1):.1f} ms per request); "
          f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if theirs is not None:
        print(f"alpaca_eval openai_completions:    {theirs:8.2f} s  = {theirs / ideal:.2f} x ideal;  "
              f"ours / theirs = {ours / theirs:.2f}")
    print(f"rerun: {rerun:.2f} s, {rerun_requests} requests sent (must be 0)")
    return 0 if rerun_requests == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

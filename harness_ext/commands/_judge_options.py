"""Shared judge-client flags for the commands that ask an LLM (mt-bench judge, score, refine).

The API key is never a flag (it would land in shell history and process lists): it comes from
$HARNESS_EXT_JUDGE_API_KEY or $OPENAI_API_KEY; a self-hosted --base-url needs none.
"""

from __future__ import annotations

import argparse

from harness_ext.records import ChatClient


def add_client_args(parser: argparse.ArgumentParser, *, judge_required: bool = True) -> None:
    """Add --judge-model, --base-url, concurrency/rate/retry/cache flags and --allow-failures."""
    g = parser.add_argument_group("judge client")
    g.add_argument("--judge-model", required=judge_required, metavar="MODEL",
                   help="model name sent to the endpoint (e.g. gpt-4, or the name `vllm serve` uses)")
    g.add_argument("--base-url", metavar="URL",
                   help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 for `vllm serve` "
                   "(default: $HARNESS_EXT_JUDGE_BASE_URL, $OPENAI_BASE_URL, else api.openai.com); "
                   "the key comes from $HARNESS_EXT_JUDGE_API_KEY or $OPENAI_API_KEY")
    g.add_argument("--concurrency", type=int, default=32, help="requests in flight at once (default 32)")
    g.add_argument("--rpm", type=float, default=None, help="requests-per-minute limit (default none)")
    g.add_argument("--tpm", type=float, default=None, help="tokens-per-minute limit (default none)")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per request attempt (default 120)")
    g.add_argument("--max-retries", type=int, default=8, help="retries on 429/5xx/timeouts (default 8)")
    g.add_argument("--cache-dir", metavar="DIR",
                   help="response cache folder (default: $HARNESS_EXT_CACHE/judge); reruns pay for nothing twice")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    g.add_argument("--batch-size", type=int, default=64,
                   help="work items per progress checkpoint (default 64)")
    g.add_argument("--allow-failures", action="store_true",
                   help="publish even if some requests still fail after retries, recording them as "
                   "errors (default: stop, keep progress, rerun to retry)")


def build_client(args: argparse.Namespace) -> ChatClient:
    """The OpenAI-compatible client the flags describe."""
    from harness_ext.judging.client import make_client

    return make_client(
        args.judge_model, base_url=args.base_url, cache_dir=args.cache_dir, concurrency=args.concurrency,
        requests_per_minute=args.rpm, tokens_per_minute=args.tpm, timeout=args.timeout,
        max_retries=args.max_retries, use_cache=not args.no_cache,
    )

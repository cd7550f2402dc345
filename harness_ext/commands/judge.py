"""`harness-ext judge ...`: LLM-judge evaluations (pairwise head-to-head, AlpacaEval win rates)."""

from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

HELP = "judge model outputs with an LLM judge (pairwise head-to-head, AlpacaEval win rates)"
DESCRIPTION = HELP + "."

# sub-command -> module exposing HELP, configure(parser), run(args); one line per judge mode.
SUBCOMMANDS: dict[str, str] = {
    "pairwise": "harness_ext.commands.judge_pairwise",
    "alpaca-config": "harness_ext.commands.judge_alpaca_config",
    "alpaca-winrate": "harness_ext.commands.judge_alpaca_winrate",
}

def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0 (not nan)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_client_options(p: argparse.ArgumentParser) -> None:
    """The judge-endpoint options shared by every judge command."""
    g = p.add_argument_group("judge endpoint")
    g.add_argument("--judge-model", help="model name sent to the endpoint (default: the --local-judge path)")
    g.add_argument("--base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 "
                   "(default: $HARNESS_EXT_JUDGE_BASE_URL, $OPENAI_BASE_URL, else api.openai.com)")
    add_api_key_options(g)
    g.add_argument("--local-judge", metavar="PATH", help="judge with a local transformers checkpoint instead")
    g.add_argument("--concurrency", type=positive_int, default=32, help="requests in flight (default 32)")
    g.add_argument("--rpm", type=positive_float, default=None, help="requests-per-minute limit")
    g.add_argument("--tpm", type=positive_float, default=None, help="tokens-per-minute limit (estimated tokens)")
    g.add_argument("--timeout", type=positive_float, default=120.0, help="seconds per request before retrying (default 120)")
    g.add_argument("--max-retries", type=non_negative_int, default=8, help="retries per request on 429/5xx/timeouts (default 8)")
    g.add_argument("--cache-dir", default=None, help="answer cache folder (default $HARNESS_EXT_CACHE/judge)")
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the answer cache")
    g.add_argument("--batch-size", type=positive_int, default=8, help="local judge batch size (default 8)")
    add_spend_options(p)


def add_spend_options(p: argparse.ArgumentParser) -> None:
    """--dry-run, --budget, --batch and --prices (API judges; see docs/judge.md)."""
    g = p.add_argument_group("cost")
    g.add_argument("--dry-run", action="store_true",
                   help="count the requests not cached yet and estimate their tokens and cost; send nothing")
    g.add_argument("--budget", type=positive_float, default=None, metavar="USD",
                   help="stop before a request could take this run's spending past USD (nothing is published; "
                   "a rerun with a larger budget continues from the cache)")
    g.add_argument("--batch", action="store_true",
                   help="send through the OpenAI Batch API (half price, results within 24 h; a rerun collects "
                   "a submitted batch instead of resubmitting)")
    g.add_argument("--batch-poll", type=positive_float, default=30.0, metavar="SECONDS",
                   help="seconds between batch status checks (default 30)")
    g.add_argument("--prices", default=None, metavar="FILE",
                   help="JSON/YAML price table overriding the bundled one (USD per 1M tokens per model)")


def add_api_key_options(g: Any) -> None:
    """--api-key and --api-key-env (the key is never logged or stored)."""
    g.add_argument("--api-key", default=None, help="API key (visible in process lists and shell history: "
                   "prefer $HARNESS_EXT_JUDGE_API_KEY or --api-key-env); never logged or stored")
    g.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="read the API key from this environment variable instead of "
                   "$HARNESS_EXT_JUDGE_API_KEY / $OPENAI_API_KEY")


def api_key_from_args(args: argparse.Namespace) -> str | None:
    """The key of --api-key-env VAR or --api-key; None lets the client read its default variables."""
    from harness_ext.core.errors import ConfigError

    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env {args.api_key_env}: that environment variable is empty or unset.",
                              hint=f"export {args.api_key_env}=... first.")
        return api_key
    return args.api_key


def client_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    """(ChatClient, judge model name) from the options of add_client_options."""
    import logging

    from harness_ext.core.errors import ConfigError

    if not getattr(args, "verbose", False):  # one INFO line per HTTP request would bury the progress bar
        for name in ("httpx", "httpx2", "httpcore", "httpcore2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    from harness_ext.llm.factory import LocalJudgeOptions, build_client
    from harness_ext.llm.options import ClientOptions

    options = ClientOptions(
        model=args.judge_model, base_url=args.base_url, cache_dir=args.cache_dir, use_cache=not args.no_cache,
        concurrency=args.concurrency, requests_per_minute=args.rpm, tokens_per_minute=args.tpm,
        timeout=args.timeout, max_retries=args.max_retries, progress=True, stage=command_stage(args),
        prices=args.prices, budget_usd=args.budget, dry_run=args.dry_run, batch=args.batch,
        batch_poll_seconds=args.batch_poll)
    if args.local_judge:
        local = LocalJudgeOptions(args.local_judge, batch_size=args.batch_size, cache_dir=args.cache_dir,
                                  use_cache=not args.no_cache)
        return (build_client(options, local),
                args.judge_model or os.path.basename(os.path.normpath(args.local_judge)))
    if not args.judge_model:
        raise ConfigError("--judge-model is required with an API judge.",
                          hint="pass --judge-model NAME (as served by the endpoint), or --local-judge PATH.")
    options.api_key = api_key_from_args(args)
    return build_client(options), args.judge_model


def print_usage(client: Any) -> None:
    """The run's tokens and cost on one line (API judges; a local judge keeps no ledger)."""
    from harness_ext.llm.ledger import usage_line

    line = usage_line(client)
    if line:
        print(line)


def command_stage(args: argparse.Namespace) -> str:
    """The ledger's stage name for a command: 'judge pairwise', 'mt-bench judge', 'score', 'refine'."""
    sub = next((getattr(args, a) for a in ("judge_command", "mt_bench_command", "mt_command")
                if isinstance(getattr(args, a, None), str)), None)
    return " ".join(x for x in (getattr(args, "command", None) or "judge", sub) if x)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="judge_command", metavar="MODE", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           epilog=getattr(module, "EPILOG", None),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.configure(p)
        p.set_defaults(_judge_run=module.run)


def run(args: argparse.Namespace) -> int | None:
    return args._judge_run(args)

"""The one place a judge client is built, for the CLI (commands/judge.py) and the pipeline (pipeline/runner.py).

In: `ClientOptions` (an API endpoint) or `LocalJudgeOptions` (a transformers checkpoint). Out: a
records.ChatClient. The heavy parts (the openai SDK, torch) load only when a client first asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness_ext.core.errors import ConfigError
from harness_ext.core.records import ChatClient
from harness_ext.llm.options import ClientOptions


@dataclass
class LocalJudgeOptions:
    """A local transformers judge: its checkpoint and how it generates."""

    path: str | Path
    batch_size: int = 8
    max_new_tokens: int = 512
    digit_scores: int = 0  # >0: read that many scores from next-token digit probabilities
    cache_dir: str | Path | None = None
    use_cache: bool = True


def build_client(options: ClientOptions | None = None, local: LocalJudgeOptions | None = None) -> ChatClient:
    """The local judge when `local` is given, else the OpenAI-compatible client for `options`."""
    if local is not None:
        o = options or ClientOptions()
        if o.dry_run or o.budget_usd is not None or o.batch:
            raise ConfigError("--dry-run, --budget and --batch apply to API judges; a local judge costs nothing "
                              "per request.", hint="drop them, or judge through --base-url/--judge-model.")
        from harness_ext.llm.local import make_local_client

        return make_local_client(local.path, batch_size=local.batch_size, max_new_tokens=local.max_new_tokens,
                                 digit_scores=local.digit_scores, cache_dir=local.cache_dir,
                                 use_cache=local.use_cache)
    from harness_ext.llm.client import OpenAIChatClient

    return OpenAIChatClient(options or ClientOptions())

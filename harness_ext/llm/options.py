"""The settings of the OpenAI-compatible client, as one record (CLI flags and experiment keys map onto it).

Kept apart from client.py so the CLI and the pipeline can build options without importing the
client (and the openai SDK behind it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness_ext.core.errors import ConfigError


@dataclass
class ClientOptions:
    """How to reach the endpoint, how hard to push it, and what a run may spend."""

    # endpoint
    model: str | None = None  # default model for requests that name none
    base_url: str | None = None  # None: $HARNESS_EXT_JUDGE_BASE_URL, $OPENAI_BASE_URL, else api.openai.com
    api_key: str | None = field(default=None, repr=False)  # None: $HARNESS_EXT_JUDGE_API_KEY / $OPENAI_API_KEY
    # cache (llm/cache.py)
    cache_dir: str | Path | None = None  # None: <cache_dir()>/judge
    use_cache: bool = True
    # load
    concurrency: int = 32
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    pace_to_headers: bool = True  # follow x-ratelimit-* response headers (llm/pacing.py)
    timeout: float = 120.0
    max_retries: int = 8
    progress: bool = False
    # spending (llm/ledger.py)
    stage: str = "judge"  # the ledger's stage name for this client's requests
    prices: str | Path | None = None  # user price file overriding the bundled table
    budget_usd: float | None = None  # stop before a request would take this run's spending past it
    dry_run: bool = False  # count and price the requests not yet cached; send nothing
    batch: bool = False  # send through the OpenAI Batch API (llm/batch.py)
    batch_poll_seconds: float = 30.0
    batch_max_requests: int = 50_000  # the API's per-batch limits
    batch_max_bytes: int = 200 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}.", hint="use e.g. --concurrency 32")
        if not self.timeout > 0:  # 0 or less times out every request; nan compares false
            raise ConfigError(f"timeout must be > 0 seconds, got {self.timeout}.", hint="use e.g. --timeout 120")
        for name in ("requests_per_minute", "tokens_per_minute"):
            limit = getattr(self, name)
            if limit is not None and not limit > 0:
                raise ConfigError(f"{name} must be > 0 (or unset for no limit), got {limit}.",
                                  hint="use e.g. --rpm 500, or leave the limit out")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}.", hint="use e.g. --max-retries 8")
        if self.budget_usd is not None and not self.budget_usd > 0:
            raise ConfigError(f"budget must be > 0 USD, got {self.budget_usd}.", hint="use e.g. --budget 5")
        if self.batch and not self.use_cache:
            raise ConfigError("--batch needs the answer cache (batch results are collected into it).",
                              hint="drop --no-cache.")
        if not self.batch_poll_seconds > 0 or self.batch_max_requests < 1 or self.batch_max_bytes < 1:
            raise ConfigError("batch poll interval and per-batch limits must be > 0.")

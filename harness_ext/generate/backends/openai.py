"""The `openai` generation backend: any OpenAI-compatible chat endpoint through the judge client.

Conversations are sent as chat messages (the server applies its own chat template), with the
judge client's concurrency, rate limits, retries and on-disk cache, so an interrupted generation
run resumes without paying twice. SamplingParams map to the API as: max_new_tokens -> max_tokens,
temperature, top_p, seed, stop; min_new_tokens -> `min_tokens` in the request body (a vLLM
extension; servers without it ignore or reject it, so it is only sent when > 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness_ext.core.errors import StageError
from harness_ext.core.records import ChatRequest, Completion, SamplingParams, Turn
from harness_ext.generate.backends import BACKENDS


class OpenAIBackend:
    """records.Backend over an OpenAI-compatible endpoint (see module docstring)."""

    name = "openai"

    # Eleven parameters: the `generate --backend openai` client flags, one to one (they become a
    # ClientOptions inside), so the backend registry can check a user's options against this signature.
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 32,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout: float = 600.0,
        max_retries: int = 8,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        system_prompt: str | None = None,
    ) -> None:
        from harness_ext.core.paths import cache_dir as default_cache
        from harness_ext.llm.client import make_client

        self.model = str(model)
        self.system_prompt = system_prompt
        self.client = make_client(
            self.model, base_url=base_url, api_key=api_key,
            cache_dir=cache_dir or default_cache() / "generate_openai", concurrency=concurrency,
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute, timeout=timeout,
            max_retries=max_retries, use_cache=use_cache, progress=True,
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, client={self.client!r})"

    @staticmethod
    def request_params(params: SamplingParams) -> tuple[tuple[str, Any], ...]:
        """The API parameters for `params` (sorted, so equal settings share cache entries)."""
        p: dict[str, Any] = {"max_tokens": params.max_new_tokens, "temperature": params.temperature,
                             "top_p": params.top_p, "seed": params.seed}
        if params.stop:
            p["stop"] = list(params.stop)
        if params.min_new_tokens > 0:
            p["min_tokens"] = params.min_new_tokens
        return tuple(sorted(p.items()))

    def generate(self, conversations: list[list[Turn]], params: SamplingParams) -> list[Completion]:
        """One Completion per conversation, in order; raises StageError if any request failed for good."""
        api = self.request_params(params)
        requests = []
        for conv in conversations:
            turns = list(conv)
            if turns and turns[-1].role == "assistant":  # a trailing reply is what we generate
                turns = turns[:-1]
            if self.system_prompt and not (turns and turns[0].role == "system"):
                turns.insert(0, Turn("system", self.system_prompt))
            requests.append(ChatRequest(self.model, tuple(turns), api))
        results = self.client.complete_many(requests)
        failed = [(i, r.error) for i, r in enumerate(results) if not r.ok]
        if failed:
            first_i, first_err = failed[0]
            raise StageError(
                f"{len(failed)} of {len(results)} generation requests to {self.client.base_url or 'api.openai.com'} "
                f"failed (first: conversation {first_i}: {first_err}).",
                hint="fix the endpoint or key and rerun: answers already received are cached and not requested again.",
            )
        return [Completion(text=r.text or "", prompt_tokens=int(r.prompt_tokens or 0),
                           completion_tokens=int(r.completion_tokens or 0), finish_reason=r.finish_reason or "stop")
                for r in results]


@BACKENDS.register("openai", doc="any OpenAI-compatible chat endpoint (vllm serve, OpenAI); cached, retried")
def _openai(model: Any, **options: Any) -> OpenAIBackend:
    return OpenAIBackend(str(model), **options)

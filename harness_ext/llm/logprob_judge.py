"""Verdict-token probabilities from a judge model, without generating any text.

A judge prompt that ends where the verdict is written ("Answer with a single letter, A or B.")
is scored by reading the judge's next-token distribution at that point: P(A) and P(B),
renormalised over the two. Two scorers share one interface, `score_many(conversations)`:

- LocalVerdictScorer: a local transformers checkpoint, one batched forward pass per prompt
  (the model is loaded through the hf generation backend, so prompt formatting is the same code).
- EndpointVerdictScorer: an OpenAI-compatible endpoint that returns logprobs (vLLM, OpenAI):
  a chat completion with max_tokens=1, logprobs=true, top_logprobs=N; a verdict token missing
  from the top N counts as probability 0 (as AlpacaEval's logprob parser treats it), and a reply
  with neither token among the top N is an error.

Both cache their answers (keyed by the model's identity, the messages and the verdict tokens),
so an interrupted judging run resumes and a rerun pays nothing.
"""

from __future__ import annotations

import json
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.errors import InputError
from harness_ext.core.paths import cache_dir as default_cache_dir
from harness_ext.core.records import ChatRequest, ChatResult, Turn
from harness_ext.llm.cache import ChatCache, request_key

log = logging.getLogger(__name__)

VERDICT_TOKENS = ("A", "B")
TOP_LOGPROBS = 20  # the most OpenAI's API returns; vLLM accepts more


@dataclass(frozen=True)
class VerdictProbs:
    """The judge's next-token probabilities for the two verdict tokens of one prompt.

    `first`: P(first token) / (P(first) + P(second)); `mass`: P(first) + P(second) over the whole
    vocabulary (how much of the judge's probability went to a verdict at all); or an `error`."""

    first: float | None
    mass: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.first is not None


Progress = Callable[[int], None]  # called with the number of prompts just scored


def _from_probs(p_first: float, p_second: float) -> VerdictProbs:
    total = p_first + p_second
    if not total > 0:
        return VerdictProbs(None, 0.0, error="neither verdict token has any probability")
    return VerdictProbs(first=p_first / total, mass=total)


class _Cached(ABC):
    """The cache shared by both scorers: VerdictProbs stored as a ChatResult's JSON text."""

    identity: str
    tokens: tuple[str, str]
    cache: ChatCache | None

    def _key(self, conv: Sequence[Turn]) -> str:
        return request_key(ChatRequest(self.identity, tuple(conv), (("verdict_tokens", self.tokens),)))

    def _lookup(self, convs: list[Sequence[Turn]]) -> tuple[list[str], dict[str, VerdictProbs]]:
        keys = [self._key(c) for c in convs]
        done: dict[str, VerdictProbs] = {}
        for k in keys:
            hit = self.cache.get(k) if self.cache is not None else None
            if hit is not None and hit.text:
                d = json.loads(hit.text)
                done[k] = VerdictProbs(d["first"], d["mass"])
        return keys, done

    def _store(self, key: str, probs: VerdictProbs) -> None:
        if self.cache is not None and probs.ok:
            self.cache.put(key, self.identity, ChatResult(text=json.dumps({"first": probs.first, "mass": probs.mass})))

    def score_many(self, convs: list[Sequence[Turn]], progress: Progress | None = None) -> list[VerdictProbs]:
        """VerdictProbs per conversation, in input order; failures are errors, never raised."""
        keys, done = self._lookup(convs)
        if progress and done:
            progress(sum(1 for k in keys if k in done))
        todo = {k: c for k, c in zip(keys, convs, strict=True) if k not in done}
        if todo:
            for k, probs in self._score(list(todo.items()), progress):
                done[k] = probs
                self._store(k, probs)
            if self.cache is not None:
                self.cache.flush()
        return [done[k] for k in keys]

    @abstractmethod
    def _score(self, items: list[tuple[str, Sequence[Turn]]], progress: Progress | None):
        """Yield (key, VerdictProbs) for each uncached item: a local forward pass or an endpoint request."""


def _open_cache(cache_dir: str | Path | None, use_cache: bool, sub: str) -> ChatCache | None:
    if not use_cache:
        return None
    return ChatCache(Path(cache_dir) if cache_dir else default_cache_dir() / sub)


class LocalVerdictScorer(_Cached):
    """Verdict probabilities from a local Hugging Face checkpoint: one forward pass per prompt."""

    def __init__(self, model_path: str | Path, *, tokens: tuple[str, str] = VERDICT_TOKENS, batch_size: int = 8,
                 device: str | None = None, cache_dir: str | Path | None = None, use_cache: bool = True) -> None:
        from harness_ext.llm.local import checkpoint_identity, require_checkpoint

        self.model_path = require_checkpoint(model_path)
        self.tokens = tuple(tokens)  # type: ignore[assignment]
        self.batch_size = batch_size
        self.device = device
        self.identity = checkpoint_identity(self.model_path) + "|verdict-probs"
        self.cache = _open_cache(cache_dir, use_cache, "judge_local")
        self._backend: Any = None
        self._ids: list[int] = []

    def _load(self) -> None:
        if self._backend is not None:
            return
        from harness_ext.llm.local import load_chat_backend

        self._backend = load_chat_backend(self.model_path, batch_size=self.batch_size, device=self.device)
        tok = self._backend.tokenizer
        for t in self.tokens:
            enc = tok.encode(t, add_special_tokens=False)
            if len(enc) != 1:
                raise InputError(f"the judge's tokenizer splits the verdict token {t!r} into {len(enc)} tokens; "
                                 "the logprob judge needs single-token verdicts.", path=self.model_path,
                                 hint="use the verdict judge (judge.method: verdicts) with this model.")
            self._ids.append(enc[0])

    def _score(self, items: list[tuple[str, Sequence[Turn]]], progress: Progress | None):
        import torch

        self._load()
        b = self._backend
        encoded = [(k, b.prompter.encode(list(c))) for k, c in items]
        encoded.sort(key=lambda kv: len(kv[1]))  # similar lengths in a batch waste less padding
        ids = torch.tensor(self._ids)
        for start in range(0, len(encoded), self.batch_size):
            batch = encoded[start:start + self.batch_size]
            width = max(len(p) for _, p in batch)
            input_ids = torch.full((len(batch), width), b.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, p) in enumerate(batch):  # left padding: the last column is every row's next token
                input_ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
                mask[row, width - len(p):] = 1
            try:
                with torch.inference_mode():
                    logits = b.model(input_ids=input_ids.to(b.device), attention_mask=mask.to(b.device)).logits[:, -1, :]
                probs = logits.float().softmax(dim=-1)[:, ids.to(logits.device)].cpu().tolist()
                results = [_from_probs(p1, p2) for p1, p2 in probs]
            except (RuntimeError, ValueError) as exc:  # out of memory, a prompt over the context
                log.warning("local verdict scoring failed for a batch: %s", exc)
                results = [VerdictProbs(None, error=f"local scoring failed: {exc}"[:500]) for _ in batch]
            yield from zip((k for k, _ in batch), results, strict=True)
            if progress:
                progress(len(batch))


def parse_top_logprobs(body: Any, tokens: Sequence[str]) -> VerdictProbs:
    """VerdictProbs from a chat-completion body requested with logprobs=true and top_logprobs=N.

    Variants of a token with surrounding whitespace count as that token; a token absent from the
    top N counts as probability 0.

    >>> entry = {"token": "A", "logprob": -0.2, "top_logprobs": [
    ...     {"token": "A", "logprob": math.log(0.6)}, {"token": " B", "logprob": math.log(0.2)},
    ...     {"token": "The", "logprob": math.log(0.1)}]}
    >>> p = parse_top_logprobs({"choices": [{"logprobs": {"content": [entry]}}]}, ("A", "B"))
    >>> round(p.first, 3), round(p.mass, 3)
    (0.75, 0.8)
    >>> parse_top_logprobs({"choices": [{"logprobs": None}]}, ("A", "B")).error
    'the reply carries no logprobs (does the endpoint support logprobs=true?)'
    """
    try:
        content = body["choices"][0]["logprobs"]["content"]
        top = content[0]["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        return VerdictProbs(None, error="the reply carries no logprobs (does the endpoint support logprobs=true?)")
    p = [0.0, 0.0]
    for entry in top:
        try:
            token, lp = str(entry["token"]).strip(), float(entry["logprob"])
        except (KeyError, TypeError, ValueError):
            continue
        if token in tokens:
            p[tokens.index(token)] += math.exp(lp)
    if p == [0.0, 0.0]:
        return VerdictProbs(None, 0.0, error=f"neither {tokens[0]!r} nor {tokens[1]!r} among the top "
                                             f"{len(top)} next tokens")
    return _from_probs(p[0], p[1])


class EndpointVerdictScorer(_Cached):
    """Verdict probabilities from an OpenAI-compatible endpoint that returns logprobs."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 tokens: tuple[str, str] = VERDICT_TOKENS, options: EndpointOptions | None = None) -> None:
        from harness_ext.llm.client import resolve_api_key, resolve_base_url

        opts = options or EndpointOptions()
        self.model = model
        self.base_url = resolve_base_url(base_url)
        self._api_key = resolve_api_key(api_key, self.base_url)
        self.tokens = tuple(tokens)  # type: ignore[assignment]
        self.opts = opts
        self.identity = f"endpoint:{self.base_url or 'openai'}:{model}|verdict-logprobs:{opts.top_logprobs}"
        self.cache = _open_cache(opts.cache_dir, opts.use_cache, "judge")

    def __repr__(self) -> str:  # never the key
        return f"EndpointVerdictScorer({self.model!r}, base_url={self.base_url!r})"

    def _one(self, sdk: Any, conv: Sequence[Turn]) -> VerdictProbs:
        import openai

        from harness_ext.llm.client import redact

        body = {"model": self.model, "messages": [{"role": t.role, "content": t.content} for t in conv],
                "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": self.opts.top_logprobs}
        try:
            resp = sdk.post("/chat/completions", body=body, cast_to=dict)
        except openai.OpenAIError as exc:  # the SDK already retried 429/5xx/timeouts max_retries times
            return VerdictProbs(None, error=redact(f"{type(exc).__name__}: {exc}"[:500], self._api_key))
        return parse_top_logprobs(resp, self.tokens)

    def _score(self, items: list[tuple[str, Sequence[Turn]]], progress: Progress | None):
        import openai

        sdk = openai.OpenAI(base_url=self.base_url, api_key=self._api_key, max_retries=self.opts.max_retries,
                            timeout=self.opts.timeout)
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.opts.concurrency)) as pool:
                for k, probs in zip((k for k, _ in items), pool.map(lambda kv: self._one(sdk, kv[1]), items),
                                    strict=True):
                    yield k, probs
                    if progress:
                        progress(1)
        finally:
            sdk.close()


@dataclass(frozen=True)
class EndpointOptions:
    """How EndpointVerdictScorer talks to its endpoint."""

    concurrency: int = 16
    max_retries: int = 8
    timeout: float = 120.0
    top_logprobs: int = TOP_LOGPROBS
    cache_dir: str | Path | None = None
    use_cache: bool = True

"""A local transformers judge: the ChatClient protocol without any server, for offline use.

Greedy decoding through the hf generation backend (batched, left padding) with the checkpoint's
own chat template. Answers are cached like the API client's (keyed by the checkpoint's identity
rather than a model name), so an interrupted local judging run also resumes. Meant for small judges (SmolLM2-135M-Instruct or any
local checkpoint) in demos and tests; for real judging serve a strong model with `vllm serve` and
use the OpenAI-compatible client.

`digit_scores=N` is for judges too small to follow an output format (a 135M model mostly echoes
the prompt): instead of generating free text, the client reads N scores from the model's
next-token distribution restricted to the digits 1-9: each score is the probability-weighted mean
digit, and the most likely digit and a space are appended (what greedy decoding would write)
before the next score is read. The scores form the reply's first line, and the reply says how it
was produced. Scores above 9 cannot occur in this mode.

For a pairwise judge free of position bias, see llm/logprob_judge.py (verdict-token
probabilities in both answer orders, no generation).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from harness_ext.core.errors import InputError, require
from harness_ext.core.paths import cache_dir as default_cache_dir
from harness_ext.core.records import ChatRequest, ChatResult
from harness_ext.llm.cache import ChatCache, request_key

log = logging.getLogger(__name__)


def checkpoint_identity(path: Path) -> str:
    """Path plus size and mtime of the weight and config files: retrained weights get a new cache key."""
    parts = [str(path.resolve())]
    for f in sorted(path.iterdir()):
        if f.suffix in {".safetensors", ".bin", ".json", ".model", ".gguf"}:
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    return "local:" + "|".join(parts)


def require_checkpoint(model_path: str | Path) -> Path:
    """`model_path` as a Path, if it is a Hugging Face checkpoint folder (else one clear InputError)."""
    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise InputError("not a Hugging Face checkpoint folder (no config.json).", path=path,
                         hint="give a folder saved with save_pretrained (e.g. a downloaded "
                         "SmolLM2-135M-Instruct snapshot) or a trained harness-ext checkpoint.")
    return path


def load_chat_backend(model_path: Path, *, batch_size: int = 8, device: str | None = None) -> Any:
    """The hf generation backend on a judge checkpoint, prompting with the checkpoint's chat template:
    the one place that loads a transformers model for generation (the judge scorers read its
    model, tokenizer and prompter too)."""
    require("torch", extra="generate", purpose="the local judge")
    require("transformers", extra="generate", purpose="the local judge")
    from harness_ext.generate.backends.hf import HFBackend

    try:
        tok_has_template = _has_chat_template(model_path)
        if not tok_has_template:
            raise InputError("the checkpoint's tokenizer has no chat template.", path=model_path,
                             hint="use an instruction-tuned checkpoint (with tokenizer_config.json chat_template).")
        backend = HFBackend(str(model_path), prompt_format="chat-template", batch_size=batch_size, device=device)
    except InputError as exc:
        if "could not load" in exc.message:
            exc.hint = ("give the local judge a checkpoint folder holding config.json, the weights and the "
                        "tokenizer files (a save_pretrained folder, or a trained harness-ext checkpoint).")
        raise
    return backend


def _has_chat_template(model_path: Path) -> bool:
    """Whether the checkpoint's tokenizer files carry a chat template (a missing tokenizer reads as
    True here: loading it then fails with the loader's own message)."""
    import json

    cfg = model_path / "tokenizer_config.json"
    if not cfg.is_file():
        return True
    if (model_path / "chat_template.jinja").is_file() or (model_path / "chat_template.json").is_file():
        return True
    try:
        return bool(json.loads(cfg.read_text(encoding="utf-8")).get("chat_template"))
    except ValueError:
        return True


class LocalChatClient:
    """A records.ChatClient answering with a local Hugging Face causal LM (greedy, batched)."""

    def __init__(self, model_path: str | Path, *, batch_size: int = 8, max_new_tokens: int = 512,
                 device: str | None = None, cache_dir: str | Path | None = None, use_cache: bool = True,
                 digit_scores: int = 0) -> None:
        self.model_path = require_checkpoint(model_path)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.device = device
        if digit_scores < 0:
            raise InputError(f"digit_scores must be >= 0, got {digit_scores}.")
        self.digit_scores = digit_scores
        self.identity = checkpoint_identity(self.model_path) + (
            f"|digit_scores={digit_scores}:mean-of-digits" if digit_scores else "")
        self.cache = (ChatCache(Path(cache_dir) if cache_dir else default_cache_dir() / "judge_local")
                      if use_cache else None)
        self._backend: Any = None

    def __repr__(self) -> str:
        return f"LocalChatClient({str(self.model_path)!r}, batch_size={self.batch_size})"

    def _load(self) -> None:
        if self._backend is None:
            self._backend = load_chat_backend(self.model_path, batch_size=self.batch_size, device=self.device)
            self._tok = self._backend.tokenizer
            self._tok.padding_side = "left"  # the digit reader continues from the right edge of every row
            self._model = self._backend.model
            self.device = self._backend.device

    def _key(self, r: ChatRequest) -> str:
        return request_key(ChatRequest(self.identity, r.messages, r.params))

    def complete_many(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """Answer in input order; a batch that fails becomes errors for its requests, never raised."""
        keys = [self._key(r) for r in requests]
        done: dict[str, ChatResult] = {}
        todo: dict[str, ChatRequest] = {}
        for k, r in zip(keys, requests, strict=True):
            hit = self.cache.get(k) if self.cache is not None else None
            if hit is not None:
                done[k] = hit
            elif k not in todo:
                todo[k] = r
        if todo:
            self._load()
            items = list(todo.items())
            # similar lengths in a batch waste less padding
            items.sort(key=lambda kv: sum(len(t.content) for t in kv[1].messages))
            for start in range(0, len(items), self.batch_size):
                batch = items[start:start + self.batch_size]
                answer = self._digits if self.digit_scores else self._generate
                for (k, _), res in zip(batch, answer([r for _, r in batch]), strict=True):
                    done[k] = res
                    if res.ok and self.cache is not None:
                        self.cache.put(k, self.identity, res)
        return [done[k] for k in keys]

    def _prompts(self, batch: list[ChatRequest]) -> list[str]:
        return [self._backend.prompter.render(list(r.messages)) for r in batch]

    def _digit_ids(self) -> list[int]:
        ids = []
        for d in "123456789":
            enc = self._tok.encode(d, add_special_tokens=False)
            if len(enc) != 1:
                raise InputError(f"the judge's tokenizer splits the digit {d!r} into {len(enc)} tokens; "
                                 "digit_scores needs single-token digits.", path=self.model_path,
                                 hint="use free-text judging (digit_scores=0) with this model.")
            ids.append(enc[0])
        return ids

    def _digits(self, batch: list[ChatRequest]) -> list[ChatResult]:
        """Read `digit_scores` scores from next-token probabilities over the digits 1-9."""
        import torch

        digit_ids = torch.tensor(self._digit_ids())
        values = torch.arange(1, 10, dtype=torch.float32)
        prompts = self._prompts(batch)
        greedy: list[list[int]] = [[] for _ in batch]
        scores: list[list[float]] = [[] for _ in batch]
        try:
            for _ in range(self.digit_scores):
                texts = [p + "".join(f"{d} " for d in g) for p, g in zip(prompts, greedy, strict=True)]
                enc = self._tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
                with torch.no_grad():
                    logits = self._model(**enc).logits[:, -1, :]  # left padding: the last column is each row's next token
                probs = logits[:, digit_ids.to(logits.device)].float().softmax(dim=-1).cpu()
                for g, sc, row in zip(greedy, scores, probs, strict=True):
                    g.append(int(row.argmax()) + 1)
                    sc.append(float((row * values).sum()))
        except (RuntimeError, ValueError) as exc:
            log.warning("local judge batch failed: %s", exc)
            return [ChatResult(text=None, error=f"local scoring failed: {exc}"[:500]) for _ in batch]
        note = ("(each score is the probability-weighted mean of the digits 1-9 as the judge's next token; "
                "no justification generated)")
        return [ChatResult(text=" ".join(f"{x:.2f}" for x in sc) + "\n" + note, prompt_tokens=None,
                           completion_tokens=0, finish_reason="stop") for sc in scores]

    def _generate(self, batch: list[ChatRequest]) -> list[ChatResult]:
        """Greedy answers through the hf backend's generation loop (one call per distinct max_tokens)."""
        from harness_ext.core.records import SamplingParams

        results: list[ChatResult | None] = [None] * len(batch)
        limits = [int(r.params_dict().get("max_tokens") or self.max_new_tokens) for r in batch]
        for limit in sorted(set(limits)):
            idx = [i for i, n in enumerate(limits) if n == limit]
            try:
                outs = self._backend.generate([list(batch[i].messages) for i in idx],
                                              SamplingParams(max_new_tokens=limit, temperature=0.0))
            except (RuntimeError, ValueError) as exc:  # e.g. out of memory, a prompt over the context
                log.warning("local judge batch failed: %s", exc)
                outs = [None] * len(idx)
                err = f"local generation failed: {exc}"[:500]
            for i, c in zip(idx, outs, strict=True):
                results[i] = (ChatResult(text=None, error=err) if c is None else
                              ChatResult(text=c.text, prompt_tokens=c.prompt_tokens,
                                         completion_tokens=c.completion_tokens, finish_reason=c.finish_reason))
        return [r for r in results if r is not None]


def make_local_client(model_path: str | Path, **kwargs: Any) -> LocalChatClient:
    """A local transformers ChatClient (greedy, batched, cached); see LocalChatClient."""
    return LocalChatClient(model_path, **kwargs)

"""A local transformers judge: the ChatClient protocol without any server, for offline use.

Greedy decoding, batched with left padding, the checkpoint's own chat template. Answers are
cached like the API client's (keyed by the checkpoint's identity rather than a model name), so an
interrupted local judging run also resumes. Meant for small judges (SmolLM2-135M-Instruct or any
local checkpoint) in demos and tests; for real judging serve a strong model with `vllm serve` and
use the OpenAI-compatible client.

`digit_scores=N` is for judges too small to follow an output format (a 135M model mostly echoes
the prompt): instead of generating free text, the client reads N scores from the model's
next-token distribution restricted to the digits 1-9: each score is the probability-weighted mean
digit, and the most likely digit and a space are appended (what greedy decoding would write)
before the next score is read. The scores form the reply's first line, and the reply says how it
was produced. Scores above 9 cannot occur in this mode.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from harness_ext.core.errors import InputError, require
from harness_ext.llm.cache import ChatCache, request_key
from harness_ext.core.paths import cache_dir as default_cache_dir
from harness_ext.core.records import ChatRequest, ChatResult

log = logging.getLogger(__name__)


def _identity(path: Path) -> str:
    """Path plus size and mtime of the weight and config files: retrained weights get a new cache key."""
    parts = [str(path.resolve())]
    for f in sorted(path.iterdir()):
        if f.suffix in {".safetensors", ".bin", ".json", ".model", ".gguf"}:
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    return "local:" + "|".join(parts)


class LocalChatClient:
    """A records.ChatClient answering with a local Hugging Face causal LM (greedy, batched)."""

    def __init__(self, model_path: str | Path, *, batch_size: int = 8, max_new_tokens: int = 512,
                 device: str | None = None, cache_dir: str | Path | None = None, use_cache: bool = True,
                 dtype: str = "auto", digit_scores: int = 0) -> None:
        self.model_path = Path(model_path)
        if not (self.model_path / "config.json").is_file():
            raise InputError("not a Hugging Face checkpoint folder (no config.json).", path=self.model_path,
                             hint="give a folder saved with save_pretrained (e.g. a downloaded "
                             "SmolLM2-135M-Instruct snapshot) or a trained harness-ext checkpoint.")
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.dtype = dtype
        if digit_scores < 0:
            raise InputError(f"digit_scores must be >= 0, got {digit_scores}.")
        self.digit_scores = digit_scores
        self.identity = _identity(self.model_path) + (f"|digit_scores={digit_scores}:mean-of-digits" if digit_scores else "")
        self.cache = (ChatCache(Path(cache_dir) if cache_dir else default_cache_dir() / "judge_local")
                      if use_cache else None)
        self._model: Any = None
        self._tok: Any = None

    def __repr__(self) -> str:
        return f"LocalChatClient({str(self.model_path)!r}, batch_size={self.batch_size})"

    def _load(self) -> None:
        if self._model is not None:
            return
        torch = require("torch", extra="generate", purpose="the local judge")
        transformers = require("transformers", extra="generate", purpose="the local judge")
        try:
            self._tok = transformers.AutoTokenizer.from_pretrained(self.model_path)
        except (OSError, ValueError) as exc:  # no tokenizer files, or files transformers cannot read
            raise _judge_load_error(self.model_path, exc) from None
        self._tok.padding_side = "left"  # generation continues from the right edge of every row
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        if not getattr(self._tok, "chat_template", None):
            raise InputError("the checkpoint's tokenizer has no chat template.", path=self.model_path,
                             hint="use an instruction-tuned checkpoint (with tokenizer_config.json chat_template).")
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self._model = transformers.AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)
        except (OSError, ValueError) as exc:  # no weights, an unknown architecture, a broken config
            raise _judge_load_error(self.model_path, exc) from None
        self._model.to(device).eval()
        self.device = device
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))

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
        return [self._tok.apply_chat_template([{"role": t.role, "content": t.content} for t in r.messages],
                                              tokenize=False, add_generation_prompt=True) for r in batch]

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
        import torch

        try:
            prompts = self._prompts(batch)
            enc = self._tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            max_new = max(int(r.params_dict().get("max_tokens") or self.max_new_tokens) for r in batch)
            with torch.no_grad():
                out = self._model.generate(**enc, do_sample=False, max_new_tokens=max_new,
                                           pad_token_id=self._tok.pad_token_id)
        except (RuntimeError, ValueError) as exc:  # e.g. out of memory, a prompt over the context
            log.warning("local judge batch failed: %s", exc)
            return [ChatResult(text=None, error=f"local generation failed: {exc}"[:500]) for _ in batch]
        width = enc["input_ids"].shape[1]
        eos = self._tok.eos_token_id
        results = []
        for i, r in enumerate(batch):
            limit = int(r.params_dict().get("max_tokens") or self.max_new_tokens)
            # greedy decoding: cutting a longer generation at this request's limit equals generating to it
            new = out[i, width:width + limit].tolist()
            ended = eos in new or self._tok.pad_token_id in new
            for stop in (eos, self._tok.pad_token_id):
                if stop in new:
                    new = new[:new.index(stop)]
            results.append(ChatResult(text=self._tok.decode(new, skip_special_tokens=True),
                                      prompt_tokens=int(enc["attention_mask"][i].sum()),
                                      completion_tokens=len(new), finish_reason="stop" if ended else "length"))
        return results


def _judge_load_error(path: Path, exc: Exception) -> InputError:
    from harness_ext.generate.backends.hf import load_error

    err = load_error(str(path), exc)
    err.hint = ("give the local judge a checkpoint folder holding config.json, the weights and the tokenizer "
                "files (a save_pretrained folder, or a trained harness-ext checkpoint).")
    return err


def make_local_client(model_path: str | Path, **kwargs: Any) -> LocalChatClient:
    """A local transformers ChatClient (greedy, batched, cached); see LocalChatClient."""
    return LocalChatClient(model_path, **kwargs)

"""The transformers backend: batched generation on CPU or GPU.

Prompts are sorted by token length and cut into batches, so each batch pads little (left padding,
as decoder-only generation needs the last prompt token at the same position in every row). Single
token end-of-turn markers of the prompt format count as end-of-sequence, so `min_new_tokens`
postpones them as well; longer stop strings end a row through a stopping criterion.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from harness_ext.core.errors import ConfigError, InputError, did_you_mean, unknown
from harness_ext.core.records import Completion, SamplingParams, Turn
from harness_ext.generate.backends.prompting import (
    Prompter,
    answer_cap,
    context_length_of,
    resolve_prompt_format,
    split_model_path,
)

log = logging.getLogger(__name__)

#: --dtype values (torch dtype names; "auto": bfloat16 on a GPU, float32 on the CPU).
DTYPES = ("auto", "bfloat16", "float16", "float32")
_DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_dtype(dtype: str | None) -> None:
    """Reject a dtype name that is not in DTYPES (with a did-you-mean)."""
    if dtype is not None and dtype not in DTYPES:
        raise unknown("dtype", dtype, DTYPES)


def resolve_device(device: str | None) -> str:
    """The device to run on: `device` checked against what this machine has, else cuda when
    available, else cpu. A name torch does not know or a device that is absent is a ConfigError."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        kind = None
    if kind not in _DEVICE_TYPES:
        close = " Did you mean 'cuda'?" if device.lower().startswith("gpu") else did_you_mean(device, _DEVICE_TYPES)
        raise ConfigError(f"device '{device}' is not a device the hf backend can use.{close}",
                          hint="use --device cpu, cuda, cuda:N or mps (or leave it out: cuda when available, else cpu).")
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = "this torch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"device '{device}' asked for, but {why}.",
                              hint="use --device cpu, or leave --device out to use a GPU only when there is one.")
        index, count = torch.device(device).index, torch.cuda.device_count()
        if index is not None and index >= count:
            raise ConfigError(f"device '{device}' asked for, but this machine has {count} CUDA device(s).",
                              hint=f"use cuda:0 .. cuda:{count - 1}, or set CUDA_VISIBLE_DEVICES.")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device '{device}' asked for, but MPS (Apple GPU) is not available here.",
                          hint="use --device cpu.")
    return device


def load_error(model_dir: str, exc: Exception) -> InputError:
    """One line for a model or tokenizer that transformers could not load from `model_dir`."""
    from pathlib import Path

    text = " ".join(str(exc).split()) or type(exc).__name__  # one line; transformers' messages run long
    first = text if len(text) <= 300 else text[:297] + "..."
    if Path(model_dir).is_dir():
        return InputError(f"could not load a model from this folder: {first}", path=model_dir,
                          hint="point --model at a checkpoint folder holding config.json, the weights and the "
                          "tokenizer files (what `harness-ext train` writes), or at a .gguf file.")
    return InputError(
        f"'{model_dir}' is not a local model directory and could not be loaded from the hub: {first}",
        hint="check the --model path; a hub id needs the network, or the model already in the local "
        "Hugging Face cache when offline (HF_HUB_OFFLINE=1).",
    )


def validate_params(params: SamplingParams) -> None:
    """Reject sampling parameters no backend can honour, naming the option and the fix."""
    if params.max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {params.max_new_tokens}.",
                          hint="pass --max-new-tokens N with N >= 1 (paper: 2048).")
    if params.min_new_tokens < 0 or params.min_new_tokens > params.max_new_tokens:
        raise ConfigError(
            f"min_new_tokens must be between 0 and max_new_tokens ({params.max_new_tokens}), "
            f"got {params.min_new_tokens}.",
            hint="lower --min-new-tokens or raise --max-new-tokens.",
        )
    if not params.temperature >= 0:  # also catches nan
        raise ConfigError(f"temperature must be >= 0, got {params.temperature}.",
                          hint="pass --temperature 0 (greedy) or a positive value such as 0.7.")
    if not 0 < params.top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {params.top_p}.", hint="pass --top-p in (0, 1], e.g. 1.0.")


def trim_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; returns (text, whether one was found).

    >>> trim_at_stop("Sure.</s>USER: hi", ["USER:", "</s>"])
    ('Sure.', True)
    >>> trim_at_stop("no stop here", ["###"])
    ('no stop here', False)
    """
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _stop_criteria(tokenizer: Any, stops: Sequence[str], prompt_len: int, min_new: int) -> Any:
    """A transformers StoppingCriteria ending each row once its new text contains a stop string."""
    import torch
    from transformers import StoppingCriteria

    window = max(len(s) for s in stops) + 4  # tokens; every token decodes to >= 1 character

    class _StopOnText(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            new = input_ids[:, prompt_len:]
            if new.shape[1] < max(1, min_new):
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            tails = tokenizer.batch_decode(new[:, -window:], skip_special_tokens=False)
            hit = [any(s in t for s in stops) for t in tails]
            return torch.tensor(hit, dtype=torch.bool, device=input_ids.device)

    return _StopOnText()


class HFBackend:
    """transformers AutoModelForCausalLM behind the Backend protocol."""

    name = "hf"

    def __init__(
        self,
        model: str,
        *,
        prompt_format: str | None = None,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str | None = None,
        context_length: int | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
        check_dtype(dtype)
        self.device = resolve_device(device)
        model_dir, gguf_file = split_model_path(model)
        if not gguf_file and os.path.isdir(model_dir) and not os.path.isfile(os.path.join(model_dir, "config.json")):
            raise InputError("is not a model folder (no config.json in it).", path=model_dir,
                             hint="point --model at a checkpoint folder (config.json + weights + tokenizer) "
                             "or at a .gguf file.")
        self.model_path = str(model)
        self.batch_size = batch_size
        load_kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf_file:
            load_kw["gguf_file"] = gguf_file
        torch_dtype = getattr(torch, dtype) if dtype and dtype != "auto" else (
            torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir, **load_kw)
            self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype, **load_kw)
        except (OSError, ValueError) as exc:  # missing files, unknown model type, no network for a hub id
            raise load_error(model_dir, exc) from exc
        self.model.to(self.device).eval()
        fmt_name, fmt = resolve_prompt_format(model_dir, self.tokenizer, prompt_format)
        self.prompter = Prompter(
            self.tokenizer, fmt, fmt_name, context_length or context_length_of(self.model.config, self.tokenizer)
        )
        self.prompt_format = fmt_name
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self._eos_ids()[0]

    def _eos_ids(self, extra_stops: Sequence[str] = ()) -> list[int]:
        ids: list[int] = []
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            for i in source if isinstance(source, (list, tuple)) else [source]:
                if i is not None and int(i) not in ids:
                    ids.append(int(i))
        for i in self.prompter.single_token_ids([*self.prompter.stop, *extra_stops]):
            if i not in ids:
                ids.append(i)
        if not ids:
            raise ConfigError(f"model {self.model_path} defines no end-of-sequence token.",
                              hint="set eos_token_id in its generation_config.json.")
        return ids

    def generate(self, conversations: list[list[Turn]], params: SamplingParams) -> list[Completion]:
        """One Completion per conversation, in input order."""
        import torch
        from transformers import set_seed

        validate_params(params)
        prompts = [self.prompter.encode(c) for c in conversations]
        eos_ids = self._eos_ids(params.stop)
        # Single-token stops are also end-of-sequence ids (so min_new_tokens holds them back), but
        # their text can also appear inside a longer token, so every stop gets the text criterion.
        stops = [s for s in (*self.prompter.stop, *params.stop) if s]
        set_seed(params.seed)
        # Longest first: a batch that does not fit in memory fails at once, not after an hour.
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        results: list[Completion | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = [prompts[i] for i in idx]
            width = max(len(p) for p in batch)
            cap = answer_cap(self.prompter.context_length, width, params.max_new_tokens)
            input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, p in enumerate(batch):
                input_ids[row, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                mask[row, width - len(p) :] = 1
            gen_kw: dict[str, Any] = {
                "max_new_tokens": cap,
                "min_new_tokens": min(params.min_new_tokens, cap) or None,
                "eos_token_id": eos_ids,
                "pad_token_id": self.pad_id,
                "do_sample": params.temperature > 0,
            }
            if params.temperature > 0:
                gen_kw.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
            else:  # greedy: clear sampling knobs a checkpoint's generation_config may carry
                gen_kw.update(temperature=None, top_p=None, top_k=None)
            if stops:
                gen_kw["stopping_criteria"] = [_stop_criteria(self.tokenizer, stops, width, params.min_new_tokens)]
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device), **gen_kw
                )
            new_tokens = out[:, width:].tolist()
            for row, i in enumerate(idx):
                results[i] = self._completion(new_tokens[row], len(prompts[i]), cap, eos_ids, stops)
        return [r for r in results if r is not None]

    def _completion(
        self, tokens: list[int], prompt_tokens: int, cap: int, eos_ids: list[int], stops: Sequence[str]
    ) -> Completion:
        eos_at = next((k for k, t in enumerate(tokens) if t in eos_ids), None)
        answer = tokens if eos_at is None else tokens[:eos_at]
        text = self.tokenizer.decode(answer, skip_special_tokens=False)
        text, stopped = trim_at_stop(text, stops)
        if stopped:  # count the tokens generated up to the one that completed the stop string
            answer = answer[: self._tokens_until_stop(answer, stops)]
        text = self._strip_special(text)
        if eos_at is not None or stopped:
            reason = "stop"
        else:
            reason = "length" if len(answer) >= cap else "stop"
        return Completion(text=text.strip(), prompt_tokens=prompt_tokens,
                          completion_tokens=len(answer), finish_reason=reason)

    def _tokens_until_stop(self, tokens: list[int], stops: Sequence[str]) -> int:
        lo, hi = 1, len(tokens)
        while lo < hi:  # smallest prefix whose text contains a stop string
            mid = (lo + hi) // 2
            if trim_at_stop(self.tokenizer.decode(tokens[:mid], skip_special_tokens=False), stops)[1]:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _strip_special(self, text: str) -> str:
        for tok in self.tokenizer.all_special_tokens:
            if tok and tok != self.tokenizer.unk_token:
                text = text.replace(tok, "")
        return text

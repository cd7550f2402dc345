"""Turning conversations into model prompts for local backends (hf, vllm).

A `Prompter` holds the tokenizer and the resolved prompt format. Both local backends use it, so a
prompt is rendered and tokenized the same way whichever engine generates from it, and generate.py
uses it to find prompts that do not fit the context window and cut them from the left.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness_ext.core.errors import InputError
from harness_ext.core.records import Turn

log = logging.getLogger(__name__)

# Config attributes that hold a model's context window, in the order transformers models use them.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")


def split_model_path(model: str | Path) -> tuple[str, str | None]:
    """Return (model dir or hub id, gguf file name or None); a path to a .gguf file is split."""
    p = Path(model).expanduser()
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise InputError("GGUF file not found.", path=p, hint="check the --model path.")
        return str(p.parent), p.name
    if p.exists():
        if not p.is_dir():
            raise InputError(
                "is neither a model folder nor a .gguf file.", path=p,
                hint="point --model at a checkpoint folder (config.json + weights) or a .gguf file.",
            )
        return str(p), None
    looks_like_path = str(model).startswith((".", "/", "~")) or str(model).count("/") > 1
    if looks_like_path:
        raise InputError("model folder not found.", path=p, hint="check the --model path.")
    return str(model), None  # a hub id such as "org/name"; loading it may need the network


def context_length_of(config: Any, tokenizer: Any = None) -> int | None:
    """The context window from a model config (or a sane tokenizer.model_max_length), or None."""
    for key in _CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    text_config = getattr(config, "text_config", None)
    if text_config is not None and text_config is not config:
        return context_length_of(text_config)
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10_000_000:  # huge values mean "not set"
        return limit
    return None


def resolve_prompt_format(model_dir: str | None, tokenizer: Any, requested: str | None) -> tuple[str, Any]:
    """Pick the prompt format (formats.resolve_format): --prompt-format if given, else the one the
    trainer recorded in the checkpoint, else the tokenizer's chat template, else vicuna (the
    paper's). Asking for chat-template from a tokenizer without one is a ConfigError."""
    from harness_ext.llm.formats import load_format, resolve_format

    recorded = load_format(model_dir) if model_dir and Path(model_dir).is_dir() else None
    if requested and recorded and recorded != requested:
        log.warning("model %s was trained with prompt format %r but %r was requested; using %r.",
                    model_dir, recorded, requested, requested)
    fmt = resolve_format(model_dir, tokenizer, requested)
    return fmt.name, fmt


class Prompter:
    """Renders conversations with one prompt format and tokenizes them with one tokenizer."""

    def __init__(self, tokenizer: Any, fmt: Any, format_name: str, context_length: int | None) -> None:
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.format_name = format_name
        self.context_length = context_length

    @property
    def stop(self) -> tuple[str, ...]:
        return tuple(getattr(self.fmt, "stop", ()) or ())

    def render(self, conversation: Sequence[Turn]) -> str:
        return self.fmt.render(list(conversation), add_generation_prompt=True)

    def encode_text(self, text: str) -> list[int]:
        # A template that writes the BOS token itself must not get a second one from the tokenizer.
        bos = getattr(self.tokenizer, "bos_token", None)
        add_special = not (bos and text.startswith(bos))
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def encode(self, conversation: Sequence[Turn]) -> list[int]:
        return self.encode_text(self.render(conversation))

    def single_token_ids(self, texts: Sequence[str]) -> list[int]:
        """Ids of the strings in `texts` that are exactly one token (end-of-turn markers such as
        <|im_end|>): backends treat them as end-of-sequence so min_new_tokens suppresses them too."""
        ids = []
        for text in texts:
            enc = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(enc) == 1:
                ids.append(int(enc[0]))
        return ids

    def fit(self, conversation: Sequence[Turn], limit: int) -> tuple[list[Turn], int] | None:
        """Cut the conversation from the left until its prompt has at most `limit` tokens.

        The template stays intact: text is removed from the start of the earliest user/assistant
        turns (the end of an instruction usually holds the actual question). Returns the fitted
        conversation and its token count, or None when even empty turns do not fit.
        """
        conv = list(conversation)
        n = len(self.encode(conv))
        if n <= limit:
            return conv, n
        for _ in range(4 * len(conv) + 8):  # re-tokenizing a cut can shift a token or two; loop
            excess = n - limit
            idx = next((i for i, t in enumerate(conv) if t.role != "system" and t.content), None)
            if idx is None:
                return None
            ids = self.tokenizer(conv[idx].content, add_special_tokens=False)["input_ids"]
            keep = ids[excess:] if excess < len(ids) else []
            text = self.tokenizer.decode(keep, skip_special_tokens=False) if keep else ""
            conv[idx] = replace(conv[idx], content=text.lstrip() if keep else "")
            n = len(self.encode(conv))
            if n <= limit:
                return conv, n
        return None


def budget(context_length: int | None, max_new_tokens: int) -> tuple[int | None, int]:
    """(longest allowed prompt, room reserved for the answer) for a context window.

    A prompt may use the window minus min(max_new_tokens, half the window): every answered prompt
    has room for at least that many new tokens, and a 4096-token max_new_tokens on a 4096-token
    model still leaves room for prompts (each answer is then capped at the room left).
    """
    if context_length is None:
        return None, max_new_tokens
    reserve = max(1, min(max_new_tokens, context_length // 2))
    return context_length - reserve, reserve


def answer_cap(context_length: int | None, prompt_tokens: int, max_new_tokens: int) -> int:
    """max_new_tokens capped at the room the context window leaves after the prompt."""
    if context_length is None:
        return max_new_tokens
    return max(1, min(max_new_tokens, context_length - prompt_tokens))

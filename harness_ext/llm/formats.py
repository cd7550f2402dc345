"""Prompt formats shared by training and generation.

A checkpoint records the format it was trained with (`save_format`), and generation reads it back
(`load_format`), so training and evaluation cannot silently drift apart.

Formats:
- "vicuna": FastChat's `vicuna_v1.1` conversation template, the format the paper trained with
  (Zhao et al. 2024, Sec. 3.1; they fine-tune with FastChat). The template text is read from the
  installed `fschat` package at run time, not copied here.
- "alpaca": FastChat's `alpaca` conversation template (also read from `fschat`).
- "chat-template": the tokenizer's own chat template (`tokenizer.apply_chat_template`).

FastChat ends an assistant turn with the literal string "</s>", which is the end-of-sequence token
only for Llama-family tokenizers. When a tokenizer is given we end turns with *its* EOS token
instead, so the model learns to stop and generation stops where training taught it to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.errors import ConfigError, InputError, require, unknown
from harness_ext.core.records import Turn

FORMAT_FILE = "harness_ext_format.json"
FORMAT_NAMES = ("vicuna", "alpaca", "chat-template")


@dataclass(frozen=True)
class PromptFormat:
    """Renders conversations to text for one model family."""

    name: str
    _render: Callable[[list[Turn], bool], str]
    stop: tuple[str, ...] = ()

    def render(self, turns: list[Turn], add_generation_prompt: bool) -> str:
        """The text the model sees. With `add_generation_prompt`, ends where the next
        assistant reply begins (the last turn must then be a user turn)."""
        _check_turns(turns, add_generation_prompt)
        return self._render(list(turns), add_generation_prompt)

    def training_segments(self, turns: list[Turn]) -> list[tuple[str, bool]]:
        """Split a full conversation into (text, carries_loss) pieces, in order.

        Every assistant reply (with its end-of-turn marker) carries loss; everything else
        (system text, user turns, role markers) does not. Computed by rendering growing
        prefixes, so it is right for any format whose rendering is prefix-stable.
        """
        _check_turns(turns, False)
        segments: list[tuple[str, bool]] = []
        done = ""
        for i, turn in enumerate(turns):
            if turn.role != "assistant":
                continue
            prompt = self._render(turns[:i], True)
            full = self._render(turns[: i + 1], False)
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise ConfigError(
                    f"prompt format '{self.name}' does not render conversations prefix-stably, so "
                    "response tokens cannot be located for loss masking.",
                    hint="use prompt_format=vicuna or alpaca, or a chat template whose rendering of a "
                    "conversation starts with the rendering of each of its prefixes.",
                )
            if len(prompt) > len(done):
                segments.append((prompt[len(done):], False))
            segments.append((full[len(prompt):], True))
            done = full
        return segments


def _check_turns(turns: list[Turn], add_generation_prompt: bool) -> None:
    if not turns:
        raise InputError("empty conversation: nothing to render.")
    roles = [t.role for t in turns if t.role != "system"]
    for i, role in enumerate(roles):
        want = "user" if i % 2 == 0 else "assistant"
        if role != want:
            raise InputError(
                f"conversation turns must alternate user/assistant starting with user; turn {i} is "
                f"'{role}', expected '{want}'."
            )
    if add_generation_prompt and roles and roles[-1] != "user":
        raise InputError("a generation prompt must end with a user turn.")


def _fastchat_format(name: str, template: str, eos: str | None) -> PromptFormat:
    conversation = require(
        "fastchat.conversation", package="fschat", extra="train", purpose=f"prompt format '{name}'"
    )
    base = conversation.get_conv_template(template)
    end = eos or base.sep2

    def render(turns: list[Turn], add_generation_prompt: bool) -> str:
        conv = base.copy()
        conv.sep2 = end
        for t in turns:
            if t.role == "system":
                conv.set_system_message(t.content)
            else:
                conv.append_message(conv.roles[0] if t.role == "user" else conv.roles[1], t.content)
        if add_generation_prompt:
            conv.append_message(conv.roles[1], None)
        return conv.get_prompt()

    stops = tuple(dict.fromkeys([end, f"{base.roles[0]}:"]))
    return PromptFormat(name, render, stops)


def _chat_template_format(tokenizer: Any) -> PromptFormat:
    if tokenizer is None:
        raise ConfigError("prompt format 'chat-template' needs the model's tokenizer.")
    if not getattr(tokenizer, "chat_template", None):
        source = getattr(tokenizer, "name_or_path", "the tokenizer")
        raise ConfigError(
            f"prompt format 'chat-template' was requested but {source} has no chat template.",
            hint="pass a named format (--prompt-format vicuna or alpaca), or use a model that ships one.",
        )

    def render(turns: list[Turn], add_generation_prompt: bool) -> str:
        messages = [{"role": t.role, "content": t.content} for t in turns]
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    stops = tuple(s for s in [getattr(tokenizer, "eos_token", None)] if s)
    return PromptFormat("chat-template", render, stops)


def get_format(name: str, tokenizer: Any = None) -> PromptFormat:
    """The prompt format called `name`; `tokenizer` supplies the EOS token / chat template."""
    eos = getattr(tokenizer, "eos_token", None) if tokenizer is not None else None
    if name == "vicuna":
        return _fastchat_format(name, "vicuna_v1.1", eos)
    if name == "alpaca":
        return _fastchat_format(name, "alpaca", eos)
    if name == "chat-template":
        return _chat_template_format(tokenizer)
    raise unknown("prompt format", name, FORMAT_NAMES)


def save_format(checkpoint_dir: str | Path, name: str) -> Path:
    """Record the prompt format a checkpoint was trained with."""
    from harness_ext.core.artifacts import atomic_write_json

    if name not in FORMAT_NAMES:
        raise unknown("prompt format", name, FORMAT_NAMES)
    return atomic_write_json(Path(checkpoint_dir) / FORMAT_FILE, {"prompt_format": name, "schema": 1})


def load_format(checkpoint_dir: str | Path) -> str | None:
    """The prompt format recorded in a checkpoint, or None when it has none (any model path)."""
    path = Path(checkpoint_dir) / FORMAT_FILE
    if not path.is_file():
        return None
    try:
        name = json.loads(path.read_text(encoding="utf-8"))["prompt_format"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable prompt-format record ({exc}).", path=path,
                         hint="delete it and pass --prompt-format explicitly.") from None
    if name not in FORMAT_NAMES:
        raise InputError(f"unknown prompt format '{name}' recorded.", path=path,
                         hint=f"use one of: {', '.join(FORMAT_NAMES)}")
    return name


def resolve_format(model_dir: str | Path | None, tokenizer: Any, requested: str | None = None) -> PromptFormat:
    """Pick the format for generation: the requested one, else the one the checkpoint recorded,
    else the model's chat template, else vicuna (the paper's)."""
    if requested:
        return get_format(requested, tokenizer)
    recorded = load_format(model_dir) if model_dir is not None and Path(model_dir).is_dir() else None
    if recorded:
        return get_format(recorded, tokenizer)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return get_format("chat-template", tokenizer)
    return get_format("vicuna", tokenizer)

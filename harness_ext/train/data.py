"""Training data: read selected examples, render them with a prompt format, and build token ids
with labels that carry loss on response tokens only (every prompt token is labelled -100).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import iter_jsonl, read_json
from harness_ext.core.errors import InputError
from harness_ext.core.records import Example, Turn
from harness_ext.data.loaders import Drop

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
          "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "system": "system"}


def _string(row: dict, key: str) -> None:
    """Drop a row whose text field holds a non-string (counted, as `select`'s loader does)."""
    value = row.get(key)
    if value is not None and not isinstance(value, str):
        raise Drop(f"non_string_field:{key}",
                   f"field '{key}' is a {type(value).__name__} ({str(value)[:40]!r}), expected a string")


def _row_to_turns(row: Any, path: Path, line: int) -> list[Turn]:
    """One data row (harness_ext Example, Alpaca, or FastChat conversation) as turns.

    Raises Drop for a row with a non-string text field, InputError for a malformed row."""
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object, found {type(row).__name__}.", path=path, line=line)
    key = "conversation" if row.get("conversation") else "conversations" if "conversations" in row else None
    if key:
        turns = []
        messages = row[key] if isinstance(row[key], list) else []
        for i, msg in enumerate(messages):
            role = _ROLES.get(str(msg.get("from", msg.get("role", ""))).lower()) if isinstance(msg, dict) else None
            if role is None:
                raise InputError(
                    f"{key}[{i}] has an unknown speaker {msg!r}.", path=path, line=line,
                    hint="use from: human/gpt/system (FastChat) or role: user/assistant/system.",
                )
            text_key = "value" if "value" in msg else "content"
            text = msg.get(text_key)
            if text is not None and not isinstance(text, str):
                raise Drop(f"non_string_field:{key}.{text_key}",
                           f"{key}[{i}].{text_key} is a {type(text).__name__}, expected a string")
            turns.append(Turn(role, text or ""))
        if not turns:
            raise InputError(f"'{key}' is empty or not a list.", path=path, line=line)
        return turns
    if "instruction" not in row:
        raise InputError(
            f"row has neither 'instruction' nor 'conversation(s)' (keys: {sorted(row)}).", path=path, line=line,
            hint="train on the JSONL written by `harness-ext select`, an Alpaca JSON, or FastChat conversations.",
        )
    for name in ("instruction", "input", "response", "output"):
        _string(row, name)
    if row["instruction"] is None:
        raise Drop("missing_field:instruction", "field 'instruction' is null")
    data = dict(row)
    data.setdefault("id", str(line))
    if "response" not in data and "output" in data:
        data["response"] = data["output"]
    try:
        return Example.from_dict(data).turns()
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"row is not a valid example ({exc}).", path=path, line=line) from None


def read_conversations(path: str | Path, drops: Counter[str] | None = None) -> list[tuple[int, list[Turn]]]:
    """(line or row number, turns) for every row of a JSONL file or a JSON list.

    A row with a non-string text field is counted into `drops` (reason -> count) and skipped, or
    raises an InputError naming file and line when `drops` is None."""
    path = Path(path)
    if path.suffix == ".json":
        rows = read_json(path)
        if not isinstance(rows, list):
            raise InputError("expected a JSON list of examples.", path=path)
        items = list(enumerate(rows, start=1))
    else:
        items = list(iter_jsonl(path))
    out = []
    for line, row in items:
        try:
            out.append((line, _row_to_turns(row, path, line)))
        except Drop as d:
            if drops is None:
                raise InputError(f"{d.detail}.", path=path, line=line, hint="fix or delete that row.") from None
            if not drops[d.reason]:
                log.warning("%s:%d: %s; dropping such rows (counted in train_report.json)", path, line, d.detail)
            drops[d.reason] += 1
    return out


@dataclass
class TokenizedData:
    """Token ids/labels per kept example, and the counts of what happened to every row."""

    rows: list[dict[str, list[int]]]
    counts: Counter = field(default_factory=Counter)
    examples: int = 0
    prompt_tokens: int = 0
    response_tokens: int = 0

    def report(self) -> dict[str, Any]:
        lengths = sorted(len(r["input_ids"]) for r in self.rows)
        return {
            "rows_read": self.examples,
            "kept": len(self.rows),
            "truncated": self.counts["truncated"],
            "dropped": {k[len("dropped_"):]: v for k, v in sorted(self.counts.items()) if k.startswith("dropped_")},
            "tokens": {
                "prompt": self.prompt_tokens, "response": self.response_tokens,
                "mean_length": sum(lengths) / len(lengths) if lengths else 0.0,
                "max_length": lengths[-1] if lengths else 0,
            },
        }


def special_prefix(tokenizer) -> list[int]:
    """Token ids the tokenizer puts in front of text by itself (e.g. Llama's BOS)."""
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    for i in range(len(with_special)):
        if with_special[i:i + len(plain)] == plain:
            return list(with_special[:i])
    return []


def tokenize_examples(path: str | Path, tokenizer, fmt, *, max_length: int, overlength: str) -> TokenizedData:
    """Render, tokenize and mask every example of `path`; raise when none is usable."""
    path = Path(path)
    prefix = special_prefix(tokenizer)
    bos_text = tokenizer.bos_token or ""
    eos_id = tokenizer.eos_token_id
    stops = tuple(s for s in (*getattr(fmt, "stop", ()), tokenizer.eos_token or "") if s)
    out = TokenizedData(rows=[])
    drops: Counter[str] = Counter()
    conversations = read_conversations(path, drops)
    out.examples += sum(drops.values())
    out.counts.update({f"dropped_{reason}": n for reason, n in drops.items()})
    for line, turns in conversations:
        out.examples += 1
        if not any(t.role == "assistant" and t.content.strip() for t in turns):
            out.counts["dropped_no_response"] += 1
            continue
        try:
            segments = fmt.training_segments(turns)
        except InputError as exc:  # the format names the problem; we add where it is
            raise InputError(exc.message, path=path, line=line, hint=exc.hint) from None
        ids: list[int] = []
        labels: list[int] = []
        if prefix and not (bos_text and segments and segments[0][0].startswith(bos_text)):
            ids += prefix
            labels += [IGNORE_INDEX] * len(prefix)
        for text, is_response in segments:
            piece = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += piece
            labels += piece if is_response else [IGNORE_INDEX] * len(piece)
        # The model must learn to stop: end on EOS unless the format already ends on a stop string.
        last_text = segments[-1][0].rstrip() if segments else ""
        if eos_id is not None and not any(last_text.endswith(s) for s in stops) and ids[-1] != eos_id:
            ids.append(eos_id)
            labels.append(eos_id)
        if len(ids) > max_length:
            if overlength == "drop":
                out.counts["dropped_overlength"] += 1
                continue
            ids, labels = ids[:max_length], labels[:max_length]
            if all(x == IGNORE_INDEX for x in labels):
                out.counts["dropped_prompt_fills_max_length"] += 1
                continue
            out.counts["truncated"] += 1
        n_resp = sum(1 for x in labels if x != IGNORE_INDEX)
        out.response_tokens += n_resp
        out.prompt_tokens += len(ids) - n_resp
        out.rows.append({"input_ids": ids, "labels": labels})
    if not out.rows:
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(out.counts.items())) or "the file has no rows"
        raise InputError(
            f"no usable training examples ({out.examples} rows read; {dropped}).", path=path,
            hint="check the file holds responses, or raise max_length / use overlength=truncate.",
        )
    return out


class ResponseOnlyCollator:
    """Right-pad a batch of tokenized examples; padding gets attention 0 and label -100."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            width = (width + m - 1) // m * m
        n = len(features)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            input_ids[i, :k] = torch.as_tensor(f["input_ids"], dtype=torch.long)
            labels[i, :k] = torch.as_tensor(f["labels"], dtype=torch.long)
            mask[i, :k] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


class SeededLengthGroupedSampler:
    """Length-grouped order (similar lengths share a batch, as transformers' LengthGroupedSampler)
    drawn from a generator seeded with (seed, epoch) instead of the global RNG.

    The global RNG is also consumed by NEFTune noise and dropout, so an order drawn from it differs
    between an uninterrupted run and one resumed from a checkpoint; this one does not.
    """

    def __init__(self, lengths: list[int], group_size: int, seed: int) -> None:
        self.lengths = list(lengths)
        self.group_size = group_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.group_size, generator=generator))

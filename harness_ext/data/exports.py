"""Writing selected examples: the package's JSONL, Alpaca JSON, and the paper's FastChat JSON.

The FastChat export follows the file the paper released (tml-epfl/long-is-more-for-alignment,
data/alpaca/filtered_alpaca_1k_longest.json): one object per example,
{"id": "identity_<row>", "conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}, where the
human turn is the Alpaca prompt preamble (the two sentences of the tatsu-lab/stanford_alpaca
template, train.py PROMPT_DICT, with and without an input) followed by "### Instruction: <text>"
(and " ### Input: <text>"), all joined by single spaces on one line, with no "### Response:" tail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_json, atomic_write_jsonl
from harness_ext.core.records import Example

# The Alpaca template's preambles (a fact about the Alpaca data format).
ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
ALPACA_PREAMBLE_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request."
)
_PREFIXED = re.compile(
    r"^Below is an instruction that describes a task(?:, paired with an input that provides further context)?\. "
    r"Write a response that appropriately completes the request\.\s*### Instruction:\s*(?P<instruction>.*?)"
    r"(?:\s*### Input:\s*(?P<input>.*?))?\s*(?:### Response:\s*)?$",
    re.DOTALL,
)


def fastchat_human_turn(instruction: str, input_: str = "") -> str:
    """The human turn of the paper's released FastChat files for one Alpaca-style example."""
    if input_:
        return f"{ALPACA_PREAMBLE_INPUT} ### Instruction: {instruction} ### Input: {input_}"
    return f"{ALPACA_PREAMBLE} ### Instruction: {instruction}"


def split_alpaca_prompt(text: str) -> tuple[str, str] | None:
    """(instruction, input) of a human turn written with the Alpaca preamble, else None."""
    m = _PREFIXED.match(text)
    if not m:
        return None
    return m.group("instruction"), m.group("input") or ""


def alpaca_row(ex: Example) -> dict[str, str]:
    return {"instruction": ex.instruction, "input": ex.input, "output": ex.response}


def fastchat_row(ex: Example) -> dict[str, Any]:
    """A FastChat conversation; multi-turn examples keep all their turns (system turns dropped)."""
    if ex.conversation:
        turns = [{"from": "human" if t.role == "user" else "gpt", "value": t.content}
                 for t in ex.conversation if t.role != "system"]
        system = next((t.content for t in ex.conversation if t.role == "system"), None)
        row: dict[str, Any] = {"id": ex.id, "conversations": turns}
        if system:
            row["system"] = system
        return row
    return {
        "id": ex.id,
        "conversations": [
            {"from": "human", "value": fastchat_human_turn(ex.instruction, ex.input)},
            {"from": "gpt", "value": ex.response},
        ],
    }


def write_examples(examples: Sequence[Example], out_dir: str | Path) -> dict[str, Path]:
    """Write selected.jsonl, alpaca.json and fastchat.json for `examples` into `out_dir`.

    Each file is written atomically; returns {"selected": path, "alpaca": path, "fastchat": path}.
    """
    out = Path(out_dir)
    return {
        "selected": atomic_write_jsonl(out / "selected.jsonl", (ex.to_dict() for ex in examples)),
        "alpaca": atomic_write_json(out / "alpaca.json", [alpaca_row(ex) for ex in examples]),
        "fastchat": atomic_write_json(out / "fastchat.json", [fastchat_row(ex) for ex in examples]),
    }

"""Scripted judges and small output files for the judge tests (reusable by other judge tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.openai_server import last_user_text

_TAG = re.compile(r"\[question (\w+)\]")


def pairwise_answers(prompt: str) -> tuple[str, str]:
    """The two answers of a rendered pairwise prompt (judges/pairwise/default.yaml layout)."""
    tag = _TAG.search(prompt).group(1)
    out = []
    for k in (1, 2):
        m = re.search(rf"\[assistant {k} answer {tag}\]\n(.*?)\n\[end of assistant {k} answer {tag}\]", prompt, re.S)
        out.append(m.group(1))
    return out[0], out[1]


def quality_judge(body: dict[str, Any]) -> str:
    """An honest scripted judge: 8 for answers containing GOOD, 3 otherwise; a bonus point for
    the first position when the answer says FIRSTBIAS. Its second line quotes answer 2, so any
    adversarial text in an answer ends up in the judge's reply too."""
    a1, a2 = pairwise_answers(last_user_text(body))

    def score(text: str, first: bool) -> int:
        return (8 if "GOOD" in text else 3) + (1 if first and "FIRSTBIAS" in text else 0)

    return f"{score(a1, True)} {score(a2, False)}\nAssistant 2 wrote: {a2[:200]}"


def write_outputs(path: Path, rows: list[dict[str, Any]], fmt: str = "json") -> Path:
    """Write model outputs as AlpacaEval JSON (a list) or JSONL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def outputs(generator: str, answers: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    """AlpacaEval-style records from {(dataset, instruction): output}."""
    return [{"instruction": ins, "output": out, "generator": generator, "dataset": ds}
            for (ds, ins), out in answers.items()]

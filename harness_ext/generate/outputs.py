"""Reading model outputs to judge: AlpacaEval model_outputs.json or JSONL, matched by instruction.

Accepted shapes (one record per answer):

* AlpacaEval `model_outputs.json`: a JSON list of {instruction, output, generator?, dataset?};
* JSONL (ours, from `harness-ext generate`): one {id?, instruction, output, generator?, dataset?}
  per line.

Two files are matched on (dataset, id) when every record of both files carries an id (our own
outputs always do; test sets such as the paper's WizardLM copy repeat an instruction under two
ids), otherwise on (dataset, instruction), or on instruction alone when either file has no
dataset field. A key that appears twice in one file is an error naming both places, and records
matched by id must ask the same instruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import is_jsonl, iter_rows, require_files
from harness_ext.core.errors import InputError


@dataclass(frozen=True)
class ModelOutput:
    """One answer of one model, with where it came from (for error messages)."""

    instruction: str
    output: str
    dataset: str
    generator: str
    id: str
    where: str
    has_id: bool = False


def _rows(path: Path) -> list[tuple[str, Any]]:
    """(where, value) per record: file:line in JSONL, the 0-based record number in a JSON list."""
    require_files(path)
    jsonl = is_jsonl(path)
    return [(f"{path}:{line}" if jsonl else f"{path}: record {row}", value) for row, line, value in iter_rows(path)]


def load_outputs(path: str | Path) -> list[ModelOutput]:
    """All answers in `path`; a record without a string instruction/output is an error naming it."""
    path = Path(path)
    out: list[ModelOutput] = []
    for where, rec in _rows(path):
        if not isinstance(rec, dict):
            raise InputError(f"{where}: expected an object, found {type(rec).__name__}.")
        for field in ("instruction", "output"):
            if not isinstance(rec.get(field), str):
                seen = "missing" if field not in rec else f"{type(rec[field]).__name__} {repr(rec[field])[:40]}"
                raise InputError(f"{where}: field '{field}' must be a string, found {seen}.",
                                 hint="each record needs 'instruction' and 'output' strings "
                                 "(AlpacaEval model_outputs format).")
        out.append(ModelOutput(
            instruction=rec["instruction"], output=rec["output"],
            dataset=str(rec.get("dataset") or ""), generator=str(rec.get("generator") or ""),
            id=str(rec.get("id") if rec.get("id") is not None else len(out)), where=where,
            has_id=rec.get("id") is not None,
        ))
    if not out:
        raise InputError("no records.", path=path, hint="point at a file with model outputs.")
    return out


def _index(outputs: list[ModelOutput], use_dataset: bool, use_id: bool) -> dict[tuple[str, str], ModelOutput]:
    idx: dict[tuple[str, str], ModelOutput] = {}
    what = "id" if use_id else "instruction"
    for o in outputs:
        key = (o.dataset if use_dataset else "", o.id if use_id else o.instruction)
        if key in idx:
            raise InputError(
                f"{o.where}: duplicate {what}{' in dataset ' + repr(o.dataset) if use_dataset else ''} "
                f"(first seen at {idx[key].where}): {key[1][:60]!r}.",
                hint=f"keep one answer per {what} (and dataset) in each file.")
        idx[key] = o
    return idx


def match_outputs(a: list[ModelOutput], b: list[ModelOutput]) -> tuple[list[tuple[ModelOutput, ModelOutput]],
                                                                         dict[str, int]]:
    """Pairs (a, b) answering the same instruction, in A's order, plus counts of what did not match."""
    use_dataset = all(o.dataset for o in a) and all(o.dataset for o in b)
    use_id = all(o.has_id for o in a) and all(o.has_id for o in b)
    ia, ib = _index(a, use_dataset, use_id), _index(b, use_dataset, use_id)
    pairs = [(ia[k], ib[k]) for k in ia if k in ib]
    for x, y in pairs:
        if x.instruction != y.instruction:
            raise InputError(
                f"{x.where} and {y.where} have the same id {x.id!r} but different instructions.",
                hint="judge outputs generated from the same prompt file (ids must mean the same prompt).")
    counts = {"a": len(a), "b": len(b), "matched": len(pairs),
              "only_in_a": sum(k not in ib for k in ia), "only_in_b": sum(k not in ia for k in ib),
              "matched_on_dataset": int(use_dataset), "matched_on_id": int(use_id)}
    return pairs, counts

"""Read the datasets that scoring and refinement take: Example JSONL, or Alpaca JSON.

Formats accepted:
- `.jsonl`: one Example dict per line (`id`, `instruction`, optional `input`, `response`, ...),
  what `harness-ext select` writes;
- `.json`: a list of Example dicts, or of Alpaca rows (`instruction`, `input`, `output`).
Rows without an `id` get the paper's `identity_<row>` (0-based row), as the selection loader does,
so scores computed on a raw file line up with the examples selection later keeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness_ext.artifacts import iter_jsonl, read_json
from harness_ext.errors import InputError
from harness_ext.records import Example


def _example(row: Any, path: Path, line: int | None, index: int) -> Example:
    where = {"path": path, "line": line}
    if not isinstance(row, dict):
        raise InputError(f"row {index} is a {type(row).__name__}, expected an object.", **where)
    if not isinstance(row.get("instruction"), str):
        raise InputError(
            f"row {index} has no string field 'instruction' (keys seen: {sorted(row)}).", **where,
            hint="each row needs 'instruction' and 'response' (or Alpaca's 'output').",
        )
    if "response" not in row and "output" in row:  # an Alpaca row
        row = {"id": row.get("id", f"identity_{index}"), "instruction": row["instruction"],
               "input": row.get("input", ""), "response": row["output"], "row": index,
               "source": path.stem}
    if "id" not in row:
        row = {**row, "id": f"identity_{index}"}
    row.setdefault("row", index)
    if not isinstance(row.get("response", ""), str):
        raise InputError(f"row {index} field 'response' is {type(row['response']).__name__}, expected a string.",
                         **where)
    try:
        return Example.from_dict(row)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"row {index} is not a valid example: {exc}.", **where) from None


def read_examples(path: str | Path) -> list[Example]:
    """Load examples, naming file and line for any unusable row; ids must be unique."""
    path = Path(path)
    if path.suffix == ".jsonl":
        examples = [_example(v, path, line, i) for i, (line, v) in enumerate(iter_jsonl(path))]
    else:
        data = read_json(path)
        if not isinstance(data, list):
            raise InputError(f"expected a JSON list of rows, got a {type(data).__name__}.", path=path,
                             hint="use a list of {instruction, input, output} rows or a .jsonl of examples.")
        examples = [_example(v, path, None, i) for i, v in enumerate(data)]
    seen: dict[str, int] = {}
    for i, ex in enumerate(examples):
        if ex.id in seen:
            raise InputError(f"id '{ex.id}' appears in rows {seen[ex.id]} and {i}.", path=path,
                             hint="ids must be unique; they key resumable progress.")
        seen[ex.id] = i
    if not examples:
        raise InputError("no examples in the file.", path=path)
    return examples

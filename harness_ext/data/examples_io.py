"""Read the datasets that scoring and refinement take, with the shared loader (harness_ext.data.loaders).

Any format `harness-ext select` reads works (Example JSONL as `select` writes it, Alpaca JSON,
FastChat/ShareGPT, parquet); rows without an id get the paper's `identity_<row>`, so scores
computed on a raw file line up with the examples selection later keeps. Loading is strict: an
unusable row is an error naming file and line, since silently skipping a row would leave a gap
in the scored or refined output.
"""

from __future__ import annotations

from pathlib import Path

from harness_ext.core.errors import InputError
from harness_ext.core.records import Example


def read_examples(path: str | Path) -> list[Example]:
    """Load examples strictly; ids must be unique (they key resumable progress)."""
    from harness_ext.data.loaders import load_examples

    examples = load_examples(path, strict=True, strict_hint=(
        "fix or delete that row (score and refine skip no row; `harness-ext select` drops such rows and counts them)."))
    seen: dict[str, int] = {}
    for i, ex in enumerate(examples):
        if ex.id in seen:
            raise InputError(f"id '{ex.id}' appears in rows {seen[ex.id]} and {i}.", path=path,
                             hint="ids must be unique; they key resumable progress.")
        seen[ex.id] = i
    if not examples:
        raise InputError("no examples in the file.", path=path)
    return examples

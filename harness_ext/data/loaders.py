"""Loaders: instruction data files -> `Example` records, in the file's row order.

Supported row shapes (auto-detected from the first usable row, or forced with `fmt`):

- `alpaca`: {"instruction", "input"?, "output"} (Alpaca-52k, the bundled demo set); rows written by
  this package ({"instruction", "response", ...}) load the same way.
- `evol-instruct`: {"instruction", "output"} (WizardLM's Evol-Instruct).
- `sharegpt` / `fastchat`: {"id"?, "conversations": [{"from": "human"|"gpt"|"system", "value"}]}
  (FastChat, LIMA as released by the paper, OpenHermes-2.5 with a per-row "source").
- `messages`: {"messages": [{"role", "content"}]}.

Files: `.json` (a list of rows), `.jsonl`, `.parquet`, or `hf:NAME[:CONFIG][@SPLIT]` (a Hugging Face
dataset, split `train` unless named; see data/hub.py).
Each example keeps its 0-based `row`; its id is the file's id when there is one, else the paper's
`identity_<row>`. Unusable rows are dropped with a counted reason, or raise under `strict`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import iter_rows
from harness_ext.core.errors import InputError, require, unknown
from harness_ext.core.records import Example, Turn
from harness_ext.data.exports import split_alpaca_prompt
from harness_ext.data.hub import is_hf, iter_hf_rows

FORMATS = ("auto", "alpaca", "evol-instruct", "sharegpt", "fastchat", "openhermes", "messages")
_USER_ROLES = {"human": "user", "user": "user", "system": "system"}
_ASSISTANT_ROLES = {"gpt", "assistant", "chatgpt", "bard", "bing", "model", "bot"}
_KNOWN_KEYS = {"id", "instruction", "input", "output", "response", "conversations", "messages", "row",
               "metadata", "conversation"}


class Drop(Exception):
    """A row that cannot become an Example; `reason` is counted in the report."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------- raw rows


def _iter_parquet(path: Path) -> Iterator[tuple[int, int | None, Any]]:
    pq = require("pyarrow.parquet", package="pyarrow", extra="train", purpose="Reading parquet files")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"not a readable parquet file ({exc}).", path=path) from None
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for item in batch.to_pylist():
            yield row, None, item
            row += 1


def _iter_hf(spec: str) -> Iterator[tuple[int, int | None, Any]]:
    for row, item in enumerate(iter_hf_rows(spec, default_split="train", purpose="Loading hf: datasets")):
        yield row, None, item


def iter_raw_rows(data: str | Path) -> Iterator[tuple[int, int | None, Any]]:
    """Yield (row, line or None, parsed value) for every row of a file or hf: dataset."""
    if is_hf(data):
        yield from _iter_hf(data)
        return
    path = check_file(data)
    if path.suffix.lower() == ".parquet":
        yield from _iter_parquet(path)
    else:
        yield from iter_rows(path)


def check_file(data: str | Path) -> Path:
    """The path of an existing, non-empty file, or an InputError saying what is wrong."""
    path = Path(data)
    if not path.exists():
        raise InputError("file not found.", path=path,
                         hint="check the path, or use hf:NAME for a Hugging Face dataset.")
    if path.is_dir():
        raise InputError("is a folder, expected a data file.", path=path)
    if path.stat().st_size == 0:
        raise InputError("file is empty.", path=path, hint="point --data at a file with examples.")
    return path


# ---------------------------------------------------------------- rows -> examples


def detect_format(value: Any) -> str | None:
    """The row shape of one parsed row, or None when it matches none."""
    if not isinstance(value, dict):
        return None
    if "conversations" in value:
        return "sharegpt"
    if "messages" in value:
        return "messages"
    if "instruction" in value:
        return "alpaca" if ("input" in value or "response" in value) else "evol-instruct"
    return None


def _text(value: dict, key: str, *, required: bool = True) -> str:
    if key not in value or value[key] is None:
        if required:
            raise Drop(f"missing_field:{key}", f"field '{key}' is missing")
        return ""
    v = value[key]
    if not isinstance(v, str):
        raise Drop(f"non_string_field:{key}", f"field '{key}' is a {type(v).__name__} ({str(v)[:40]!r}), expected a string")
    if required and not v.strip():
        raise Drop(f"empty_field:{key}", f"field '{key}' is empty")
    return v


def _turns(value: dict, key: str, role_key: str, text_key: str) -> list[Turn]:
    conv = value.get(key)
    if not isinstance(conv, list):
        raise Drop(f"missing_field:{key}" if conv is None else f"non_list_field:{key}",
                   f"field '{key}' must be a list of turns")
    turns: list[Turn] = []
    for j, t in enumerate(conv):
        if not isinstance(t, dict):
            raise Drop(f"bad_turn:{key}", f"{key}[{j}] is not an object")
        who = str(t.get(role_key, "")).lower()
        content = t.get(text_key)
        if not isinstance(content, str):
            raise Drop(f"non_string_field:{key}.{text_key}", f"{key}[{j}].{text_key} is not a string")
        if who in _ASSISTANT_ROLES:
            turns.append(Turn("assistant", content))
        elif who in _USER_ROLES:
            turns.append(Turn(_USER_ROLES[who], content))  # type: ignore[arg-type]
        else:
            raise Drop(f"unknown_role:{key}", f"{key}[{j}].{role_key} is {t.get(role_key)!r}")
    return turns


def conversation_len(turns: list[Turn]) -> int:
    return sum(1 for t in turns if t.role != "system")


def row_to_example(value: Any, row: int, fmt: str, source_field: str | None = None) -> Example:
    """Convert one parsed row; raises Drop(reason) for an unusable row."""
    if not isinstance(value, dict):
        raise Drop("not_an_object", f"row is a {type(value).__name__}, expected a JSON object")
    shape = detect_format(value) if fmt == "auto" else fmt
    if shape is None:
        raise Drop("unknown_format", f"row has none of instruction/conversations/messages (keys: {sorted(value)[:8]})")
    conversation: list[Turn] | None = None
    if shape in ("alpaca", "evol-instruct"):
        instruction = _text(value, "instruction")
        input_ = _text(value, "input", required=False)
        resp_key = "output" if "output" in value or "response" not in value else "response"
        response = _text(value, resp_key)
        if value.get("conversation") is not None:  # this package's own Example rows (multi-turn)
            conversation = _turns(value, "conversation", "role", "content")
    else:
        if shape == "messages":
            turns = _turns(value, "messages", "role", "content")
        else:
            turns = _turns(value, "conversations", "from", "value")
        users = [i for i, t in enumerate(turns) if t.role == "user"]
        if not users:
            raise Drop("no_user_turn", "conversation has no human/user turn")
        first = users[0]
        replies = [t for t in turns[first + 1 :] if t.role == "assistant"]
        if not replies:
            raise Drop("no_assistant_turn", "conversation has no assistant reply after the first user turn")
        instruction, input_, response = turns[first].content, "", replies[0].content
        # The paper's FastChat files carry the Alpaca preamble in the human turn; keep the bare
        # instruction (and input) so exports do not stack a second preamble on top.
        split = split_alpaca_prompt(instruction) if conversation_len(turns) == 2 else None
        if split is not None:
            instruction, input_ = split
        if not instruction.strip():
            raise Drop("empty_field:instruction", "the first user turn is empty")
        if not response.strip():
            raise Drop("empty_field:response", "the first assistant reply is empty")
        if len(turns) > 2 or turns[0].role == "system":
            conversation = turns
    src_key = source_field or "source"
    source = value.get(src_key)
    if source_field and source is None:
        raise Drop(f"missing_field:{source_field}", f"source field '{source_field}' is missing")
    raw_id = value.get("id")
    ex_id = str(raw_id) if isinstance(raw_id, (str, int)) and str(raw_id) else f"identity_{row}"
    nested = value.get("metadata")
    metadata = dict(nested) if isinstance(nested, dict) else {}
    metadata.update({k: v for k, v in value.items() if k not in _KNOWN_KEYS and k != src_key
                     and isinstance(v, (str, int, float, bool))})
    # Our own Example rows keep the row index of the file they were first read from.
    stored_row = value.get("row")
    if isinstance(stored_row, int) and not isinstance(stored_row, bool) and stored_row >= 0:
        row = stored_row
    return Example(id=ex_id, instruction=instruction, input=input_, response=response,
                   source="" if source is None else str(source), row=row,
                   conversation=conversation, metadata=metadata)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise unknown("format", fmt, FORMATS)
    return {"fastchat": "sharegpt", "openhermes": "sharegpt"}.get(fmt, fmt)


#: What `select --strict` says about an unusable row.
STRICT_HINT = "fix the row, or drop --strict to skip such rows (they are counted in report.json)."


class RowConverter:
    """Turns parsed rows into Examples, fixing the auto-detected format on the first usable row."""

    def __init__(self, where: str, fmt: str = "auto", source_field: str | None = None,
                 strict: bool = False, strict_hint: str | None = None) -> None:
        self.where = where
        self.fmt = check_format(fmt)
        self.source_field = source_field
        self.strict = strict
        self.strict_hint = strict_hint or STRICT_HINT
        self.drops: Counter[str] = Counter()
        self.rows_read = 0

    def convert(self, value: Any, row: int, line: int | None) -> Example | None:
        self.rows_read += 1
        if self.fmt == "auto" and detect_format(value) is not None:
            self.fmt = detect_format(value) or "auto"
        try:
            return row_to_example(value, row, self.fmt, self.source_field)
        except Drop as d:
            if self.strict:
                raise InputError(f"row {row}: {d.detail}.", path=self.where, line=line,
                                 hint=self.strict_hint) from None
            self.drops[d.reason] += 1
            return None


def load_examples(data: str | Path, *, fmt: str = "auto", source_field: str | None = None,
                  strict: bool = False, drops: Counter[str] | None = None,
                  strict_hint: str | None = None) -> list[Example]:
    """Load every usable row of `data` (a file path or `hf:NAME[:CONFIG][@SPLIT]`) as Examples, in row order.

    Dropped rows are counted into `drops` (reason -> count) when given; under `strict` the first
    unusable row raises an InputError naming file and line, with `strict_hint` as its fix
    (default: select's "drop --strict").
    """
    conv = RowConverter(str(data), fmt, source_field, strict, strict_hint)
    out = [ex for row, line, value in iter_raw_rows(data)
           if (ex := conv.convert(value, row, line)) is not None]
    if drops is not None:
        drops.update(conv.drops)
    if conv.rows_read == 0:
        raise InputError("holds no rows.", path=data, hint="point --data at a file with examples.")
    return out

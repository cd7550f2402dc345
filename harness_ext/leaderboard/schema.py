"""Validate leaderboard documents against the JSON Schema shipped in harness_ext/resources."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from harness_ext.core.errors import InputError, did_you_mean
from harness_ext.core.paths import resources_dir

SCHEMA_VERSION = 1
SCHEMA_FILE = "leaderboard.schema.json"


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The leaderboard JSON Schema (draft 2020-12) as a dict."""
    return json.loads((resources_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))


def _json_path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _entry_label(doc: Any, parts: list[Any]) -> str:
    """'entry 3 (model-name)' for an error inside entries[3], else 'document'."""
    if len(parts) >= 2 and parts[0] == "entries" and isinstance(parts[1], int):
        i = parts[1]
        try:
            model = doc["entries"][i].get("model")
        except (KeyError, IndexError, TypeError, AttributeError):
            model = None
        return f"entry {i} ({model!r})" if model else f"entry {i}"
    return "document"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip(message: str, instance: Any, limit: int = 160) -> str:
    """jsonschema's message quotes the whole offending value (a whole document, for a wrong top-level
    type); the value is already shown, shortened, so keep only the rule it broke."""
    shown = repr(instance)
    if len(shown) > 40 and message.startswith(shown):
        message = "value" + message[len(shown):]
    return message if len(message) <= limit else message[: limit - 3] + "..."


def schema_errors(doc: Any) -> list[str]:
    """Every schema violation in `doc`, each naming the entry, the JSON path and the value seen."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    messages = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        parts = list(err.absolute_path)
        # anyOf/oneOf failures are clearer through their most relevant sub-error.
        best = jsonschema.exceptions.best_match([err]) if err.context else err
        hint = ""
        if best.validator == "enum" and isinstance(best.instance, str):
            hint = did_you_mean(best.instance, [str(v) for v in best.validator_value])
        messages.append(
            f"{_entry_label(doc, parts)}: field {_json_path(parts)} = {_short(err.instance)}: "
            f"{_clip(best.message, best.instance)}.{hint}"
        )
    if isinstance(doc, dict) and isinstance(doc.get("schema_version"), int) and doc["schema_version"] > SCHEMA_VERSION:
        messages.insert(0, f"document: schema_version {doc['schema_version']} is newer than this package reads "
                           f"({SCHEMA_VERSION}); upgrade harness-ext.")
    return messages


def validate_document(doc: Any, path: str | Path | None = None) -> None:
    """Raise InputError listing every violation (entry, field path, value) when `doc` is invalid."""
    errors = schema_errors(doc)
    if errors:
        shown = "; ".join(e.rstrip(".") for e in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise InputError(
            f"not a valid leaderboard (schema v{SCHEMA_VERSION}): {shown}{more}.",
            path=path,
            hint="fix the named fields; `harness-ext leaderboard validate FILE` lists every problem.",
        )

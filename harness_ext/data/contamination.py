"""Train/eval overlap: word n-grams (13 by default) and exact instruction matches.

lm-evaluation-harness decontaminates with 13-gram overlap on normalized text (lower-cased,
punctuation removed, whitespace-split); we use the same unit. Long-Is-More (arXiv 2402.04833,
Sec. 4) found LIMA's wikiHow items inside HellaSwag this way and dropped HellaSwag from its
averages; this check lists such overlaps so the same call can be made for any training set.

The eval sets are indexed (they are the smaller side) and the training set is streamed, so a
52k-row training file needs memory only for the eval n-grams. Texts shorter than n words yield
no n-gram; exact matches of the normalized instruction cover those.

Rows may be Alpaca-style (instruction/input/output), FastChat/ShareGPT (`conversations`),
MT-Bench (`turns`), AlpacaEval (instruction/output) or any JSON object: then every string in it
is text and the first of instruction/prompt/question/query/ctx/text is its instruction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import iter_rows, provenance, sha256_file
from harness_ext.core.errors import ConfigError, InputError

DEFAULT_N = 13
_INSTRUCTION_KEYS = ("instruction", "prompt", "question", "query", "ctx", "text")
_ID_KEYS = ("id", "question_id", "ind", "idx")
_SPACE = re.compile(r"\s+")
_MAX_TRAIN_MATCHES = 5  # train rows listed per contaminated eval row (all are counted)


@dataclass
class TextRow:
    """One row reduced to what the check needs."""

    index: int
    id: str
    instruction: str
    text: str


@dataclass
class _EvalHit:
    train: dict[int, int] = field(default_factory=dict)  # train index -> shared n-grams
    example: dict[int, str] = field(default_factory=dict)  # train index -> one shared n-gram
    exact: set[int] = field(default_factory=set)


def normalize_words(text: str) -> list[str]:
    """Lower-case, drop punctuation and symbols, split on whitespace."""
    chars = [" " if unicodedata.category(c)[0] in "PS" else c for c in text.lower()]
    return "".join(chars).split()


def word_ngrams(text: str, n: int) -> set[str]:
    """The set of normalized word n-grams of `text` (empty when it has fewer than n words)."""
    words = normalize_words(text)
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def row_to_text(row: Any, index: int) -> TextRow:
    """Instruction and full text of one row of any of the supported layouts."""
    if isinstance(row, str):
        return TextRow(index, str(index), row, row)
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object or string, got {type(row).__name__}")
    rid = next((str(row[k]) for k in _ID_KEYS if k in row and row[k] is not None), str(index))
    conv = row.get("conversations") or row.get("messages")
    if isinstance(conv, list) and conv and isinstance(conv[0], dict):
        texts = [str(t.get("value", t.get("content", ""))) for t in conv]
        users = [str(t.get("value", t.get("content", ""))) for t in conv
                 if t.get("from", t.get("role")) in ("human", "user")]
        return TextRow(index, rid, users[0] if users else texts[0], "\n".join(texts))
    if isinstance(row.get("turns"), list) and row["turns"]:
        turns = [str(t) for t in row["turns"]]
        return TextRow(index, rid, turns[0], "\n".join(list(_strings(row))))
    instruction = next((row[k] for k in _INSTRUCTION_KEYS if isinstance(row.get(k), str)), "")
    if instruction and isinstance(row.get("input"), str) and row["input"]:
        instruction = f"{instruction}\n\n{row['input']}"
    return TextRow(index, rid, instruction, "\n".join(_strings(row)))


def iter_text_rows(path: str | Path) -> Iterator[TextRow]:
    """Rows of a JSON list, a JSON object of rows ({"data": [...]} or {id: row}), or a JSONL file,
    streamed (JSONL in constant memory); a file with no rows is an InputError."""
    path = Path(path)
    count = 0
    for row, line, item in iter_rows(path, keyed=True):
        try:
            yield row_to_text(item, count)
        except ValueError as exc:
            raise InputError(f"{exc}.", path=path, line=line if line is not None else row + 1,
                             hint="each row must be a JSON object (or a string).") from None
        count += 1
    if not count:
        raise InputError("no rows.", path=path, hint="point at a file with data.")


def read_rows(path: str | Path) -> list[TextRow]:
    """Every row of `path` (see iter_text_rows), in a list."""
    return list(iter_text_rows(path))


def _norm_instruction(text: str) -> str:
    return " ".join(normalize_words(text))


Key = tuple[int, int]  # (eval set number, row index in that set)


def check_contamination(
    train: str | Path, evals: Sequence[str | Path], *, n: int = DEFAULT_N
) -> dict[str, Any]:
    """Overlap report between one training file and eval files (JSON-serializable dict).

    For each eval set: how many rows share at least one word n-gram with some training row,
    how many have an instruction identical (after normalization) to a training instruction,
    and each such row with the training rows it overlaps (index, id, shared n-gram count and
    one shared n-gram as evidence).
    """
    if n < 1:
        raise ConfigError(f"--ngram must be at least 1, got {n}.", hint="the lm-eval convention is 13.")
    if not evals:
        raise ConfigError("no eval sets given.", hint="pass one or more --eval FILE.")
    eval_rows = [read_rows(p) for p in evals]
    gram_index, inst_index = _index_evals(eval_rows, n)
    hits, train_ids, n_train = _scan_train(train, gram_index, inst_index, n)
    sets = [_set_report(path, rows, [(r, hits[(s, r.index)]) for r in rows if (s, r.index) in hits], train_ids)
            for s, (path, rows) in enumerate(zip(evals, eval_rows, strict=True))]
    return {
        "ngram": n,
        "train": {"path": str(train), "sha256": sha256_file(train), "rows": n_train},
        "eval_sets": sets,
        "provenance": provenance(),
    }


def _index_evals(eval_rows: list[list[TextRow]], n: int) -> tuple[dict[str, list[Key]], dict[str, list[Key]]]:
    """The eval rows by n-gram and by normalized instruction (the eval sets are the small side)."""
    gram_index: dict[str, list[Key]] = {}
    inst_index: dict[str, list[Key]] = {}
    for s, rows in enumerate(eval_rows):
        for r in rows:
            for g in word_ngrams(r.text, n):
                gram_index.setdefault(g, []).append((s, r.index))
            key = _norm_instruction(r.instruction)
            if key:
                inst_index.setdefault(key, []).append((s, r.index))
    return gram_index, inst_index


def _scan_train(train: str | Path, gram_index: dict[str, list[Key]], inst_index: dict[str, list[Key]],
                n: int) -> tuple[dict[Key, _EvalHit], dict[int, str], int]:
    """Stream the training rows against the eval index: the hits, the ids of the training rows that
    hit (by index) and how many training rows there are."""
    hits: dict[Key, _EvalHit] = {}
    train_ids: dict[int, str] = {}
    count = 0
    for t in iter_text_rows(train):
        count += 1
        for g in word_ngrams(t.text, n):
            for key in gram_index.get(g, ()):
                hit = hits.setdefault(key, _EvalHit())
                hit.train[t.index] = hit.train.get(t.index, 0) + 1
                hit.example.setdefault(t.index, g)
                train_ids[t.index] = t.id
        for key in inst_index.get(_norm_instruction(t.instruction), ()):
            hits.setdefault(key, _EvalHit()).exact.add(t.index)
            train_ids[t.index] = t.id
    return hits, train_ids, count


def _set_report(path: str | Path, rows: list[TextRow], hit_rows: list[tuple[TextRow, _EvalHit]],
                train_ids: dict[int, str]) -> dict[str, Any]:
    """One eval set's block of the report: counts, then each overlapping row with its evidence."""
    overlaps = []
    for r, hit in hit_rows:
        ranked = sorted(set(hit.train) | hit.exact, key=lambda i, hit=hit: (-hit.train.get(i, 0), i))
        overlaps.append({
            "eval_index": r.index,
            "eval_id": r.id,
            "eval_instruction": r.instruction[:300],
            "ngram_overlap": bool(hit.train),
            "exact_instruction_match": bool(hit.exact),
            "train_rows_matched": len(ranked),
            "train_matches": [
                {"train_index": i, "train_id": train_ids[i], "shared_ngrams": hit.train.get(i, 0),
                 "exact_instruction": i in hit.exact, "example_ngram": hit.example.get(i)}
                for i in ranked[:_MAX_TRAIN_MATCHES]
            ],
        })
    ngram_rows = sum(o["ngram_overlap"] for o in overlaps)
    return {
        "path": str(path),
        "sha256": sha256_file(path),
        "rows": len(rows),
        "ngram_contaminated": ngram_rows,
        "ngram_contaminated_share": ngram_rows / len(rows),
        "exact_instruction_matches": sum(o["exact_instruction_match"] for o in overlaps),
        "overlaps": overlaps,
    }

"""The bundled demo dataset: where its files are, how to load them, and their statistics.

The files under harness_ext/resources/demo/ were written for this project (Apache-2.0) and are the
embedded default for `harness-ext select` and the end-to-end demo:

- instructions.jsonl   Alpaca-style rows {instruction, input, output, source, category, score}
- conversations.json   multi-turn FastChat/ShareGPT conversations {id, source, category, conversations}
- eval_prompts.jsonl   held-out prompts {id, instruction, category}
- eval_mt.jsonl        two-turn prompts in FastChat MT-Bench question format {question_id, category, turns}

Lengths here are whitespace words of the response (`str.split`), the cheapest unit that needs no
tokenizer; the selection engine offers the paper's NLTK unit and tokenizer units.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import iter_jsonl, read_json
from harness_ext.core.errors import InputError
from harness_ext.core.paths import resources_dir
from harness_ext.core.records import Example, Turn

CATEGORIES: tuple[str, ...] = (
    "writing", "coding", "reasoning", "advice", "extraction",
    "classification", "brainstorming", "open_qa", "summarization", "rewriting",
)
SOURCES: tuple[str, ...] = (
    "handwritten-general", "handwritten-code", "handwritten-reasoning", "handwritten-dialogue",
)
# Categories whose rows carry the text to work on in `input` rather than inside the instruction.
INPUT_CATEGORIES: frozenset[str] = frozenset({"extraction", "classification", "summarization", "rewriting"})
# MT-Bench categories that FastChat judges without a reference answer; the bundled two-turn prompts
# stay inside them because no reference-answer file ships with the demo.
MT_CATEGORIES: tuple[str, ...] = ("writing", "roleplay", "extraction", "stem", "humanities")
# Response-length buckets in whitespace words: [lo, hi).
LENGTH_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("short (<30 words)", 0, 30),
    ("medium (30-149)", 30, 150),
    ("long (>=150)", 150, None),
)

_STRING_FIELDS = ("instruction", "input", "output", "source", "category")


def demo_dir() -> Path:
    """The folder holding the bundled demo files."""
    return resources_dir() / "demo"


def instructions_path() -> Path:
    """The bundled single-turn instruction set (Alpaca fields plus source, category, score)."""
    return demo_dir() / "instructions.jsonl"


def conversations_path() -> Path:
    """The bundled multi-turn conversations in FastChat/ShareGPT JSON."""
    return demo_dir() / "conversations.json"


def eval_prompts_path() -> Path:
    """The held-out evaluation prompts (none overlaps a training instruction)."""
    return demo_dir() / "eval_prompts.jsonl"


def eval_mt_path() -> Path:
    """Two-turn evaluation prompts in FastChat MT-Bench `question.jsonl` format."""
    return demo_dir() / "eval_mt.jsonl"


def words(text: str) -> int:
    """Whitespace word count, the length unit of the demo statistics."""
    return len(text.split())


def _field_error(path: Path, line: int, field: str, value: Any, allowed: str, fix: str) -> InputError:
    return InputError(f"field '{field}' is {value!r}; allowed: {allowed}.", path=path, line=line, hint=fix)


def read_instruction_rows(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Read and validate instruction rows; raise InputError naming file:line and field on bad rows."""
    p = Path(path) if path is not None else instructions_path()
    rows: list[dict[str, Any]] = []
    for line, row in iter_jsonl(p):
        if not isinstance(row, dict):
            raise InputError(f"expected a JSON object, got {type(row).__name__}.", path=p, line=line,
                             hint="write one object per line with instruction/input/output/source/category.")
        for field in _STRING_FIELDS:
            value = row.get(field)
            if not isinstance(value, str):
                raise _field_error(p, line, field, value, "a string", f"set '{field}' to a string.")
            if field != "input" and not value.strip():
                raise _field_error(p, line, field, value, "a non-empty string", f"fill in '{field}'.")
        if row["category"] not in CATEGORIES:
            raise _field_error(p, line, "category", row["category"], ", ".join(CATEGORIES),
                               "use one of the documented categories.")
        if row["source"] not in SOURCES:
            raise _field_error(p, line, "source", row["source"], ", ".join(SOURCES),
                               "use one of the documented sources.")
        score = row.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))
                                  or not 1 <= score <= 5):
            raise _field_error(p, line, "score", score, "a number from 1 to 5, or absent",
                               "rate the row 1-5 (AlpaGasus scale) or drop the field.")
        rows.append(row)
    if not rows:
        raise InputError("no rows.", path=p, hint="the file must hold at least one JSON object line.")
    return rows


def load_demo_examples(path: str | Path | None = None) -> list[Example]:
    """The instruction rows as Examples: id `identity_<row>`, category and score in metadata."""
    out = []
    for row_no, r in enumerate(read_instruction_rows(path)):
        meta: dict[str, Any] = {"category": r["category"]}
        if "score" in r:
            meta["score"] = r["score"]
        out.append(Example(id=f"identity_{row_no}", instruction=r["instruction"], input=r["input"],
                           response=r["output"], source=r["source"], row=row_no, metadata=meta))
    return out


def read_conversations(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Read and validate FastChat/ShareGPT conversations (human/gpt turns, alternating, non-empty)."""
    p = Path(path) if path is not None else conversations_path()
    data = read_json(p)
    if not isinstance(data, list) or not data:
        raise InputError("expected a non-empty JSON list of conversations.", path=p,
                         hint='write [{"id": ..., "conversations": [{"from": "human", "value": ...}, ...]}].')
    for i, conv in enumerate(data):
        where = f"conversation #{i} (id {conv.get('id')!r})" if isinstance(conv, dict) else f"conversation #{i}"
        turns = conv.get("conversations") if isinstance(conv, dict) else None
        if not isinstance(turns, list) or len(turns) < 2:
            raise InputError(f"{where}: 'conversations' must list at least two turns.", path=p,
                             hint="give each conversation a human turn followed by a gpt turn.")
        for j, t in enumerate(turns):
            expected = "human" if j % 2 == 0 else "gpt"
            if not isinstance(t, dict) or t.get("from") != expected:
                seen = t.get("from") if isinstance(t, dict) else t
                raise InputError(f"{where}, turn {j}: 'from' is {seen!r}; expected {expected!r}.", path=p,
                                 hint="turns must alternate human, gpt, human, gpt, ...")
            if not isinstance(t.get("value"), str) or not t["value"].strip():
                raise InputError(f"{where}, turn {j}: 'value' is empty or not a string.", path=p,
                                 hint="write the message text in 'value'.")
    return data


def load_demo_conversations(path: str | Path | None = None) -> list[Example]:
    """The conversations as multi-turn Examples (single-turn view: first user turn and reply)."""
    role = {"human": "user", "gpt": "assistant"}
    out = []
    for row_no, c in enumerate(read_conversations(path)):
        turns = [Turn(role[t["from"]], t["value"]) for t in c["conversations"]]
        out.append(Example(id=str(c.get("id", f"conv_{row_no}")), instruction=turns[0].content,
                           response=turns[1].content, source=c.get("source", ""), row=row_no,
                           conversation=turns, metadata={"category": c.get("category", "")}))
    return out


def read_eval_prompts(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Read and validate the held-out prompts: unique ids, non-empty instruction, known category."""
    p = Path(path) if path is not None else eval_prompts_path()
    rows, seen = [], set()
    for line, r in iter_jsonl(p):
        for field in ("id", "instruction", "category"):
            if not isinstance(r, dict) or not isinstance(r.get(field), str) or not r[field].strip():
                value = r.get(field) if isinstance(r, dict) else r
                raise _field_error(p, line, field, value, "a non-empty string", f"fill in '{field}'.")
        if r["category"] not in CATEGORIES:
            raise _field_error(p, line, "category", r["category"], ", ".join(CATEGORIES),
                               "use one of the documented categories.")
        if r["id"] in seen:
            raise _field_error(p, line, "id", r["id"], "an id not used on an earlier line", "renumber it.")
        seen.add(r["id"])
        rows.append(r)
    return rows


def read_eval_mt(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Read and validate the two-turn prompts (MT-Bench question format, integer question_id)."""
    p = Path(path) if path is not None else eval_mt_path()
    rows, seen = [], set()
    for line, r in iter_jsonl(p):
        qid = r.get("question_id") if isinstance(r, dict) else None
        if not isinstance(qid, int) or isinstance(qid, bool) or qid in seen:
            raise _field_error(p, line, "question_id", qid, "a unique integer", "number the questions 1, 2, ...")
        seen.add(qid)
        if r.get("category") not in MT_CATEGORIES:
            raise _field_error(p, line, "category", r.get("category"), ", ".join(MT_CATEGORIES),
                               "use an MT-Bench category that needs no reference answer.")
        turns = r.get("turns")
        if not isinstance(turns, list) or len(turns) != 2 or not all(isinstance(t, str) and t.strip() for t in turns):
            raise _field_error(p, line, "turns", turns, "a list of two non-empty strings", "write both turns.")
        rows.append(r)
    return rows


def duplicate_rows(rows: list[dict[str, Any]]) -> list[int]:
    """0-based indices of rows whose exact instruction+input appeared on an earlier row."""
    seen: set[tuple[str, str]] = set()
    dups = []
    for i, r in enumerate(rows):
        key = (r["instruction"], r["input"])
        if key in seen:
            dups.append(i)
        seen.add(key)
    return dups


def bucket_counts(lengths: list[int]) -> dict[str, int]:
    """How many lengths fall in each LENGTH_BUCKETS bucket."""
    return {name: sum(1 for n in lengths if n >= lo and (hi is None or n < hi)) for name, lo, hi in LENGTH_BUCKETS}


def dataset_stats(folder: str | Path | None = None) -> dict[str, Any]:
    """Counts and length statistics of the demo files in `folder` (default: the bundled ones)."""
    d = Path(folder) if folder is not None else demo_dir()
    rows = read_instruction_rows(d / "instructions.jsonl")
    convs = read_conversations(d / "conversations.json")
    evals = read_eval_prompts(d / "eval_prompts.jsonl")
    mt = read_eval_mt(d / "eval_mt.jsonl")
    lengths = [words(r["output"]) for r in rows]
    q = statistics.quantiles(lengths, n=4, method="inclusive")
    per_cat = {}
    for cat in CATEGORIES:
        ls = [n for r, n in zip(rows, lengths, strict=True) if r["category"] == cat]
        per_cat[cat] = {"rows": len(ls), "with_input": sum(1 for r in rows if r["category"] == cat and r["input"]),
                        "median_words": statistics.median(ls) if ls else 0, "max_words": max(ls, default=0),
                        "long": sum(1 for n in ls if n >= 150)}
    scores = Counter(r.get("score") for r in rows)
    return {
        "rows": len(rows),
        "categories": per_cat,
        "sources": {s: sum(1 for r in rows if r["source"] == s) for s in SOURCES},
        "length_words": {"min": min(lengths), "p25": q[0], "median": q[1], "mean": round(statistics.fmean(lengths), 1),
                         "p75": q[2], "max": max(lengths)},
        "length_buckets": bucket_counts(lengths),
        "over_300_words": sum(1 for n in lengths if n > 300),
        "under_10_words": sum(1 for n in lengths if n < 10),
        "duplicates": len(duplicate_rows(rows)),
        "scores": {str(k): scores[k] for k in sorted(scores, key=lambda s: -1 if s is None else s)},
        "score_ge_4_5": sum(1 for r in rows if r.get("score", 0) >= 4.5),
        "conversations": len(convs),
        "conversation_exchanges": dict(sorted(Counter(len(c["conversations"]) // 2 for c in convs).items())),
        "eval_prompts": len(evals),
        "eval_categories": dict(Counter(r["category"] for r in evals)),
        "eval_mt": len(mt),
    }


STATS_BEGIN = "<!-- demo-stats:begin (generated by scripts/demo_dataset_stats.py; do not edit) -->"
STATS_END = "<!-- demo-stats:end -->"


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%"


def render_stats_markdown(stats: dict[str, Any]) -> str:
    """The statistics as the Markdown block kept in resources/demo/README.md."""
    n = stats["rows"]
    lw = stats["length_words"]
    out = [STATS_BEGIN, "",
           f"**{n} instruction rows** ({stats['duplicates']} exact instruction+input duplicates), "
           f"**{stats['conversations']} conversations**, **{stats['eval_prompts']} eval prompts**, "
           f"**{stats['eval_mt']} two-turn eval prompts**. Lengths are whitespace words of `output`.", "",
           "| category | rows | with `input` | median words | max words | rows >= 150 words |",
           "|---|---:|---:|---:|---:|---:|"]
    for cat, c in stats["categories"].items():
        out.append(f"| {cat} | {c['rows']} | {c['with_input']} | {c['median_words']:g} | {c['max_words']} | {c['long']} |")
    out += ["", "| source | rows | share |", "|---|---:|---:|"]
    out += [f"| {s} | {k} | {_pct(k, n)} |" for s, k in stats["sources"].items()]
    out += ["", "| response length (words) | min | p25 | median | mean | p75 | max |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| all rows | {lw['min']} | {lw['p25']:g} | {lw['median']:g} | {lw['mean']:g} | {lw['p75']:g} | {lw['max']} |",
            "", "| length bucket | rows | share |", "|---|---:|---:|"]
    out += [f"| {b} | {k} | {_pct(k, n)} |" for b, k in stats["length_buckets"].items()]
    out += ["", f"Rows under 10 words: {stats['under_10_words']}; over 300 words: {stats['over_300_words']}.",
            "", "Quality scores (1-5): " + ", ".join(f"{s}: {k}" for s, k in stats["scores"].items())
            + f"; {stats['score_ge_4_5']} rows score >= 4.5.",
            "", "Conversations by number of exchanges: "
            + ", ".join(f"{e} exchanges: {k}" for e, k in stats["conversation_exchanges"].items()) + ".",
            "", "Eval prompts per category: "
            + ", ".join(f"{c}: {k}" for c, k in sorted(stats["eval_categories"].items())) + ".",
            "", STATS_END]
    return "\n".join(out)


def replace_stats_block(readme_text: str, block: str) -> str:
    """`readme_text` with the text between the stats markers replaced by `block`."""
    start, end = readme_text.find(STATS_BEGIN), readme_text.find(STATS_END)
    if start < 0 or end < start:
        raise InputError("README has no demo-stats block.", hint=f"add the lines {STATS_BEGIN} and {STATS_END}.")
    return readme_text[:start] + block + readme_text[end + len(STATS_END):]

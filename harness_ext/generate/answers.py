"""Writing generated answers in the formats the harnesses read.

- AlpacaEval `model_outputs.json`: a JSON array of {instruction, output, generator, dataset,
  datasplit}, in input order (alpaca_eval matches rows to its reference outputs by instruction).
- FastChat MT-Bench `model_answer/<model_id>.jsonl`: {question_id, answer_id, model_id,
  choices: [{index, turns}], tstamp}, sorted by question_id like FastChat's reorg_answer_file.
- `outputs.jsonl`: our own per-prompt rows with ids, token counts and finish reasons, which the
  pairwise judge reads.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_json, atomic_write_jsonl, provenance, sha256_text
from harness_ext.generate.suites import Suite, SuiteItem

META_NAME = "generation_meta.json"


def _answer_id(model_id: str, item: SuiteItem, fingerprint: str) -> str:
    # Deterministic (FastChat draws a random shortuuid): rewriting the file from the log keeps ids.
    return sha256_text(f"{model_id}\x00{item.dataset}\x00{item.id}\x00{fingerprint}")[:22]


def _question_id_key(qid: Any) -> tuple[int, Any]:
    return (0, qid) if isinstance(qid, (int, float)) else (1, str(qid))


def write_outputs(out: Path, suite: Suite, items: list[SuiteItem], done: dict[tuple[str, str, int], dict[str, Any]],
                  model_id: str, meta: dict[str, Any]) -> Path:
    """Rebuild the output files of one run from its answer records; returns the main file."""
    complete: list[tuple[SuiteItem, list[dict[str, Any]]]] = []
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for item in items:
        recs = [done.get((item.dataset, item.id, t)) for t in range(len(item.turns))]
        records.extend(r for r in recs if r is not None)
        reason = next((r["skipped"] for r in recs if r is not None and "skipped" in r), None)
        if reason:
            skipped.append({"dataset": item.dataset, "id": item.id, "reason": reason})
        elif all(r is not None for r in recs):
            complete.append((item, recs))  # type: ignore[arg-type]
    files: list[str] = []
    if suite.kind == "multi":
        main = out / "model_answer" / f"{model_id}.jsonl"
        rows = [
            {
                "question_id": item.fields.get("question_id", item.id),
                "answer_id": _answer_id(model_id, item, meta["fingerprint"]),
                "model_id": model_id,
                "choices": [{"index": 0, "turns": [r["text"] for r in recs]}],
                "tstamp": recs[-1]["tstamp"],
            }
            for item, recs in complete
        ]
        rows.sort(key=lambda r: _question_id_key(r["question_id"]))
        atomic_write_jsonl(main, rows)
        files.append(str(main.relative_to(out)))
    else:
        rows = []
        alpaca = []
        for item, (rec,) in complete:
            rows.append({
                "id": item.id, "dataset": item.dataset, "instruction": item.turns[0], "output": rec["text"],
                "generator": model_id, "category": item.category, "prompt_tokens": rec["prompt_tokens"],
                "completion_tokens": rec["completion_tokens"], "finish_reason": rec["finish_reason"],
                "truncated": rec.get("truncated", False),
            })
            alpaca.append({"instruction": item.turns[0], "output": rec["text"], "generator": model_id,
                           "dataset": item.dataset, "datasplit": "eval"})
        atomic_write_jsonl(out / "outputs.jsonl", rows)
        atomic_write_json(out / "model_outputs.json", alpaca)
        files += ["outputs.jsonl", "model_outputs.json"]
        main = out / ("model_outputs.json" if suite.name == "alpaca_eval" else "outputs.jsonl")
    stats = summarize(records)
    per_dataset: dict[str, Any] = {}
    for ds in dict.fromkeys(i.dataset for i in items):
        per_dataset[ds] = summarize([r for r in records if r["dataset"] == ds])
    meta_doc = provenance(
        stage="generate", **meta, items=len(items), answered_items=len(complete),
        skipped=skipped, main_output=str(main.relative_to(out)), outputs=files, **stats, per_dataset=per_dataset,
    )
    atomic_write_json(out / META_NAME, meta_doc)
    return main


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and average answer lengths over answered turns (for the meta file)."""
    answered = [r for r in records if "skipped" not in r]
    skips = Counter(r["skipped"] for r in records if "skipped" in r)
    n = len(answered)
    return {
        "answered_turns": n,
        "skipped_empty": skips.get("empty", 0),
        "skipped_too_long": skips.get("too_long", 0),
        "truncated": sum(1 for r in answered if r.get("truncated")),
        "finish_reasons": dict(Counter(r["finish_reason"] for r in answered)),
        "avg_completion_tokens": round(sum(r["completion_tokens"] for r in answered) / n, 2) if n else None,
        "avg_chars": round(sum(len(r["text"]) for r in answered) / n, 2) if n else None,
        "avg_prompt_tokens": round(sum(r["prompt_tokens"] for r in answered) / n, 2) if n else None,
    }

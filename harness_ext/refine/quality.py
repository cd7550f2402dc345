"""AlpaGasus-style quality scoring: a judge grades each example 1-5 (Chen et al. 2023, arXiv 2307.08701).

AlpaGasus filtered Alpaca-52k to the examples an LLM judge rated >= 4.5 on a 0-5 accuracy scale
and trained on those. This stage writes the dataset back with a `score` on every example (top
level and in metadata), so `select --strategy score-threshold --score-field score` can keep the
high scorers. The prompt is ours (judges/alpagasus/); it asks for a short explanation and then
"Score: [[x]]" in 0.5 steps. A reply with no usable score is counted and leaves `score` null,
and the judge's raw text is kept in score_judgments.jsonl.

Files written to OUT (published together when the run completes):
  scored.jsonl            the input examples, each with `score` (float or null)
  score_judgments.jsonl   id, score, error, raw judgment, judge, request hash
  score_report.json       counts, parse failures by reason, score histogram, provenance
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import (
    atomic_write_json,
    atomic_write_jsonl,
    provenance,
    sha256_file,
    staged_dir,
)
from harness_ext.core.records import ChatClient, ChatResult, Example
from harness_ext.data.examples_io import read_examples
from harness_ext.judge.verdicts import parse_rating
from harness_ext.llm.jobs import Job, client_stats, published_records, run_jobs
from harness_ext.llm.ledger import usage_block
from harness_ext.llm.templates import PromptTemplate, load_template

FIELDS = {"instruction", "input", "response"}
SETTINGS = {"score_min": float, "score_max": float, "score_step": float}
# AlpaGasus keeps examples rated at or above this (their Sec. 3).
ALPAGASUS_THRESHOLD = 4.5


def load_scoring_template(template: str | Path = "alpagasus") -> PromptTemplate:
    """The scoring prompt folder (bundled 'alpagasus' or a user path) with its score range."""
    return load_template(template, fields=FIELDS, settings=SETTINGS)


def _job(ex: Example, tpl: PromptTemplate, model: str) -> Job:
    request = tpl.request(model, instruction=ex.instruction, input=ex.input or "(none)", response=ex.response)
    judged = [ex.instruction, ex.input, ex.response]

    def build(results: list[ChatResult]) -> dict[str, Any]:
        reply = results[0].text
        v = parse_rating(reply, low=tpl.settings["score_min"], high=tpl.settings["score_max"],
                         step=tpl.settings["score_step"] or None, judged=judged,
                         instructions=[tpl.system, tpl.user])
        return {"id": ex.id, "score": v.value, "error": v.error, "echoes_skipped": v.echoes,
                "judgment": reply, "finish_reason": results[0].finish_reason,
                "judge": [model, tpl.name], "tstamp": time.time()}

    return Job(ex.id, [request], build)


# Over 60 lines with its signature and docstring (about 50 of code): one resumable pass (read, skip what
# is done, judge, publish atomically) reads best top to bottom; refine_dataset has the same shape.
def score_dataset(
    data: str | Path,
    out: str | Path,
    client: ChatClient,
    model: str,
    *,
    template: str | Path = "alpagasus",
    batch_size: int = 64,
    allow_failures: bool = False,
) -> dict[str, Any]:
    """Score every example of `data` with the judge `model`; write OUT files; return the report.

    Resumable: completed judgments are kept in OUT/.progress/score.jsonl and in a published
    score_judgments.jsonl, and are not requested again.
    """
    data, out = Path(data), Path(out)
    tpl = load_scoring_template(template)
    examples = read_examples(data)
    jobs = [_job(ex, tpl, model) for ex in examples]
    previous = published_records(out / "score_judgments.jsonl")
    progress = out / ".progress" / "score.jsonl"
    outcome = run_jobs(jobs, client, progress, previous=previous, batch_size=batch_size, desc="scoring")
    outcome.raise_if_failed("score", progress, allow_failures)

    failed = dict(outcome.failed)
    rows, judgments = [], []
    for ex, job in zip(examples, jobs, strict=True):
        rec = outcome.records.get(ex.id)
        if rec is None:
            rec = {"id": ex.id, "score": None, "error": f"request failed: {failed[ex.id]}", "judgment": None,
                   "judge": [model, tpl.name], "request_failed": True}
        rec = {**rec, "request_sha256": job.hashes()}
        judgments.append(rec)
        row = ex.to_dict()
        row["metadata"] = {**row["metadata"], "score": rec["score"], "score_error": rec["error"],
                           "score_judge": [model, tpl.name]}
        row["score"] = rec["score"]
        rows.append(row)

    scores = [r["score"] for r in judgments if r["score"] is not None]
    parse_errors = Counter(r["error"] for r in judgments if r["error"] and not r.get("request_failed"))
    report = {
        "stage": "score",
        "examples": len(examples),
        "scored": len(scores),
        "parse_failures": sum(parse_errors.values()),
        "parse_failures_by_reason": dict(parse_errors),
        "request_failures": len(outcome.failed),
        "reused": outcome.reused,
        "requested": outcome.new,
        "client_stats": client_stats(client),
        "usage": usage_block(client),
        "mean_score": round(statistics.fmean(scores), 4) if scores else None,
        "histogram": {str(k): v for k, v in sorted(Counter(scores).items())},
        f"at_least_{ALPAGASUS_THRESHOLD}": sum(s >= ALPAGASUS_THRESHOLD for s in scores),
        "score_range": [tpl.settings["score_min"], tpl.settings["score_max"], tpl.settings["score_step"]],
        "provenance": provenance(
            input=str(data), input_sha256=sha256_file(data), judge_model=model, judge_prompt=tpl.name,
            judge_prompt_sha256=tpl.sha256, judge_prompt_folder=str(tpl.folder),
        ),
    }
    with staged_dir(out) as tmp:
        atomic_write_jsonl(tmp / "scored.jsonl", rows)
        atomic_write_jsonl(tmp / "score_judgments.jsonl", judgments)
        atomic_write_json(tmp / "score_report.json", report)
    return report

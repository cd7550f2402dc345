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

from harness_ext.core.records import ChatClient, ChatResult, Example
from harness_ext.judge.verdicts import parse_rating
from harness_ext.llm.jobs import Job
from harness_ext.llm.templates import PromptTemplate, load_template
from harness_ext.refine.passes import PassSpec, publish, run_pass

FIELDS = {"instruction", "input", "response"}
SETTINGS = {"score_min": float, "score_max": float, "score_step": float}
# AlpaGasus keeps examples rated at or above this (their Sec. 3).
ALPAGASUS_THRESHOLD = 4.5
SCORE_PASS = PassSpec("score", "score_judgments.jsonl", "scoring")


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
    out = Path(out)
    tpl = load_scoring_template(template)
    done = run_pass(data, out, client, lambda ex: _job(ex, tpl, model),
                    lambda ex, error: {"id": ex.id, "score": None, "error": error, "judgment": None,
                                       "judge": [model, tpl.name]},
                    SCORE_PASS, batch_size=batch_size, allow_failures=allow_failures)
    rows = []
    for ex, rec in zip(done.examples, done.records, strict=True):
        row = ex.to_dict()
        row["metadata"] = {**row["metadata"], "score": rec["score"], "score_error": rec["error"],
                           "score_judge": [model, tpl.name]}
        row["score"] = rec["score"]
        rows.append(row)

    scores = [r["score"] for r in done.records if r["score"] is not None]
    parse_errors = Counter(r["error"] for r in done.records if r["error"] and not r.get("request_failed"))
    report = {
        "stage": "score",
        "examples": len(done.examples),
        "scored": len(scores),
        "parse_failures": sum(parse_errors.values()),
        "parse_failures_by_reason": dict(parse_errors),
        **done.counts(client),
        "mean_score": round(statistics.fmean(scores), 4) if scores else None,
        "histogram": {str(k): v for k, v in sorted(Counter(scores).items())},
        f"at_least_{ALPAGASUS_THRESHOLD}": sum(s >= ALPAGASUS_THRESHOLD for s in scores),
        "score_range": [tpl.settings["score_min"], tpl.settings["score_max"], tpl.settings["score_step"]],
        "provenance": done.provenance(model, tpl),
    }
    publish(out, {"scored.jsonl": rows, "score_judgments.jsonl": done.records, "score_report.json": report})
    return report

"""Introspection refinement of selected examples (paper Sec. 4.1, Fig. 3; arXiv 2402.04833).

The paper asks an LLM, for each selected example, to say why the answer falls short on
helpfulness, relevance, accuracy, level of detail and structure, and then to write a better
answer with the same content; training on the refined Alpaca-1k-longest improved it further.
Our prompt (judges/refine/) does the same and asks for the new answer between two delimiter
lines that carry a per-example nonce. Because the nonce is derived from the example and checked
to be absent from it, an answer that quotes delimiter-like text cannot open or close the block.
When the block is missing, cut off or empty, the original answer is kept and the reason counted.

Files written to OUT (published together when the run completes):
  refined.jsonl       the examples with `response` refined (or kept), metadata.refine says which
  refine_log.jsonl    id, status, reason, original, refined, analysis, raw judge text
  refine_report.json  counts refined / kept by reason, lengths before and after, provenance
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import sha256_text
from harness_ext.core.records import ChatClient, ChatResult, Example, Turn
from harness_ext.judge.verdicts import block_problem, extract_block
from harness_ext.llm.jobs import Job
from harness_ext.llm.templates import PromptTemplate, load_template
from harness_ext.refine.passes import PassSpec, publish, run_pass

FIELDS = {"instruction", "response", "open", "close"}
REFINE_PASS = PassSpec("refine", "refine_log.jsonl", "refining")


def delimiters(ex: Example) -> tuple[str, str]:
    """The example's opening and closing delimiter lines, with a nonce absent from its text."""
    text = f"{ex.user_text()}\n{ex.response}"
    salt = 0
    while True:
        nonce = sha256_text(f"{ex.id}\x00{text}\x00{salt}")[:10]
        if nonce not in text:
            return f"<<<IMPROVED ANSWER {nonce}>>>", f"<<<END OF IMPROVED ANSWER {nonce}>>>"
        salt += 1


def _words(text: str) -> int:
    return len(text.split())


def _job(ex: Example, tpl: PromptTemplate, model: str) -> Job:
    open_, close = delimiters(ex)
    request = tpl.request(model, instruction=ex.user_text(), response=ex.response, open=open_, close=close)

    def build(results: list[ChatResult]) -> dict[str, Any]:
        raw = results[0].text
        refined = extract_block(raw, open_, close)
        status, reason = ("refined", None) if refined else ("kept", block_problem(raw, open_, close))
        analysis = raw[: raw.rfind(open_)].strip() if refined and raw else None
        return {"id": ex.id, "status": status, "reason": reason, "original": ex.response, "refined": refined,
                "analysis": analysis, "raw": raw, "finish_reason": results[0].finish_reason,
                "judge": [model, tpl.name]}

    return Job(ex.id, [request], build)


def _apply(ex: Example, rec: dict[str, Any]) -> dict[str, Any]:
    row = ex.to_dict()
    new = rec["refined"] if rec["status"] == "refined" else ex.response
    row["response"] = new
    if ex.conversation:
        # The single-turn view is the first assistant reply; keep the conversation consistent with it.
        turns, done = [], False
        for t in ex.conversation:
            if t.role == "assistant" and not done:
                t, done = Turn("assistant", new), True
            turns.append({"role": t.role, "content": t.content})
        row["conversation"] = turns
    row["metadata"] = {**row["metadata"], "refine": {"status": rec["status"], "reason": rec["reason"],
                                                     "judge": rec["judge"]},
                       "original_response": ex.response}
    return row


def _lengths(texts: list[str]) -> dict[str, float]:
    if not texts:
        return {"mean_chars": 0.0, "median_chars": 0.0, "mean_words": 0.0}
    chars = [len(t) for t in texts]
    return {"mean_chars": round(statistics.fmean(chars), 1), "median_chars": float(statistics.median(chars)),
            "mean_words": round(statistics.fmean(_words(t) for t in texts), 1)}


def refine_dataset(
    data: str | Path,
    out: str | Path,
    client: ChatClient,
    model: str,
    *,
    template: str | Path = "refine",
    batch_size: int = 64,
    allow_failures: bool = False,
) -> dict[str, Any]:
    """Refine every example of `data` with `model`; write OUT files; return the report.

    Resumable: finished examples are kept in OUT/.progress/refine.jsonl (and a published
    refine_log.jsonl) and are not requested again.
    """
    out = Path(out)
    tpl = load_template(template, fields=FIELDS)
    done = run_pass(data, out, client, lambda ex: _job(ex, tpl, model),
                    lambda ex, error: {"id": ex.id, "status": "kept", "reason": error, "original": ex.response,
                                       "refined": None, "analysis": None, "raw": None, "finish_reason": None,
                                       "judge": [model, tpl.name]},
                    REFINE_PASS, batch_size=batch_size, allow_failures=allow_failures)
    logs = done.records
    rows = [_apply(ex, rec) for ex, rec in zip(done.examples, logs, strict=True)]

    kept = Counter(r["reason"] for r in logs if r["status"] == "kept")
    refined = [r for r in logs if r["status"] == "refined"]
    report = {
        "stage": "refine",
        "examples": len(done.examples),
        "refined": len(refined),
        "kept": sum(kept.values()),
        "kept_by_reason": dict(kept),
        **done.counts(client),
        "length_before": _lengths([ex.response for ex in done.examples]),
        "length_after": _lengths([r["response"] for r in rows]),
        "refined_only": {"before": _lengths([r["original"] for r in refined]),
                         "after": _lengths([r["refined"] for r in refined])},
        "provenance": done.provenance(model, tpl),
    }
    publish(out, {"refined.jsonl": rows, "refine_log.jsonl": logs, "refine_report.json": report})
    return report

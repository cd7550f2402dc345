"""The resumable per-example LLM pass that quality scoring and introspection refinement share.

Read the examples, build one job per example, skip what the published log or the progress file
already holds, ask the judge for the rest, and pair every example with its record (a request that
failed for good gets the stage's own failure record). The stage then turns the records into its
rows and report, and `publish` writes the stage's files into OUT together, atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import (
    atomic_write_json,
    atomic_write_jsonl,
    provenance,
    sha256_file,
    staged_dir,
)
from harness_ext.core.records import ChatClient, Example
from harness_ext.data.examples_io import read_examples
from harness_ext.llm.jobs import Job, Outcome, client_stats, published_records, run_jobs
from harness_ext.llm.ledger import usage_block
from harness_ext.llm.templates import PromptTemplate


@dataclass(frozen=True)
class PassSpec:
    """A stage's names: its progress file (.progress/STAGE.jsonl), its published log, its progress bar."""

    stage: str
    log_name: str
    desc: str


@dataclass
class PassResult:
    """Every example of the input with its record (request hashes added), and the run's outcome."""

    data: Path
    examples: list[Example]
    records: list[dict[str, Any]]
    outcome: Outcome

    def counts(self, client: ChatClient) -> dict[str, Any]:
        """The report fields every pass has: failures, reuse, the client's stats and token usage."""
        return {"request_failures": len(self.outcome.failed), "reused": self.outcome.reused,
                "requested": self.outcome.new, "client_stats": client_stats(client), "usage": usage_block(client)}

    def provenance(self, model: str, tpl: PromptTemplate) -> dict[str, Any]:
        return provenance(input=str(self.data), input_sha256=sha256_file(self.data), judge_model=model,
                          judge_prompt=tpl.name, judge_prompt_sha256=tpl.sha256,
                          judge_prompt_folder=str(tpl.folder))


def run_pass(
    data: str | Path,
    out: Path,
    client: ChatClient,
    make_job: Callable[[Example], Job],
    failure: Callable[[Example, str], dict[str, Any]],
    spec: PassSpec,
    *,
    batch_size: int,
    allow_failures: bool,
) -> PassResult:
    """One resumable pass: OUT/.progress/STAGE.jsonl keeps finished records while it runs, and the
    published OUT/LOG_NAME is reused by a rerun, so nothing is requested twice. `failure` makes the
    record of an example whose request failed for good."""
    data = Path(data)
    examples = read_examples(data)
    jobs = [make_job(ex) for ex in examples]
    progress = out / ".progress" / f"{spec.stage}.jsonl"
    outcome = run_jobs(jobs, client, progress, previous=published_records(out / spec.log_name),
                       batch_size=batch_size, desc=spec.desc)
    outcome.raise_if_failed(spec.stage, progress, allow_failures)
    failed = dict(outcome.failed)
    records = []
    for ex, job in zip(examples, jobs, strict=True):
        rec = outcome.records.get(ex.id)
        if rec is None:
            rec = {**failure(ex, f"request failed: {failed[ex.id]}"), "request_failed": True}
        records.append({**rec, "request_sha256": job.hashes()})
    return PassResult(data, examples, records, outcome)


def publish(out: Path, files: dict[str, list[dict[str, Any]] | dict[str, Any]]) -> None:
    """Write the stage's files into OUT together: a list as JSONL, a mapping as JSON."""
    with staged_dir(out) as tmp:
        for name, content in files.items():
            if isinstance(content, list):
                atomic_write_jsonl(tmp / name, content)
            else:
                atomic_write_json(tmp / name, content)

"""A small stage runner: each stage has inputs, a config and one output folder in a run directory.

A stage is skipped when its output folder holds a stamp whose key matches the stage's current key:
sha256 over (stage name, config, the keys of the stages it reads from, the content hashes of the
input files it reads, package version). Changing a config value or an input file re-runs exactly
the stages downstream of the change. A stage re-runs anyway when its `stale` check rejects what
it published (say, judge results that record failed requests), and then so does every stage
downstream of it. Stages resume internally (the trainer from its last
checkpoint, generation and judging from their append logs), so a stage that was killed half-way
continues where it stopped when the same command is run again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext import __version__
from harness_ext.core.artifacts import atomic_write_json, sha256_file, stable_hash
from harness_ext.core.errors import HarnessError, RequestsFailed, StageError
from harness_ext.pipeline.layout import stage_dir

log = logging.getLogger(__name__)

STAMP = ".stage.json"


@dataclass
class Stage:
    """One unit of work. `run(out_dir)` must create its outputs under `out_dir`."""

    name: str
    run: Callable[[Path], Any]
    config: dict[str, Any] = field(default_factory=dict)
    after: list[str] = field(default_factory=list)
    input_files: list[Path] = field(default_factory=list)
    # Why a stamped output is no longer acceptable (None: it is), checked before skipping the stage.
    stale: Callable[[Path], str | None] | None = None


@dataclass
class StageResult:
    name: str
    status: str  # "ran" | "skipped"
    seconds: float
    out_dir: Path
    cpu_seconds: float = 0.0  # CPU time of this process over the stage, all threads (load-independent-ish)


def _file_hashes(paths: list[Path]) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for p in paths:
        p = Path(p)
        if p.is_file():
            hashes[str(p)] = sha256_file(p)
        elif p.is_dir():
            hashes[str(p)] = stable_hash(
                {str(f.relative_to(p)): sha256_file(f) for f in sorted(p.rglob("*")) if f.is_file()}
            )
        else:
            raise StageError(f"input '{p}' does not exist.", hint="check the path in the experiment file.")
    return hashes


class Pipeline:
    """Runs stages in order inside one run directory, skipping the ones already up to date."""

    def __init__(self, run_dir: str | Path, *, printer: Callable[[str], None] = print) -> None:
        self.run_dir = Path(run_dir)
        self.stages: dict[str, Stage] = {}
        self.keys: dict[str, str] = {}
        self.results: list[StageResult] = []
        self.say = printer

    def add(self, stage: Stage) -> Stage:
        if stage.name in self.stages:
            raise StageError(f"stage '{stage.name}' is defined twice.")
        for dep in stage.after:
            if dep not in self.stages:
                raise StageError(f"stage '{stage.name}' depends on unknown stage '{dep}'.")
        self.stages[stage.name] = stage
        return stage

    def out_dir(self, name: str) -> Path:
        return stage_dir(self.run_dir, name)

    def key(self, stage: Stage) -> str:
        return stable_hash(
            {
                "stage": stage.name,
                "config": stage.config,
                "after": {d: self.keys[d] for d in stage.after},
                "inputs": _file_hashes(stage.input_files),
                "version": __version__,
            }
        )

    def is_current(self, stage: Stage, key: str) -> bool:
        stamp = self.out_dir(stage.name) / STAMP
        if not stamp.is_file():
            return False
        try:
            return json.loads(stamp.read_text(encoding="utf-8")).get("key") == key
        except json.JSONDecodeError:
            return False

    def run(self) -> list[StageResult]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        total = len(self.stages)
        ran: set[str] = set()
        for i, stage in enumerate(self.stages.values(), start=1):
            key = self.key(stage)
            self.keys[stage.name] = key
            out = self.out_dir(stage.name)
            label = f"[{i}/{total}] {stage.name}"
            if self.is_current(stage, key):
                reason = stage.stale(out) if stage.stale else None
                upstream = next((d for d in stage.after if d in ran), None)
                if reason is None and upstream is None:
                    self.say(f"{label}: up to date, skipped")
                    self.results.append(StageResult(stage.name, "skipped", 0.0, out))
                    continue
                self.say(f"{label}: {reason or f'{upstream} ran again'}; running again")
            ran.add(stage.name)
            # A stale stamp must not survive a re-run that fails half-way.
            (out / STAMP).unlink(missing_ok=True)
            out.mkdir(parents=True, exist_ok=True)
            self.say(f"{label}: running")
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                stage.run(out)
            except RequestsFailed as exc:  # its hint already says how to continue
                raise StageError(f"stage '{stage.name}' failed: {exc.message}", hint=exc.hint) from exc
            except HarnessError as exc:
                raise StageError(
                    f"stage '{stage.name}' failed: {exc.message}",
                    hint=(f"{exc.hint.rstrip('.')}; then rerun" if exc.hint else "fix the cause and rerun")
                    + " the same command: completed stages are skipped and this one continues from what it had saved.",
                ) from exc
            except Exception as exc:
                log.exception("stage %s failed", stage.name)
                raise StageError(
                    f"stage '{stage.name}' failed with {type(exc).__name__}: {exc}",
                    hint="see the traceback above (-v); rerun the same command to continue from this stage.",
                ) from exc
            seconds = time.perf_counter() - t0
            atomic_write_json(out / STAMP, {"key": key, "stage": stage.name, "seconds": round(seconds, 2),
                                            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            self.say(f"{label}: done in {seconds:.1f}s")
            self.results.append(StageResult(stage.name, "ran", seconds, out, time.process_time() - c0))
        return self.results

    def timings(self) -> dict[str, dict[str, Any]]:
        return {r.name: {"status": r.status, "seconds": round(r.seconds, 2), "cpu_seconds": round(r.cpu_seconds, 2)}
                for r in self.results}

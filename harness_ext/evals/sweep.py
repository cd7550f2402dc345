"""IFS and ObjecQA over the checkpoints of one training run: format infusion versus knowledge infusion.

"Becoming self-instruct" (arXiv 2307.03692, Sec. 5.3, Fig. 4) follows both metrics through
instruct tuning: IFS (answer-like tone) plateaus early ("format infusion"), while ObjecQA (a
semantic feature: objective answers to questions of taste) keeps moving afterwards ("knowledge
infusion"). Stopping at the IFS plateau is their "minimal instruct tuning". This module measures
both on every checkpoint a run kept, finds the IFS plateau, and says how far ObjecQA moved after it.

    result = sweep(run_dir, out_dir, judge=ObjecQAJudge(client, "gpt-4o-mini"), settings=SweepSettings())

Every checkpoint's scores, answers and verdicts are cached in out/checkpoints/step-<N>.json,
keyed by the checkpoint's files and the settings; a rerun (or a run extended with more
checkpoints) evaluates only what is missing, and re-judges (without regenerating) the answers
of a checkpoint whose judge requests failed. Outputs: sweep.json, sweep.csv, sweep.md, sweep.png.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import (
    atomic_write_json,
    atomic_write_text,
    provenance,
    read_json,
    stable_hash,
)
from harness_ext.core.errors import ConfigError, InputError

log = logging.getLogger(__name__)

SWEEP_VERSION = 1
CACHE_DIR = "checkpoints"


@dataclass(frozen=True)
class SweepSettings:
    """What the sweep asks each checkpoint, and what counts as the IFS plateau."""

    prompt_format: str | None = None  # None: the format the run was trained in
    ifs_instructions: str | None = None  # None: the training monitor's bundled list
    objecqa_questions: str | None = None  # None: tasks/objecqa/test.jsonl
    ifs_partial: bool = True  # also ask each instruction cut to a fragment, as the paper's IFS set does
    ifs_max_new_tokens: int = 32
    objecqa_max_new_tokens: int = 64
    patience: int = 2
    min_delta: float = 0.02
    base_model: str | None = None  # evaluated as step 0 when given

    def key(self) -> str:
        """What makes a cached checkpoint result reusable (the plateau rule is applied afterwards)."""
        d = asdict(self)
        for k in ("patience", "min_delta", "base_model"):
            d.pop(k)
        return stable_hash({"settings": d, "version": SWEEP_VERSION})[:16]


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path


@dataclass(frozen=True)
class CheckpointScores:
    """IFS and ObjecQA of one checkpoint (the row of the sweep table)."""

    step: int
    checkpoint: str
    ifs: float
    objecqa: float
    objecqa_judged: int
    objecqa_failed: int
    cached: bool = False


@dataclass(frozen=True)
class PlateauReport:
    """Where IFS plateaus and how far ObjecQA moved after that step."""

    plateau_step: int | None
    ifs_at_plateau: float | None
    objecqa_at_plateau: float | None
    objecqa_final: float
    objecqa_moved_after: float | None  # final minus at-plateau
    objecqa_share_after: float | None  # of the whole first-to-last ObjecQA change, the part after the plateau
    patience: int
    min_delta: float


@dataclass(frozen=True)
class SweepResult:
    rows: list[CheckpointScores]
    plateau: PlateauReport
    files: dict[str, str] = field(default_factory=dict)
    evaluated: int = 0


def plateau_index(scores: Sequence[float], patience: int, min_delta: float) -> int | None:
    """Index where a rising score plateaus: the last improvement (a gain of at least `min_delta`
    over the best so far) before `patience` consecutive checks without one, the rule the training
    monitor stops on (train.callbacks.Plateau). None when the curve never stays flat that long.

    >>> plateau_index([0.2, 0.5, 0.8, 0.81, 0.80, 0.82], patience=2, min_delta=0.02)
    2
    >>> plateau_index([0.2, 0.4, 0.6, 0.8], patience=2, min_delta=0.02) is None
    True
    """
    if patience < 1:
        raise ConfigError(f"plateau patience must be >= 1, got {patience}.", hint="use e.g. --patience 2")
    best: float | None = None
    best_at = 0
    bad = 0
    for i, s in enumerate(scores):
        if best is None or s >= best + min_delta:
            best, best_at, bad = s, i, 0
        else:
            bad += 1
            best = max(best, s)
            if bad >= patience:
                return best_at
    return None


def plateau_report(rows: Sequence[CheckpointScores], patience: int, min_delta: float) -> PlateauReport:
    """The IFS plateau of a sweep and the ObjecQA change after it."""
    if not rows:
        raise InputError("a sweep with no checkpoints has no curve.")
    i = plateau_index([r.ifs for r in rows], patience, min_delta)
    final = rows[-1].objecqa
    if i is None:
        return PlateauReport(None, None, None, final, None, None, patience, min_delta)
    at = rows[i].objecqa
    total = final - rows[0].objecqa
    share = (final - at) / total if abs(total) > 1e-12 else None
    return PlateauReport(rows[i].step, rows[i].ifs, at, final, final - at, share, patience, min_delta)


def find_checkpoints(run_dir: str | Path, base_model: str | None = None) -> list[Checkpoint]:
    """Every checkpoint a training run kept, by step: RUN/checkpoints/checkpoint-N (train with
    keep_checkpoints: true), the finished model in RUN itself at its final step, and `base_model`
    as step 0 when given."""
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError("training run folder not found.", path=run, hint="pass the --out folder of `harness-ext train`.")
    found: dict[int, Path] = {}
    for p in sorted((run / "checkpoints").glob("checkpoint-*")):
        tail = p.name.split("-", 1)[1]
        if p.is_dir() and tail.isdigit() and (p / "config.json").is_file():
            found[int(tail)] = p
    report = run / "train_report.json"
    if report.is_file() and (run / "config.json").is_file():
        step = int(read_json(report).get("result", {}).get("global_step") or 0)
        found.setdefault(step, run)
    if base_model is not None:
        from harness_ext.train.basemodel import resolve_base_model

        found[0] = Path(resolve_base_model(base_model))
    if not found:
        raise InputError("no checkpoints in this training run.", path=run,
                         hint="train with keep_checkpoints: true and a small save_steps, so the run keeps "
                         "checkpoints/checkpoint-N folders to sweep.")
    return [Checkpoint(s, found[s]) for s in sorted(found)]


def run_prompt_format(run_dir: str | Path) -> str | None:
    """The prompt format a run was trained in, from its report or its resumable-run record."""
    run = Path(run_dir)
    for f in (run / "train_report.json", run / "checkpoints" / "harness_ext_run.json"):
        if f.is_file():
            fmt = (read_json(f).get("config") or {}).get("prompt_format")
            if fmt:
                return str(fmt)
    return None


def _identity(path: Path) -> str:
    """A checkpoint's weight and config files (name, size, mtime): retrained weights get a new key."""
    parts = [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(path.iterdir())
             if f.is_file() and f.suffix in {".safetensors", ".bin", ".json"} and f.name != "trainer_state.json"]
    return stable_hash(parts)[:16]


def ifs_prompts(instructions: Sequence[str], partial: bool) -> list[str]:
    """The IFS prompts: the instructions and, with `partial`, each cut to a fragment after a seeded
    30-80% of its words (the paper's IFS set mixes full and partial instructions about 50/50; an
    instruction-following model answers a fragment, a base model finishes it). Instructions under
    4 words have no fragment."""
    import random

    from harness_ext.evals.ifs import cut_instruction

    out = list(instructions)
    if partial:
        for i, text in enumerate(instructions):
            split = cut_instruction(text, random.Random(i))
            if split is not None:
                out.append(split[0])
    return out


class CheckpointEvaluator:
    """Answers the IFS instructions and ObjecQA questions with one checkpoint and scores them."""

    def __init__(self, *, classifier: Any, judge: Any, settings: SweepSettings, run_dir: Path) -> None:
        from harness_ext.evals.objecqa import load_questions
        from harness_ext.train.callbacks import load_instructions

        self.classifier = classifier
        self.judge = judge
        self.settings = settings
        self.run_dir = run_dir
        self.instructions = ifs_prompts(load_instructions(settings.ifs_instructions), settings.ifs_partial)
        self.questions = load_questions(settings.objecqa_questions)
        self.prompt_format = settings.prompt_format or run_prompt_format(run_dir)

    def key(self, ckpt: Checkpoint) -> str:
        meta = getattr(self.classifier, "meta", None) or type(self.classifier).__name__
        return stable_hash({"settings": self.settings.key(), "format": self.prompt_format,
                            "checkpoint": _identity(ckpt.path), "judge": self.judge.model,
                            "judge_prompt": self.judge.prompt_sha256(), "classifier": meta,
                            "instructions": self.instructions, "questions": [q.question for q in self.questions]})

    def _load(self, ckpt: Checkpoint):
        from harness_ext.core.errors import require

        torch = require("torch", extra="train", purpose="the checkpoint sweep")
        transformers = require("transformers", extra="train", purpose="the checkpoint sweep")
        tok_dir = next((p for p in (ckpt.path, self.run_dir) if (p / "tokenizer_config.json").is_file()), None)
        if tok_dir is None:
            raise InputError("no tokenizer next to this checkpoint or in its run folder.", path=ckpt.path,
                             hint="sweep a run written by `harness-ext train` (it saves the tokenizer).")
        tokenizer = transformers.AutoTokenizer.from_pretrained(tok_dir)
        model = transformers.AutoModelForCausalLM.from_pretrained(ckpt.path, dtype=torch.float32)
        return model.eval(), tokenizer

    def evaluate(self, ckpt: Checkpoint) -> dict[str, Any]:
        """The cache record of one checkpoint: scores, answers and verdicts."""
        from harness_ext.llm.formats import resolve_format
        from harness_ext.train.callbacks import GenerationProbe
        from harness_ext.train.data import special_prefix

        model, tokenizer = self._load(ckpt)
        fmt = resolve_format(ckpt.path, tokenizer, self.prompt_format)
        prefix = special_prefix(tokenizer)
        ifs_probe = GenerationProbe(fmt, tokenizer, prefix, self.settings.ifs_max_new_tokens)
        qa_probe = GenerationProbe(fmt, tokenizer, prefix, self.settings.objecqa_max_new_tokens)
        ifs_answers = ifs_probe.answers(model, self.instructions)
        flags = [bool(f) for f in self.classifier.answer_like(self.instructions, ifs_answers)]
        qa_answers = qa_probe.answers(model, [q.question for q in self.questions])
        record = {
            "key": self.key(ckpt), "step": ckpt.step, "checkpoint": str(ckpt.path), "format": fmt.name,
            "ifs": sum(flags) / len(flags), "judge": self.judge.model,
            "ifs_answers": [{"instruction": i, "answer": a, "answer_like": f}
                            for i, a, f in zip(self.instructions, ifs_answers, flags, strict=True)],
        }
        return self.judged(record, qa_answers)

    def judged(self, record: dict[str, Any], answers: Sequence[str]) -> dict[str, Any]:
        """`record` with the ObjecQA verdicts and score of `answers` (the judge's cache answers repeats)."""
        from harness_ext.evals.objecqa import objecqa_score

        verdicts = self.judge.judge(self.questions, list(answers))
        score = objecqa_score(verdicts)
        return {**record, "objecqa": score.score, "objecqa_judged": score.judged, "objecqa_failed": score.failed,
                "objecqa_answers": [{"id": q.id, "question": q.question, "answer": a, "objective": v.objective,
                                     "judge_reply": v.judge_reply, "error": v.error}
                                    for q, a, v in zip(self.questions, answers, verdicts, strict=True)]}


def _row(record: dict[str, Any], cached: bool) -> CheckpointScores:
    return CheckpointScores(int(record["step"]), str(record["checkpoint"]), float(record["ifs"]),
                            float(record["objecqa"]), int(record["objecqa_judged"]), int(record["objecqa_failed"]),
                            cached)


def sweep(run_dir: str | Path, out_dir: str | Path, *, classifier: Any, judge: Any,
          settings: SweepSettings = SweepSettings(), figure: bool = True) -> SweepResult:
    """Evaluate IFS and ObjecQA on every checkpoint of `run_dir` (cached per checkpoint in
    out_dir/checkpoints/) and write the table, the figure and the plateau report to `out_dir`."""
    from tqdm.auto import tqdm

    run, out = Path(run_dir), Path(out_dir)
    checkpoints = find_checkpoints(run, settings.base_model)
    evaluator = CheckpointEvaluator(classifier=classifier, judge=judge, settings=settings, run_dir=run)
    rows: list[CheckpointScores] = []
    evaluated = 0
    for ckpt in tqdm(checkpoints, desc="sweep", unit="ckpt"):
        cache = out / CACHE_DIR / f"step-{ckpt.step}.json"
        old = read_json(cache) if cache.is_file() else None
        if old is not None and old.get("key") == evaluator.key(ckpt) and not old.get("objecqa_failed"):
            rows.append(_row(old, cached=True))
            continue
        if old is not None and old.get("key") == evaluator.key(ckpt):
            # some judge requests failed last time: judge the kept answers again (no regeneration)
            record = evaluator.judged(old, [a["answer"] for a in old["objecqa_answers"]])
        else:
            record = evaluator.evaluate(ckpt)
        atomic_write_json(cache, record)
        evaluated += 1
        rows.append(_row(record, cached=False))
        log.info("step %d: IFS %.3f, ObjecQA %.3f", ckpt.step, record["ifs"], record["objecqa"])
    report = plateau_report(rows, settings.patience, settings.min_delta)
    files = write_outputs(out, rows, report, meta={"run": str(run), "judge": judge.model,
                                                   "prompt_format": evaluator.prompt_format,
                                                   "settings": asdict(settings)}, figure=figure)
    return SweepResult(rows, report, files, evaluated)


def write_outputs(out: Path, rows: Sequence[CheckpointScores], report: PlateauReport, *, meta: dict[str, Any],
                  figure: bool = True) -> dict[str, str]:
    """sweep.json (rows, plateau report, provenance), sweep.csv, sweep.md and sweep.png."""
    table = [{k: v for k, v in asdict(r).items() if k != "cached"} for r in rows]
    files = {"json": str(out / "sweep.json"), "csv": str(out / "sweep.csv"), "markdown": str(out / "sweep.md")}
    header = ["step", "ifs", "objecqa", "objecqa_judged", "objecqa_failed", "checkpoint"]
    csv = "\n".join([",".join(header)] + [",".join(str(r[h]) for h in header) for r in table]) + "\n"
    atomic_write_text(out / "sweep.csv", csv)
    atomic_write_text(out / "sweep.md", render_markdown(rows, report))
    if figure:
        files["figure"] = str(plot_sweep(rows, report, out / "sweep.png", title=meta.get("title")))
    atomic_write_json(out / "sweep.json", {"rows": table, "plateau": asdict(report), **meta, "files": files,
                                           "provenance": provenance(kind="ifs-objecqa-sweep", version=SWEEP_VERSION)})
    return files


def render_markdown(rows: Sequence[CheckpointScores], report: PlateauReport) -> str:
    lines = ["| step | IFS | ObjecQA | judged |", "|---:|---:|---:|---:|"]
    for r in rows:
        mark = " (IFS plateau)" if r.step == report.plateau_step else ""
        lines.append(f"| {r.step}{mark} | {r.ifs:.3f} | {r.objecqa:.3f} | {r.objecqa_judged} |")
    lines.append("")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def summary_line(report: PlateauReport) -> str:
    rule = f"(no gain of {report.min_delta} for {report.patience} checks)"
    if report.plateau_step is None:
        return f"IFS did not plateau {rule}; ObjecQA ended at {report.objecqa_final:.3f}."
    share = "" if report.objecqa_share_after is None else \
        f", {100 * report.objecqa_share_after:.0f}% of its first-to-last change"
    return (f"IFS plateaus at step {report.plateau_step} (IFS {report.ifs_at_plateau:.3f}) {rule}; ObjecQA moved "
            f"{report.objecqa_moved_after:+.3f} after it ({report.objecqa_at_plateau:.3f} -> "
            f"{report.objecqa_final:.3f}{share}).")


def plot_sweep(rows: Sequence[CheckpointScores], report: PlateauReport, path: Path, *, title: str | None = None) -> Path:
    """One figure: IFS and ObjecQA over training steps, the IFS plateau marked."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness_ext.core.artifacts import atomic_write_bytes

    steps = [r.step for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(steps, [r.ifs for r in rows], marker="o", label="IFS (answer-like share)")
    ax.plot(steps, [r.objecqa for r in rows], marker="s", label="ObjecQA (objective share)")
    if report.plateau_step is not None:
        ax.axvline(report.plateau_step, color="grey", linestyle="--", linewidth=1)
        ax.text(report.plateau_step, 0.97, f" IFS plateau (step {report.plateau_step})\n"
                f" ObjecQA after it: {report.objecqa_moved_after:+.2f}", transform=ax.get_xaxis_transform(),
                va="top", ha="left", fontsize=8, color="dimgrey")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("score")
    ax.set_title(title or "Format infusion (IFS) vs knowledge infusion (ObjecQA)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())

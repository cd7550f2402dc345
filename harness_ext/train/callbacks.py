"""Trainer callbacks: the JSONL training log, and the IFS and ObjecQA monitors (arXiv 2307.03692).

Both are plain `transformers.TrainerCallback`s; they are built by functions so that importing
this module does not import transformers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import AppendLog, atomic_write_jsonl, read_jsonl
from harness_ext.core.errors import InputError
from harness_ext.core.records import ToneClassifier, Turn

log = logging.getLogger(__name__)

LOG_FILE = "train_log.jsonl"


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a training log (a torn last line from a killed run is ignored)."""
    return read_jsonl(path, allow_truncated_tail=True)


def rewind_log(path: Path, step: int) -> list[dict[str, Any]]:
    """Keep only records up to `step` (what a resumed run starts from) and return them."""
    if not path.exists():
        return []
    kept = [r for r in read_log(path) if int(r.get("step", 0)) <= step]
    atomic_write_jsonl(path, kept)
    return kept


class TrainLog:
    """Appends one JSON line per logged step; wall time continues across resumed sessions."""

    def __init__(self, path: Path, history: Sequence[dict[str, Any]] = ()) -> None:
        self.log = AppendLog(path)
        self.offset = max((float(r.get("wall_time", 0.0)) for r in history), default=0.0)
        self.start = time.monotonic()

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {**record, "wall_time": round(self.offset + time.monotonic() - self.start, 3)}
        self.log.append(record)
        return record

    def close(self) -> None:
        self.log.close()


def make_log_callback(train_log: TrainLog):
    """A callback writing loss, lr, grad norm, real tokens seen and epoch at every log step."""
    from transformers import TrainerCallback

    class JsonlLogCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            train_log.write({
                "type": "train", "step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4),
                "loss": logs.get("loss"), "lr": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
                "real_tokens": int(getattr(state, "num_input_tokens_seen", 0) or 0),
            })

    return JsonlLogCallback()


# ---------------------------------------------------------------- IFS


def load_instructions(path: str | Path | None) -> list[str]:
    """IFS instructions: one per line of a text file, or JSONL rows with 'instruction'."""
    from harness_ext.core.paths import resources_dir

    path = Path(path) if path else resources_dir() / "ifs_instructions.txt"
    if not path.is_file():
        raise InputError("IFS instruction file not found.", path=path,
                         hint="fix the ifs_instructions path (a text file, one instruction per line, or JSONL "
                         "with 'instruction'), or set ifs_instructions=null for the bundled list.")
    if path.suffix == ".jsonl":
        rows = read_jsonl(path)
        out = []
        for i, row in enumerate(rows, start=1):
            if not isinstance(row, dict) or not str(row.get("instruction", "")).strip():
                raise InputError("row has no 'instruction'.", path=path, line=i)
            out.append(str(row["instruction"]))
    else:
        out = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not out:
        raise InputError("no IFS instructions in file.", path=path)
    return out


def load_classifier(name: str) -> ToneClassifier:
    """The response-tone classifier called `name` ('default': harness_ext.evals.ifs.load_tone_classifier)."""
    import importlib

    from harness_ext.core.errors import ConfigError

    if name != "default":
        raise ConfigError(f"ifs_classifier='{name}' is unknown.",
                          hint="use 'default', or pass a classifier object to train(..., tone_classifier=...).")
    try:
        ifs = importlib.import_module("harness_ext.evals.ifs")
    except ImportError as exc:
        if (getattr(exc, "name", "") or "") != "harness_ext.evals.ifs":
            raise  # harness_ext.evals.ifs exists but one of its own imports failed: keep that error
        raise ConfigError(
            "ifs_classifier='default' needs harness_ext.evals.ifs (the response-tone classifier of the lm-eval "
            "tasks), which this installation does not have.",
            hint="set ifs_every=0, or pass a classifier object to train(..., tone_classifier=...).",
        ) from None
    return ifs.load_tone_classifier()


def greedy_answers(model, tokenizer, fmt, instructions: list[str], max_new_tokens: int,
                   prefix: list[int], batch_size: int = 8) -> list[str]:
    """Greedy, short answers to `instructions` rendered with `fmt`, in eval mode (no NEFTune)."""
    import torch

    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    answers: list[str] = []
    try:
        device = next(model.parameters()).device
        for start in range(0, len(instructions), batch_size):
            chunk = instructions[start:start + batch_size]
            encoded = []
            for text in chunk:
                prompt = fmt.render([Turn("user", text)], add_generation_prompt=True)
                ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
                bos = tokenizer.bos_token
                encoded.append(ids if bos and prompt.startswith(bos) else prefix + ids)
            width = max(len(e) for e in encoded)
            input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            for i, e in enumerate(encoded):  # left padding so every answer starts at column `width`
                input_ids[i, width - len(e):] = torch.as_tensor(e)
                mask[i, width - len(e):] = 1
            with torch.no_grad():
                out = model.generate(
                    input_ids=input_ids.to(device), attention_mask=mask.to(device), do_sample=False,
                    max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id,
                )
            for row in out[:, width:]:
                text = tokenizer.decode(row, skip_special_tokens=True)
                for stop in fmt.stop:
                    text = text.split(stop)[0] if stop else text
                answers.append(text.strip())
    finally:
        if was_training:
            model.train()
    return answers


class Plateau:
    """Early stopping on a score that should rise: stop after `patience` checks without a gain
    of at least `min_delta` over the best score so far (patience 0: never stop)."""

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.bad = 0

    def update(self, score: float) -> bool:
        if self.best is None or score >= self.best + self.min_delta:
            self.best, self.bad = score, 0
        else:
            self.bad += 1
            self.best = max(self.best, score)
        return bool(self.patience) and self.bad >= self.patience


@dataclass(frozen=True)
class GenerationProbe:
    """How a monitor asks the model in training: the prompt format, the tokenizer, the token ids
    the tokenizer puts in front of text (special_prefix) and the greedy answer length."""

    fmt: Any
    tokenizer: Any
    prefix: list[int]
    max_new_tokens: int

    def answers(self, model, prompts: list[str]) -> list[str]:
        return greedy_answers(model, self.tokenizer, self.fmt, prompts, self.max_new_tokens, self.prefix)


@dataclass(frozen=True)
class LazyProbe:
    """A GenerationProbe built at the first check from the trainer's own tokenizer, for monitors
    passed to train(..., callbacks=[...]) before the tokenizer is loaded."""

    prompt_format: str
    max_new_tokens: int

    def resolve(self, tokenizer) -> GenerationProbe:
        from harness_ext.llm.formats import get_format
        from harness_ext.train.data import special_prefix

        if tokenizer is None:
            raise InputError("the trainer passed no tokenizer to the monitor callback.",
                             hint="build a GenerationProbe yourself and pass it as probe=.")
        return GenerationProbe(get_format(self.prompt_format, tokenizer), tokenizer, special_prefix(tokenizer),
                               self.max_new_tokens)


@dataclass(frozen=True)
class MonitorSchedule:
    """When a monitor measures (every `every` optimizer steps; 0: never) and when its plateau stops
    training (after `patience` checks without a gain of `min_delta`; patience 0: never)."""

    every: int
    patience: int = 0
    min_delta: float = 0.01


def _replay(plateau: Plateau, history: Sequence[dict[str, Any]], kind: str) -> None:
    for record in history:
        if record.get("type") == kind:
            plateau.update(float(record[kind]))


def make_ifs_callback(*, classifier: ToneClassifier, instructions: list[str], probe: GenerationProbe,
                      schedule: MonitorSchedule, write: Callable[[dict[str, Any]], Any],
                      history: Sequence[dict[str, Any]] = ()):
    """A callback scoring IFS on `schedule`, logging it and stopping on a plateau.

    `history` holds the IFS records of an interrupted run, so a resumed run keeps its plateau count.
    """
    def score(model, tokenizer) -> tuple[float, dict[str, Any]]:
        answers = probe.answers(model, instructions)
        verdicts = list(classifier.answer_like(instructions, answers))
        if len(verdicts) != len(instructions):
            raise InputError(
                f"the tone classifier returned {len(verdicts)} verdicts for {len(instructions)} responses."
            )
        return sum(bool(v) for v in verdicts) / len(verdicts), {}

    return _monitor_callback("ifs", score, schedule, write, history)


def make_objecqa_callback(*, judge: Any, questions: Sequence[Any], probe: GenerationProbe | LazyProbe,
                          schedule: MonitorSchedule, write: Callable[[dict[str, Any]], Any],
                          history: Sequence[dict[str, Any]] = ()):
    """A callback scoring ObjecQA (arXiv 2307.03692) on `schedule` beside IFS: the model answers
    the questions with greedy decoding, `judge` (harness_ext.evals.objecqa.ObjecQAJudge or
    LexiconJudge) classifies the answers, and the share judged objective is logged as
    {"type": "objecqa", ...}. The paper watches it rise *after* IFS plateaus, so it does not stop
    training by default (schedule.patience 0). A LazyProbe takes the trainer's tokenizer.

        train(config, data, out, callbacks=[make_objecqa_callback(
            judge=LexiconJudge(), questions=load_questions(), probe=LazyProbe("alpaca", 64),
            schedule=MonitorSchedule(every=50), write=AppendLog(out / "objecqa_log.jsonl").append)])
    """
    from harness_ext.evals.objecqa import objecqa_score

    resolved: list[GenerationProbe] = []

    def score(model, tokenizer) -> tuple[float, dict[str, Any]]:
        if not resolved:
            resolved.append(probe.resolve(tokenizer) if isinstance(probe, LazyProbe) else probe)
        answers = resolved[0].answers(model, [q.question for q in questions])
        result = objecqa_score(judge.judge(list(questions), answers))
        return result.score, {"objecqa_judged": result.judged, "objecqa_failed": result.failed,
                              "judge": judge.model}

    return _monitor_callback("objecqa", score, schedule, write, history)


def _monitor_callback(kind: str, score: Callable[[Any, Any], tuple[float, dict[str, Any]]], schedule: MonitorSchedule,
                      write: Callable[[dict[str, Any]], Any], history: Sequence[dict[str, Any]]):
    """A TrainerCallback measuring `score(model, tokenizer)` every schedule.every steps, writing a `kind` record
    (with the best score and the checks without gain) and stopping when the score plateaus."""
    from transformers import TrainerCallback

    plateau = Plateau(schedule.patience, schedule.min_delta)
    _replay(plateau, history, kind)

    class MonitorCallback(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if not schedule.every or state.global_step % schedule.every or model is None:
                return control
            value, extra = score(model, kwargs.get("processing_class"))
            stop = plateau.update(value)
            record = {"type": kind, "step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4),
                      kind: value, f"best_{kind}": plateau.best, "checks_without_gain": plateau.bad,
                      "stopped": stop, **extra}
            if state.is_world_process_zero:
                write(record)
            log.info("step %d: %s %.3f (best %.3f)", state.global_step, kind, value, plateau.best)
            if stop:
                log.info("%s plateaued for %d checks: stopping early", kind, plateau.bad)
                control.should_training_stop = True
                control.should_save = True
            return control

    MonitorCallback.__name__ = MonitorCallback.__qualname__ = f"{kind.upper()}Callback"
    return MonitorCallback()

"""MT-Bench inputs in FastChat's formats: questions, model answers, reference answers, judge prompts.

Files come from FastChat's repository (fastchat/llm_judge/data/): mt_bench/question.jsonl,
mt_bench/reference_answer/gpt-4.jsonl, judge_prompts.jsonl, and model_answer/<model_id>.jsonl
as written by FastChat's gen_model_answer.py or `harness-ext generate`. They are read by path,
never bundled. Every problem names the file, the line and the field.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import iter_jsonl
from harness_ext.core.errors import ConfigError, InputError, did_you_mean

# Categories judged against a reference answer (FastChat common.NEED_REF_CATS).
NEED_REF_CATS = ("math", "reasoning", "coding", "arena-hard-200")

# Which FastChat judge prompt judges which (mode, needs reference, turn); as in gen_judgment.py.
PROMPT_NAMES: dict[tuple[str, bool, int], str] = {
    ("single", False, 1): "single-v1",
    ("single", True, 1): "single-math-v1",
    ("single", False, 2): "single-v1-multi-turn",
    ("single", True, 2): "single-math-v1-multi-turn",
    ("pairwise", False, 1): "pair-v2",
    ("pairwise", True, 1): "pair-math-v1",
    ("pairwise", False, 2): "pair-v2-multi-turn",
    ("pairwise", True, 2): "pair-math-v1-multi-turn",
}
OUTPUT_FORMATS = {"single": "[[rating]]", "pairwise": "[[A]]"}
_TURN_FIELDS = {
    ("single", 1): {"question", "answer"},
    ("single", 2): {"question_1", "question_2", "answer_1", "answer_2"},
    ("pairwise", 1): {"question", "answer_a", "answer_b"},
    ("pairwise", 2): {"question_1", "question_2", "answer_a_1", "answer_b_1", "answer_a_2", "answer_b_2"},
}


def template_fields(mode: str, needs_reference: bool, turn: int) -> set[str]:
    """The placeholders FastChat fills in for a prompt (references only for the math prompts)."""
    refs = {"ref_answer_1", "ref_answer_2"} if turn == 2 else {"ref_answer_1"}
    return _TURN_FIELDS[(mode, turn)] | (refs if needs_reference else set())


@dataclass(frozen=True)
class Question:
    """One MT-Bench question: id, category and its user turns."""

    question_id: int | str
    category: str
    turns: tuple[str, ...]

    @property
    def needs_reference(self) -> bool:
        return self.category in NEED_REF_CATS


def _rows(path: Path, what: str):
    path = Path(path)
    if path.is_dir():
        raise InputError(f"is a folder; expected the {what} JSONL file.", path=path)
    for line, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise InputError(f"expected a JSON object, got {type(row).__name__}.", path=path, line=line)
        yield line, row


def _turns(row: dict[str, Any], path: Path, line: int, where: str) -> tuple[str, ...]:
    turns = row.get("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise InputError(f"'{where}' must be a non-empty list of strings, got {turns!r:.80}.", path=path, line=line)
    return tuple(turns)


def load_questions(path: str | Path) -> list[Question]:
    """FastChat question.jsonl: {question_id, category, turns: [str, ...]} per line."""
    path = Path(path)
    out: list[Question] = []
    seen: set[Any] = set()
    for line, row in _rows(path, "question"):
        for key in ("question_id", "category", "turns"):
            if key not in row:
                raise InputError(f"missing field '{key}' (keys seen: {sorted(row)}).", path=path, line=line,
                                 hint="use FastChat's mt_bench/question.jsonl format.")
        qid = row["question_id"]
        if qid in seen:
            raise InputError(f"question_id {qid!r} appears twice.", path=path, line=line)
        seen.add(qid)
        out.append(Question(qid, str(row["category"]), _turns(row, path, line, "turns")))
    if not out:
        raise InputError("no questions in the file.", path=path)
    return out


def _answer_turns(path: Path) -> dict[Any, tuple[str, ...]]:
    answers: dict[Any, tuple[str, ...]] = {}
    for line, row in _rows(path, "answer"):
        if "question_id" not in row:
            raise InputError("missing field 'question_id'.", path=path, line=line)
        choices = row.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise InputError(f"'choices' must be a non-empty list of objects, got {choices!r:.80}.", path=path,
                             line=line, hint="use FastChat's model_answer format: choices[0].turns.")
        answers[row["question_id"]] = _turns(choices[0], path, line, "choices[0].turns")
    return answers


def list_models(answer_dir: str | Path) -> list[str]:
    """Model ids with an answer file (<model_id>.jsonl) in `answer_dir`, sorted."""
    d = Path(answer_dir)
    if not d.is_dir():
        raise InputError("answer folder not found.", path=d, hint="pass the model_answer folder holding <model_id>.jsonl files.")
    return sorted(p.stem for p in d.glob("*.jsonl"))


def load_answers(answer_dir: str | Path, models: list[str], questions: list[Question]) -> dict[str, dict[Any, tuple[str, ...]]]:
    """Answers per model and question, checking that every question has all its turns answered."""
    d = Path(answer_dir)
    available = list_models(d)
    out: dict[str, dict[Any, tuple[str, ...]]] = {}
    for model in models:
        path = d / f"{model}.jsonl"
        if not path.exists():
            raise ConfigError(
                f"no answers for model '{model}' in {d}.{did_you_mean(model, available)}",
                hint=f"models with answers: {', '.join(available) or '(none)'}",
            )
        answers = _answer_turns(path)
        for q in questions:
            got = answers.get(q.question_id)
            if got is None:
                raise InputError(f"no answer to question {q.question_id!r}.", path=path,
                                 hint="generate answers for every question, or judge fewer with --first-n.")
            if len(got) < len(q.turns):
                raise InputError(f"question {q.question_id!r} has {len(q.turns)} turns but the answer has {len(got)}.",
                                 path=path)
        out[model] = answers
    return out


def load_references(path: str | Path | None, questions: list[Question]) -> dict[Any, tuple[str, ...]]:
    """Reference answers (FastChat answer format) for the questions whose category needs one."""
    needing = [q for q in questions if q.needs_reference]
    if path is None:
        if needing:
            raise ConfigError(
                f"{len(needing)} questions (categories {', '.join(sorted({q.category for q in needing}))}) are "
                "judged against reference answers, but no reference file was given.",
                hint="pass --ref-answers FILE (FastChat: data/mt_bench/reference_answer/gpt-4.jsonl).",
            )
        return {}
    path = Path(path)
    refs = _answer_turns(path)
    for q in needing:
        if q.question_id not in refs:
            raise InputError(f"no reference answer for question {q.question_id!r} ({q.category}).", path=path)
        if len(refs[q.question_id]) < len(q.turns):
            raise InputError(f"reference for question {q.question_id!r} has fewer turns than the question.", path=path)
    return refs


def load_judge_prompts(path: str | Path, mode: str) -> dict[str, dict[str, Any]]:
    """FastChat judge_prompts.jsonl, checked to hold the four prompts `mode` uses."""
    path = Path(path)
    prompts: dict[str, dict[str, Any]] = {}
    for line, row in _rows(path, "judge prompt"):
        for key in ("name", "system_prompt", "prompt_template", "output_format"):
            if not isinstance(row.get(key), str):
                raise InputError(f"field '{key}' missing or not a string.", path=path, line=line,
                                 hint="use FastChat's fastchat/llm_judge/data/judge_prompts.jsonl.")
        prompts[row["name"]] = row
    for (m, needs_ref, turn), name in PROMPT_NAMES.items():
        if m != mode:
            continue
        if name not in prompts:
            raise InputError(f"judge prompt '{name}' (needed for {mode} mode) is missing; found: "
                             f"{', '.join(sorted(prompts))}.", path=path)
        try:
            used = {f for _, f, _, _ in string.Formatter().parse(prompts[name]["prompt_template"]) if f is not None}
        except ValueError as exc:
            raise InputError(f"judge prompt '{name}': bad placeholder syntax ({exc}).", path=path) from None
        extra = used - template_fields(mode, needs_ref, turn)
        if extra:
            raise InputError(f"judge prompt '{name}' uses placeholders {sorted(extra)} that are never filled in; "
                             f"allowed: {sorted(template_fields(mode, needs_ref, turn))}.", path=path)
        fmt = prompts[name]["output_format"]
        if fmt != OUTPUT_FORMATS[mode]:
            raise InputError(f"judge prompt '{name}' has output_format {fmt!r}; this mode parses "
                             f"{OUTPUT_FORMATS[mode]!r}.", path=path)
    return prompts

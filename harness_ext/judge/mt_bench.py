"""MT-Bench judging with FastChat's protocol and file formats, through any ChatClient.

Matches FastChat's gen_judgment.py: turn 1 and turn 2 are judged separately; math, reasoning
and coding questions use the reference-based prompts; single mode asks for a 1-10 "[[rating]]",
pairwise-baseline mode asks "[[A]]/[[B]]/[[C]]" in both answer orders (g1: model first, g2:
baseline first). Judge calls use temperature 0 and max_tokens 2048, as FastChat does.

A reply without a usable verdict is written as FastChat writes it (`score: -1`, `g1_winner:
"error"`), because FastChat's show_result filters exactly those values (a null would be averaged
as NaN or counted as a tie), and every record also carries an explicit `error` (`g1_error`,
`g2_error`) field with the reason; our summaries count those as errors and exclude them.
Differences, on purpose: verdict markers the judge quoted from the answers are skipped (verdicts.py); every
record carries `category` and `request_sha256` so show-result needs no question file and a
rerun re-judges only what changed.

Output: OUT/model_judgment/<judge>_single.jsonl or <judge>_pair.jsonl (FastChat's layout and
fields), plus <judge>_single_report.json / <judge>_pair_report.json with counts and provenance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import (
    atomic_write_json,
    atomic_write_jsonl,
    provenance,
    read_jsonl,
    sha256_file,
    staged_dir,
)
from harness_ext.core.errors import ConfigError
from harness_ext.core.records import ChatClient, ChatRequest, ChatResult, Turn
from harness_ext.judge.mt_bench_files import (
    PROMPT_NAMES,
    Question,
    list_models,
    load_answers,
    load_judge_prompts,
    load_questions,
    load_references,
)
from harness_ext.judge.mt_bench_show import summarize
from harness_ext.judge.verdicts import parse_choice, parse_rating
from harness_ext.llm.jobs import Job, client_stats, run_jobs
from harness_ext.llm.ledger import usage_block

MODES = ("single", "pairwise-baseline")
# FastChat's sentinels for an unparsed verdict (common.py: score -1, winner "error"); its
# show_result drops exactly these values, so our files use them too (with an explicit error field).
FASTCHAT_NO_SCORE = -1
FASTCHAT_NO_WINNER = "error"
JUDGE_PARAMS = (("max_tokens", 2048), ("temperature", 0.0))
Prompts = dict[str, dict[str, Any]]
Refs = dict[Any, tuple[str, ...]]


def judgment_path(out: str | Path, judge_model: str, mode: str) -> Path:
    """Where FastChat keeps judgments: model_judgment/<judge>_single.jsonl or _pair.jsonl."""
    safe = judge_model.replace("/", "_").replace("\\", "_")
    return Path(out) / "model_judgment" / f"{safe}_{'single' if mode == 'single' else 'pair'}.jsonl"


def _fill(prompt: dict[str, Any], **fields: str) -> tuple[str, str]:
    """The user prompt (FastChat's template filled in) and the system prompt."""
    user = prompt["prompt_template"].format(**fields)
    return user, prompt["system_prompt"]


def _request(model: str, system: str, user: str) -> ChatRequest:
    return ChatRequest(model=model, messages=(Turn("system", system), Turn("user", user)), params=JUDGE_PARAMS)


def _ref_fields(q: Question, refs: Refs, turn: int) -> dict[str, str]:
    if not q.needs_reference:
        return {}
    ref = refs[q.question_id]
    return {"ref_answer_1": ref[0], **({"ref_answer_2": ref[1]} if turn == 2 else {})}


def _single_job(q: Question, model: str, answer: tuple[str, ...], turn: int, prompts: Prompts, refs: Refs,
                judge_model: str) -> Job:
    prompt = prompts[PROMPT_NAMES[("single", q.needs_reference, turn)]]
    if turn == 1:
        fields = {"question": q.turns[0], "answer": answer[0]}
    else:
        fields = {"question_1": q.turns[0], "question_2": q.turns[1], "answer_1": answer[0], "answer_2": answer[1]}
    fields.update(_ref_fields(q, refs, turn))
    user, system = _fill(prompt, **fields)
    judged = [*q.turns, *answer[:turn], *fields.values()]
    instructions = [prompt["system_prompt"], prompt["prompt_template"]]

    def build(results: list[ChatResult]) -> dict[str, Any]:
        reply = results[0].text
        v = parse_rating(reply, low=1, high=10, judged=judged, instructions=instructions)
        return {"question_id": q.question_id, "model": model, "judge": [judge_model, prompt["name"]],
                "user_prompt": user, "judgment": reply, "score": v.value if v.ok else FASTCHAT_NO_SCORE,
                "turn": turn, "tstamp": time.time(),
                "category": q.category, "error": v.error, "echoes_skipped": v.echoes}

    return Job(f"{q.question_id}|{model}|{turn}", [_request(judge_model, system, user)], build)


def _pair_prompt(prompt: dict[str, Any], q: Question, a: tuple[str, ...], b: tuple[str, ...], turn: int,
                 refs: Refs) -> tuple[str, str]:
    if turn == 1:
        fields = {"question": q.turns[0], "answer_a": a[0], "answer_b": b[0]}
    else:
        fields = {"question_1": q.turns[0], "question_2": q.turns[1], "answer_a_1": a[0], "answer_b_1": b[0],
                  "answer_a_2": a[1], "answer_b_2": b[1]}
    fields.update(_ref_fields(q, refs, turn))
    return _fill(prompt, **fields)


# Nine parameters: FastChat's pairwise game is (question, two models and their answers, turn) plus
# the prompts, references and judge it is rendered with; all are needed to build its two requests.
def _pair_job(q: Question, m1: str, a1: tuple[str, ...], m2: str, a2: tuple[str, ...], turn: int,
              prompts: Prompts, refs: Refs, judge_model: str) -> Job:
    prompt = prompts[PROMPT_NAMES[("pairwise", q.needs_reference, turn)]]
    u1, system = _pair_prompt(prompt, q, a1, a2, turn, refs)  # game 1: model_1 is assistant A
    u2, _ = _pair_prompt(prompt, q, a2, a1, turn, refs)  # game 2: model_2 is assistant A
    judged = [*q.turns, *a1[:turn], *a2[:turn], *_ref_fields(q, refs, turn).values()]
    instructions = [prompt["system_prompt"], prompt["prompt_template"]]

    def build(results: list[ChatResult]) -> dict[str, Any]:
        g1 = parse_choice(results[0].text, judged=judged, instructions=instructions)
        g2 = parse_choice(results[1].text, judged=judged, instructions=instructions)
        to1 = {"A": "model_1", "B": "model_2", "tie": "tie"}
        to2 = {"A": "model_2", "B": "model_1", "tie": "tie"}
        return {"question_id": q.question_id, "model_1": m1, "model_2": m2,
                "g1_winner": to1[g1.value] if g1.ok else FASTCHAT_NO_WINNER,
                "g2_winner": to2[g2.value] if g2.ok else FASTCHAT_NO_WINNER,
                "judge": [judge_model, prompt["name"]], "g1_user_prompt": u1, "g1_judgment": results[0].text,
                "g2_user_prompt": u2, "g2_judgment": results[1].text, "turn": turn, "tstamp": time.time(),
                "category": q.category, "g1_error": g1.error, "g2_error": g2.error,
                "echoes_skipped": g1.echoes + g2.echoes}

    reqs = [_request(judge_model, system, u1), _request(judge_model, system, u2)]
    return Job(f"{q.question_id}|{m1}|{m2}|{turn}", reqs, build)


def _record_key(rec: dict[str, Any]) -> str:
    if "model_1" in rec:
        return f"{rec['question_id']}|{rec['model_1']}|{rec['model_2']}|{rec['turn']}"
    return f"{rec['question_id']}|{rec['model']}|{rec['turn']}"


def _fastchat_done(rec: dict[str, Any], q: Question, mode: str, judge_model: str) -> bool:
    """Whether a record written by FastChat itself (no request hash) already judges this match:
    same judge model, the prompt FastChat would use, and a real verdict (not -1 / "error")."""
    kind = "single" if mode == "single" else "pairwise"
    judge = rec.get("judge") or ["", ""]
    if list(judge) != [judge_model, PROMPT_NAMES[(kind, q.needs_reference, int(rec.get("turn", 1)))]]:
        return False
    if kind == "single":
        score = rec.get("score")
        return isinstance(score, (int, float)) and not isinstance(score, bool) and 1 <= score <= 10
    return all(rec.get(g) in ("model_1", "model_2", "tie") for g in ("g1_winner", "g2_winner"))


def _sort_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    qid = rec["question_id"]
    # numeric ids in numeric order (81 before 101), then any string ids
    return (0, qid, "") if isinstance(qid, int) else (1, 0, str(qid)), rec.get("turn", 0), _record_key(rec)


@dataclass(frozen=True)
class MTBenchOptions:
    """What `judge_mt_bench` judges and how (the CLI flags of `harness-ext mt-bench judge`)."""

    mode: str = "single"  # single | pairwise-baseline
    models: tuple[str, ...] | list[str] | None = None  # default: every model in the answer folder
    baseline_model: str | None = None  # pairwise-baseline: the model every other one is compared with
    ref_answers: str | Path | None = None  # reference answers for math, reasoning and coding
    first_n: int | None = None  # judge only the first N questions
    batch_size: int = 64  # judge requests per batch (progress is saved after each)
    allow_failures: bool = False  # publish even when requests failed after retries


@dataclass
class _Inputs:
    questions: list[Question]
    prompts: Prompts
    refs: Refs
    models: list[str]
    answers: dict[str, dict[Any, tuple[str, ...]]]


def _load_inputs(question_file: str | Path, answer_dir: str | Path, judge_prompts: str | Path,
                 opts: MTBenchOptions) -> _Inputs:
    """Questions, judge prompts, references and answers, checked before any request is sent."""
    if opts.mode not in MODES:
        raise ConfigError(f"unknown mode '{opts.mode}'.", hint=f"use one of: {', '.join(MODES)}")
    questions = load_questions(question_file)
    if opts.first_n is not None:
        if opts.first_n < 1:
            raise ConfigError(f"--first-n must be >= 1, got {opts.first_n}.")
        questions = questions[:opts.first_n]
    prompts = load_judge_prompts(judge_prompts, "single" if opts.mode == "single" else "pairwise")
    refs = load_references(opts.ref_answers, questions)
    models = list(opts.models) if opts.models else list_models(answer_dir)
    baseline = opts.baseline_model
    if opts.mode == "pairwise-baseline":
        if not baseline:
            raise ConfigError("pairwise-baseline mode needs a baseline model.",
                              hint="pass --baseline-model MODEL_ID (its answers must be in the answer folder).")
        models = [m for m in models if m != baseline]
    if not models:
        raise ConfigError(f"no models to judge (answer folder {answer_dir}).",
                          hint="pass --model-list or put <model_id>.jsonl files in the answer folder.")
    answers = load_answers(answer_dir, models + ([baseline] if baseline and opts.mode != "single" else []), questions)
    return _Inputs(questions, prompts, refs, models, answers)


def _jobs(inp: _Inputs, opts: MTBenchOptions, judge_model: str) -> list[Job]:
    """One job per question, turn and model: FastChat's matches."""
    jobs: list[Job] = []
    base = opts.baseline_model
    for q in inp.questions:
        for turn in range(1, min(len(q.turns), 2) + 1):
            for m in inp.models:
                if opts.mode == "single":
                    jobs.append(_single_job(q, m, inp.answers[m][q.question_id], turn, inp.prompts, inp.refs,
                                            judge_model))
                else:
                    jobs.append(_pair_job(q, m, inp.answers[m][q.question_id], base,
                                          inp.answers[base][q.question_id], turn, inp.prompts, inp.refs, judge_model))
    return jobs


def _existing(final: Path, questions: list[Question], hashes: dict[str, list[str]], mode: str, judge_model: str):
    """Records already in the output file (kept) and those reusable as judgments of this run."""
    kept_old: dict[str, dict[str, Any]] = {}
    previous: dict[str, tuple[list[str], dict[str, Any]]] = {}
    if not final.exists():
        return kept_old, previous
    by_id = {q.question_id: q for q in questions}
    for rec in read_jsonl(final):
        key = _record_key(rec)
        kept_old[key] = rec
        if "request_sha256" in rec:
            previous[key] = (rec["request_sha256"], rec)
        elif key in hashes and _fastchat_done(rec, by_id[rec["question_id"]], mode, judge_model):
            previous[key] = (hashes[key], {**rec, "category": by_id[rec["question_id"]].category})
    return kept_old, previous


def judge_mt_bench(*, question_file: str | Path, answer_dir: str | Path, judge_prompts: str | Path,
                   judge_model: str, client: ChatClient, out: str | Path, options: MTBenchOptions | None = None,
                   **settings: Any) -> dict[str, Any]:
    """Judge MT-Bench answers; write FastChat's model_judgment JSONL and a report; return the report.

    `settings` are MTBenchOptions fields (mode=..., models=..., ...), applied over `options`.
    Resumable and incremental: judgments already in the output file or the progress log (same
    question, model(s), turn and identical judge request) are reused; other records already in
    the output file (say, for models not judged this time) are kept.
    """
    try:
        opts = replace(options or MTBenchOptions(), **settings)
    except TypeError as exc:
        raise ConfigError(f"judge_mt_bench: {exc}.",
                          hint=f"options: {sorted(MTBenchOptions.__dataclass_fields__)}") from None
    inp = _load_inputs(question_file, answer_dir, judge_prompts, opts)
    jobs = _jobs(inp, opts, judge_model)
    final = judgment_path(out, judge_model, opts.mode)
    hashes = {j.key: j.hashes() for j in jobs}
    kept_old, previous = _existing(final, inp.questions, hashes, opts.mode, judge_model)
    progress = Path(out) / ".progress" / f"{final.stem}.jsonl"
    outcome = run_jobs(jobs, client, progress, previous=previous, batch_size=opts.batch_size,
                       desc=f"mt-bench {opts.mode}")
    outcome.raise_if_failed("mt-bench judge", progress, opts.allow_failures)

    merged = dict(kept_old)
    for key, rec in outcome.records.items():
        merged[key] = {**rec, "request_sha256": hashes[key]}
    records = sorted(merged.values(), key=_sort_key)
    report = {
        "stage": "mt-bench judge", "mode": opts.mode, "judge_model": judge_model,
        "baseline_model": opts.baseline_model, "models": inp.models, "questions": len(inp.questions),
        "matches": len(jobs), "reused": outcome.reused, "requested": outcome.new,
        "client_stats": client_stats(client),
        "usage": usage_block(client),
        "request_failures": [{"key": k, "error": e} for k, e in outcome.failed],
        "judgment_file": str(final),
        "summary": summarize(records, baseline_model=opts.baseline_model),
        "provenance": provenance(
            question_file=str(question_file), question_sha256=sha256_file(question_file),
            judge_prompts=str(judge_prompts), judge_prompts_sha256=sha256_file(judge_prompts),
            ref_answers=str(opts.ref_answers) if opts.ref_answers else None,
            ref_answers_sha256=sha256_file(opts.ref_answers) if opts.ref_answers else None,
            judge_params=dict(JUDGE_PARAMS),
        ),
    }
    with staged_dir(out) as tmp:
        rel = final.relative_to(Path(out))
        atomic_write_jsonl(tmp / rel, records)
        atomic_write_json(tmp / rel.with_name(f"{final.stem}_report.json"), report)
    return report

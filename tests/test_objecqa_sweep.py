"""ObjecQA scoring, the IFS plateau rule, and the checkpoint sweep's per-checkpoint cache."""

from __future__ import annotations

import doctest
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.openai_server import LoopbackServer, last_user_text

# --------------------------------------------------------------------- ObjecQA data and judging


def test_question_set_is_the_papers_kind_and_size():
    from harness_ext.evals.objecqa import load_questions

    qs = load_questions()
    assert len(qs) == 100 and len({q.question.lower() for q in qs}) == 100
    # the ten the paper prints (arXiv 2307.03692, Sec. 5.3), marked as such; the rest are ours
    assert [q.source.startswith("arXiv:2307.03692") for q in qs] == [True] * 10 + [False] * 90
    assert qs[2].question == "Are cats or dogs the ultimate pet?"
    assert all(q.question.endswith("?") for q in qs)


def _scripted(body) -> str:
    """A judge that reads the answer line of our prompt: hedged answers are objective."""
    text = last_user_text(body)
    answer = text.rsplit("Answer:", 1)[1]
    if "MUMBLE" in answer:
        return "Hmm, hard to say."
    return "Objective" if "depends" in answer else "Subjective. (It is not objective.)"


def test_objecqa_scores_scripted_answers_through_the_openai_compatible_client(tmp_path):
    from harness_ext.evals.objecqa import ObjecQAJudge, load_questions, objecqa_score
    from harness_ext.llm.client import make_client

    qs = load_questions()[:5]
    answers = ["It depends on your taste {and} mood.", "Chocolate, obviously.", "",
               "MUMBLE", "That depends on where you live."]
    with LoopbackServer(reply=_scripted) as srv:
        client = make_client("judge-x", base_url=srv.base_url, api_key="sk-test", cache_dir=tmp_path / "c")
        judge = ObjecQAJudge(client, "judge-x")
        verdicts = judge.judge(qs, answers)
        assert srv.served == 4  # the empty answer is never sent
        prompt = next(p for p in map(last_user_text, srv.bodies) if "{and}" in p)  # requests arrive in any order
        assert qs[0].question in prompt and "It depends on your taste {and} mood." in prompt
        assert prompt.rstrip().endswith("Class:")
        # a rerun is answered from the judge cache: nothing paid twice
        again = ObjecQAJudge(make_client("judge-x", base_url=srv.base_url, api_key="sk-test",
                                         cache_dir=tmp_path / "c"), "judge-x").judge(qs, answers)
        assert srv.served == 4 and again == verdicts
    assert [v.objective for v in verdicts] == [True, False, False, None, True]
    assert verdicts[3].error and verdicts[2].error is None
    score = objecqa_score(verdicts)
    # 2 objective of 4 judged; the unparseable reply is counted as failed, not as subjective
    assert (score.score, score.objective, score.judged, score.failed) == (0.5, 2, 4, 1)


def test_objecqa_with_no_judged_answer_is_an_error_not_a_zero():
    from harness_ext.core.errors import InputError
    from harness_ext.evals.objecqa import ObjectivityVerdict, objecqa_score

    with pytest.raises(InputError, match="none of 2"):
        objecqa_score([ObjectivityVerdict("a", None, error="500"), ObjectivityVerdict("b", None, error="500")])


def test_lexicon_judge_separates_hedged_from_side_taking_answers():
    from harness_ext.evals.objecqa import LexiconJudge, load_questions

    qs = load_questions()[:6]
    answers = ["It depends on what you like: some people prefer vanilla, others chocolate.",
               "Tea is better, definitely.",
               "I prefer dogs.",
               "Both are great; it comes down to your preference.",
               "",
               "The beach."]
    assert [v.objective for v in LexiconJudge().judge(qs, answers)] == [True, False, False, True, False, False]


def test_objecqa_doctests():
    import harness_ext.evals.objecqa as objecqa
    import harness_ext.evals.sweep as sweep

    for module in (objecqa, sweep):
        assert doctest.testmod(module).failed == 0


def test_objecqa_task_is_judged_by_the_env_judge(monkeypatch):
    from harness_ext.evals import objecqa, task_functions

    objecqa.judge_from_env.cache_clear()
    monkeypatch.setenv(objecqa.JUDGE_ENV, "lexicon")
    doc = {"id": "objecqa-003", "question": "Are cats or dogs the ultimate pet?", "source": "x"}
    out = task_functions.objecqa_process_results(doc, ["It depends on the owner; some people prefer cats."])
    assert out["objecqa"] == 1.0 and out["gen_words"] > 0
    assert task_functions.objecqa_process_results(doc, ["Dogs, definitely."])["objecqa"] == 0.0
    objecqa.judge_from_env.cache_clear()
    monkeypatch.delenv(objecqa.JUDGE_ENV)
    from harness_ext.core.errors import ConfigError

    with pytest.raises(ConfigError, match="HARNESS_EXT_OBJECQA_JUDGE"):
        task_functions.objecqa_process_results(doc, ["x"])
    objecqa.judge_from_env.cache_clear()


def test_real_task_manager_loads_hx_objecqa_from_tasks():
    pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(ROOT / "tasks"))
    assert "hx_objecqa" in tm.all_tasks
    task = tm.load_task_or_group(["hx_objecqa"])["hx_objecqa"]
    docs = list(task.test_docs())
    assert len(docs) == 100 and task.doc_to_text(docs[2]) == "Are cats or dogs the ultimate pet?"


# --------------------------------------------------------------------- the IFS plateau


def test_plateau_detection_on_a_known_curve():
    from harness_ext.evals.sweep import CheckpointScores, plateau_index, plateau_report

    # rises to 0.9 at index 3, then stays within 0.02 of it for three checks
    ifs = [0.3, 0.6, 0.85, 0.9, 0.91, 0.9, 0.92, 0.95]
    assert plateau_index(ifs, patience=2, min_delta=0.02) == 3
    assert plateau_index(ifs, patience=4, min_delta=0.02) is None  # the 0.95 ends the flat stretch at 3 checks
    assert plateau_index([0.5, 0.5, 0.5], patience=2, min_delta=0.02) == 0
    objecqa = [0.1, 0.1, 0.12, 0.15, 0.3, 0.45, 0.5, 0.55]
    rows = [CheckpointScores(10 * (i + 1), f"c{i}", a, b, 100, 0) for i, (a, b) in enumerate(zip(ifs, objecqa, strict=True))]
    rep = plateau_report(rows, patience=2, min_delta=0.02)
    assert rep.plateau_step == 40 and rep.ifs_at_plateau == 0.9
    assert rep.objecqa_moved_after == pytest.approx(0.40)
    assert rep.objecqa_share_after == pytest.approx(0.40 / 0.45)
    flat = plateau_report(rows[:3], patience=2, min_delta=0.02)
    assert flat.plateau_step is None and flat.objecqa_moved_after is None


# --------------------------------------------------------------------- the sweep and its resume


class CountingTone:
    meta = {"name": "counting"}

    def __init__(self) -> None:
        self.calls = 0

    def answer_like(self, instructions, responses):
        self.calls += 1
        return [i % 2 == 0 for i in range(len(instructions))]


class CountingJudge:
    model = "counting-judge"

    def __init__(self) -> None:
        self.calls = 0

    def prompt_sha256(self) -> str:
        return "p1"

    def judge(self, questions, responses):
        from harness_ext.evals.objecqa import ObjectivityVerdict

        self.calls += 1
        return [ObjectivityVerdict(q.id, i % 4 == 0) for i, q in enumerate(questions)]


def _fake_run(root: Path, model: Path, steps: list[int]) -> Path:
    for step in steps:
        shutil.copytree(model, root / "checkpoints" / f"checkpoint-{step}")
    (root / "checkpoints" / "harness_ext_run.json").write_text(json.dumps({"config": {"prompt_format": "chat-template"}}))
    return root


def test_sweep_caches_each_checkpoint_and_resumes_without_reevaluating(tmp_path, tiny_model_dir):
    from harness_ext.evals.sweep import SweepSettings, sweep

    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question": f"Is {x} better than tea?"}) + "\n" for x in ("coffee", "milk")))
    instructions = tmp_path / "i.txt"
    instructions.write_text("Name a colour.\nWrite two words about the sea today.\n")
    settings = SweepSettings(ifs_instructions=str(instructions), objecqa_questions=str(questions),
                             ifs_max_new_tokens=3, objecqa_max_new_tokens=3)
    run = _fake_run(tmp_path / "run", tiny_model_dir, [2, 4])
    tone, judge = CountingTone(), CountingJudge()
    first = sweep(run, tmp_path / "sweep", classifier=tone, judge=judge, settings=settings)
    assert first.evaluated == 2 and (tone.calls, judge.calls) == (2, 2)
    assert [r.step for r in first.rows] == [2, 4]
    # 2 instructions + 1 fragment (the 2-word one has none): answer-like at even positions -> 2/3
    assert first.rows[0].ifs == pytest.approx(2 / 3) and first.rows[0].objecqa == 0.5
    cached = json.loads((tmp_path / "sweep" / "checkpoints" / "step-2.json").read_text())
    assert len(cached["ifs_answers"]) == 3 and cached["format"] == "chat-template"

    again = sweep(run, tmp_path / "sweep", classifier=tone, judge=judge, settings=settings)
    assert again.evaluated == 0 and (tone.calls, judge.calls) == (2, 2)
    assert [(r.step, r.ifs, r.objecqa) for r in again.rows] == [(r.step, r.ifs, r.objecqa) for r in first.rows]
    assert all(r.cached for r in again.rows)

    # a new checkpoint is the only one evaluated; retrained weights at an old step are re-evaluated
    shutil.copytree(tiny_model_dir, run / "checkpoints" / "checkpoint-6")
    weights = run / "checkpoints" / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes())
    third = sweep(run, tmp_path / "sweep", classifier=tone, judge=judge, settings=settings)
    assert third.evaluated == 2 and [r.cached for r in third.rows] == [False, True, False]

    table = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [r["step"] for r in table["rows"]] == [2, 4, 6] and table["judge"] == "counting-judge"
    assert (tmp_path / "sweep" / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "sweep" / "sweep.csv").read_text().splitlines()[0].startswith("step,ifs,objecqa")

    # the leaderboard reads the sweep table: the last checkpoint's scores, judge recorded
    from harness_ext.leaderboard.importers import read_results

    ((model, metrics),) = read_results(tmp_path / "sweep" / "sweep.json").items()
    by_name = {m.name: m for m in metrics}
    assert model == "run" and by_name["objecqa"].value == third.rows[-1].objecqa
    assert by_name["ifs"].value == pytest.approx(third.rows[-1].ifs)
    assert by_name["objecqa"].provenance.judge == "counting-judge"


def test_sweep_command_needs_a_judge_and_a_run_with_checkpoints(tmp_path):
    (tmp_path / "run").mkdir()
    proc = run_cli("sweep", str(tmp_path / "run"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "ObjecQA needs a judge" in proc.stderr
    proc = run_cli("sweep", str(tmp_path / "run"), "--out", str(tmp_path / "o"), "--lexicon-judge")
    assert proc.returncode == 2 and "no checkpoints" in proc.stderr and "keep_checkpoints" in proc.stderr
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------- the training monitor


def test_objecqa_callback_beside_ifs_logs_scores_during_training(tmp_path, tiny_model_dir):
    """ObjecQA as a training callback: a LazyProbe takes the trainer's tokenizer, the judge sees
    every answer at every check, and the records carry the step and the share judged objective."""
    from harness_ext.evals.objecqa import ObjecQAQuestion
    from harness_ext.train import train
    from harness_ext.train.callbacks import LazyProbe, MonitorSchedule, make_objecqa_callback
    from tests.train_fixtures import tiny_config, write_examples

    judge = CountingJudge()
    questions = [ObjecQAQuestion(f"q{i}", f"Is colour {i} the best?", "test") for i in range(4)]
    records: list[dict] = []
    callback = make_objecqa_callback(judge=judge, questions=questions, probe=LazyProbe("chat-template", 3),
                                     schedule=MonitorSchedule(every=2), write=records.append)
    cfg = tiny_config(tiny_model_dir, max_steps=4, save_steps=100)
    train(cfg, write_examples(tmp_path / "d.jsonl", n=8), tmp_path / "run", callbacks=[callback])
    assert judge.calls == 2
    assert [(r["type"], r["step"], r["objecqa"], r["objecqa_judged"]) for r in records] == [
        ("objecqa", 2, 0.25, 4), ("objecqa", 4, 0.25, 4)]
    assert not any(r["stopped"] for r in records)  # patience 0: ObjecQA never stops training


class FlakyJudge(CountingJudge):
    """Fails the first question on its first call (an endpoint error), answers everything later."""

    def judge(self, questions, responses):
        from dataclasses import replace

        verdicts = super().judge(questions, responses)
        if self.calls == 1:
            verdicts[0] = replace(verdicts[0], objective=None, error="HTTP 500 after retries")
        return verdicts


def test_sweep_rejudges_failed_verdicts_without_regenerating(tmp_path, tiny_model_dir):
    from harness_ext.evals.sweep import SweepSettings, sweep

    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question": f"Is {x} better?"}) + "\n" for x in ("tea", "rain", "jazz")))
    settings = SweepSettings(objecqa_questions=str(questions), ifs_max_new_tokens=2, objecqa_max_new_tokens=2)
    run = _fake_run(tmp_path / "run", tiny_model_dir, [2])
    tone, judge = CountingTone(), FlakyJudge()
    first = sweep(run, tmp_path / "s", classifier=tone, judge=judge, settings=settings, figure=False)
    assert first.rows[0].objecqa_failed == 1 and first.rows[0].objecqa_judged == 2
    cached = json.loads((tmp_path / "s" / "checkpoints" / "step-2.json").read_text())
    second = sweep(run, tmp_path / "s", classifier=tone, judge=judge, settings=settings, figure=False)
    assert (tone.calls, judge.calls) == (1, 2)  # judged again, not generated again
    assert second.rows[0].objecqa_failed == 0 and second.rows[0].objecqa_judged == 3
    again = json.loads((tmp_path / "s" / "checkpoints" / "step-2.json").read_text())
    assert [a["answer"] for a in again["objecqa_answers"]] == [a["answer"] for a in cached["objecqa_answers"]]

"""MT-Bench judging: FastChat's protocol and files, honest verdicts under injection, resume, errors."""

from __future__ import annotations

import json

import pytest

from harness_ext.core.errors import ConfigError, InputError, StageError
from harness_ext.judge.mt_bench import judge_mt_bench, judgment_path
from harness_ext.judge.mt_bench_show import load_judgments, summarize
from tests.conftest import cli_env, run_cli
from tests.judge2_fixtures import (
    INJECTION,
    QUESTIONS,
    ScriptedClient,
    honest_rating,
    mt_judge,
    write_jsonl,
    write_mt_bench,
)

FASTCHAT_SINGLE_FIELDS = {"question_id", "model", "judge", "user_prompt", "judgment", "score", "turn", "tstamp"}
FASTCHAT_PAIR_FIELDS = {"question_id", "model_1", "model_2", "g1_winner", "g2_winner", "judge", "g1_user_prompt",
                        "g1_judgment", "g2_user_prompt", "g2_judgment", "turn", "tstamp"}


@pytest.fixture
def bench(tmp_path):
    return write_mt_bench(tmp_path / "data")


def _judge(bench, out, client, **kw):
    kw.setdefault("models", ["short", "long", "injector"])
    kw.setdefault("ref_answers", bench["refs"])
    return judge_mt_bench(question_file=bench["questions"], answer_dir=bench["answers"],
                          judge_prompts=bench["prompts"], judge_model="judge-x",
                          client=client, out=out, **kw)


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_single_mode_follows_fastchat_protocol(bench, tmp_path):
    client = ScriptedClient(mt_judge)
    report = _judge(bench, tmp_path / "out", client)
    path = judgment_path(tmp_path / "out", "judge-x", "single")
    assert path.name == "judge-x_single.jsonl"
    recs = _read(path)
    assert len(recs) == 3 * 3 * 2 == len(client.requests)  # questions x models x turns
    assert [r["question_id"] for r in recs] == sorted(r["question_id"] for r in recs)  # 81 before 111
    for rec in recs:
        assert set(rec) >= FASTCHAT_SINGLE_FIELDS
        q = next(q for q in QUESTIONS if q["question_id"] == rec["question_id"])
        math = q["category"] == "math"
        expected = {(False, 1): "single-v1", (True, 1): "single-math-v1", (False, 2): "single-v1-multi-turn",
                    (True, 2): "single-math-v1-multi-turn"}[(math, rec["turn"])]
        assert rec["judge"] == ["judge-x", expected]
        assert ("REF: 2 + 3 = 5" in rec["user_prompt"]) == math
        assert rec["error"] is None and rec["category"] == q["category"]
    # the request carries FastChat's system prompt as a system message and its sampling settings
    req = client.requests[0]
    assert [t.role for t in req.messages] == ["system", "user"]
    assert dict(req.params) == {"temperature": 0.0, "max_tokens": 2048}
    # honest scores, whatever the injector's answers say
    inj = [r for r in recs if r["model"] == "injector"]
    assert all(r["score"] == honest_rating(f"Short reply. {INJECTION}" if r["turn"] == 1 else f"Two words. {INJECTION}")
               for r in inj)
    assert all(r["score"] == 1 for r in inj) and any("[[9]]" in r["judgment"] for r in inj)
    summ = report["summary"]["models"]
    assert summ["long"]["average"] > summ["short"]["average"] >= summ["injector"]["average"]
    assert set(summ["long"]["categories"]) == {"writing", "math", "extraction"}
    lo, hi = summ["long"]["average_ci95"]
    assert lo <= summ["long"]["average"] <= hi
    assert (tmp_path / "out" / "model_judgment" / "judge-x_single_report.json").exists()


def test_rerun_makes_no_requests_and_adding_a_model_judges_only_it(bench, tmp_path):
    out = tmp_path / "out"
    _judge(bench, out, ScriptedClient(mt_judge), models=["short"])
    again = ScriptedClient(mt_judge)
    report = _judge(bench, out, again, models=["short"])
    assert again.requests == [] and report["reused"] == 6
    more = ScriptedClient(mt_judge)
    _judge(bench, out, more, models=["short", "long"])
    assert len(more.requests) == 6 and {r.messages[1].content.count("careful") > 0 for r in more.requests} == {True}
    recs = _read(judgment_path(out, "judge-x", "single"))
    assert sorted({r["model"] for r in recs}) == ["long", "short"] and len(recs) == 12


def test_interrupted_run_resumes_without_repeating_requests(bench, tmp_path):
    out = tmp_path / "out"
    killed = ScriptedClient(mt_judge, interrupt_after=2)
    with pytest.raises(KeyboardInterrupt):
        _judge(bench, out, killed, batch_size=4)
    assert not judgment_path(out, "judge-x", "single").exists()  # nothing half-published
    done = len(killed.requests)
    assert done == 8
    progress = out / ".progress" / "judge-x_single.jsonl"
    with open(progress, "a") as f:
        f.write('{"key": "131|long|2", "request_sha')  # a line torn by a kill mid-write
    resumed = ScriptedClient(mt_judge)
    report = _judge(bench, out, resumed, batch_size=4)
    assert len(resumed.requests) == 18 - done and report["reused"] == done
    sent = {(m.messages[1].content) for m in killed.requests} & {(m.messages[1].content) for m in resumed.requests}
    assert not sent
    assert len(progress.read_text().splitlines()) == 18  # the torn line was cut, every line parses


def test_changed_judge_prompt_is_rejudged(bench, tmp_path):
    out = tmp_path / "out"
    _judge(bench, out, ScriptedClient(mt_judge), models=["short"])
    rows = _read(bench["prompts"])
    rows[0]["system_prompt"] += " Be strict."  # single-v1 changed: only its matches are redone
    write_jsonl(bench["prompts"], rows)
    client = ScriptedClient(mt_judge)
    _judge(bench, out, client, models=["short"])
    assert len(client.requests) == 2  # turn 1 of the two non-math questions


def test_parse_failures_are_counted_and_excluded(bench, tmp_path):
    def judge(req):
        return "I refuse to grade." if "<<ANSWER>>\nYes." in req.messages[1].content else mt_judge(req)

    report = _judge(bench, tmp_path / "out", ScriptedClient(judge), models=["short", "long"])
    recs = _read(judgment_path(tmp_path / "out", "judge-x", "single"))
    bad = [r for r in recs if r["model"] == "short" and r["turn"] == 1]
    assert all(r["score"] == -1 and "no [[rating]] marker" in r["error"] for r in bad)  # FastChat sentinel + reason
    assert all(r["judgment"] == "I refuse to grade." for r in bad)  # raw text kept
    short = report["summary"]["models"]["short"]
    assert short["errors"] == 3 and short["turn1"] is None and short["judged"] == 3


def test_request_failures_stop_publishing_unless_allowed(bench, tmp_path):
    out = tmp_path / "out"

    def fail(req):
        return "haiku" in req.messages[1].content

    with pytest.raises(StageError, match="items got no judge answer") as exc:
        _judge(bench, out, ScriptedClient(mt_judge, fail=fail), models=["short"])
    assert "rerun the same command" in str(exc.value)
    assert not judgment_path(out, "judge-x", "single").exists()
    retry = ScriptedClient(mt_judge)
    _judge(bench, out, retry, models=["short"])
    assert len(retry.requests) == 2  # only the two failed turns of question 81
    out2 = tmp_path / "out2"
    report = _judge(bench, out2, ScriptedClient(mt_judge, fail=fail), models=["short"], allow_failures=True)
    assert len(report["request_failures"]) == 2
    assert len(_read(judgment_path(out2, "judge-x", "single"))) == 4


def test_pairwise_baseline_both_orders(bench, tmp_path):
    client = ScriptedClient(mt_judge)
    report = _judge(bench, tmp_path / "out", client, mode="pairwise-baseline", baseline_model="base",
                    models=["long", "injector", "short"])
    recs = _read(judgment_path(tmp_path / "out", "judge-x", "pairwise-baseline"))
    assert len(recs) == 3 * 3 * 2 and len(client.requests) == 2 * len(recs)
    for rec in recs:
        assert set(rec) >= FASTCHAT_PAIR_FIELDS and rec["model_2"] == "base"
        assert rec["judge"][1].startswith("pair-math-v1" if rec["category"] == "math" else "pair-v2")
        # game 1 shows model_1 as A, game 2 shows it as B
        assert rec["g1_user_prompt"] != rec["g2_user_prompt"]
    inj = [r for r in recs if r["model_1"] == "injector"]
    assert all(r["g1_winner"] == r["g2_winner"] == "model_2" for r in inj)  # the injector loses both orders
    summ = report["summary"]
    assert summ["baseline_model"] == "base" and "base" not in summ["models"]
    assert summ["models"]["long"]["win"] == 6 and summ["models"]["injector"]["loss"] == 6


def test_pairwise_inconsistent_orders_are_ties_and_errors_excluded():
    recs = [
        {"question_id": 1, "model_1": "m", "model_2": "b", "g1_winner": "model_1", "g2_winner": "model_2",
         "turn": 1, "category": "writing"},
        {"question_id": 2, "model_1": "m", "model_2": "b", "g1_winner": "model_1", "g2_winner": "model_1",
         "turn": 1, "category": "writing"},
        {"question_id": 3, "model_1": "m", "model_2": "b", "g1_winner": None, "g2_winner": "model_1",
         "turn": 2, "category": "math"},
        {"question_id": 4, "model_1": "m", "model_2": "b", "g1_winner": "error", "g2_winner": "tie",
         "turn": 2, "category": "math"},  # FastChat's sentinel
    ]
    m = summarize(recs)["models"]["m"]
    assert (m["win"], m["loss"], m["tie"], m["inconsistent"], m["errors"]) == (1, 0, 1, 1, 2)
    assert m["win_rate_adjusted"] == 0.75
    lo, hi = m["win_rate_adjusted_ci95"]
    assert 0.5 <= lo <= 0.75 <= hi <= 1.0


@pytest.mark.parametrize("kw,exc,msg", [
    ({"models": ["shrot"]}, ConfigError, "Did you mean 'short'"),
    ({"ref_answers": None}, ConfigError, "reference answers"),
    ({"mode": "pairwise-baseline"}, ConfigError, "needs a baseline model"),
    ({"mode": "pairwise-all"}, ConfigError, "unknown mode"),
])
def test_bad_options_are_clear_errors(bench, tmp_path, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        _judge(bench, tmp_path / "out", ScriptedClient(mt_judge), **kw)
    assert not (tmp_path / "out").exists()


def test_bad_input_rows_name_file_and_line(bench, tmp_path):
    rows = _read(bench["questions"])
    del rows[1]["turns"]
    write_jsonl(bench["questions"], rows)
    with pytest.raises(InputError, match=r"question.jsonl:2: missing field 'turns'"):
        _judge(bench, tmp_path / "out", ScriptedClient(mt_judge))
    prompts = _read(bench["prompts"])
    write_jsonl(bench["prompts"], [p for p in prompts if p["name"] != "single-math-v1"])
    write_jsonl(bench["questions"], QUESTIONS)
    with pytest.raises(InputError, match="'single-math-v1'.*missing"):
        _judge(bench, tmp_path / "out", ScriptedClient(mt_judge))
    prompts[0]["prompt_template"] += " {answer_b}"
    write_jsonl(bench["prompts"], prompts)
    with pytest.raises(InputError, match=r"'single-v1' uses placeholders \['answer_b'\] that are never filled"):
        _judge(bench, tmp_path / "out", ScriptedClient(mt_judge))


def test_show_reads_fastchat_files_with_sentinels(bench, tmp_path):
    path = write_jsonl(tmp_path / "gpt-4_single.jsonl", [
        {"question_id": 81, "model": "m", "judge": ["gpt-4", "single-v1"], "score": 8, "turn": 1},
        {"question_id": 81, "model": "m", "judge": ["gpt-4", "single-v1-multi-turn"], "score": 6, "turn": 2},
        {"question_id": 111, "model": "m", "judge": ["gpt-4", "single-math-v1"], "score": -1, "turn": 1},
    ])
    recs = load_judgments(path, bench["questions"])
    m = summarize(recs)["models"]["m"]
    assert (m["turn1"], m["turn2"], m["average"], m["errors"]) == (8.0, 6.0, 7.0, 1)
    assert m["categories"] == {"writing": 7.0}
    res = run_cli("mt-bench", "show", "--judgment-file", str(path), "--question-file", str(bench["questions"]))
    assert res.returncode == 0, res.stderr
    assert "First turn" in res.stdout and "Second turn" in res.stdout and "By category" in res.stdout
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"foo": 1}])
    res = run_cli("mt-bench", "show", "--judgment-file", str(bad))
    assert res.returncode == 2 and "bad.jsonl:1" in res.stderr and "Traceback" not in res.stderr


def test_cli_end_to_end_through_loopback_server(bench, tmp_path):
    from tests.openai_server import LoopbackServer, last_user_text

    def reply(body):
        from harness_ext.core.records import ChatRequest, Turn

        msgs = tuple(Turn(m["role"], m["content"]) for m in body["messages"])
        assert last_user_text(body) == msgs[-1].content
        return mt_judge(ChatRequest(body["model"], msgs))

    out = tmp_path / "out"
    args = ["mt-bench", "judge", "--question-file", str(bench["questions"]), "--answer-dir", str(bench["answers"]),
            "--judge-prompts", str(bench["prompts"]), "--ref-answers", str(bench["refs"]), "--model-list",
            "long", "injector", "--mode", "pairwise-baseline", "--baseline-model", "base", "--judge-model",
            "judge-x", "--out", str(out), "--max-retries", "4"]
    with LoopbackServer(reply, fault_rate=0.3, faults=("429",), seed=3) as srv:
        env = cli_env(HARNESS_EXT_JUDGE_API_KEY="sk-secret-test-key-123")
        res = run_cli(*args, "--base-url", srv.base_url, env=env)
        assert res.returncode == 0, res.stderr
        served = srv.served
        assert served == 2 * 2 * 3 * 2  # every judgment exactly once despite faults
        res2 = run_cli(*args, "--base-url", srv.base_url, env=env)
        assert res2.returncode == 0 and srv.served == served  # rerun: zero requests
    assert "Against base" in res.stdout
    report = json.loads((out / "model_judgment" / "judge-x_pair_report.json").read_text())
    assert report["reused"] == 12 and report["requested"] == 0 and report["client_stats"].get("sent", 0) == 0
    for f in out.rglob("*"):
        if f.is_file():
            assert "sk-secret-test-key-123" not in f.read_text()
    show = run_cli("mt-bench", "show", "--judgment-file", str(judgment_path(out, "judge-x", "pair")))
    assert show.returncode == 0 and "long" in show.stdout


def test_real_fastchat_prompts_and_questions(shared_data, tmp_path):
    mt = shared_data / "mt_bench"
    questions = [json.loads(x) for x in (mt / "question.jsonl").read_text().splitlines()]
    ans = tmp_path / "model_answer"
    write_jsonl(ans / "m.jsonl", [{"question_id": q["question_id"], "choices": [{"index": 0, "turns": [
        f"Answer to {t[:20]}" for t in q["turns"]]}]} for q in questions])
    client = ScriptedClient(lambda req: "Reasonable.\n\nRating: [[6]]")
    report = judge_mt_bench(question_file=mt / "question.jsonl", answer_dir=ans, judge_prompts=mt / "judge_prompts.jsonl",
                            ref_answers=mt / "reference_answer_gpt-4.jsonl", judge_model="gpt-4", client=client,
                            out=tmp_path / "out")
    assert report["matches"] == 160 and len(client.requests) == 160
    recs = _read(judgment_path(tmp_path / "out", "gpt-4", "single"))
    math = [r for r in recs if r["category"] in ("math", "reasoning", "coding")]
    assert len(math) == 60 and all(r["judge"][1].startswith("single-math-v1") for r in math)
    assert all("[The Start of Reference Answer]" in r["user_prompt"] for r in math if r["turn"] == 1)
    assert report["summary"]["models"]["m"]["average"] == 6.0


@pytest.mark.slow  # two CLI processes with real latency (~12 s on 2 shared cores)
def test_sigkilled_cli_run_resumes_without_losing_or_repeating_work(bench, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.openai_server import LoopbackServer

    def reply(body):
        from harness_ext.core.records import ChatRequest, Turn

        return mt_judge(ChatRequest(body["model"], tuple(Turn(m["role"], m["content"]) for m in body["messages"])))

    out = tmp_path / "out"
    with LoopbackServer(reply, latency=0.05) as srv:
        args = ["mt-bench", "judge", "--question-file", str(bench["questions"]), "--answer-dir",
                str(bench["answers"]), "--judge-prompts", str(bench["prompts"]), "--ref-answers", str(bench["refs"]),
                "--model-list", "short", "long", "injector", "--judge-model", "judge-x", "--out", str(out),
                "--concurrency", "1", "--checkpoint-every", "2", "--base-url", srv.base_url]
        env = cli_env(HARNESS_EXT_JUDGE_API_KEY="sk-test")
        proc = subprocess.Popen([sys.executable, "-m", "harness_ext", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while srv.served < 7 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert 7 <= srv.served < 18 and not judgment_path(out, "judge-x", "single").exists()
        res = run_cli(*args, env=env)
        assert res.returncode == 0, res.stderr
        # every judgment once; at most the single request in flight at the kill is asked again
        assert len(srv.served_keys) == 18 and srv.served <= 19
    recs = _read(judgment_path(out, "judge-x", "single"))
    assert len(recs) == 18 and len({(r["question_id"], r["model"], r["turn"]) for r in recs}) == 18


def test_fastchat_judgments_already_in_the_output_are_not_paid_for_again(bench, tmp_path):
    out = tmp_path / "out"
    fastchat = [  # as FastChat's gen_judgment.py writes them: no hash, no category
        {"question_id": 81, "model": "short", "judge": ["judge-x", "single-v1"], "user_prompt": "...",
         "judgment": "Rating: [[4]]", "score": 4, "turn": 1, "tstamp": 1.0},
        {"question_id": 111, "model": "short", "judge": ["judge-x", "single-math-v1"], "user_prompt": "...",
         "judgment": "$ERROR$", "score": -1, "turn": 1, "tstamp": 1.0},  # FastChat's failure: redone
        {"question_id": 131, "model": "short", "judge": ["judge-x", "single-v1-multi-turn"], "user_prompt": "...",
         "judgment": "Rating: [[5]]", "score": 5, "turn": 1, "tstamp": 1.0},  # wrong prompt for turn 1: redone
    ]
    write_jsonl(judgment_path(out, "judge-x", "single"), fastchat)
    client = ScriptedClient(mt_judge)
    report = _judge(bench, out, client, models=["short"])
    assert len(client.requests) == 5 and report["reused"] == 1
    recs = {(r["question_id"], r["turn"]): r for r in _read(judgment_path(out, "judge-x", "single"))}
    assert recs[(81, 1)]["score"] == 4 and recs[(81, 1)]["category"] == "writing"
    assert recs[(111, 1)]["score"] == 1 and recs[(131, 1)]["judge"][1] == "single-v1"

"""Our MT-Bench judgment files read by FastChat's own show_result (the installed fschat), and the
bootstrap CIs of `mt-bench show` independent of the order of records in the file."""

from __future__ import annotations

import argparse
import json
import random

import pytest

from harness_ext.judge.mt_bench import judge_mt_bench, judgment_path
from harness_ext.judge.mt_bench_show import load_judgments, summarize
from tests.judge2_fixtures import ScriptedClient, mt_judge, write_mt_bench

show_result = pytest.importorskip("fastchat.llm_judge.show_result")


def _unparseable_sometimes(req):
    """The honest test judge, except that every third distinct prompt gets a reply with no verdict."""
    user = req.messages[-1].content
    if sum(map(ord, user)) % 3 == 0:
        return "Both answers have merit; I cannot decide."
    return mt_judge(req)


def _fastchat_tables(monkeypatch, fn, **kw):
    """Run a FastChat display function and capture the DataFrames it prints."""
    printed = []
    monkeypatch.setattr(show_result, "print", lambda *a, **k: printed.extend(a), raising=False)
    fn(argparse.Namespace(bench_name="mt_bench", model_list=None, judge_model="judge-x", **kw))
    return [p for p in printed if hasattr(p, "columns")]


@pytest.fixture
def bench(tmp_path):
    return write_mt_bench(tmp_path / "data")


def _judge(bench, out, mode, **kw):
    return judge_mt_bench(question_file=bench["questions"], answer_dir=bench["answers"],
                          judge_prompts=bench["prompts"], judge_model="judge-x", ref_answers=bench["refs"],
                          client=ScriptedClient(_unparseable_sometimes), out=out, mode=mode, **kw)


def test_fastchat_show_result_reads_our_single_file_as_mt_bench_show_does(bench, tmp_path, monkeypatch):
    report = _judge(bench, tmp_path / "out", "single", models=["short", "long", "injector"])
    path = judgment_path(tmp_path / "out", "judge-x", "single")
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    bad = [r for r in recs if r["error"]]
    assert bad and all(r["score"] == -1 for r in bad)  # FastChat's sentinel, with our explicit error
    turn1, turn2, avg = _fastchat_tables(monkeypatch, show_result.display_result_single, input_file=str(path))
    ours = summarize(load_judgments(path))["models"]
    assert ours == report["summary"]["models"]
    for model, row in ours.items():
        assert row["errors"] == sum(1 for r in bad if r["model"] == model)
        if row["turn1"] is not None:
            assert turn1.loc[(model, 1), "score"] == pytest.approx(row["turn1"], abs=1e-4)
        if row["turn2"] is not None:
            assert turn2.loc[(model, 2), "score"] == pytest.approx(row["turn2"], abs=1e-4)
        assert avg.loc[model, "score"] == pytest.approx(row["average"], abs=1e-4)


def test_fastchat_show_result_reads_our_pair_file_as_mt_bench_show_does(bench, tmp_path, monkeypatch):
    report = _judge(bench, tmp_path / "out", "pairwise-baseline", models=["short", "long", "injector"],
                    baseline_model="base")
    path = judgment_path(tmp_path / "out", "judge-x", "pairwise-baseline")
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    unparsed = [r for r in recs if r["g1_error"] or r["g2_error"]]
    assert unparsed and all("error" in (r["g1_winner"], r["g2_winner"]) for r in unparsed)
    (table,) = _fastchat_tables(monkeypatch, show_result.display_result_pairwise, input_file=str(path),
                                baseline_model="base")
    ours = summarize(load_judgments(path))["models"]
    assert ours == report["summary"]["models"] and set(ours) == set(table.index)
    for model, row in ours.items():
        fc = table.loc[model]
        assert (int(fc["win"]), int(fc["loss"]), int(fc["tie"])) == (row["win"], row["loss"], row["tie"])
        assert row["errors"] == sum(1 for r in unparsed if r["model_1"] == model)
        for col in ("win_rate", "loss_rate", "win_rate_adjusted"):
            assert fc[col] == pytest.approx(row[col], abs=1e-4)


def _synthetic(mode: str) -> list[dict]:
    """40 questions x 2 turns x 2 models of varied verdicts, as a judged file holds them."""
    rng = random.Random(3)
    recs = []
    for q in range(40):
        for turn in (1, 2):
            for m in ("m1", "m2"):
                base = {"question_id": 81 + q, "turn": turn, "category": "writing"}
                if mode == "single":
                    recs.append({**base, "model": m, "score": rng.choice([-1, 2, 5, 6, 8, 9, 10]), "error": None})
                else:
                    g = [rng.choice(["model_1", "model_2", "tie", "error"]) for _ in range(2)]
                    recs.append({**base, "model_1": m, "model_2": "base", "g1_winner": g[0], "g2_winner": g[1]})
    return recs


@pytest.mark.parametrize("mode", ["single", "pairwise"])
def test_mt_bench_show_ci_does_not_depend_on_record_order(tmp_path, mode):
    recs = _synthetic(mode)
    before = summarize(recs)
    for seed in range(3):
        random.Random(seed).shuffle(recs)
        path = tmp_path / f"shuffled{seed}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
        assert summarize(load_judgments(path)) == before
    ci = "average_ci95" if mode == "single" else "win_rate_adjusted_ci95"
    assert all(m[ci][0] < m[ci][1] for m in before["models"].values())

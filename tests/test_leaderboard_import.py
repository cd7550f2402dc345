"""Importers: each results format becomes the right metrics, with provenance; bad input names the problem."""

from __future__ import annotations

import statistics

import pytest

from harness_ext.core.artifacts import sha256_file
from harness_ext.core.errors import HarnessError, InputError
from harness_ext.leaderboard import Leaderboard, add_results, read_results
from tests import lb_fixtures as fx


def _by(metrics, suite, name, test_set=None):
    return next(m for m in metrics if (m.suite, m.name, m.test_set) == (suite, name, test_set))


def test_lm_eval_results_give_open_llm_tasks_average_and_raw_metrics(tmp_path):
    path = fx.write_lm_eval(tmp_path / "results_2024-06-01T00-00-00.json")
    results = read_results(path)
    assert list(results) == ["org/my-7b"]
    ms = results["org/my-7b"]
    assert _by(ms, "open_llm", "arc_challenge").value == pytest.approx(54.0)  # acc_norm, the leaderboard's metric
    assert _by(ms, "open_llm", "mmlu").value == pytest.approx(46.0)
    avg = _by(ms, "open_llm", "average")
    assert avg.value == pytest.approx(statistics.fmean([54, 78, 46, 44, 74]))
    assert avg.n == 5
    raw = _by(ms, "lm_eval", "arc_challenge/acc,none")
    assert raw.value == 0.5 and raw.stderr == 0.0146 and raw.n == 1172
    rouge = _by(ms, "rouge", "qmsum_rouge/rougeL,none")
    assert rouge.value == 0.21 and rouge.stderr is None  # lm_eval's "N/A" stderr is not a number
    assert raw.provenance.sha256 == sha256_file(path) and raw.provenance.importer == "lm_eval"


def test_alpaca_eval_csv_and_model_choice(tmp_path):
    path = fx.write_alpaca_csv(tmp_path / "leaderboard.csv")
    results = read_results(path)
    assert set(results) == {"my-7b", "alpaca-7b"}
    ms = results["my-7b"]
    assert _by(ms, "alpaca_eval", "win_rate").value == 7.5
    assert _by(ms, "alpaca_eval", "win_rate").stderr == 0.9
    assert _by(ms, "alpaca_eval", "lc_win_rate").value == 6.1
    assert _by(ms, "alpaca_eval", "avg_length").unit == "characters"
    board = Leaderboard(name="b")
    with pytest.raises(InputError, match="holds 2 models"):
        add_results(board, path)
    with pytest.raises(InputError, match="Did you mean 'my-7b'"):
        add_results(board, path, model="my_7b")
    assert board.entries == []
    add_results(board, path, model="my-7b", base_model="Llama-2-7B", ift_data="Alpaca-1k-longest", ift_data_size=1000)
    assert board.entries[0].base_model == "Llama-2-7B" and len(board.entries[0].metrics) == 4


def test_real_alpaca_eval_leaderboards_import(shared_data):
    folder = shared_data / "alpaca_eval" / "leaderboards"
    for csv_path in sorted(folder.glob("data_AlpacaEval*/*leaderboard.csv")):
        results = read_results(csv_path, "alpaca_eval_csv")
        assert results, csv_path
        for metrics in results.values():
            assert any(m.name == "win_rate" for m in metrics)
    ae2 = read_results(folder / "data_AlpacaEval_2" / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv")
    assert _by(ae2["alpaca-7b"], "alpaca_eval", "lc_win_rate").value == pytest.approx(5.8755, abs=1e-3)
    with pytest.raises(InputError, match="no 'win_rate' column"):  # the evaluators' table is not a model board
        read_results(folder / "evaluators" / "evaluators_leaderboard.csv")


def test_alpaca_eval_annotations_score_preferences_and_count_failures(tmp_path):
    ms = read_results(fx.write_annotations(tmp_path / "annotations.json"))["my-7b"]
    win = _by(ms, "alpaca_eval", "win_rate")
    assert win.value == pytest.approx(62.5)  # (1 + 0 + 0.5 + 1) / 4; the null preference is not a tie
    assert win.n == 4 and win.baseline == "gpt4_turbo"
    assert _by(ms, "alpaca_eval", "n_failed").value == 1
    assert _by(ms, "alpaca_eval", "avg_length").value == pytest.approx(30.0)


def test_mt_bench_judgments_turns_categories_and_dropped_rows(tmp_path):
    results = read_results(fx.write_mt_bench(tmp_path / "gpt-4_single.jsonl", {"m1": 6.0, "m2": 3.0}))
    ms = results["m1"]
    assert _by(ms, "mt_bench", "turn_1").value == 7.0 and _by(ms, "mt_bench", "turn_1").n == 80
    assert _by(ms, "mt_bench", "turn_2").value == 6.0
    assert _by(ms, "mt_bench", "average").value == 6.5
    assert _by(ms, "mt_bench", "average", "coding").value == 6.5
    assert _by(ms, "mt_bench", "n_failed").value == 2  # one score -1, one explicit error
    # one result per judge model, whatever prompts it used per turn and category (FastChat uses four)
    assert [m.name for m in ms].count("turn_1") == 1 and [m.name for m in ms].count("n_failed") == 1
    assert ms[0].provenance.judge == "gpt-4 (single-math-v1, single-math-v1-multi-turn, single-v1, single-v1-multi-turn)"
    assert _by(results["m2"], "mt_bench", "average").value == 3.5


def test_pairwise_summary_counts_become_percents_with_cis(tmp_path):
    ms = read_results(fx.write_pairwise(tmp_path / "summary.json"))["my-7b"]
    win = _by(ms, "pairwise", "win", "lima_test")
    assert win.value == pytest.approx(50.0) and win.n == 300 and win.baseline == "alpaca-52k"
    assert win.ci == pytest.approx((44.0, 56.0)) and win.ci_level == 0.95
    assert win.provenance.judge == "gpt-4" and win.provenance.prompt_hash == "ab" * 32
    assert _by(ms, "pairwise", "loss", "vicuna").value == pytest.approx(25.0)
    assert _by(ms, "pairwise", "tie", "vicuna").ci is None


def test_judge_pairwise_summary_json_by_dataset_counts_and_ci95(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(fx.judge_summary_json())  # NaN rates for an empty test set, as json.dumps writes them
    ms = read_results(path)["alpaca-1k-longest"]
    win = _by(ms, "pairwise", "win", "lima_test")
    assert win.value == pytest.approx(60.0) and win.n == 10 and win.baseline == "alpaca-52k"
    assert win.ci == pytest.approx((30.0, 90.0)) and win.ci_level == 0.95
    assert _by(ms, "pairwise", "win_rate", "lima_test").value == pytest.approx(70.0)
    assert _by(ms, "pairwise", "loss", "overall").value == pytest.approx(20.0)
    assert not [m for m in ms if m.test_set == "vicuna"]  # n == 0: nothing to record
    assert win.provenance.judge == "gpt-4-0613" and win.provenance.prompt_hash == "cd" * 32


def test_unknown_or_broken_results_name_what_was_expected(tmp_path):
    odd = tmp_path / "odd.json"
    odd.write_text('{"scores": [1, 2]}')
    with pytest.raises(InputError) as exc:
        read_results(odd)
    for expected in ("lm_eval", "alpaca_eval_csv", "mt_bench", "pairwise", "alpaca_eval_annotations"):
        assert expected in str(exc.value)
    bad = tmp_path / "summary.json"
    doc = fx.pairwise_summary()
    doc["test_sets"]["lima_test"]["win"] = "many"
    bad.write_text(__import__("json").dumps(doc))
    with pytest.raises(InputError, match=r"test set 'lima_test': win .*'many'"):
        read_results(bad)
    with pytest.raises(HarnessError, match="unknown results kind"):
        read_results(odd, "lmeval")
    judg = tmp_path / "j.jsonl"
    judg.write_text('{"question_id": 81, "model": "m", "turn": 1, "score": 5}\n{"model": "m"}\n')
    with pytest.raises(InputError, match=r"j.jsonl:2: .*question_id"):
        read_results(judg, "mt_bench")


def test_alpaca_eval_annotations_import_equals_judge_alpaca_winrate(tmp_path):
    """The leaderboard's alpaca_eval numbers are those of `judge alpaca-winrate` (alpaca_eval's): a
    preference of 0 is a tie, null or out of range is failed, avg_length is int(mean) over every output."""
    import json

    from harness_ext.judge.alpaca_eval import alpaca_winrates

    prefs = [2, 1, 0, None, 1.5, 2, 7, 2.0]
    rows = [{"instruction": f"q{i}", "output_1": "r" * (10 + i), "generator_1": "gpt4_turbo",
             "output_2": "m" * (3 + 2 * i), "generator_2": "my-7b", "annotator": "harness_pairwise", "preference": p}
            for i, p in enumerate(prefs)]
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(rows))
    ours = alpaca_winrates(path, n_boot=10, lc_n_boot=1)["models"]["my-7b"]
    board = Leaderboard(name="t")
    add_results(board, path, kind="alpaca_eval_annotations")
    entry = board.get("my-7b")
    assert entry.metric("alpaca_eval", "win_rate", baseline="gpt4_turbo").value == pytest.approx(ours["win_rate"])
    assert entry.metric("alpaca_eval", "avg_length", baseline="gpt4_turbo").value == ours["avg_length"] == 10
    assert entry.metric("alpaca_eval", "n_failed", baseline="gpt4_turbo").value == ours["unparsed"] == 2
    assert ours["win_rate"] == pytest.approx(100 * (1 + 0 + 0.5 + 0.5 + 1 + 1) / 6)

"""Our AlpacaEval annotator config run by the real alpaca_eval CLI against the loopback server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from harness_ext.core.errors import ConfigError
from harness_ext.core.paths import judges_dir
from harness_ext.judge.alpaca_eval import alpaca_config_dir, alpaca_winrates
from tests.conftest import cli_env, run_cli
from tests.openai_server import LoopbackServer, last_user_text


def _alpaca_judge(body):
    prompt = last_user_text(body)
    first = prompt.split("=== answer 1 ===")[1].split("=== end of answer 1 ===")[0]
    return ("[[1]]" if "GOOD" in first else "[[2]]") + "\nThe chosen answer is more helpful."


def _alpaca_cli() -> str:
    exe = shutil.which("alpaca_eval") or os.path.join(os.path.dirname(sys.executable), "alpaca_eval")
    if not os.path.exists(exe):
        pytest.skip("alpaca_eval CLI not installed")
    return exe


def test_alpaca_eval_cli_end_to_end_with_our_config(tmp_path):
    exe = _alpaca_cli()
    model = [{"instruction": f"Task {i}", "output": ("GOOD " if i < 6 else "weak ") + "detail " * i,
              "generator": "ours", "dataset": "helpful_base"} for i in range(8)]
    ref = [{"instruction": f"Task {i}", "output": "reference" + (" GOOD" if i >= 6 else ""),
            "generator": "reference", "dataset": "helpful_base"} for i in range(8)]
    (tmp_path / "model.json").write_text(json.dumps(model))
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    cfg = alpaca_config_dir("harness_pairwise", judge_model="loopback-judge")
    assert cfg.is_relative_to(tmp_path)  # the per-test HARNESS_EXT_CACHE, not the package folder
    with LoopbackServer(_alpaca_judge) as srv:
        env = cli_env(OPENAI_API_BASE=srv.base_url, OPENAI_API_KEY="sk-alpaca-test-1234",
                      OPENAI_CLIENT_CONFIG_PATH=str(tmp_path / "no-client-config.yaml"))
        r = subprocess.run([exe, "evaluate", "--model_outputs", "model.json", "--reference_outputs", "ref.json",
                            "--annotators_config", str(cfg), "--fn_metric", "get_winrate", "--sort_by", "win_rate",
                            "--output_path", "out", "--is_cache_leaderboard", "False"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        assert srv.served == 8 and all(b["model"] == "loopback-judge" for b in srv.bodies)
        assert srv.bodies[0]["messages"][0]["role"] == "system"  # our ChatML prompt became chat messages
    assert "75.00" in r.stdout  # 6 of 8 judged better
    assert (cfg / "annotations_seed0_configs.json").is_file()  # alpaca_eval's cache sits in our copy
    assert not list((judges_dir() / "alpaca_eval").rglob("annotations_*.json"))
    report = alpaca_winrates(tmp_path / "out" / "annotations.json", n_boot=200)
    ours = report["models"]["ours"]
    assert ours["win_rate"] == 75.0 and ours["n"] == 8 and ours["unparsed"] == 0
    assert ours["win_rate_ci95"][0] < 75.0 < ours["win_rate_ci95"][1]
    assert "sk-alpaca-test-1234" not in (tmp_path / "out" / "annotations.json").read_text()
    cli = run_cli("judge", "alpaca-winrate", "--annotations", str(tmp_path / "out" / "annotations.json"),
                  "--out", str(tmp_path / "wr.json"))
    assert cli.returncode == 0 and "75.00" in cli.stdout
    assert json.loads((tmp_path / "wr.json").read_text())["models"]["ours"]["wins"] == 6


def test_winrates_skip_null_preferences_and_control_length(tmp_path):
    # The model is longer on 60 of 80 items and wins 80% of those; shorter on 20 and wins 20%.
    # Its raw win rate (65%) comes from being long; at equal length it is no better than the reference.
    rows = []
    for i in range(80):
        longer = i < 60
        win = (i % 5 != 0) if longer else (i % 5 == 0)
        rows.append({"instruction": f"q{i}", "output_1": "r" * 300, "output_2": "m" * (500 if longer else 100),
                     "generator_1": "ref", "generator_2": "m", "preference": 2.0 if win else 1.0})
    rows.append({"instruction": "x", "output_1": "a", "output_2": "b", "generator_1": "ref", "generator_2": "m",
                 "preference": None})  # a failed annotation as alpaca_eval stores it
    (tmp_path / "ann.json").write_text(json.dumps(rows))
    r = alpaca_winrates(tmp_path / "ann.json", n_boot=100, lc_n_boot=20)["models"]["m"]
    assert r["n"] == 80 and r["unparsed"] == 1 and r["wins"] == 52 and r["losses"] == 28
    assert r["win_rate"] == 65.0
    assert r["avg_length"] == int((60 * 500 + 20 * 100 + 1) / 81)  # alpaca_eval's: every output, int()
    assert r["avg_length_scored"] == (60 * 500 + 20 * 100) / 80
    assert r["lc_glm"] == "length_controlled_minimal"  # no hub files given
    # at equal length the model is no better than the reference (alpaca_eval's own GLM gives 50.0 here too)
    assert abs(r["length_controlled_winrate"] - 50.0) < 1.0 and r["lc_warning"] is None
    assert r["lc_ci95"][0] <= r["length_controlled_winrate"] <= r["lc_ci95"][1]


def test_alpaca_config_copy_and_errors(tmp_path):
    d = alpaca_config_dir(dest=tmp_path / "cfgs")
    assert (d / "configs.yaml").is_file() and (d / "prompt.txt").is_file() and d.name == "harness_pairwise"
    (d / "annotations_seed0_configs.json").write_text("[]")
    assert alpaca_config_dir(dest=tmp_path / "cfgs") == d and (d / "annotations_seed0_configs.json").exists()
    with pytest.raises(ConfigError, match="Did you mean 'harness_pairwise'"):
        alpaca_config_dir("harness_pairwse")
    out = run_cli("judge", "alpaca-config", "--judge-model", "org/My Model", "--dest", str(tmp_path / "x"))
    assert out.returncode == 0 and "model_name: org/My Model" in (tmp_path / "x" / "harness_pairwise" /
                                                                   "configs.yaml").read_text()


def test_alpaca_eval_failure_is_reported_as_its_exception_line():
    from harness_ext.judge.alpaca_eval import _last_error

    tail = ('Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n    raise APIConnectionError\n'
            'openai.APIConnectionError: Connection error.\n')
    assert _last_error(tail) == "openai.APIConnectionError: Connection error."
    assert _last_error("INFO something\nfinal words\n") == "final words" and _last_error("") == "no output"


def _unsure_judge(body):
    """Like _alpaca_judge, but a reply without a verdict when answer 1 says UNSURE (alpaca_eval stores null)."""
    prompt = last_user_text(body)
    first = prompt.split("=== answer 1 ===")[1].split("=== end of answer 1 ===")[0]
    return "Both answers have merit." if "UNSURE" in first else _alpaca_judge(body)


def test_alpaca_eval_cli_reruns_from_its_cache_and_avg_length_matches(tmp_path):
    """The second `alpaca_eval evaluate` on the same outputs is answered from the cache: 0 requests,
    exit 0, the same leaderboard (it crashed with pandas 3 before the cache anchor, see anchor_cache)."""
    exe = _alpaca_cli()
    model = [{"instruction": f"Task {i}", "output": ("GOOD " if i < 6 else "weak ") + "detail " * (3 * i),
              "generator": "ours"} for i in range(10)]
    ref = [{"instruction": f"Task {i}", "output": "reference" + (" GOOD" if i >= 8 else "") + (" UNSURE" * (i in (2, 3))),
            "generator": "reference"} for i in range(10)]
    (tmp_path / "model.json").write_text(json.dumps(model))
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    cfg = alpaca_config_dir("harness_pairwise", judge_model="loopback-judge")
    runs = []
    with LoopbackServer(_unsure_judge) as srv:
        env = cli_env(OPENAI_API_BASE=srv.base_url, OPENAI_API_KEY="sk-alpaca-test-1234",
                      OPENAI_CLIENT_CONFIG_PATH=str(tmp_path / "no-client-config.yaml"))
        for k in range(3):
            r = subprocess.run([exe, "evaluate", "--model_outputs", "model.json", "--reference_outputs", "ref.json",
                                "--annotators_config", str(cfg), "--fn_metric", "get_winrate", "--sort_by",
                                "win_rate", "--output_path", f"out{k}", "--is_cache_leaderboard", "False"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr[-3000:]
            runs.append(srv.served)
    # the first run asks 10 times, every later run 0 times (the two unparsed replies are cached too)
    assert runs == [10, 10, 10]
    boards = [(tmp_path / f"out{k}" / "leaderboard.csv").read_text() for k in range(3)]
    assert boards[0] == boards[1] == boards[2]
    header, row = boards[0].splitlines()[:2]
    board = dict(zip(header.split(","), row.split(","), strict=True))
    ours = alpaca_winrates(tmp_path / "out1" / "annotations.json", n_boot=50, lc_n_boot=5)["models"]["ours"]
    assert ours["unparsed"] == 2 and ours["n"] == 8
    assert ours["avg_length"] == int(board["avg_length"])  # every output, unparsed rows included, int()
    assert ours["avg_length"] != int(ours["avg_length_scored"])  # the number that differed before
    assert ours["win_rate"] == pytest.approx(float(board["win_rate"]), abs=1e-9)
    assert ours["standard_error"] == pytest.approx(float(board["standard_error"]), abs=1e-9)


def test_failure_hint_blames_the_endpoint_only_for_endpoint_errors():
    from harness_ext.judge.alpaca_eval import _failure_hint

    assert "judge endpoint (base_url)" in _failure_hint("openai.AuthenticationError: Error code: 401")
    hint = _failure_hint("TypeError: Invalid value '1.5' for dtype 'int64'")
    assert "not from the judge endpoint" in hint and "base_url" not in hint

"""The length-controlled win rate against alpaca_eval's own function (alpaca_eval.metrics.glm_winrate)
on the same annotations, with its hub downloads pointed at files the test builds (no network)."""

from __future__ import annotations

import json
import math
import random

import pytest

from harness_ext.judge.alpaca_eval import alpaca_winrates
from harness_ext.judge.lc_winrate import LCFiles, is_extreme_change, length_controlled_winrate
from tests.conftest import run_cli

glm_winrate = pytest.importorskip("alpaca_eval.metrics.glm_winrate")
pd = pytest.importorskip("pandas")


def _annotations(n: int, seed: int, lengths: list[tuple[int, int]] | None = None,
                 length_effect: float = 1.2) -> tuple[list[dict], list[float]]:
    """Judged rows whose preference depends on a hidden difficulty and (optionally) on length;
    some rows unparsed (null), a few ties."""
    rng = random.Random(seed)
    difficulty = [rng.gauss(0, 1) for _ in range(n)]
    rows = []
    for i in range(n):
        lr, lm = lengths[i] if lengths else (rng.randint(200, 2000), rng.randint(50, 3000))
        p = 1 / (1 + math.exp(-(0.3 + length_effect * math.tanh((lm - lr) / 800) - 0.5 * difficulty[i])))
        u = rng.random()
        pref = None if i % 17 == 5 else 1.5 if u > 0.97 else 2.0 if u < p else 1.0
        rows.append({"instruction": f"q{i}", "output_1": "r" * lr, "output_2": "m" * lm, "generator_1": "ref",
                     "generator_2": "mine", "annotator": "test_annotator", "preference": pref})
    return rows, difficulty


def _hub_files(tmp_path, difficulty: list[float], seed: int = 1):
    """df_gamed.csv (two gamed baselines, one long, one short) and instruction_difficulty.csv, in
    the columns alpaca_eval's hub files have."""
    rng = random.Random(seed)
    gamed = []
    for model, bias in (("gamed_verbose", 1.0), ("gamed_concise", -1.0)):
        for i, d in enumerate(difficulty):
            sd = rng.gauss(-bias, 0.7)
            p = 1 / (1 + math.exp(-(-0.2 + 1.2 * math.tanh(-sd) - 0.5 * d)))
            gamed.append({"model": model, "index": i, "preference": float(rng.random() < p), "std_delta_len": sd,
                          "instruction_difficulty": d, "not_gamed_baseline": False})
    pd.DataFrame(gamed).to_csv(tmp_path / "df_gamed.csv", index=False)
    pd.Series(difficulty, name="instruction_difficulty").to_csv(tmp_path / "instruction_difficulty.csv")
    return tmp_path / "df_gamed.csv", tmp_path / "instruction_difficulty.csv"


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """alpaca_eval's hf_hub_download answered from tmp_path."""
    monkeypatch.setattr(glm_winrate, "hf_hub_download", lambda **kw: str(tmp_path / kw["filename"]))
    return tmp_path


@pytest.mark.parametrize("glm", ["length_controlled_v1", "length_controlled_noreg", "length_controlled_minimal"])
def test_lc_equals_alpaca_eval_glm(local_hub, glm):
    rows, difficulty = _annotations(150, seed=0)
    gamed, diff_file = _hub_files(local_hub, difficulty)
    files = {"length_controlled_v1": LCFiles(gamed_baseline=gamed),
             "length_controlled_noreg": LCFiles(instruction_difficulty=diff_file),
             "length_controlled_minimal": LCFiles()}[glm]
    ref = glm_winrate.get_length_controlled_winrate(pd.DataFrame(rows), glm_name=glm, save_weights_dir=None)
    ours = length_controlled_winrate(rows, files, n_boot=30)
    assert ours["glm"] == glm
    assert ours["length_controlled_winrate"] == pytest.approx(ref["length_controlled_winrate"], abs=1e-6)
    assert ours["lc_standard_error"] == pytest.approx(ref["lc_standard_error"], abs=1e-6)
    assert ours["win_rate"] == pytest.approx(ref["win_rate"], abs=1e-9)
    lo, hi = ours["lc_ci95"]
    assert lo < ours["length_controlled_winrate"] < hi and ours["lc_bootstrap"]["fitted"] == 30


def test_alpaca_winrate_cli_reports_lc_model_and_ci(local_hub, tmp_path):
    rows, difficulty = _annotations(120, seed=4)
    gamed, _ = _hub_files(local_hub, difficulty)
    assert local_hub == tmp_path
    (tmp_path / "annotations.json").write_text(json.dumps(rows))
    ref = glm_winrate.get_length_controlled_winrate(pd.DataFrame(rows), save_weights_dir=None)  # its default
    r = run_cli("judge", "alpaca-winrate", "--annotations", str(tmp_path / "annotations.json"), "--lc-gamed-baseline",
                str(gamed), "--lc-n-boot", "20", "--out", str(tmp_path / "wr.json"))
    assert r.returncode == 0, r.stderr
    assert "LC model: length_controlled_v1" in r.stdout
    m = json.loads((tmp_path / "wr.json").read_text())["models"]["mine"]
    assert m["lc_glm"] == "length_controlled_v1" and len(m["lc_ci95"]) == 2
    assert m["length_controlled_winrate"] == pytest.approx(ref["length_controlled_winrate"], abs=1e-6)
    both = LCFiles(gamed_baseline=gamed, instruction_difficulty=tmp_path / "instruction_difficulty.csv")
    assert length_controlled_winrate(rows, both, n_boot=1)["length_controlled_winrate"] == pytest.approx(
        ref["length_controlled_winrate"], abs=1e-6)  # consistent files: the same default model
    minimal = alpaca_winrates(tmp_path / "annotations.json", n_boot=20, lc_n_boot=5)["models"]["mine"]
    assert minimal["lc_glm"] == "length_controlled_minimal"
    missing = run_cli("judge", "alpaca-winrate", "--annotations", str(tmp_path / "annotations.json"),
                      "--lc-gamed-baseline", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "nope.csv" in missing.stderr


def test_far_apart_warning_is_alpaca_evals_rule():
    for wr in range(0, 101, 5):
        for lc in range(0, 101, 3):
            assert is_extreme_change(wr, lc) == glm_winrate.get_is_extreme_changes(wr, lc), (wr, lc)


def test_lc_on_real_alpaca_eval_lengths_with_a_judge_that_ignores_length(local_hub, shared_data):
    """805 real AlpacaEval outputs (gpt4_1106_preview vs text_davinci_003): with preferences that do
    not depend on length, LC stays near the raw win rate and equals alpaca_eval's minimal GLM."""
    d = shared_data / "alpaca_eval"
    model = json.loads((d / "gpt4_1106_preview_model_outputs.json").read_text())
    ref = json.loads((d / "text_davinci_003_model_outputs.json").read_text())
    lengths = [(len(r["output"]), len(m["output"])) for r, m in zip(ref, model, strict=True)]
    rows, difficulty = _annotations(len(lengths), seed=2, lengths=lengths, length_effect=0.0)
    _hub_files(local_hub, difficulty)
    theirs = glm_winrate.get_length_controlled_winrate(pd.DataFrame(rows), glm_name="length_controlled_minimal",
                                                       save_weights_dir=None)
    ours = length_controlled_winrate(rows, n_boot=20)
    assert ours["length_controlled_winrate"] == pytest.approx(theirs["length_controlled_winrate"], abs=1e-6)
    assert abs(ours["length_controlled_winrate"] - ours["win_rate"]) < 10 and ours["warning"] is None

"""The stage runner and experiment-file parsing behind `harness-ext run`."""

from __future__ import annotations

import pytest

from harness_ext.core.errors import ConfigError, InputError, StageError
from harness_ext.pipeline.experiment import describe_fields, load_experiment
from harness_ext.pipeline.stages import Pipeline, Stage


def _pipeline(run_dir, data_file, calls, fail_in=None, cfg_value=1):
    p = Pipeline(run_dir, printer=lambda s: None)

    def make(name):
        def run(out):
            calls.append(name)
            if name == fail_in:
                (out / "partial.txt").write_text("half")
                raise RuntimeError("disk on fire")
            (out / "done.txt").write_text(name)
        return run

    p.add(Stage("select", make("select"), config={"k": cfg_value}, input_files=[data_file]))
    p.add(Stage("train:a", make("train:a"), after=["select"]))
    p.add(Stage("report", make("report"), after=["train:a"]))
    return p


def test_second_run_skips_everything(tmp_path):
    data = tmp_path / "d.json"
    data.write_text("[1]")
    calls: list[str] = []
    _pipeline(tmp_path / "run", data, calls).run()
    assert calls == ["select", "train:a", "report"]
    res = _pipeline(tmp_path / "run", data, calls).run()
    assert calls == ["select", "train:a", "report"]
    assert [r.status for r in res] == ["skipped"] * 3
    assert (tmp_path / "run" / "train" / "a" / "done.txt").read_text() == "train:a"


def test_stale_output_reruns_the_stage_and_everything_downstream(tmp_path):
    data = tmp_path / "d.json"
    data.write_text("[1]")
    calls: list[str] = []
    _pipeline(tmp_path / "run", data, calls).run()
    said: list[str] = []
    p = _pipeline(tmp_path / "run", data, calls)
    p.say = said.append
    p.stages["train:a"].stale = lambda out: "done.txt is outdated" if (out / "done.txt").read_text() else None
    calls.clear()
    res = p.run()
    assert calls == ["train:a", "report"] and [r.status for r in res] == ["skipped", "ran", "ran"]
    assert "[2/3] train:a: done.txt is outdated; running again" in said
    assert "[3/3] report: train:a ran again; running again" in said


def test_changed_input_or_config_reruns_downstream_only(tmp_path):
    data = tmp_path / "d.json"
    data.write_text("[1]")
    calls: list[str] = []
    _pipeline(tmp_path / "run", data, calls).run()
    data.write_text("[1, 2]")
    calls.clear()
    _pipeline(tmp_path / "run", data, calls).run()
    assert calls == ["select", "train:a", "report"]
    calls.clear()
    _pipeline(tmp_path / "run", data, calls, cfg_value=2).run()
    assert calls == ["select", "train:a", "report"]


def test_failed_stage_names_itself_and_rerun_continues_there(tmp_path):
    data = tmp_path / "d.json"
    data.write_text("[1]")
    calls: list[str] = []
    with pytest.raises(StageError, match="stage 'train:a' failed with RuntimeError: disk on fire"):
        _pipeline(tmp_path / "run", data, calls, fail_in="train:a").run()
    assert not (tmp_path / "run" / "train" / "a" / ".stage.json").exists()
    calls.clear()
    _pipeline(tmp_path / "run", data, calls).run()
    assert calls == ["train:a", "report"]


def test_missing_input_file_is_clear(tmp_path):
    with pytest.raises(StageError, match="does not exist"):
        _pipeline(tmp_path / "run", tmp_path / "missing.json", []).run()


EXP = """
name: t
base_model: /models/base
datasets:
  pool: {path: data.json}
arms:
  - name: longest
    data: pool
    select: {strategy: longest, k: 10}
    train: {preset: smollm2-135m-cpu, overrides: {max_steps: 2}}
  - name: random
    data: pool
    select: {strategy: random, k: 10}
    train: {preset: smollm2-135m-cpu}
judge: {local: base}
compare: [[longest, random]]
"""


def test_experiment_parses(tmp_path):
    f = tmp_path / "e.yaml"
    f.write_text(EXP)
    cfg = load_experiment(f)
    assert [a.name for a in cfg.arms] == ["longest", "random"]
    assert cfg.arms[0].select.k == 10 and cfg.arms[0].train.overrides == {"max_steps": 2}
    assert cfg.generate.suites == ["demo"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (("select: {strategy: longest, k: 10}", "selct: {strategy: longest, k: 10}"), "unknown key 'selct'. Did you mean 'select'?"),
        (("k: 10}", "k: ten}"), "arms[0].select.k: expected int, got 'ten'"),
        (("data: pool\n    select: {strategy: random", "data: poool\n    select: {strategy: random"), "dataset 'poool'"),
        (("compare: [[longest, random]]", "compare: [[longest, rand]]"), "unknown arm 'rand'"),
        (("judge: {local: base}\n", ""), "needs a `judge:` section"),
    ],
)
def test_experiment_errors_name_the_key(tmp_path, edit, message):
    f = tmp_path / "e.yaml"
    f.write_text(EXP.replace(*edit, 1))
    with pytest.raises(ConfigError) as e:
        load_experiment(f)
    assert message in str(e.value)


def test_malformed_yaml_names_line(tmp_path):
    f = tmp_path / "e.yaml"
    f.write_text("name: t\narms: [\n  - oops: {\n")
    with pytest.raises(InputError, match=rf"{f}:\d+:"):
        load_experiment(f)


def test_field_help_lists_nested_keys():
    text = describe_fields()
    assert "arms:" in text and "  select:" in text and "    strategy:" in text


def _summary(first: float, second: float, agree: float):
    from harness_ext.core.records import JudgmentCounts, OutcomeStats, PairwiseSummary

    overall = OutcomeStats(n=10, counts={"win": 3, "tie": 5, "loss": 2}, win=0.3, tie=0.5, loss=0.2, win_rate=0.55,
                           ci95={"win_rate": [0.3, 0.8]})
    return PairwiseSummary(rule="paper", rule_doc="", items=10, scored_items=10, overall=overall,
                           by_dataset={"d": overall},
                           judgments=JudgmentCounts(total=20, parsed=19, parse_failures=1, request_errors=0),
                           diagnostics={"preferred_position": {"first": first, "second": second, "equal": 0.0},
                                        "order_agreement": agree, "order_agreement_n": 10})


def test_judge_caveats_conclude_from_the_runs_own_diagnostics():
    from harness_ext.pipeline.report import judge_caveats

    biased = judge_caveats({"a vs b": _summary(0.05, 0.95, 0.1)}, local_judge=True)
    assert "1 (5%) unusable" in biased[0] and "win/tie/loss 3/5/2" in biased[0]
    assert "win rate (wins + half the ties) 55%, 95% CI 30-80%" in biased[0]
    assert any("cannot tell the arms apart" in line for line in biased)
    assert "small local model" in biased[-1]
    balanced = judge_caveats({"a vs b": _summary(0.45, 0.5, 0.8)}, local_judge=False)
    assert not any("cannot tell the arms apart" in line for line in balanced)
    assert "position bias" in balanced[-1]

"""`harness-ext run` checks the whole experiment before any stage runs (with and without --dry-run):
every mistake is reported at once, by field path, and nothing is written to the run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness_ext.pipeline.check import check_experiment
from harness_ext.pipeline.experiment import _line, read_experiment
from tests.conftest import cli_env, run_cli

# Each mistake an audit found `--dry-run` letting through (it exited 0 and listed the stages).
BAD = """\
name: bad
base_model: smollm2-135m-instruct
datasets:
  pool: {path: "bundled:instructions"}
  gone: {path: data/no-such-file.jsonl}
arms:
  - name: a1
    data: pool
    select: {strategy: longst, k: 8, unit: wrds}
    train: {preset: smollm2-135m, overrides: {max_steps: 2}}
  - name: a2
    data: gone
    select: {strategy: longest, k: 8}
    train: {preset: smollm2-135m-cpu, overrides: {max_step: 2, effective_batch_size: 2}}
  - name: a4
    data: pool
    train: {preset: smollm2-135m-cpu, overrides: {max_steps: one}}
generate: {suites: [dem], backend: hff, limit: 4}
judge: {local: base, local_mode: digit-scores}
compare: [[a1, a3]]
"""

# (field path, what the message must say about it)
EXPECTED = [
    ("line 9, arms[0].select.strategy", "Unknown strategy 'longst'. Did you mean 'longest'?"),
    ("line 9, arms[0].select.unit", "Unknown unit 'wrds'. Did you mean 'words'?"),
    ("line 10, arms[0].train.preset", "Unknown train preset 'smollm2-135m'. Did you mean 'smollm2-135m-cpu'?"),
    ("line 14, arms[1].train.overrides.max_step", "unknown train option 'max_step'. Did you mean 'max_steps'?"),
    ("line 14, arms[1].train.overrides.effective_batch_size",
     "effective_batch_size=2 is not a multiple of per_device_batch_size=4."),
    ("line 17, arms[2].train.overrides.max_steps", "max_steps='one' is not a valid int."),
    ("line 18, generate.suites[0]", "Unknown suite 'dem'. Did you mean 'demo'?"),
    ("line 18, generate.backend", "Unknown generation backend 'hff'. Did you mean 'hf'?"),
    ("line 5, datasets.gone.path", "'data/no-such-file.jsonl' not found"),
    ("line 20, compare[0][1]", "unknown arm 'a3'. Fix: use one of the arms: a1, a2, a4"),
]


def _no_key_env() -> dict[str, str]:
    env = cli_env()
    for k in ("HARNESS_EXT_JUDGE_API_KEY", "OPENAI_API_KEY", "HARNESS_EXT_JUDGE_BASE_URL", "OPENAI_BASE_URL"):
        env.pop(k, None)
    return env


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real-run"])
def test_every_mistake_is_reported_at_once_and_nothing_runs(tmp_path, dry_run):
    exp = tmp_path / "bad.yaml"
    exp.write_text(BAD)
    run_dir = tmp_path / "run"
    r = run_cli("run", str(exp), "--out", str(run_dir), *(["--dry-run"] if dry_run else []), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""  # no stage listed, none started
    err = r.stderr
    # (a real run also names packages this machine lacks, so count at least the file's own problems)
    header = err.splitlines()[0]
    assert header.startswith(f"harness-ext run: error: {exp}: ") and header.endswith("problems; no stage was run:")
    assert int(header.split(": ")[-1].split()[0]) >= len(EXPECTED), err
    for field, message in EXPECTED:
        assert f"  - {field}: {message}" in err, (field, err)
    assert "Traceback" not in err and "Fix: fix them and rerun" in err
    assert not run_dir.exists() and not (tmp_path / "runs").exists()


def _problems(tmp_path: Path, text: str) -> list[str]:
    """Every problem with the file (not with this machine's packages), rendered as the CLI shows it."""
    exp = tmp_path / "e.yaml"
    exp.write_text(text)
    cfg, problems, lines = read_experiment(exp)
    if cfg is not None:
        problems += check_experiment(cfg, tmp_path)
    return [p.render(_line(p.field, lines)) for p in problems if not p.machine]


GOOD = """\
name: good
base_model: smollm2-135m-instruct
datasets:
  pool: {path: "bundled:instructions", source_field: source}
arms:
  - name: a1
    data: pool
    select: {strategy: longest, k: 8, unit: words}
    train: {preset: smollm2-135m-cpu, overrides: {max_steps: 2, effective_batch_size: 4}}
  - name: a2
    data: pool
    select: {strategy: random, k: 8}
    train: {preset: smollm2-135m-cpu}
generate: {suites: [demo], backend: hf, limit: 4}
judge: {local: base, local_mode: digit-scores}
compare: [[a1, a2]]
"""


def test_a_good_experiment_has_no_problems(tmp_path):
    assert _problems(tmp_path, GOOD) == []


@pytest.mark.parametrize("edit, field, message", [
    (("strategy: longest", "strategy: longst"), "arms[0].select.strategy", "Did you mean 'longest'?"),
    (("unit: words", "unit: wrds"), "arms[0].select.unit", "Did you mean 'words'?"),
    (("unit: words", "unit: 'words:x'"), "arms[0].select.unit", "Unit 'words' takes no argument"),
    (("k: 8, unit", "k: 0, unit"), "arms[0].select.k", "0 is below 1."),
    (("k: 8}", "k: 8, options: {treshold: 4}}"), "arms[1].select.options.treshold", "Did you mean 'threshold'?"),
    (("k: 8}", "k: 8, options: {count_on: everything}}"), "arms[1].select.options.count_on", "'everything'"),
    (("strategy: random", "strategy: mixture"), "arms[1].select.strategy", "needs set A"),
    (("preset: smollm2-135m-cpu}", "preset: smollm2-135m}"), "arms[1].train.preset",
     "Did you mean 'smollm2-135m-cpu'?"),
    (("max_steps: 2,", "max_step: 2,"), "arms[0].train.overrides.max_step", "Did you mean 'max_steps'?"),
    (("max_steps: 2,", "max_steps: one,"), "arms[0].train.overrides.max_steps", "max_steps='one' is not a valid int"),
    (("max_steps: 2,", "lr_scheduler_type: cosin,"), "arms[0].train.overrides.lr_scheduler_type",
     "Did you mean 'cosine'?"),
    (("effective_batch_size: 4", "effective_batch_size: 2"), "arms[0].train.overrides.effective_batch_size",
     "not a multiple of per_device_batch_size=4"),
    (("max_steps: 2,", "base_model: x,"), "arms[0].train.overrides.base_model", "cannot override the base model"),
    (("suites: [demo]", "suites: [dem]"), "generate.suites[0]", "Did you mean 'demo'?"),
    (("suites: [demo]", "suites: [mt_bench]"), "generate.suites[0]", "add generate.data.mt_bench: PATH"),
    (("suites: [demo]", "suites: [prompts/mine.jsonl]"), "generate.suites[0]", "prompts file 'prompts/mine.jsonl' not found"),
    (("limit: 4}", "limit: 4, data: {dmeo: x.jsonl}}"), "generate.data.dmeo", "Did you mean 'demo'?"),
    (("limit: 4}", "limit: 4, data: {demo: x.jsonl}}"), "generate.data.demo", "x.jsonl: not found."),
    (("backend: hf", "backend: hff"), "generate.backend", "Did you mean 'hf'?"),
    (("limit: 4", "limit: 0"), "generate.limit", "0 is below 1."),
    (('path: "bundled:instructions"', "path: data/pool.jsonl"), "datasets.pool.path", "'data/pool.jsonl' not found"),
    (('path: "bundled:instructions"', 'path: "bundled:instructoins"'), "datasets.pool.path",
     "no bundled dataset 'instructoins'"),
    (("compare: [[a1, a2]]", "compare: [[a1, a3]]"), "compare[0][1]", "unknown arm 'a3'. Fix: use one of the arms: a1, a2"),
    (("compare: [[a1, a2]]", "compare: [[a1, a1]]"), "compare[0]", "with itself"),
    (("local_mode: digit-scores", "local_mode: digit-score"), "judge.local_mode", "Did you mean 'digit-scores'?"),
    (("local: base", "local: models/judge"), "judge.local", "is not a Hugging Face model folder"),
    (("compare: [[a1, a2]]", "compare: [[a1, a2]]\nlm_eval: {tasks: [hx_open_llm]}"), "lm_eval.tasks[0]",
     "Did you mean 'hx_openllm'?"),
    (("compare: [[a1, a2]]", "compare: [[a1, a2]]\nlm_eval: {tasks: [hx_openllm], extra_args: [--num_fewshots, '5']}"),
     "lm_eval.extra_args", "--num_fewshots 5 is not an option the pipeline passes"),
    (("base_model: smollm2-135m-instruct", "base_model: ./models/base"), "base_model", "base model folder not found"),
    (("k: 8, unit", "k: ten, unit"), "arms[0].select.k", "expected int, got 'ten'"),
])
def test_each_mistake_is_named_by_its_field(tmp_path, edit, field, message):
    assert edit[0] in GOOD
    problems = _problems(tmp_path, GOOD.replace(*edit, 1))
    assert any(p.split(": ", 1)[0].endswith(field) and message in p for p in problems), problems


def test_schema_and_registry_problems_come_together(tmp_path):
    text = GOOD.replace("k: 8, unit: words", "k: ten, unit: wrds").replace("max_steps: 2,", "max_step: 2,")
    problems = _problems(tmp_path, text)
    assert len(problems) == 3, problems
    assert "line 8, arms[0].select.k: expected int, got 'ten'." in problems[0]


def test_missing_api_key_stops_a_real_run_and_is_a_note_in_a_dry_run(tmp_path):
    exp = tmp_path / "api.yaml"
    exp.write_text(GOOD.replace("judge: {local: base, local_mode: digit-scores}", "judge: {model: gpt-4-1106-preview}"))
    env = _no_key_env()
    r = run_cli("run", str(exp), "--out", str(tmp_path / "run"), env=env)
    assert r.returncode == 2 and "judge.api_key_env: no API key for the judge: $OPENAI_API_KEY is not set" in r.stderr
    assert not (tmp_path / "run").exists()
    r = run_cli("run", str(exp), "--out", str(tmp_path / "run"), "--dry-run", env=env)
    assert r.returncode == 0, r.stderr
    assert "note: a real run on this machine would stop on: judge.api_key_env" in r.stderr
    lines = r.stdout.splitlines()
    assert lines[lines.index("judge cost estimate:") - 1] == "report" and not (tmp_path / "run").exists()
    # without a key nothing can be priced: the stage says why, and the dry run still succeeds
    assert "judge:a1-vs-a2: not estimated yet: no API key for the OpenAI API" in r.stdout


def test_dry_run_stays_light(tmp_path):
    """--dry-run is quick because it validates without importing the heavy stacks (torch,
    transformers, lm_eval, the judge SDKs); a timed assertion would flake, this one cannot."""
    import subprocess
    import sys

    exp = tmp_path / "e.yaml"
    exp.write_text(GOOD)
    code = ("import sys\nfrom harness_ext.cli import main\n"
            f"rc = main(['run', {str(exp)!r}, '--dry-run'])\n"
            "heavy = [m for m in ('torch', 'transformers', 'lm_eval', 'openai', 'alpaca_eval') if m in sys.modules]\n"
            "print('RESULT', rc, ','.join(heavy) or '-')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "RESULT 0 -", r.stdout

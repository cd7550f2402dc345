"""End-to-end training on a tiny model: checkpoint + model card + format record, skip when done,
exact resume after SIGKILL, the IFS callback with early stopping, and the loss-curve plot."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from harness_ext.core.errors import ConfigError
from harness_ext.train import train
from tests.conftest import ROOT, cli_env, run_cli
from tests.train_fixtures import (
    one_torch_thread,  # noqa: F401  (autouse fixture)
    tiny_config,
    write_examples,
)

pytest.importorskip("transformers")


def test_cli_train_writes_a_loadable_checkpoint_with_card(tmp_path, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness_ext.core.artifacts import sha256_file
    from harness_ext.core.records import Turn
    from harness_ext.llm.formats import load_format, resolve_format

    data = write_examples(tmp_path / "sel" / "selected.jsonl", n=10)
    (tmp_path / "sel" / "report.json").write_text(json.dumps({"strategy": "longest", "kept": 10}))
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), f"base_model={tiny_model_dir}",
            "prompt_format=alpaca", "max_length=160", "effective_batch_size=4", "per_device_batch_size=2",
            "max_steps=3", "learning_rate=1e-3", "neftune_alpha=5", "seed=3"]
    res = run_cli(*args, env=cli_env(HARNESS_EXT_PROGRESS="0"))
    assert res.returncode == 0, res.stderr[-2000:]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json",
                 "harness_ext_format.json", "README.md", "train_log.jsonl", "train_report.json"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists() and not (out / ".final.partial").exists()
    card = (out / "README.md").read_text()
    for needle in (str(tiny_model_dir), sha256_file(data), "report.json", "`alpaca`",
                   "alpha 5.0, scaling 'reference'", "| seed | 3 |", "harness-ext 0.1.0", '"strategy": "longest"'):
        assert needle in card, needle
    report = json.loads((out / "train_report.json").read_text())
    assert report["result"]["global_step"] == 3 and report["data"]["truncated"] > 0
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    for r in log:
        assert {"loss", "lr", "grad_norm", "real_tokens", "epoch", "wall_time"} <= set(r)
    assert 0 < log[0]["real_tokens"] < log[-1]["real_tokens"]

    # generation reuses the recorded format
    assert load_format(out) == "alpaca"
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    fmt = resolve_format(out, tok)
    assert fmt.name == "alpaca"
    prompt = fmt.render([Turn("user", "Write a short poem.")], add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert gen.shape[1] > ids["input_ids"].shape[1]

    # the same settings again (in-process: the CLI builds exactly this config): the finished run is kept
    from harness_ext.commands.train import build_config
    from harness_ext.core.errors import InputError
    from harness_ext.train.plot import plot_runs

    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert train(build_config(None, None, args[5:]), data, out) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    # different settings into the same folder: refused, nothing changed
    with pytest.raises(ConfigError, match="already holds a finished training run"):
        train(build_config(None, None, [*args[5:-1], "seed=4"]), data, out)
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    # ... unless the caller (a pipeline re-running a changed stage) asks to replace it
    (out / ".stage.json").write_text("{}")
    train(build_config(None, None, [*args[5:-1], "seed=4"]), data, out, replace_stale=True)
    assert json.loads((out / "train_report.json").read_text())["config"]["seed"] == 4
    assert (out / ".stage.json").is_file() and load_format(out) == "alpaca"

    # the normalized loss plot of two runs
    png = tmp_path / "loss.png"
    from harness_ext.cli import main

    assert main(["train-plot", str(out), str(out / "train_log.jsonl"), "--out", str(png), "--label", "a", "--label", "b"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="no training log here"):
        plot_runs([tmp_path], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from transformers import TrainerCallback
    from harness_ext.train import train
    from tests.train_fixtures import tiny_config

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:  # mid-epoch 2; checkpoint-4 is on disk
                os.kill(os.getpid(), signal.SIGKILL)

    cfg = tiny_config(Path(sys.argv[1]), num_train_epochs=3.0, save_steps=4)
    train(cfg, Path(sys.argv[2]), Path(sys.argv[3]), callbacks=[KillAt()])
""")



def test_card_names_the_table3_row_and_the_neftune_scaling(tmp_path, tiny_model_dir):
    from harness_ext.train import load_preset

    data = write_examples(tmp_path / "d.jsonl", n=6)
    cfg = load_preset("llama2-13b-alpaca-1k-longest-neftune", base_model=str(tiny_model_dir), bf16=False,
                      gradient_checkpointing=False, max_length=160, effective_batch_size=4,
                      per_device_batch_size=2, max_steps=1, prompt_format="alpaca")
    out = train(cfg, data, tmp_path / "run")
    card = (out / "README.md").read_text()
    assert "| preset | `llama2-13b-alpaca-1k-longest-neftune` |" in card
    assert "| paper recipe | Table 3, Llama-2-13B / Alpaca-1k-longest (arXiv 2402.04833) |" in card
    assert "alpha 3.0, scaling 'padded': alpha / sqrt(max_length * d)" in card
    assert "max_length=160 (preset: 2048)" in card and "max_steps=1 (preset: -1)" in card
    recipe = json.loads((out / "train_report.json").read_text())["recipe"]
    assert recipe["table3_row"] == {"label": "Table 3, Llama-2-13B / Alpaca-1k-longest", "base": "Llama-2-13B",
                                    "data": "Alpaca-1k-longest"}
    assert recipe["neftune"]["scaling"] == "padded" and recipe["neftune"]["alpha"] == 3.0
    assert recipe["differs_from_preset"]["max_length"] == {"preset": 2048, "used": 160}

def test_resume_after_sigkill_ends_where_an_uninterrupted_run_does(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    data = write_examples(tmp_path / "d.jsonl", n=10)
    # save_steps only decides when resumable state is written; it is not part of what must match
    whole = train(tiny_config(tiny_model_dir, num_train_epochs=3.0, save_steps=100), data, tmp_path / "whole")
    cfg = tiny_config(tiny_model_dir, num_train_epochs=3.0, save_steps=4)

    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(tiny_model_dir), str(data), str(killed)],
                          cwd=ROOT, env=cli_env(HARNESS_EXT_PROGRESS="0"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (killed / "model.safetensors").exists()  # no half-written checkpoint
    assert (killed / "checkpoints" / "checkpoint-4").is_dir()

    # a different config cannot resume that state
    with pytest.raises(ConfigError, match="interrupted run with a different config"):
        train(tiny_config(tiny_model_dir, num_train_epochs=3.0, learning_rate=5e-4), data, killed)

    resumed = train(cfg, data, killed)
    report = json.loads((resumed / "train_report.json").read_text())["result"]
    assert report["resumed_from_step"] == 4 and report["global_step"] == 9
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-6, k
    log_a = [json.loads(x) for x in (whole / "train_log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (resumed / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log_b] == list(range(1, 10))  # steps logged after checkpoint-4 were rewound
    assert [round(r["loss"], 5) for r in log_a] == [round(r["loss"], 5) for r in log_b]
    assert log_a[-1]["real_tokens"] == log_b[-1]["real_tokens"]


class ScriptedTone:
    """A tone classifier whose answer-like fractions follow a script, one entry per call."""

    def __init__(self, fractions):
        self.fractions = list(fractions)
        self.calls = []

    def answer_like(self, instructions, responses):
        self.calls.append((list(instructions), list(responses)))
        frac = self.fractions[min(len(self.calls) - 1, len(self.fractions) - 1)]
        k = round(frac * len(instructions))
        return [i < k for i in range(len(instructions))]


def test_ifs_callback_logs_scores_and_stops_on_plateau(tmp_path, tiny_model_dir):
    data = write_examples(tmp_path / "d.jsonl", n=8)
    instr = tmp_path / "ifs.txt"
    instr.write_text("Name a color.\nWhat is two plus two?\nSay hello.\nGive a fruit.\n")
    tone = ScriptedTone([0.25, 0.5, 0.5, 0.5, 1.0])
    cfg = tiny_config(tiny_model_dir, max_steps=20, ifs_every=2, ifs_patience=2, ifs_min_delta=0.1,
                      ifs_instructions=str(instr), ifs_max_new_tokens=4, save_steps=100)
    out = train(cfg, data, tmp_path / "run", tone_classifier=tone)
    # checks at steps 2, 4, 6, 8: 0.25, 0.5 (gain), 0.5, 0.5 -> two checks without gain: stop at 8
    assert len(tone.calls) == 4
    assert all(c[0] == ["Name a color.", "What is two plus two?", "Say hello.", "Give a fruit."] for c in tone.calls)
    assert all(len(c[1]) == 4 and all(isinstance(r, str) for r in c[1]) for c in tone.calls)
    ifs = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    ifs = [r for r in ifs if r["type"] == "ifs"]
    assert [(r["step"], r["ifs"]) for r in ifs] == [(2, 0.25), (4, 0.5), (6, 0.5), (8, 0.5)]
    assert [r["stopped"] for r in ifs] == [False, False, False, True]
    report = json.loads((out / "train_report.json").read_text())["result"]
    assert report["global_step"] == 8 and report["stopped_early"] is True
    assert (out / "model.safetensors").is_file()


def test_ifs_generation_runs_without_noise_and_restores_training_mode(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness_ext.llm.formats import get_format
    from harness_ext.train.callbacks import greedy_answers
    from harness_ext.train.neftune import NEFTune

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    fmt = get_format("chat-template", tok)
    questions = ["Write a short poem.", "List three ways to save energy."]
    clean = greedy_answers(model, tok, fmt, questions, 6, [])
    hook = NEFTune(1000.0).attach(model)  # huge noise: any leak would change the greedy answers
    model.train()
    noisy_setting = greedy_answers(model, tok, fmt, questions, 6, [])
    assert model.training and noisy_setting == clean
    hook.detach()


def test_ifs_default_classifier_missing_module_is_a_clear_error(monkeypatch):
    import importlib

    from harness_ext.train.callbacks import load_classifier

    real = importlib.import_module

    def fake_import(name, *a, **kw):
        if name == "harness_ext.evals.ifs":
            raise ModuleNotFoundError("No module named 'harness_ext.evals.ifs'", name="harness_ext.evals.ifs")
        return real(name, *a, **kw)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(ConfigError, match="needs harness_ext.evals.ifs"):
        load_classifier("default")
    with pytest.raises(ConfigError, match="ifs_classifier='roberta'"):
        load_classifier("roberta")


def test_out_of_memory_becomes_a_hint_and_leaves_no_checkpoint(tmp_path, tiny_model_dir):
    import torch
    from transformers import TrainerCallback

    from harness_ext.core.errors import StageError

    class Boom(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    data = write_examples(tmp_path / "d.jsonl", n=4)
    with pytest.raises(StageError, match="ran out of memory.*gradient_checkpointing=true.*lora=true"):
        train(tiny_config(tiny_model_dir, max_steps=2), data, tmp_path / "oom", callbacks=[Boom()])
    assert not (tmp_path / "oom" / "model.safetensors").exists()


def test_lora_with_gradient_checkpointing_saves_a_merged_plain_checkpoint(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    data = write_examples(tmp_path / "d.jsonl", n=4)
    out = train(tiny_config(tiny_model_dir, max_steps=2, lora=True, lora_r=4, gradient_checkpointing=True,
                            learning_rate=5e-2), data, tmp_path / "lora")
    assert not (out / "adapter_config.json").exists()
    tuned, base = load_file(out / "model.safetensors"), load_file(tiny_model_dir / "model.safetensors")
    assert not any("lora" in k for k in tuned) and tuned.keys() == base.keys()
    changed = [k for k in base if not (tuned[k] - base[k]).abs().max().item() < 1e-7]
    assert changed and all(k.endswith("proj.weight") for k in changed)  # only the LoRA-wrapped linears moved


def test_neftune_changes_training_steps_and_scalings_differ(tmp_path, tiny_model_dir):
    """Same seed, data and order: the first step's loss moves only because of the embedding noise."""
    data = write_examples(tmp_path / "d.jsonl", n=4)

    def first_loss(name, **over):
        out = train(tiny_config(tiny_model_dir, max_steps=1, **over), data, tmp_path / name)
        return json.loads((out / "train_log.jsonl").read_text().splitlines()[0])["loss"]

    clean = first_loss("off", neftune_alpha=None)
    assert first_loss("off-again", neftune_alpha=None) == clean  # runs are deterministic
    reference = first_loss("ref", neftune_alpha=50.0)
    hf = first_loss("hf", neftune_alpha=50.0, neftune_scaling="hf")
    assert reference != clean and hf != clean and reference != hf


def test_resume_skips_a_checkpoint_cut_off_while_saving(tmp_path):
    from harness_ext.train.trainer import last_complete_checkpoint

    root = tmp_path / "checkpoints"
    good = root / "checkpoint-4"
    good.mkdir(parents=True)
    for name, text in (("model.safetensors", "x"), ("optimizer.pt", "x"), ("trainer_state.json", '{"global_step": 4}')):
        (good / name).write_text(text)
    torn = root / "checkpoint-6"  # killed after the weights, before the trainer state
    torn.mkdir()
    (torn / "model.safetensors").write_text("x")
    torn_state = root / "checkpoint-8"  # killed while writing the trainer state itself
    torn_state.mkdir()
    for name, text in (("model.safetensors", "x"), ("optimizer.pt", "x"), ("trainer_state.json", '{"global_st')):
        (torn_state / name).write_text(text)
    assert last_complete_checkpoint(root) == str(good)
    assert not torn.exists() and not torn_state.exists()
    assert last_complete_checkpoint(tmp_path / "none") is None


def test_bad_lora_targets_and_missing_ifs_file_fail_cleanly_before_writing(tmp_path, tiny_model_dir):
    data = write_examples(tmp_path / "d.jsonl", n=4)
    common = [f"base_model={tiny_model_dir}", "max_length=64", "effective_batch_size=2", "per_device_batch_size=2",
              "max_steps=1"]
    out = tmp_path / "lora"
    r = run_cli("train", "--data", str(data), "--out", str(out), *common, "lora=true",
                "lora_target_modules=q_projj,v_proj")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()[-1]
    assert "lora_target_modules='q_projj,v_proj': no module of" in err and "is called 'q_projj'." in err
    assert "linear layers: down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj" in err
    assert not out.exists()
    out = tmp_path / "ifs"
    missing = tmp_path / "nonexist.txt"
    r = run_cli("train", "--data", str(data), "--out", str(out), *common, "ifs_every=1",
                f"ifs_instructions={missing}")
    assert r.returncode == 2 and f"{missing}: IFS instruction file not found" in r.stderr
    assert "Loading weights" not in r.stderr and not out.exists()  # failed before the model was loaded
    with pytest.raises(ConfigError, match="lora_target_modules='layers'.*does not fit.*linear layers: down_proj"):
        train(tiny_config(tiny_model_dir, lora=True, lora_target_modules="layers"), data, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="lora_target_modules='layers'.*does not fit.*linear layers: down_proj"):
        train(tiny_config(tiny_model_dir, lora=True, lora_target_modules="layers"), data, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="ifs_classifier='roberta'"):
        train(tiny_config(tiny_model_dir, ifs_every=1, ifs_classifier="roberta"), data, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_train_plot_checks_the_image_extension_first(tmp_path):
    log = tmp_path / "run" / "train_log.jsonl"
    log.parent.mkdir()
    log.write_text("".join(json.dumps({"type": "train", "step": i, "epoch": i / 4, "loss": 2.0 / i}) + "\n"
                           for i in range(1, 5)))
    bad = tmp_path / "x.jpgg"
    res = run_cli("train-plot", str(log.parent), "--out", str(bad))
    assert res.returncode == 2 and not bad.exists()
    assert res.stderr.strip().splitlines() == [
        f"harness-ext train-plot: error: --out {bad}: '.jpgg' is not an image format matplotlib writes. "
        "Did you mean 'jpg'? Fix: end --out in .png, .pdf or .svg (also: " + res.stderr.split("(also: ")[1].strip()]
    # the extension is checked before the runs are read
    res = run_cli("train-plot", str(tmp_path / "missing"), "--out", str(tmp_path / "y.pngg"))
    assert res.returncode == 2 and "'.pngg' is not an image format" in res.stderr
    svg = tmp_path / "loss.svg"
    assert run_cli("train-plot", str(log.parent), "--out", str(svg)).returncode == 0
    assert svg.read_text().lstrip().startswith("<?xml")

"""Train config, presets (paper Table 3), key=value overrides, YAML files and shipped accelerate configs."""

from __future__ import annotations

import json

import pytest

from harness_ext.core.errors import ConfigError, InputError
from harness_ext.train import TrainConfig, load_preset
from harness_ext.train.config import parse_overrides
from tests.conftest import run_cli
from tests.train_fixtures import one_torch_thread  # noqa: F401  (autouse fixture)


@pytest.mark.parametrize("name,lr,alpha,base", [
    ("llama2-7b-1k", 1e-5, 5.0, "meta-llama/Llama-2-7b-hf"),
    ("llama2-13b-1k", 1e-5, 3.0, "meta-llama/Llama-2-13b-hf"),
    ("mistral-7b-1k", 2e-6, 3.0, "mistralai/Mistral-7B-v0.1"),
    ("llama2-7b-1k-alpha15", 1e-5, 15.0, "meta-llama/Llama-2-7b-hf"),
])
def test_small_set_presets_follow_table3(name, lr, alpha, base):
    cfg = load_preset(name)
    assert (cfg.num_train_epochs, cfg.learning_rate, cfg.lr_scheduler_type) == (15.0, lr, "linear")
    assert (cfg.weight_decay, cfg.warmup_ratio, cfg.effective_batch_size, cfg.max_length) == (0.1, 0.0, 128, 2048)
    assert (cfg.neftune_alpha, cfg.base_model, cfg.prompt_format) == (alpha, base, "vicuna")


@pytest.mark.parametrize("name,epochs,lr", [
    ("llama2-7b-large", 3.0, 2e-5), ("llama2-13b-large", 3.0, 2e-5),
    ("llama2-13b-52k", 5.0, 2e-5), ("mistral-7b-large", 3.0, 4e-6),
])
def test_large_set_presets_follow_table3(name, epochs, lr):
    cfg = load_preset(name)
    assert (cfg.num_train_epochs, cfg.learning_rate, cfg.lr_scheduler_type, cfg.warmup_ratio) == (epochs, lr, "cosine", 0.3)
    assert (cfg.max_length, cfg.effective_batch_size) == (512, 128)


def test_preset_overrides_are_typed_and_checked():
    cfg = load_preset("smollm2-135m-cpu", max_steps="3", neftune_alpha="null", bf16="true")
    assert cfg.max_steps == 3 and cfg.neftune_alpha is None and cfg.bf16 is True
    with pytest.raises(ConfigError, match="Did you mean 'learning_rate'"):
        load_preset("smollm2-135m-cpu", learnig_rate=1e-5)
    with pytest.raises(ConfigError, match="Did you mean 'llama2-7b-1k'"):
        load_preset("llama2-7b-1K")
    with pytest.raises(ConfigError, match="max_steps='many' is not a valid int"):
        load_preset("smollm2-135m-cpu", max_steps="many")
    with pytest.raises(ConfigError, match="neftune_scaling='paper'"):
        load_preset("smollm2-135m-cpu", neftune_scaling="paper")
    with pytest.raises(ConfigError, match="not a multiple"):
        TrainConfig.from_dict({"effective_batch_size": 10, "per_device_batch_size": 4})


def test_gradient_accumulation_keeps_effective_batch():
    cfg = load_preset("llama2-7b-1k")
    assert cfg.gradient_accumulation(1) == 32 and cfg.gradient_accumulation(8) == 4
    with pytest.raises(ConfigError, match="cannot be split over 3"):
        cfg.gradient_accumulation(3)
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["learning_rate"])


def test_cli_config_file_preset_and_overrides(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("preset: mistral-7b-1k\nmax_length: 1024\nneftune_scaling: hf\n")
    res = run_cli("train", "--config", str(cfg_file), "--print-config", "seed=7")
    assert res.returncode == 0, res.stderr
    import yaml

    printed = yaml.safe_load(res.stdout)
    assert printed["learning_rate"] == 2e-6 and printed["max_length"] == 1024
    assert printed["neftune_scaling"] == "hf" and printed["seed"] == 7

    cfg_file.write_text("max_lenght: 10\n")
    res = run_cli("train", "--config", str(cfg_file), "--print-config")
    assert res.returncode == 2
    assert "unknown train option 'max_lenght'" in res.stderr and "Did you mean 'max_length'" in res.stderr
    assert "Traceback" not in res.stderr

    cfg_file.write_text("max_length: [1\n")
    res = run_cli("train", "--config", str(cfg_file), "--print-config")
    assert res.returncode == 2 and "run.yaml:" in res.stderr and "malformed YAML" in res.stderr


def test_cli_overrides_may_stand_anywhere_among_the_options(tmp_path):
    import yaml

    res = run_cli("train", "seed=5", "--preset", "smollm2-135m-cpu", "--data", "d.jsonl", "max_length=64",
                  "--out", "t1", "max_steps=1", "--print-config")
    assert res.returncode == 0, res.stderr
    printed = yaml.safe_load(res.stdout)
    assert (printed["seed"], printed["max_length"], printed["max_steps"]) == (5, 64, 1)
    res = run_cli("train", "--preset", "smollm2-135m-cpu", "--data", "d.jsonl", "k=v", "--out", "t1", "max_step=1")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "harness-ext train: error: command line: unknown train option 'k'. "
        "Fix: run `harness-ext train --help` for the list of options."]
    res = run_cli("train", "--preset", "smollm2-135m-cpu", "--out", "t1", "max_step=1", "--print-config")
    assert res.returncode == 2 and "unknown train option 'max_step'. Did you mean 'max_steps'?" in res.stderr


def test_cli_help_lists_presets_and_options():
    res = run_cli("train", "--help")
    assert res.returncode == 0
    for word in ("llama2-13b-52k", "smollm2-135m-cpu", "neftune_scaling", "accelerate launch"):
        assert word in res.stdout


def test_shipped_accelerate_configs_load():
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file

    res = run_cli("train", "--accelerate-config", "fsdp")
    fsdp = load_config_from_file(res.stdout.strip())
    assert fsdp.distributed_type == "FSDP" and fsdp.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    res = run_cli("train", "--accelerate-config", "deepspeed_zero3")
    ds = load_config_from_file(res.stdout.strip())
    assert ds.distributed_type == "DEEPSPEED" and ds.deepspeed_config["zero_stage"] == 3
    from harness_ext.core.paths import resources_dir

    js = json.loads((resources_dir() / "accelerate" / "deepspeed_zero3.json").read_text())
    assert js["zero_optimization"]["stage"] == 3


def test_missing_base_model_and_data_are_clear_errors(tmp_path):
    from harness_ext.train import resolve_base_model, train

    with pytest.raises(InputError, match="base model folder not found"):
        resolve_base_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        resolve_base_model(str(tmp_path / "empty"))
    with pytest.raises(InputError, match="training data file not found"):
        train(TrainConfig(), tmp_path / "missing.jsonl", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    from harness_ext.train import resolve_base_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    with pytest.raises(InputError, match="offline|could not be fetched"):
        resolve_base_model("someone/not-a-cached-model")


def test_cli_requires_data_and_out():
    res = run_cli("train", "--preset", "smollm2-135m-cpu")
    assert res.returncode == 2 and "--data and --out are required" in res.stderr


def test_bf16_without_support_is_a_config_error(tmp_path, tiny_model_dir):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine supports bf16 training")
    from harness_ext.train import train
    from tests.train_fixtures import tiny_config, write_examples

    data = write_examples(tmp_path / "d.jsonl", n=2)
    with pytest.raises(ConfigError, match="bf16=false"):
        train(tiny_config(tiny_model_dir, bf16=True), data, tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()

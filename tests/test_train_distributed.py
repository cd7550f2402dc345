"""Two processes (torchrun, CPU/gloo): the effective batch is split over processes and rank 0
alone writes the checkpoint. Slow: two interpreters import torch and transformers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, cli_env
from tests.train_fixtures import (
    one_torch_thread,  # noqa: F401  (autouse fixture)
    write_examples,
)


@pytest.mark.slow
def test_torchrun_two_processes_keeps_effective_batch(tmp_path, tiny_model_dir):
    data = write_examples(tmp_path / "d.jsonl", n=10)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "harness_ext", "train",
           "--data", str(data), "--out", str(out), f"base_model={tiny_model_dir}", "prompt_format=chat-template",
           "max_length=96", "effective_batch_size=4", "per_device_batch_size=1", "num_train_epochs=1",
           "neftune_alpha=5", "save_steps=1"]
    res = subprocess.run(cmd, cwd=ROOT, env=cli_env(HARNESS_EXT_PROGRESS="0"), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads((out / "train_report.json").read_text())["result"]
    # 10 examples, 4 per optimizer step over 2 processes x 2 accumulation steps -> 3 steps
    assert result["world_size"] == 2 and result["global_step"] == 3
    assert (out / "model.safetensors").is_file() and not (out / ".final.partial").exists()
    steps = [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # one writer: no duplicated log lines

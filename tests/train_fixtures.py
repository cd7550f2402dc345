"""Small data files and configs shared by the tests/test_train_*.py files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and", "writes", "a", "short", "poem", "about", "the", "sea"]


def write_examples(path: Path, n: int = 12, *, skew: bool = True) -> Path:
    """JSONL of harness_ext Examples with length-skewed responses."""
    rows = []
    for i in range(n):
        reps = 1 + (i * 7) % 9 if skew else 2
        rows.append({
            "id": f"ex{i}", "instruction": f"Write a short poem about the sea number {i}.",
            "response": " ".join(WORDS[(i + k) % len(WORDS)] for k in range(4 * reps)) + ".",
        })
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_config(model_dir: Path, **over):
    from harness_ext.train import TrainConfig

    values = {"base_model": str(model_dir), "prompt_format": "chat-template", "max_length": 96,
              "effective_batch_size": 4, "per_device_batch_size": 2, "num_train_epochs": 2.0,
              "learning_rate": 1e-3, "neftune_alpha": 5.0, "save_steps": 2, "logging_steps": 1}
    values.update(over)
    return TrainConfig.from_dict(values)


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    """Tiny models train several times faster on one thread than on two contended ones; restore after."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for subprocesses started by the test
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

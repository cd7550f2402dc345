"""Named training presets: the paper's Table 3 recipes and a small CPU recipe.

Sources. "Long Is More for Alignment" (Zhao et al., arXiv 2402.04833), Table 3 (fine-tuning
hyper-parameters) and Sec. 3/4 text:

* 1k-example sets (Alpaca-1k-longest, LIMA-1k, ...): 15 epochs, learning rate 1e-5 (Mistral-7B:
  2e-6), linear schedule, weight decay 0.1, no warmup, effective batch 128, max length 2048.
* 9k/52k/70k sets (Alpaca-52k, Evol-Instruct-70k, filtered 9k sets): 3 epochs (Llama-2-13B on the
  52k set: 5), learning rate 2e-5 (Mistral-7B: 4e-6), cosine schedule, warmup ratio 0.3 as the table
  prints it, max length 512.
* NEFTune: alpha 5 for Llama-2-7B and 3 for Llama-2-13B and Mistral-7B (paper text). The authors'
  released training scripts use alpha 15 for Llama-2-7B; `llama2-7b-1k-alpha15` reproduces those.

Conversations are rendered with FastChat's Vicuna format, which the paper trained with.
"""

from __future__ import annotations

from typing import Any

from harness_ext.core.errors import unknown
from harness_ext.train.config import TrainConfig

LLAMA2_7B = "meta-llama/Llama-2-7b-hf"
LLAMA2_13B = "meta-llama/Llama-2-13b-hf"
MISTRAL_7B = "mistralai/Mistral-7B-v0.1"

# Shared by the paper's GPU recipes: bf16 + gradient checkpointing so 7B/13B fit under FSDP/ZeRO-3.
_GPU = {"prompt_format": "vicuna", "bf16": True, "gradient_checkpointing": True,
        "effective_batch_size": 128, "per_device_batch_size": 4, "save_steps": 50}

_SMALL = {**_GPU, "num_train_epochs": 15.0, "lr_scheduler_type": "linear", "weight_decay": 0.1,
          "warmup_ratio": 0.0, "max_length": 2048}
_LARGE = {**_GPU, "num_train_epochs": 3.0, "lr_scheduler_type": "cosine", "warmup_ratio": 0.3,
          "max_length": 512, "per_device_batch_size": 16, "save_steps": 200}

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama2-7b-1k": (
        "Llama-2-7B on a 1k set (Table 3): 15 ep, lr 1e-5, linear, wd 0.1, NEFTune alpha 5.",
        {**_SMALL, "base_model": LLAMA2_7B, "learning_rate": 1e-5, "neftune_alpha": 5.0},
    ),
    "llama2-7b-1k-alpha15": (
        "As llama2-7b-1k with NEFTune alpha 15, the value in the authors' released scripts.",
        {**_SMALL, "base_model": LLAMA2_7B, "learning_rate": 1e-5, "neftune_alpha": 15.0},
    ),
    "llama2-13b-1k": (
        "Llama-2-13B on a 1k set (Table 3): 15 ep, lr 1e-5, linear, wd 0.1, NEFTune alpha 3.",
        {**_SMALL, "base_model": LLAMA2_13B, "learning_rate": 1e-5, "neftune_alpha": 3.0},
    ),
    "mistral-7b-1k": (
        "Mistral-7B-v0.1 on a 1k set (Table 3): 15 ep, lr 2e-6, linear, wd 0.1, NEFTune alpha 3.",
        {**_SMALL, "base_model": MISTRAL_7B, "learning_rate": 2e-6, "neftune_alpha": 3.0},
    ),
    "llama2-7b-large": (
        "Llama-2-7B on a 9k/52k/70k set (Table 3): 3 ep, lr 2e-5, cosine, warmup 0.3, max len 512.",
        {**_LARGE, "base_model": LLAMA2_7B, "learning_rate": 2e-5},
    ),
    "llama2-13b-large": (
        "Llama-2-13B on a 9k/70k set (Table 3): 3 ep, lr 2e-5, cosine, warmup 0.3, max len 512.",
        {**_LARGE, "base_model": LLAMA2_13B, "learning_rate": 2e-5},
    ),
    "llama2-13b-52k": (
        "Llama-2-13B on Alpaca-52k (Table 3): as llama2-13b-large but 5 epochs.",
        {**_LARGE, "base_model": LLAMA2_13B, "learning_rate": 2e-5, "num_train_epochs": 5.0},
    ),
    "mistral-7b-large": (
        "Mistral-7B-v0.1 on a 9k/52k/70k set (Table 3): 3 ep, lr 4e-6, cosine, warmup 0.3, max len 512.",
        {**_LARGE, "base_model": MISTRAL_7B, "learning_rate": 4e-6},
    ),
    "smollm2-135m-cpu": (
        "SmolLM2-135M-Instruct (embedded) on 2 CPU cores in minutes: 10 steps of 8, lr 2e-5, len 512.",
        {"base_model": "smollm2-135m-instruct", "prompt_format": "chat-template", "max_length": 512,
         "num_train_epochs": 1.0, "max_steps": 10, "learning_rate": 2e-5, "lr_scheduler_type": "linear",
         "weight_decay": 0.0, "warmup_ratio": 0.0, "effective_batch_size": 8, "per_device_batch_size": 4,
         "neftune_alpha": 5.0, "save_steps": 5, "bf16": False, "gradient_checkpointing": False},
    ),
}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def preset_help() -> str:
    """One line per preset for --help."""
    width = max(len(n) for n in PRESETS)
    return "\n".join(f"  {n.ljust(width)}  {PRESETS[n][0]}" for n in preset_names())


def load_preset(name: str, **overrides: Any) -> TrainConfig:
    """The named preset as a TrainConfig, with `overrides` applied (unknown keys are errors)."""
    if name not in PRESETS:
        raise unknown("train preset", name, PRESETS)
    base = TrainConfig.from_dict(PRESETS[name][1], source=f"preset '{name}'")
    return TrainConfig.from_dict(overrides, source="overrides", base=base) if overrides else base

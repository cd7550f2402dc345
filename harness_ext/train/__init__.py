"""Supervised fine-tuning (the paper's recipe): config, presets, NEFTune, callbacks, `train()`.

Importing this package is light; torch/transformers are imported when a run starts.
"""

from __future__ import annotations

from harness_ext.train.basemodel import resolve_base_model
from harness_ext.train.config import TrainConfig
from harness_ext.train.presets import PRESETS, load_preset
from harness_ext.train.trainer import train

__all__ = ["PRESETS", "TrainConfig", "load_preset", "resolve_base_model", "train"]

"""Named training presets: one per row of the paper's Table 3, NEFTune variants, a small CPU recipe.

Source: "Long Is More for Alignment" (Zhao et al., arXiv 2402.04833), appendix A.2 and its Table 3
("Details of training hyperparameters for all experiments"). Each Table 3 row becomes the preset
``<base model>-<data set>`` (e.g. ``llama2-7b-alpaca-1k-longest``) holding that row's epochs, learning
rate, schedule, batch size, context length, weight decay and warmup rate. Values Table 3 does not give
come from the authors' released training scripts (tml-epfl/long-is-more-for-alignment,
training/scripts/*.sh): Adam beta2 0.95 on the 1k recipe (train_llama2_7b.sh, train_llama2_13b.sh,
train_mistral_7b.sh; LIMA's optimiser, which A.2 says the 1k runs follow) and the per-device batch.

NEFTune. A.2: "neftune_noise_level set to 5 for Llama-2-7B, while for Mistral-7B-v0.1 and Llama-2-13B
it is set to 3", adopted for the (Refined-)Alpaca-1k-longest runs; Table 1 reports NEFTune as separate
"+ NEFTune" rows, so the row presets train without it and ``<base>-alpaca-1k-longest-neftune`` turns it
on with the paper's alpha. The released train_llama2_7b.sh passes ``--neftune_noise_alpha 15``:
``llama2-7b-alpaca-1k-longest-neftune-alpha15`` is that run. Every paper preset scales the noise as
the authors' runs did (``neftune_scaling: padded``, see harness_ext.train.neftune).

Conversations are rendered with FastChat's Vicuna format, which the paper trained with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness_ext.core.errors import ConfigError, unknown
from harness_ext.train.config import TrainConfig

LLAMA2_7B = "meta-llama/Llama-2-7b-hf"
LLAMA2_13B = "meta-llama/Llama-2-13b-hf"
MISTRAL_7B = "mistralai/Mistral-7B-v0.1"

_BASES = {"Llama-2-7B": ("llama2-7b", LLAMA2_7B), "Mistral-7B-v0.1": ("mistral-7b", MISTRAL_7B),
          "Llama-2-13B": ("llama2-13b", LLAMA2_13B)}
#: A.2: NEFTune noise level per base model, as the paper text states it.
PAPER_NEFTUNE_ALPHA = {"Llama-2-7B": 5.0, "Mistral-7B-v0.1": 3.0, "Llama-2-13B": 3.0}


@dataclass(frozen=True)
class Table3Row:
    """One row of Table 3 (arXiv 2402.04833, appendix A.2), as printed."""

    base: str
    data: str
    size: str
    gpus: int
    epochs: int
    lr: float
    scheduler: str
    batch_size: int
    context: int
    weight_decay: float
    warmup: float

    @property
    def label(self) -> str:
        return f"Table 3, {self.base} / {self.data}"


def _rows(base: str, *rows: tuple) -> list[Table3Row]:
    return [Table3Row(base, *row) for row in rows]


#: Table 3 in the paper's order: data, size, #GPUs, epochs, LR, scheduler, batch, context, WD, warmup.
TABLE3: list[Table3Row] = [
    *_rows("Llama-2-7B",
           ("Evol-Instruct-70k", "70k", 4, 3, 2e-5, "cosine", 128, 512, 0.0, 0.3),
           ("Alpaca-52k", "52k", 4, 3, 2e-5, "cosine", 128, 512, 0.0, 0.3),
           ("AlpaGasus-9k", "9k", 4, 3, 2e-5, "cosine", 128, 512, 0.0, 0.3),
           ("Alpaca-9k-longest", "9k", 4, 3, 2e-5, "cosine", 128, 512, 0.0, 0.3),
           ("AlpaGasus-1k", "1k", 4, 15, 1e-5, "linear", 128, 2048, 0.1, 0.0),
           ("LIMA-1k", "1k", 4, 15, 1e-5, "linear", 128, 2048, 0.1, 0.0),
           ("Alpaca-1k-longest", "1k", 4, 15, 1e-5, "linear", 128, 2048, 0.1, 0.0),
           ("Evol-Instruct-AlpaGasus-1k", "1k", 4, 15, 1e-5, "linear", 128, 2048, 0.1, 0.0),
           ("Evol-Instruct-1k-longest", "1k", 4, 15, 1e-5, "linear", 128, 2048, 0.1, 0.0)),
    *_rows("Mistral-7B-v0.1",
           ("Alpaca-52k", "52k", 4, 3, 4e-6, "cosine", 128, 512, 0.0, 0.3),
           ("AlpaGasus-1k", "1k", 4, 15, 2e-6, "linear", 128, 2048, 0.1, 0.0),
           ("LIMA-1k", "1k", 4, 15, 2e-6, "linear", 128, 2048, 0.1, 0.0),
           ("Alpaca-1k-longest", "1k", 4, 15, 2e-6, "linear", 128, 2048, 0.1, 0.0)),
    *_rows("Llama-2-13B",
           ("Alpaca-52k", "52k", 4, 5, 1e-5, "cosine", 128, 512, 0.0, 0.3),
           ("AlpaGasus-1k", "1k", 4, 15, 1e-5, "linear", 128, 2048, 0.1, 0.0),
           ("LIMA-1k", "1k", 4, 15, 1e-5, "linear", 128, 2048, 0.1, 0.0),
           ("Alpaca-1k-longest", "1k", 4, 15, 1e-5, "linear", 128, 2048, 0.1, 0.0)),
]


@dataclass(frozen=True)
class Preset:
    """A named starting config. `row` is the Table 3 row its hyper-parameters come from, if any."""

    name: str
    summary: str
    values: dict[str, Any] = field(hash=False)
    row: Table3Row | None = None
    #: where values that are not in Table 3 come from
    sources: str = ""


def preset_name(row: Table3Row) -> str:
    return f"{_BASES[row.base][0]}-{row.data.lower()}"


def _row_values(row: Table3Row) -> dict[str, Any]:
    small = row.size == "1k"
    values: dict[str, Any] = {
        "base_model": _BASES[row.base][1], "prompt_format": "vicuna", "bf16": True,
        "gradient_checkpointing": True, "num_train_epochs": float(row.epochs), "learning_rate": row.lr,
        "lr_scheduler_type": row.scheduler, "effective_batch_size": row.batch_size, "max_length": row.context,
        "weight_decay": row.weight_decay, "warmup_ratio": row.warmup, "neftune_alpha": None,
        "neftune_scaling": "padded",
        # Released scripts: 2 x 4 GPUs x 16 accumulation on the 1k sets, 4 x 4 x 8 on Alpaca-52k.
        "per_device_batch_size": 2 if small else 4, "save_steps": 50 if small else 200,
    }
    if small:
        values["adam_beta2"] = 0.95  # train_llama2_7b.sh / _13b.sh / train_mistral_7b.sh: --adam_beta2 0.95
    return values


def _describe(row: Table3Row, extra: str = "") -> str:
    wd = f", wd {row.weight_decay:g}" if row.weight_decay else ""
    warm = f", warmup {row.warmup:g}" if row.warmup else ""
    return (f"{row.label}: {row.epochs} ep, lr {row.lr:g}, {row.scheduler}{wd}{warm}, "
            f"batch {row.batch_size}, max len {row.context}{extra}.")


_SCRIPT_SOURCES = ("adam_beta2 0.95 and per_device_batch_size from the authors' training/scripts/*.sh; "
                   "neftune_scaling 'padded' as their FastChat trainer padded to model_max_length.")


def _build() -> dict[str, Preset]:
    out: dict[str, Preset] = {}
    for row in TABLE3:
        name = preset_name(row)
        out[name] = Preset(name, _describe(row), _row_values(row), row, _SCRIPT_SOURCES)
        if row.data == "Alpaca-1k-longest":
            alpha = PAPER_NEFTUNE_ALPHA[row.base]
            out[f"{name}-neftune"] = Preset(
                f"{name}-neftune", _describe(row, f"; NEFTune alpha {alpha:g} (A.2 text)"),
                {**_row_values(row), "neftune_alpha": alpha}, row,
                _SCRIPT_SOURCES + f" neftune_alpha {alpha:g}: A.2 text.")
            if row.base == "Llama-2-7B":
                out[f"{name}-neftune-alpha15"] = Preset(
                    f"{name}-neftune-alpha15", _describe(row, "; NEFTune alpha 15 (train_llama2_7b.sh)"),
                    {**_row_values(row), "neftune_alpha": 15.0}, row,
                    _SCRIPT_SOURCES + " neftune_alpha 15: train_llama2_7b.sh (the A.2 text says 5).")
    out["smollm2-135m-cpu"] = Preset(
        "smollm2-135m-cpu",
        "SmolLM2-135M-Instruct (embedded) on 2 CPU cores in minutes: 10 steps of 8, lr 2e-5, len 512.",
        {"base_model": "smollm2-135m-instruct", "prompt_format": "chat-template", "max_length": 512,
         "num_train_epochs": 1.0, "max_steps": 10, "learning_rate": 2e-5, "lr_scheduler_type": "linear",
         "weight_decay": 0.0, "warmup_ratio": 0.0, "effective_batch_size": 8, "per_device_batch_size": 4,
         "neftune_alpha": 5.0, "save_steps": 5, "bf16": False, "gradient_checkpointing": False},
        None, "our own small recipe (no Table 3 row).",
    )
    return out


PRESETS: dict[str, Preset] = _build()

#: Names earlier versions shipped, each with the preset(s) that replace it and why it went.
RETIRED: dict[str, tuple[str, str]] = {
    "llama2-7b-1k": ("llama2-7b-alpaca-1k-longest-neftune", "each Table 3 row now has its own preset"),
    "llama2-7b-1k-alpha15": ("llama2-7b-alpaca-1k-longest-neftune-alpha15", "each Table 3 row now has its own preset"),
    "llama2-13b-1k": ("llama2-13b-alpaca-1k-longest-neftune", "each Table 3 row now has its own preset"),
    "mistral-7b-1k": ("mistral-7b-alpaca-1k-longest-neftune", "each Table 3 row now has its own preset"),
    "llama2-7b-large": ("llama2-7b-alpaca-52k", "each Table 3 row now has its own preset"),
    "mistral-7b-large": ("mistral-7b-alpaca-52k", "each Table 3 row now has its own preset"),
    "llama2-13b-52k": ("llama2-13b-alpaca-52k", "each Table 3 row now has its own preset (and its lr is 1e-5)"),
    "llama2-13b-large": ("llama2-13b-alpaca-52k", "it had no Table 3 row behind it: the paper trains Llama-2-13B "
                         "on one large set only, Alpaca-52k (5 epochs, lr 1e-5)"),
}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def preset_help() -> str:
    """One line per preset for --help."""
    width = max(len(n) for n in PRESETS)
    return "\n".join(f"  {n.ljust(width)}  {PRESETS[n].summary}" for n in preset_names())


def get_preset(name: str) -> Preset:
    """The named preset; a retired or unknown name is a ConfigError with a did-you-mean."""
    if name in RETIRED:
        new, why = RETIRED[name]
        family = sorted(n for n in PRESETS if n.startswith(new.split("-alpaca")[0] + "-"))
        raise ConfigError(f"train preset '{name}' was retired: {why}. Did you mean '{new}'?",
                          hint=f"use '{new}', or another row of the same base model: {', '.join(family)}")
    if name not in PRESETS:
        raise unknown("train preset", name, PRESETS)
    return PRESETS[name]


def load_preset(name: str, **overrides: Any) -> TrainConfig:
    """The named preset as a TrainConfig, with `overrides` applied (unknown keys are errors)."""
    preset = get_preset(name)
    base = TrainConfig.from_dict({**preset.values, "preset": name}, source=f"preset '{name}'")
    return TrainConfig.from_dict(overrides, source="overrides", base=base) if overrides else base


__all__ = ["PRESETS", "RETIRED", "TABLE3", "Preset", "Table3Row", "get_preset", "load_preset",
           "preset_help", "preset_name", "preset_names"]

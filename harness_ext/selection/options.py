"""The one validator of selection options: `select_to_dir` raises on its first problem, and the
experiment check (pipeline/check.py) reports all of them with their field names.

An option is either a strategy option (a field of strategies.Options) or a run option (RUN_OPTIONS:
how the data is read and measured). `format` and `fmt` are the same option (fmt is the older name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from harness_ext.core.errors import ConfigError, did_you_mean
from harness_ext.selection.strategies import STRATEGIES, Options
from harness_ext.selection.units import COUNT_ON

#: Keys that select_to_dir takes as its own arguments, and where they belong in an experiment.
OWN = {"strategy": "select.strategy", "k": "select.k", "unit": "select.unit", "seed": "select.seed",
       "source_field": "datasets.<name>.source_field"}
RUN_OPTIONS = {"fmt", "format", "dedup", "exact_stats", "workers", "mix_format", "count_on", "mix", "strict"}
_STRATEGY_OPTIONS = {f.name for f in fields(Options)} - {"seed", "mix_pool", "embeddings"}
#: Every key an experiment's `select.options` (or select_to_dir's **options) may hold.
OPTIONS = frozenset(_STRATEGY_OPTIONS | RUN_OPTIONS)
_BOOLS = ("allow_fewer", "dedup", "exact_stats", "strict")
_NUMBERS = ("threshold", "ifd_below", "diverse_oversample")
_POSITIVE_INTS = ("workers", "score_max_length", "score_batch_tokens")
_TEXTS = ("score_field", "score_model", "embed_model", "diverse_rank", "mix_strategy")


@dataclass
class OptionProblem:
    """One bad option: its key (under select.options, or 'strategy'), what is wrong, the fix."""

    key: str
    message: str
    fix: str | None = None


@dataclass
class RunOptions:
    """Validated options: how to read the data, and the strategy's own options."""

    fmt: str = "auto"
    mix_format: str = "auto"
    dedup: bool = False
    exact_stats: bool = False
    workers: int | None = None
    strategy: Options = field(default_factory=Options)


def _value_problem(key: str, value: Any) -> OptionProblem | None:
    from harness_ext.data.loaders import check_format

    if key == "count_on" and value not in COUNT_ON:
        return OptionProblem(key, f"Unknown count-on value '{value}'.", f"use one of: {', '.join(COUNT_ON)}")
    if key == "mix_strategy" and value == "mixture":
        return OptionProblem(key, "the mixture's inner strategy cannot itself be 'mixture'.", "e.g. mix_strategy: longest")
    try:
        if key == "mix_strategy":
            STRATEGIES.get(str(value))
        elif key in ("fmt", "format", "mix_format"):
            check_format(str(value))
    except ConfigError as exc:
        return OptionProblem(key, exc.message, exc.hint)
    if key in _BOOLS and not isinstance(value, bool):
        return OptionProblem(key, f"expected true or false, got {value!r}.")
    is_num = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key in _NUMBERS and (not is_num or math.isnan(value)):
        return OptionProblem(key, f"expected a number, got {value!r}.")
    if key in _POSITIVE_INTS and value is not None:
        if not is_num or not isinstance(value, int):
            return OptionProblem(key, f"expected a positive integer, got {value!r}.")
        if value < 1:
            return OptionProblem(key, f"--{key.replace('_', '-')} must be at least 1 (got {value}).", "e.g. 2")
    if key in _TEXTS and value is not None and not isinstance(value, str):
        return OptionProblem(key, f"expected a name, got {value!r}.")
    if key == "diverse_oversample" and value < 1:
        return OptionProblem(key, f"must be at least 1 (got {value}).", "e.g. 2 for the best half of 2k diverse rows")
    return None


def option_problems(strategy: str, options: dict[str, Any], *, has_mix: bool | None = None) -> list[OptionProblem]:
    """Every problem with `options` for `strategy` (unknown keys, bad values, a mixture without set A)."""
    out: list[OptionProblem] = []
    for key, value in options.items():
        if key in OWN:
            out.append(OptionProblem(key, f"'{key}' is not a strategy option.", f"set it as {OWN[key]}."))
        elif key not in OPTIONS:
            out.append(OptionProblem(key, f"Unknown selection option '{key}'.{did_you_mean(key, OPTIONS)}",
                                     f"allowed: {', '.join(sorted(OPTIONS))}"))
        else:
            problem = _value_problem(key, value)
            if problem is not None:
                out.append(problem)
    mix = options.get("mix") if has_mix is None else has_mix
    if strategy == "mixture" and not mix:
        out.append(OptionProblem("strategy", "Strategy 'mixture' needs set A.",
                                 "pass --mix PATH / options.mix: PATH (every example of it is kept)."))
    return out


def parse_options(strategy: str, seed: int, options: dict[str, Any], *, has_mix: bool) -> RunOptions:
    """Validated RunOptions, or a ConfigError naming the first bad option and its fix."""
    problems = option_problems(strategy, options, has_mix=has_mix)
    if problems:
        p = problems[0]
        raise ConfigError(p.message if p.key == "strategy" else f"select option '{p.key}': {p.message}", hint=p.fix)
    opts = dict(options)
    fmt = opts.pop("format", None) or opts.pop("fmt", None) or "auto"
    opts.pop("fmt", None)
    run = RunOptions(fmt=fmt, mix_format=opts.pop("mix_format", "auto"), dedup=bool(opts.pop("dedup", False)),
                     exact_stats=bool(opts.pop("exact_stats", False)), workers=opts.pop("workers", None))
    for key in RUN_OPTIONS:
        opts.pop(key, None)
    run.strategy = Options(seed=seed, **opts)
    return run

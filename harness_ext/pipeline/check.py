"""Check a whole experiment before any stage runs, with the registries and validators the stages use.

A stage that fails on a typo after hours of training loses those hours, so `harness-ext run`
(with or without --dry-run) first checks every name against the registry its stage looks it up in
(selection strategies, units, training presets, suites, generation backends, judge rules, annotator
configs, harness-ext's lm_eval tasks), every training override with the trainer's own config
validation (names, types, ranges, batch sizes), and every local file or folder a stage will read.
All problems are collected and reported together. Nothing here imports torch or transformers.

Problems tied to the machine rather than the file (a missing package or API key, the embedded
base model's package) are marked `machine`: a real run stops on them, --dry-run only notes them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness_ext.core.errors import DependencyError, HarnessError, did_you_mean, unknown
from harness_ext.pipeline.experiment import ExperimentConfig, Problem, SelectSpec, TrainSpec, problem


def check_experiment(cfg: ExperimentConfig, base_dir: Path) -> list[Problem]:
    """Every problem a stage of `cfg` would stop on that can be seen without doing the work.

    `base_dir` is the folder relative data paths resolve against (experiment.resolve_data_path).
    """
    return _Checker(cfg, Path(base_dir)).run()


class _Checker:
    def __init__(self, cfg: ExperimentConfig, base_dir: Path) -> None:
        self.cfg = cfg
        self.base = base_dir
        self.out: list[Problem] = []

    def add(self, field: str, exc: Exception, **kw: Any) -> None:
        self.out.append(problem(field, exc, **kw))

    def attempt(self, field: str, fn: Callable[[], Any], **kw: Any) -> bool:
        """Run one of the stages' own checks; record its error under `field`."""
        try:
            fn()
        except HarnessError as exc:
            self.add(field, exc, **kw)
            return False
        return True

    def need(self, field: str, module: str, *, package: str | None = None, extra: str, purpose: str) -> None:
        """A package the stages behind `field` import must be installed (a machine problem)."""
        if importlib.util.find_spec(module) is None:
            self.add(field, DependencyError(package or module, extra, purpose), machine=True)

    def at_least(self, field: str, value: int | float | None, low: int | float) -> None:
        if value is not None and value < low:
            self.out.append(Problem(field, f"{value} is below {low}.", fix=f"give {field.rsplit('.', 1)[-1]} >= {low}."))

    def local_path(self, field: str, spec: str, *, folder: bool = False, what: str = "the file") -> None:
        """A data path as the runner resolves it (bundled:NAME, hf:NAME, relative to base_dir) must exist."""
        from harness_ext.pipeline.experiment import resolve_data_path

        try:
            resolved = resolve_data_path(spec, self.base)
        except HarnessError as exc:
            self.add(field, exc)
            return
        if resolved.startswith("hf:"):
            self.need(field, "datasets", extra="train", purpose="Loading hf: datasets")
            return
        path = Path(resolved)
        if not path.exists():
            seen = f" ({path})" if str(path) != spec else ""
            self.out.append(Problem(field, f"'{spec}' not found{seen}.",
                                    fix=f"point it at {what}; relative paths resolve against {self.base}.",
                                    missing=path, folder=folder))

    def model_folder(self, field: str, name: str) -> None:
        from harness_ext.train.basemodel import SMOLLM2_ALIASES, base_model_problem

        err = base_model_problem(name)
        if err is not None:
            missing = None if name in SMOLLM2_ALIASES or Path(name).expanduser().exists() else Path(name)
            self.add(field, err, machine=name in SMOLLM2_ALIASES, missing=missing, folder=True)

    # ------------------------------------------------------------ the checks, in file order

    def run(self) -> list[Problem]:
        cfg = self.cfg
        self.model_folder("base_model", cfg.base_model)
        used = {a.data for a in cfg.arms}
        for name, spec in cfg.datasets.items():
            if name in used:
                self.local_path(f"datasets.{name}.path", spec.path, what="the instruction data file")
        trains = []
        for i, arm in enumerate(cfg.arms):
            if arm.select is not None:
                self.select(f"arms[{i}].select", arm.select)
            if arm.train is not None:
                trains.append(f"arms[{i}].train")
                self.train(f"arms[{i}].train", arm.train)
        if trains:
            for module in ("torch", "transformers", "accelerate"):
                self.need(trains[0], module, extra="train", purpose="Training")
        self.generate()
        if cfg.judge is not None:
            self.judge()
        if cfg.lm_eval is not None and cfg.lm_eval.tasks:
            self.lm_eval()
        return self.out

    def select(self, at: str, sel: SelectSpec) -> None:
        from harness_ext.selection.options import option_problems
        from harness_ext.selection.strategies import STRATEGIES
        from harness_ext.selection.units import check_unit_spec

        self.attempt(f"{at}.strategy", lambda: STRATEGIES.get(sel.strategy))
        if self.attempt(f"{at}.unit", lambda: check_unit_spec(sel.unit)):
            name, _, arg = sel.unit.partition(":")
            if name == "hf-tokens" and arg.startswith((".", "/", "~")) and not Path(arg).expanduser().exists():
                self.out.append(Problem(f"{at}.unit", f"tokenizer folder '{arg}' not found.",
                                        fix="give a folder holding tokenizer files, or a hub name.",
                                        missing=Path(arg).expanduser(), folder=True))
        if sel.strategy != "dedup":
            self.at_least(f"{at}.k", sel.k, 1)
        for p in option_problems(sel.strategy, sel.options):
            self.out.append(Problem(f"{at}.{p.key}" if p.key == "strategy" else f"{at}.options.{p.key}",
                                    p.message, fix=p.fix))
        if sel.options.get("mix"):
            self.local_path(f"{at}.options.mix", str(sel.options["mix"]),
                            what="set A of the mixture (every example of it is kept)")

    def train(self, at: str, tr: TrainSpec) -> None:
        from harness_ext.train.config import TrainConfig
        from harness_ext.train.presets import load_preset

        preset_ok = self.attempt(f"{at}.preset", lambda: load_preset(tr.preset))
        overrides = dict(tr.overrides)
        if "base_model" in overrides:
            overrides.pop("base_model")
            self.out.append(Problem(f"{at}.overrides.base_model", "an arm cannot override the base model.",
                                    fix="set `base_model` at the top of the experiment (every arm starts from it)."))
        base = load_preset(tr.preset) if preset_ok else TrainConfig()
        # What the train stage builds: the preset, then the experiment's base model and seed, then the overrides.
        values = {"base_model": self.cfg.base_model, "seed": self.cfg.seed, **overrides}
        _, problems = TrainConfig.collect(values, base=base, ranges=preset_ok)
        for key, exc in problems:
            field = (f"{at}.overrides.{key}" if key in overrides else "seed" if key == "seed" else f"{at}.preset")
            self.add(field, exc)

    def generate(self) -> None:
        from harness_ext.generate.backends import backend_names
        from harness_ext.generate.suites import NEEDS_DATA, SUITES, suite_data_problems

        g = self.cfg.generate
        names = backend_names()
        if g.backend not in names:
            self.add("generate.backend", unknown("generation backend", g.backend, names))
        else:
            deps = {"hf": [("torch", "generate"), ("transformers", "generate")], "vllm": [("vllm", "vllm")],
                    "openai": [("openai", "judge")]}
            for module, extra in deps.get(g.backend, []):
                self.need("generate.backend", module, extra=extra, purpose=f"The {g.backend} generation backend")
        seen: set[str] = set()
        for i, suite in enumerate(g.suites):
            field = f"generate.suites[{i}]"
            if suite in seen:
                self.out.append(Problem(field, f"suite '{suite}' is listed twice.", fix="list each suite once."))
            seen.add(suite)
            if suite in SUITES:
                if suite in NEEDS_DATA and suite not in g.data:
                    self.out.append(Problem(field, f"suite '{suite}' reads a local copy of its data: {NEEDS_DATA[suite]}.",
                                            fix=f"add generate.data.{suite}: PATH"))
            elif not Path(suite).expanduser().is_file():
                if any(sep in suite for sep in ("/", "\\", ".json")):
                    self.out.append(Problem(field, f"prompts file '{suite}' not found.",
                                            fix="give a registered suite or an existing prompts file "
                                            "(relative to the folder you run from).",
                                            missing=Path(suite).expanduser()))
                else:
                    exc = unknown("suite", suite, SUITES.names())
                    self.out.append(Problem(field, exc.message, f"{exc.hint}; or a prompts file path"))
        for suite, spec in g.data.items():
            field = f"generate.data.{suite}"
            if suite not in g.suites:
                self.out.append(Problem(field, f"there is no suite '{suite}' in generate.suites."
                                        f"{did_you_mean(suite, g.suites)}",
                                        fix="add the suite to generate.suites, or remove this entry."))
                continue
            if suite not in SUITES:
                continue
            from harness_ext.pipeline.experiment import resolve_data_path

            try:
                resolved = resolve_data_path(spec, self.base)
            except HarnessError as exc:
                self.add(field, exc)
                continue
            for exc, missing, folder in suite_data_problems(suite, resolved):
                self.out.append(Problem(field, exc.message, f"{exc.hint} Relative paths resolve against {self.base}.",
                                        missing=missing, folder=folder))
        self.at_least("generate.max_new_tokens", g.max_new_tokens, 1)
        self.at_least("generate.min_new_tokens", g.min_new_tokens, 0)
        if g.min_new_tokens > g.max_new_tokens >= 1:
            self.out.append(Problem("generate.min_new_tokens", f"{g.min_new_tokens} is above max_new_tokens "
                                    f"({g.max_new_tokens}).", fix="give min_new_tokens <= max_new_tokens."))
        self.at_least("generate.temperature", g.temperature, 0)
        self.at_least("generate.batch_size", g.batch_size, 1)
        self.at_least("generate.limit", g.limit, 1)

    def judge(self) -> None:
        from harness_ext.judge.alpaca_eval import alpaca_config_names
        from harness_ext.judge.scoring import RULES
        from harness_ext.llm.client import KEY_ENVS, resolve_api_key, resolve_base_url

        cfg, j = self.cfg, self.cfg.judge
        assert j is not None
        suites = cfg.generate.suites
        mt_bench = "mt_bench" in suites and bool(j.mt_bench_prompts)
        alpaca_eval = "alpaca_eval" in suites and bool(j.alpaca_eval_reference)
        refine = any(a.refine for a in cfg.arms)
        if cfg.compare:
            self.attempt("judge.rule", lambda: RULES.get(j.rule))
        if j.local and j.local != "base":
            path = Path(j.local).expanduser()
            if not (path / "config.json").is_file():
                self.out.append(Problem("judge.local", f"'{j.local}' is not a Hugging Face model folder "
                                        "(no config.json).", fix="give a folder saved with save_pretrained, "
                                        "or `base` for the base model.",
                                        missing=None if path.exists() else path, folder=True))
        self.at_least("judge.concurrency", j.concurrency, 1)
        self.at_least("judge.max_new_tokens", j.max_new_tokens, 1)
        if j.mt_bench_prompts:
            self.local_path("judge.mt_bench_prompts", j.mt_bench_prompts, what="FastChat's judge_prompts.jsonl")
        if j.mt_bench_references:
            self.local_path("judge.mt_bench_references", j.mt_bench_references,
                            what="FastChat's reference_answer/gpt-4.jsonl")
        if j.alpaca_eval_reference:
            self.local_path("judge.alpaca_eval_reference", j.alpaca_eval_reference,
                            what="the reference model_outputs.json")
        if alpaca_eval:
            if j.local:
                self.out.append(Problem("judge.alpaca_eval_reference", "AlpacaEval needs an API judge; the "
                                        "alpaca_eval CLI cannot use a local transformers judge.",
                                        fix="set judge.model (+ base_url) instead of judge.local, or remove "
                                        "judge.alpaca_eval_reference."))
            names = alpaca_config_names()
            if j.alpaca_eval_config not in names:
                self.add("judge.alpaca_eval_config", unknown("AlpacaEval annotator config", j.alpaca_eval_config, names))
            self.need("judge.alpaca_eval_reference", "alpaca_eval", package="alpaca-eval", extra="judge",
                      purpose="AlpacaEval win rates")
        if not (cfg.compare or refine or mt_bench or alpaca_eval):
            return
        if j.local:
            self.need("judge.local", "torch", extra="generate", purpose="the local judge")
            self.need("judge.local", "transformers", extra="generate", purpose="the local judge")
            return
        self.need("judge.model", "openai", extra="judge", purpose="the OpenAI-compatible judge client")
        try:
            resolve_api_key(os.environ.get(j.api_key_env), resolve_base_url(j.base_url))
        except HarnessError:
            others = " or ".join(k for k in KEY_ENVS if k != j.api_key_env)
            self.out.append(Problem("judge.api_key_env", f"no API key for the judge: ${j.api_key_env} is not set "
                                    f"(nor {others}).", fix=f"export {j.api_key_env}=..., or point judge.base_url "
                                    "at a self-hosted server that needs no key.", machine=True))

    def lm_eval(self) -> None:
        from harness_ext.evals.runner import EvalOptions, model_types, our_task_names

        le = self.cfg.lm_eval
        assert le is not None
        ours = our_task_names()
        for i, task in enumerate(le.tasks):
            field = f"lm_eval.tasks[{i}]"
            if task.endswith((".yaml", ".yml")) or "/" in task:
                if not Path(task).expanduser().exists():
                    self.out.append(Problem(field, f"task file '{task}' not found.",
                                            fix="give an existing task YAML file (relative to the folder you run "
                                            "from) or a task name.", missing=Path(task).expanduser()))
            elif task.startswith("hx_") and task not in ours:
                self.out.append(Problem(field, f"harness-ext has no lm_eval task or group '{task}'."
                                        f"{did_you_mean(task, ours)}", fix=f"use one of: {', '.join(ours)}"))
        self.at_least("lm_eval.limit", le.limit, 1)
        # the flags the stage hands to simple_evaluate: a typo stops the check, not the run after training
        self.attempt("lm_eval.extra_args", lambda: EvalOptions.from_flags(le.extra_args))
        self.need("lm_eval.tasks", "lm_eval", package="lm-eval", extra="eval", purpose="lm_eval benchmarks")
        models = model_types()
        if models is not None and le.backend not in models:
            self.add("lm_eval.backend", unknown("lm_eval model type", le.backend, models))
        elif le.backend == "vllm":
            self.need("lm_eval.backend", "vllm", extra="vllm", purpose="lm_eval with the vllm model type")

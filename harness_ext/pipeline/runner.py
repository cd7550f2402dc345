"""Turn an experiment file into pipeline stages and run them:

    select -> (refine) -> train -> generate -> judge / lm_eval -> leaderboard + report

Every stage writes into its own folder of the run directory (run_dir/<stage>/<arm>) and is skipped
when its inputs and config are unchanged (see pipeline.py). Heavy libraries are imported inside the
stage that needs them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_json, provenance
from harness_ext.core.errors import ConfigError, RequestsFailed
from harness_ext.core.secrets import public_url
from harness_ext.pipeline.experiment import ArmSpec, ExperimentConfig, ExperimentError, Problem
from harness_ext.core.paths import resources_dir
from harness_ext.pipeline.stages import Pipeline, Stage
from harness_ext.core.records import SamplingParams

BUNDLED_PREFIX = "bundled:"
MULTI_TURN_SUITES = ("mt_bench", "demo_mt")
ALLOW_FAILURES_OPT_IN = "set `judge.allow_failures: true` in the experiment file"


@contextlib.contextmanager
def _experiment_opt_in() -> Iterator[None]:
    """Judge failures name the experiment file's opt-in, not the CLI flag of the stand-alone commands."""
    try:
        yield
    except RequestsFailed as exc:
        raise exc.with_opt_in(ALLOW_FAILURES_OPT_IN) from exc


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


def answers_path(gen_dir: Path, suite: str) -> Path:
    """The per-prompt answers (id, instruction, output, dataset, generator) of one suite, which the
    pairwise judge reads; written by generate_suite for every single-turn suite."""
    return gen_dir / suite / "outputs.jsonl"


class ExperimentRunner:
    """Builds and runs the stages of one experiment in `run_dir`."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, *, base_dir: Path, printer=print) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.base_dir = base_dir
        self.pipe = Pipeline(self.run_dir, printer=printer)
        self.model_for: dict[str, str] = {}  # arm -> stage that produced its model ("" = base model)

    # ------------------------------------------------------------ helpers

    def _base_model(self) -> str:
        from harness_ext.train import resolve_base_model

        return str(resolve_base_model(self.cfg.base_model))

    def _judge_client(self, *, pairwise: bool = False):
        """The configured judge. `pairwise`: the caller parses two scores, so a local judge in
        digit-scores mode may read them from next-token probabilities."""
        j = self.cfg.judge
        assert j is not None
        from harness_ext.llm.factory import LocalJudgeOptions, build_client
        from harness_ext.llm.options import ClientOptions

        if j.local:
            path = self._base_model() if j.local == "base" else j.local
            digits = 2 if pairwise and j.local_mode == "digit-scores" else 0
            local = LocalJudgeOptions(path, max_new_tokens=j.max_new_tokens, digit_scores=digits)
            return build_client(None, local), self.judge_name()
        options = ClientOptions(model=j.model, base_url=j.base_url, api_key=os.environ.get(j.api_key_env),
                                concurrency=j.concurrency, max_retries=j.max_retries)
        return build_client(options), j.model

    def judge_name(self) -> str:
        """The judge model's name as recorded in judgments: `judge.model`, else the local model's folder name."""
        j = self.cfg.judge
        assert j is not None
        if j.model or not j.local:
            return j.model
        return Path(self._base_model() if j.local == "base" else j.local).name

    def _published_failures(self, out: Path) -> str | None:
        """Why a stamped pairwise stage must run again: it published failed requests although
        judge.allow_failures is off (earlier versions did that), so a rerun retries them."""
        if self.cfg.judge is None or self.cfg.judge.allow_failures:
            return None
        for path in sorted(out.glob("*/summary.json")):
            try:
                failed = json.loads(path.read_text(encoding="utf-8"))["judgments"]["request_errors"]
            except (OSError, ValueError, KeyError, TypeError):
                return f"{path} is unreadable"
            if failed:
                return f"{path.parent.name}/summary.json records {failed} failed judge requests"
        return None

    def _judge_config(self) -> dict[str, Any]:
        j = self.cfg.judge
        if j is None:
            return {}
        d = asdict(j)
        d.pop("api_key_env")  # where the key lives is not part of the result; the key never is
        d["base_url"] = public_url(d["base_url"])  # nor credentials riding in the URL
        d.pop("max_retries")  # how hard to try changes whether a stage finishes, not what it publishes
        if not d["allow_failures"]:
            # Only a stage published with failures differs; leaving the default out keeps the keys of
            # runs made before the option existed, so they are not re-judged.
            d.pop("allow_failures")
        return d

    # ------------------------------------------------------------ stages

    def _add_arm(self, arm: ArmSpec) -> None:
        cfg = self.cfg
        data_file: str | None = None
        after: list[str] = []
        if arm.data is not None:
            spec = cfg.datasets[arm.data]
            src = resolve_data_path(spec.path, self.base_dir)
            data_file = src
            if arm.select is not None:
                sel = arm.select
                name = f"select:{arm.name}"

                options = dict(sel.options)
                if options.get("mix"):  # the mixture strategy's set A is a data path too
                    options["mix"] = resolve_data_path(str(options["mix"]), self.base_dir)

                def run_select(out: Path, sel=sel, src=src, spec=spec, options=options) -> None:
                    from harness_ext.selection.run import select_to_dir

                    select_to_dir(src, out, strategy=sel.strategy, k=sel.k, unit=sel.unit, seed=sel.seed,
                                  source_field=spec.source_field, **options)

                inputs = [Path(p) for p in (src, options.get("mix")) if p and not str(p).startswith("hf:")]
                self.pipe.add(Stage(name, run_select, config={"select": asdict(sel), "data": spec.path},
                                    input_files=inputs))
                after = [name]
                data_file = str(self.pipe.out_dir(name) / "selected.jsonl")
            if arm.refine:
                name = f"refine:{arm.name}"
                src_refine = data_file

                def run_refine(out: Path, src_refine=src_refine) -> None:
                    from harness_ext.refine.introspect import refine_dataset

                    client, model = self._judge_client()
                    with _experiment_opt_in():
                        refine_dataset(Path(src_refine), out, client, model,
                                       allow_failures=self.cfg.judge.allow_failures)

                self.pipe.add(Stage(name, run_refine, config={"judge": self._judge_config()}, after=after))
                after = [name]
                data_file = str(self.pipe.out_dir(name) / "refined.jsonl")
        model_stage = ""
        if arm.train is not None:
            name = f"train:{arm.name}"
            tr = arm.train
            train_data = data_file

            def run_train(out: Path, tr=tr, train_data=train_data) -> None:
                from harness_ext.train import load_preset, train

                overrides = {"seed": cfg.seed, **tr.overrides}
                config = load_preset(tr.preset, base_model=cfg.base_model, **overrides)
                train(config, Path(train_data), out, replace_stale=True)

            inputs = [] if after else [Path(train_data)]
            self.pipe.add(Stage(name, run_train, config={"train": asdict(tr), "base_model": cfg.base_model,
                                                         "seed": cfg.seed}, after=after, input_files=inputs))
            model_stage = name
        self.model_for[arm.name] = model_stage

    def _model_path(self, arm: str) -> str:
        stage = self.model_for[arm]
        return str(self.pipe.out_dir(stage)) if stage else self._base_model()

    def _add_generate(self, arm: ArmSpec) -> str:
        g = self.cfg.generate
        name = f"generate:{arm.name}"
        after = [self.model_for[arm.name]] if self.model_for[arm.name] else []

        def run_generate(out: Path, arm=arm) -> None:
            from harness_ext.generate.run import generate_suite

            params = SamplingParams(max_new_tokens=g.max_new_tokens, min_new_tokens=g.min_new_tokens,
                                    temperature=g.temperature, seed=self.cfg.seed)
            for suite in g.suites:
                data = g.data.get(suite)
                generate_suite(self._model_path(arm.name), suite, out / suite, backend=g.backend,
                               data=resolve_data_path(data, self.base_dir) if data else None,
                               params=params, model_id=arm.name, limit=g.limit, batch_size=g.batch_size)

        self.pipe.add(Stage(name, run_generate, config={"generate": asdict(g), "arm": arm.name,
                                                        "model": self.model_for[arm.name] or self.cfg.base_model},
                            after=after))
        return name

    def build(self) -> Pipeline:
        for arm in self.cfg.arms:
            self._add_arm(arm)
        gen_stage = {arm.name: self._add_generate(arm) for arm in self.cfg.arms}
        judge_stages = []
        for a, b in self.cfg.compare:
            name = f"judge:{a}-vs-{b}"

            def run_judge(out: Path, a=a, b=b) -> None:
                from harness_ext.judge.pairwise import judge_pairwise

                client, model = self._judge_client(pairwise=True)
                for suite in self.pairwise_suites():
                    with _experiment_opt_in():
                        judge_pairwise(
                            self._answers(gen_stage[a], suite), self._answers(gen_stage[b], suite),
                            out / suite, client, model, rule=self.cfg.judge.rule, seed=self.cfg.seed,
                            allow_failures=self.cfg.judge.allow_failures,
                        )

            self.pipe.add(Stage(name, run_judge, config={"judge": self._judge_config(), "pair": [a, b]},
                                after=[gen_stage[a], gen_stage[b]], stale=self._published_failures))
            judge_stages.append(name)
        judge_stages += self._add_suite_judges(gen_stage)
        lm_stages = []
        if self.cfg.lm_eval and self.cfg.lm_eval.tasks:
            le = self.cfg.lm_eval
            for arm in self.cfg.arms:
                name = f"lm_eval:{arm.name}"

                def run_lm(out: Path, arm=arm) -> None:
                    from harness_ext.evals.runner import run_lm_eval

                    run_lm_eval(self._model_path(arm.name), le.tasks, out, limit=le.limit,
                                backend=le.backend, extra_args=tuple(le.extra_args))

                after = [self.model_for[arm.name]] if self.model_for[arm.name] else []
                self.pipe.add(Stage(name, run_lm, config={"lm_eval": asdict(le)}, after=after))
                lm_stages.append(name)

        def run_report(out: Path) -> None:
            from harness_ext.pipeline.report import build_report

            build_report(self, out)

        self.pipe.add(Stage("report", run_report, config={"name": self.cfg.name, "notes": self.cfg.notes},
                            after=list(gen_stage.values()) + judge_stages + lm_stages
                            + [s for s in self.model_for.values() if s]))
        return self.pipe

    def pairwise_suites(self) -> list[str]:
        """Single-turn suites, judged head to head; two-turn ones (MT-Bench) get their own judge stage."""
        return [s for s in self.cfg.generate.suites if s not in MULTI_TURN_SUITES]

    def _add_suite_judges(self, gen_stage: dict[str, str]) -> list[str]:
        """MT-Bench single-answer grading and AlpacaEval win rates, per arm, when configured."""
        j, suites, names = self.cfg.judge, self.cfg.generate.suites, []
        if j is None:
            return names
        for arm in self.cfg.arms:
            gen_dir = self.pipe.out_dir(gen_stage[arm.name])
            if "mt_bench" in suites and j.mt_bench_prompts:
                name = f"mt_bench:{arm.name}"

                def run_mt(out: Path, gen_dir=gen_dir, arm=arm) -> None:
                    from harness_ext.judge.mt_bench import judge_mt_bench

                    client, model = self._judge_client()
                    with _experiment_opt_in():
                        judge_mt_bench(
                            question_file=resolve_data_path(self.cfg.generate.data["mt_bench"], self.base_dir),
                            answer_dir=gen_dir / "mt_bench" / "model_answer", models=[arm.name],
                            judge_prompts=resolve_data_path(j.mt_bench_prompts, self.base_dir),
                            ref_answers=resolve_data_path(j.mt_bench_references, self.base_dir)
                            if j.mt_bench_references else None,
                            judge_model=model, client=client, out=out, mode="single",
                            allow_failures=j.allow_failures,
                        )

                if "mt_bench" not in self.cfg.generate.data:
                    raise ConfigError("judge.mt_bench_prompts is set but generate.data has no mt_bench questions file.")
                self.pipe.add(Stage(name, run_mt, config={"judge": self._judge_config()}, after=[gen_stage[arm.name]]))
                names.append(name)
            if "alpaca_eval" in suites and j.alpaca_eval_reference:
                name = f"alpaca_eval:{arm.name}"

                def run_ae(out: Path, gen_dir=gen_dir) -> None:
                    from harness_ext.judge.alpaca_eval import run_alpaca_eval

                    run_alpaca_eval(gen_dir / "alpaca_eval" / "model_outputs.json",
                                    resolve_data_path(j.alpaca_eval_reference, self.base_dir), out,
                                    config=j.alpaca_eval_config, judge_model=j.model, base_url=j.base_url,
                                    api_key=os.environ.get(j.api_key_env))

                if j.local:
                    raise ConfigError("judge.alpaca_eval_reference needs an API judge (judge.model + base_url); "
                                      "the alpaca_eval CLI cannot use a local transformers judge.")
                self.pipe.add(Stage(name, run_ae, config={"judge": self._judge_config()}, after=[gen_stage[arm.name]]))
                names.append(name)
        return names

    def _answers(self, gen_stage: str, suite: str) -> Path:
        return answers_path(self.pipe.out_dir(gen_stage), suite)

    def problems(self) -> list[Problem]:
        """Everything a stage would stop on that shows without doing the work (experiment_check)."""
        from harness_ext.pipeline.experiment import cross_field_problems
        from harness_ext.pipeline.check import check_experiment

        return cross_field_problems(self.cfg) + check_experiment(self.cfg, self.base_dir)

    def run(self, *, check: bool = True) -> Pipeline:
        """Run every stage; first (unless the caller did) check the whole experiment and stop on any
        problem before anything is written."""
        if check:
            problems = self.problems()
            if problems:
                raise ExperimentError(f"experiment '{self.cfg.name}'", problems)
        self.build()
        config = asdict(self.cfg)
        if config.get("judge"):  # the run record keeps the endpoint, never credentials in its URL
            config["judge"]["base_url"] = public_url(config["judge"].get("base_url"))
        atomic_write_json(self.run_dir / "experiment.json", {"config": config, "provenance": provenance()})
        self.pipe.run()
        atomic_write_json(self.run_dir / "timings.json", self.pipe.timings())
        return self.pipe


def summary_line(pipe: Pipeline) -> str:
    ran = [r for r in pipe.results if r.status == "ran"]
    return json.dumps({"ran": [r.name for r in ran], "skipped": [r.name for r in pipe.results if r.status == "skipped"]})

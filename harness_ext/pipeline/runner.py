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
from functools import partial
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_json, provenance
from harness_ext.core.errors import ConfigError, RequestsFailed
from harness_ext.core.records import SamplingParams
from harness_ext.core.secrets import public_url
from harness_ext.pipeline.experiment import (
    ArmSpec,
    ExperimentConfig,
    ExperimentError,
    Problem,
    SelectSpec,
    TrainSpec,
    pairwise_suites,
    resolve_data_path,
)
from harness_ext.pipeline.layout import PAIRWISE_SUMMARY, RunLayout
from harness_ext.pipeline.stages import Pipeline, Stage

ALLOW_FAILURES_OPT_IN = "set `judge.allow_failures: true` in the experiment file"


@contextlib.contextmanager
def _experiment_opt_in() -> Iterator[None]:
    """Judge failures name the experiment file's opt-in, not the CLI flag of the stand-alone commands."""
    try:
        yield
    except RequestsFailed as exc:
        raise exc.with_opt_in(ALLOW_FAILURES_OPT_IN) from exc


class ExperimentRunner:
    """Builds and runs the stages of one experiment in `run_dir`."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, *, base_dir: Path, printer=print) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.base_dir = base_dir
        self.layout = RunLayout(self.run_dir)
        self.pipe = Pipeline(self.run_dir, printer=printer)
        self.model_for: dict[str, str] = {}  # arm -> stage that produced its model ("" = base model)
        self._estimates: list[Any] | None = None  # collecting judge cost estimates (run --dry-run)

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
                                concurrency=j.concurrency, max_retries=j.max_retries,
                                dry_run=self._estimates is not None)
        return build_client(options), j.model

    @contextlib.contextmanager
    def _estimate_of(self, stage: str) -> Iterator[None]:
        """In an estimate pass (`run --dry-run`), keep a stage's (or suite's) estimate and go on."""
        from dataclasses import replace

        from harness_ext.llm.spend import DryRunFinished

        try:
            yield
        except DryRunFinished as exc:
            if self._estimates is None:
                raise
            self._estimates.extend(replace(e, stage=stage) for e in exc.estimates)

    def _judge_name_or_none(self) -> str | None:
        return self.judge_name() if self.cfg.judge is not None else None

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
        for path in sorted(out.glob(f"*/{PAIRWISE_SUMMARY}")):
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
        if d["method"] == "verdicts":
            d.pop("method")  # the default; left out so runs made before the option keep their keys
        if not d["allow_failures"]:
            # Only a stage published with failures differs; leaving the default out keeps the keys of
            # runs made before the option existed, so they are not re-judged.
            d.pop("allow_failures")
        return d

    # ------------------------------------------------------------ stage bodies (bound with partial)

    def _run_select(self, out: Path, *, sel: SelectSpec, src: str, source_field: str | None,
                    options: dict[str, Any]) -> None:
        from harness_ext.selection.run import select_to_dir

        select_to_dir(src, out, strategy=sel.strategy, k=sel.k, unit=sel.unit, seed=sel.seed,
                      source_field=source_field, **options)

    def _run_refine(self, out: Path, *, src: str) -> None:
        from harness_ext.refine.introspect import refine_dataset

        client, model = self._judge_client()
        with _experiment_opt_in():
            refine_dataset(Path(src), out, client, model, allow_failures=self.cfg.judge.allow_failures)

    def _run_train(self, out: Path, *, tr: TrainSpec, data: str) -> None:
        from harness_ext.train import load_preset, train

        overrides = {"seed": self.cfg.seed, **tr.overrides}
        config = load_preset(tr.preset, base_model=self.cfg.base_model, **overrides)
        train(config, Path(data), out, replace_stale=True)

    def _run_generate(self, out: Path, *, arm: str) -> None:
        from harness_ext.generate.run import generate_suite

        g = self.cfg.generate
        params = SamplingParams(max_new_tokens=g.max_new_tokens, min_new_tokens=g.min_new_tokens,
                                temperature=g.temperature, seed=self.cfg.seed)
        for suite in g.suites:
            data = g.data.get(suite)
            generate_suite(self._model_path(arm), suite, out / suite, backend=g.backend,
                           data=resolve_data_path(data, self.base_dir) if data else None,
                           params=params, model_id=arm, limit=g.limit, batch_size=g.batch_size)

    def _run_pairwise(self, out: Path, *, a: str, b: str) -> None:
        if self.cfg.judge.method == "logprobs":
            self._run_preference(out, a=a, b=b)
            return
        from harness_ext.judge.pairwise import judge_pairwise

        client, model = self._judge_client(pairwise=True)
        for suite in self.pairwise_suites():
            with _experiment_opt_in(), self._estimate_of(f"{self.layout.judge(a, b)} ({suite})"):
                judge_pairwise(self.layout.answers(a, suite), self.layout.answers(b, suite), out / suite,
                               client, model, rule=self.cfg.judge.rule, seed=self.cfg.seed,
                               allow_failures=self.cfg.judge.allow_failures)

    def _run_preference(self, out: Path, *, a: str, b: str) -> None:
        from harness_ext.judge.preference import PreferenceJob, judge_preference

        scorer = self._verdict_scorer()
        for suite in self.pairwise_suites():
            job = PreferenceJob(self.layout.answers(a, suite), self.layout.answers(b, suite), a, b,
                                judge=self.judge_name(), seed=self.cfg.seed,
                                allow_failures=self.cfg.judge.allow_failures)
            with _experiment_opt_in():
                judge_preference(job, scorer, out / suite)

    def _verdict_scorer(self):
        """The logprob judge's scorer: the local checkpoint, or the endpoint (which must return logprobs)."""
        j = self.cfg.judge
        if j.local:
            from harness_ext.llm.logprob_judge import LocalVerdictScorer

            return LocalVerdictScorer(self._base_model() if j.local == "base" else j.local)
        from harness_ext.llm.logprob_judge import EndpointOptions, EndpointVerdictScorer

        return EndpointVerdictScorer(j.model, base_url=j.base_url, api_key=os.environ.get(j.api_key_env),
                                     options=EndpointOptions(concurrency=j.concurrency, max_retries=j.max_retries))

    def _run_lm_eval(self, out: Path, *, arm: str) -> None:
        from harness_ext.evals.runner import run_lm_eval

        le = self.cfg.lm_eval
        run_lm_eval(self._model_path(arm), le.tasks, out, limit=le.limit, backend=le.backend,
                    extra_args=tuple(le.extra_args))

    def _run_mt_bench(self, out: Path, *, arm: str) -> None:
        from harness_ext.judge.mt_bench import judge_mt_bench

        j = self.cfg.judge
        client, model = self._judge_client()
        with _experiment_opt_in():
            judge_mt_bench(
                question_file=resolve_data_path(self.cfg.generate.data["mt_bench"], self.base_dir),
                answer_dir=self.layout.mt_bench_answers(arm), models=[arm],
                judge_prompts=resolve_data_path(j.mt_bench_prompts, self.base_dir),
                ref_answers=resolve_data_path(j.mt_bench_references, self.base_dir) if j.mt_bench_references else None,
                judge_model=model, client=client, out=out, mode="single", allow_failures=j.allow_failures,
            )

    def _run_alpaca_eval(self, out: Path, *, arm: str) -> None:
        from harness_ext.judge.alpaca_eval import run_alpaca_eval

        j = self.cfg.judge
        run_alpaca_eval(self.layout.alpaca_eval_outputs(arm), resolve_data_path(j.alpaca_eval_reference, self.base_dir),
                        out, config=j.alpaca_eval_config, judge_model=j.model, base_url=j.base_url,
                        api_key=os.environ.get(j.api_key_env))

    def _run_report(self, out: Path) -> None:
        from harness_ext.pipeline.report import build_report

        build_report(self.cfg, self.layout, out, judge_name=self._judge_name_or_none())

    # ------------------------------------------------------------ stages

    def _add_arm(self, arm: ArmSpec) -> None:
        cfg, lay = self.cfg, self.layout
        data_file: str | None = None
        after: list[str] = []
        if arm.data is not None:
            spec = cfg.datasets[arm.data]
            data_file = src = resolve_data_path(spec.path, self.base_dir)
            if arm.select is not None:
                options = dict(arm.select.options)
                if options.get("mix"):  # the mixture strategy's set A is a data path too
                    options["mix"] = resolve_data_path(str(options["mix"]), self.base_dir)
                inputs = [Path(p) for p in (src, options.get("mix")) if p and not str(p).startswith("hf:")]
                run = partial(self._run_select, sel=arm.select, src=src, source_field=spec.source_field, options=options)
                self.pipe.add(Stage(lay.select(arm.name), run, config={"select": asdict(arm.select), "data": spec.path},
                                    input_files=inputs))
                after = [lay.select(arm.name)]
                data_file = str(lay.selected(arm.name))
            if arm.refine:
                self.pipe.add(Stage(lay.refine(arm.name), partial(self._run_refine, src=data_file),
                                    config={"judge": self._judge_config()}, after=after))
                after = [lay.refine(arm.name)]
                data_file = str(lay.refined(arm.name))
        model_stage = ""
        if arm.train is not None:
            model_stage = lay.train(arm.name)
            inputs = [] if after else [Path(data_file)]
            self.pipe.add(Stage(model_stage, partial(self._run_train, tr=arm.train, data=data_file),
                                config={"train": asdict(arm.train), "base_model": cfg.base_model, "seed": cfg.seed},
                                after=after, input_files=inputs))
        self.model_for[arm.name] = model_stage

    def _model_path(self, arm: str) -> str:
        stage = self.model_for[arm]
        return str(self.layout.dir(stage)) if stage else self._base_model()

    def _after_model(self, arm: str) -> list[str]:
        return [self.model_for[arm]] if self.model_for[arm] else []

    def _add_generate(self, arm: ArmSpec) -> str:
        name = self.layout.generate(arm.name)
        self.pipe.add(Stage(name, partial(self._run_generate, arm=arm.name),
                            config={"generate": asdict(self.cfg.generate), "arm": arm.name,
                                    "model": self.model_for[arm.name] or self.cfg.base_model},
                            after=self._after_model(arm.name)))
        return name

    def build(self) -> Pipeline:
        lay = self.layout
        for arm in self.cfg.arms:
            self._add_arm(arm)
        gen_stage = {arm.name: self._add_generate(arm) for arm in self.cfg.arms}
        judge_stages = []
        for a, b in self.cfg.compare:
            self.pipe.add(Stage(lay.judge(a, b), partial(self._run_pairwise, a=a, b=b),
                                config={"judge": self._judge_config(), "pair": [a, b]},
                                after=[gen_stage[a], gen_stage[b]], stale=self._published_failures))
            judge_stages.append(lay.judge(a, b))
        judge_stages += self._add_suite_judges(gen_stage)
        lm_stages = []
        if self.cfg.lm_eval and self.cfg.lm_eval.tasks:
            for arm in self.cfg.arms:
                self.pipe.add(Stage(lay.lm_eval(arm.name), partial(self._run_lm_eval, arm=arm.name),
                                    config={"lm_eval": asdict(self.cfg.lm_eval)}, after=self._after_model(arm.name)))
                lm_stages.append(lay.lm_eval(arm.name))
        self.pipe.add(Stage(lay.report, self._run_report, config={"name": self.cfg.name, "notes": self.cfg.notes},
                            after=list(gen_stage.values()) + judge_stages + lm_stages
                            + [s for s in self.model_for.values() if s]))
        return self.pipe

    def pairwise_suites(self) -> list[str]:
        """Single-turn suites, judged head to head; two-turn ones (MT-Bench) get their own judge stage."""
        return pairwise_suites(self.cfg)

    def _add_suite_judges(self, gen_stage: dict[str, str]) -> list[str]:
        """MT-Bench single-answer grading and AlpacaEval win rates, per arm, when configured."""
        j, suites, names, lay = self.cfg.judge, self.cfg.generate.suites, [], self.layout
        if j is None:
            return names
        for arm in self.cfg.arms:
            if "mt_bench" in suites and j.mt_bench_prompts:
                if "mt_bench" not in self.cfg.generate.data:
                    raise ConfigError("judge.mt_bench_prompts is set but generate.data has no mt_bench questions file.")
                self.pipe.add(Stage(lay.mt_bench(arm.name), partial(self._run_mt_bench, arm=arm.name),
                                    config={"judge": self._judge_config()}, after=[gen_stage[arm.name]]))
                names.append(lay.mt_bench(arm.name))
            if "alpaca_eval" in suites and j.alpaca_eval_reference:
                if j.local:
                    raise ConfigError("judge.alpaca_eval_reference needs an API judge (judge.model + base_url); "
                                      "the alpaca_eval CLI cannot use a local transformers judge.")
                self.pipe.add(Stage(lay.alpaca_eval(arm.name), partial(self._run_alpaca_eval, arm=arm.name),
                                    config={"judge": self._judge_config()}, after=[gen_stage[arm.name]]))
                names.append(lay.alpaca_eval(arm.name))
        return names

    def problems(self) -> list[Problem]:
        """Everything a stage would stop on that shows without doing the work (experiment_check)."""
        from harness_ext.pipeline.check import check_experiment
        from harness_ext.pipeline.experiment import cross_field_problems

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
        atomic_write_json(self.layout.experiment_file(), {"config": config, "provenance": provenance()})
        self.pipe.run()
        atomic_write_json(self.layout.timings_file(), self.pipe.timings())
        return self.pipe


class JudgeEstimate:
    """What `run --dry-run` found for the judge stages: cost estimates, and the stages it could not price yet."""

    def __init__(self) -> None:
        self.estimates: list[Any] = []  # llm.spend.Estimate, one per stage (and suite) and model
        self.waiting: list[tuple[str, str]] = []  # (stage, why it cannot be estimated now)
        self.note: str | None = None  # why there is nothing to estimate

    def report(self) -> str:
        from harness_ext.llm.ledger import load_prices
        from harness_ext.llm.spend import format_estimates

        if self.note:
            return f"judge cost estimate: {self.note}"
        lines = ["judge cost estimate:"]
        if self.estimates:
            lines += ["  " + ln for ln in format_estimates(self.estimates, load_prices()).splitlines()]
        lines += [f"  {stage}: not estimated yet: {why}" for stage, why in self.waiting]
        return "\n".join(lines)


def estimate_judge_cost(runner: ExperimentRunner, scratch: Path) -> JudgeEstimate:
    """Price every API judge stage of the run without sending anything: each stage body runs with a
    dry-run client, writing only under `scratch` (thrown away). A stage whose inputs (answers) do not
    exist yet is listed as waiting for them: its cost depends on answers not generated yet."""
    from harness_ext.core.errors import HarnessError
    from harness_ext.pipeline.usage import judge_stages

    found = JudgeEstimate()
    j = runner.cfg.judge
    if j is None:
        return found
    if j.local or j.method == "logprobs":
        found.note = "none: a local or logprob judge sends no paid requests"
        return found
    paid = set(judge_stages(runner.cfg, runner.layout))
    runner._estimates = found.estimates
    try:
        for name, stage in (runner.pipe.stages or runner.build().stages).items():
            if name not in paid:
                continue
            try:
                with runner._estimate_of(name):
                    stage.run(scratch / name.replace(":", "_"))
            except HarnessError as exc:  # e.g. the answers to judge are not generated yet
                found.waiting.append((name, str(exc).splitlines()[0]))
            except (OSError, ValueError) as exc:  # a placeholder input the stage cannot read yet
                found.waiting.append((name, f"{type(exc).__name__}: {exc}".splitlines()[0]))
    finally:
        runner._estimates = None
    return found


def summary_line(pipe: Pipeline) -> str:
    ran = [r for r in pipe.results if r.status == "ran"]
    return json.dumps({"ran": [r.name for r in ran], "skipped": [r.name for r in pipe.results if r.status == "skipped"]})

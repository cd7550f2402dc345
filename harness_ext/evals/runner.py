"""Running lm-evaluation-harness with this package's tasks.

- `tasks_path()`: the folder to pass as `lm_eval --include_path` (works from a wheel install).
- `run_lm_eval_cli(argv)`: lm_eval's own CLI, in-process, after registering our metrics and
  adding `--include_path tasks_path()` unless the caller gave one (lm_eval has no entry-point
  plugin discovery, so a launcher is the only way to pre-register metrics).
- `run_lm_eval(model_path, tasks, out, ...)`: the pipeline's call, through lm_eval's Python API
  (simple_evaluate + TaskManager); writes the results JSON as lm_eval's CLI does and returns it.

Two doors on purpose: `harness-ext lm-eval` hands every flag to lm_eval's own CLI (users know its
flags, and it has dozens: W&B, hub pushing, ...), while the pipeline calls simple_evaluate with
the options EvalOptions names, so it knows the results file it wrote instead of searching for it.
- `openllm_summary(results)`: the Open LLM v1 leaderboard metrics and their mean, which an
  lm_eval group cannot compute (it averages one metric name across its tasks).

Local data for any task (ours or lm_eval's) goes through harness_ext.evals.local_tasks.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_json, provenance, read_json, stable_hash
from harness_ext.core.errors import ConfigError, StageError, did_you_mean, require
from harness_ext.core.paths import tasks_dir

log = logging.getLogger(__name__)

_SUBCOMMANDS = ("run", "ls", "validate")

#: Open LLM v1 task -> (results key, the leaderboard's metric for it), as in the paper's Table 8.
OPENLLM_METRICS: dict[str, str] = {
    "arc_challenge": "acc_norm,none",
    "hellaswag": "acc_norm,none",
    "mmlu": "acc,none",
    "truthfulqa_mc2": "acc,none",
    "winogrande": "acc,none",
    "gsm8k": "exact_match,strict-match",
}
SUMMARY_NAME = "openllm_summary.json"


def tasks_path() -> Path:
    """The installed tasks folder (harness_ext/tasks in a wheel, tasks/ in a checkout)."""
    return tasks_dir()


def _with_include_path(argv: Sequence[str], include: Path | None = None) -> list[str]:
    """Insert `run` when no subcommand is given (as lm_eval does) and add --include_path if absent."""
    args = list(argv)
    if args and args[0] in ("-h", "--help"):
        return args
    if not args or args[0] not in _SUBCOMMANDS:
        args = ["run", *args]
    if not any(a == "--include_path" or a.startswith("--include_path=") for a in args):
        args += ["--include_path", str(include or tasks_path())]
    return args


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = ["lm-eval", *argv]
    try:
        yield
    finally:
        sys.argv = saved


def run_lm_eval_cli(argv: Sequence[str], *, include: Path | None = None) -> int:
    """Run lm_eval's CLI in this process with our registrations and include path; return its exit code."""
    require("lm_eval", package="lm-eval", extra="eval", purpose="harness-ext lm-eval")
    from lm_eval.__main__ import cli_evaluate

    from harness_ext.evals.task_functions import register_lm_eval_extensions

    register_lm_eval_extensions()
    args = _with_include_path(argv, include)
    log.debug("lm_eval %s", " ".join(args))
    with _argv(args):
        try:
            cli_evaluate()
        except SystemExit as exc:  # argparse errors and --help end this way
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        except ValueError as exc:
            # lm_eval reports bad task names and configs as ValueError; show them as one line.
            message = str(exc)
            if message.startswith("Tasks not found:"):
                missing = message.split(":", 1)[1].strip().split(",")[0].strip()
                raise ConfigError(f"lm_eval: {message}.{did_you_mean(missing, our_task_names())}",
                                  hint="list tasks with `harness-ext lm-eval ls tasks`.") from exc
            raise StageError(f"lm_eval stopped: {message}", hint="see lm_eval's log above.") from exc
    return 0


def our_task_names() -> list[str]:
    """Names of the tasks and groups in tasks_path()."""
    from harness_ext.evals.local_tasks import declared_name

    return sorted({n for y in tasks_path().rglob("*.yaml") if (n := declared_name(y))})


def model_types() -> list[str] | None:
    """lm_eval's --model names (hf, vllm, ...), read from the @register_model lines of its
    sources without importing it (that would import torch); None when lm_eval is not installed
    or its sources no longer show them that way."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    names: set[str] = set()
    for root in spec.submodule_search_locations:
        for f in (Path(root) / "models").glob("*.py"):
            for args in re.findall(r"@register_model\(([^)]*)\)", f.read_text(encoding="utf-8", errors="replace")):
                names.update(re.findall(r"[\"']([^\"']+)[\"']", args))
    return sorted(names) if "hf" in names else None


def _results_files(out: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in out.rglob("results_*.json")} if out.exists() else {}


@dataclass(frozen=True)
class EvalOptions:
    """The lm_eval options the pipeline may set, as simple_evaluate takes them.

    `from_flags` reads them from lm_eval CLI spellings (an experiment's `lm_eval.extra_args`);
    a flag simple_evaluate has no argument for is an error there, not silently dropped.
    """

    model_args: tuple[str, ...] = ()
    batch_size: str | None = None
    max_batch_size: int | None = None
    num_fewshot: int | None = None
    log_samples: bool = False
    apply_chat_template: bool | str = False
    fewshot_as_multiturn: bool = True
    gen_kwargs: str | None = None
    system_instruction: str | None = None
    use_cache: str | None = None
    predict_only: bool = False
    bootstrap_iters: int = 100000
    confirm_run_unsafe_code: bool = False

    @classmethod
    def from_flags(cls, flags: Sequence[str]) -> EvalOptions:
        import argparse

        p = argparse.ArgumentParser(prog="lm_eval extra_args", add_help=False, allow_abbrev=False)
        p.add_argument("--model_args", action="append", default=[])
        p.add_argument("--batch_size")
        p.add_argument("--max_batch_size", type=int)
        p.add_argument("--num_fewshot", type=int)
        p.add_argument("--log_samples", action="store_true")
        p.add_argument("--apply_chat_template", nargs="?", const=True, default=False)
        p.add_argument("--fewshot_as_multiturn", action="store_true", default=True)
        p.add_argument("--gen_kwargs")
        p.add_argument("--system_instruction")
        p.add_argument("--use_cache")
        p.add_argument("--predict_only", action="store_true")
        p.add_argument("--bootstrap_iters", type=int, default=100000)
        p.add_argument("--confirm_run_unsafe_code", action="store_true")
        ns, rest = p.parse_known_args(list(flags))
        if rest:
            known = sorted(a.option_strings[0] for a in p._actions)
            raise ConfigError(
                f"lm_eval extra_args: {' '.join(rest)} is not an option the pipeline passes to lm_eval's "
                f"simple_evaluate (it takes: {', '.join(known)}).",
                hint="drop it, or run that evaluation with `harness-ext lm-eval`, which hands every flag to "
                "lm_eval's own CLI. Local task data goes in local_data, not --include_path.")
        return cls(model_args=tuple(ns.model_args), batch_size=ns.batch_size, max_batch_size=ns.max_batch_size,
                   num_fewshot=ns.num_fewshot, log_samples=ns.log_samples, apply_chat_template=ns.apply_chat_template,
                   fewshot_as_multiturn=ns.fewshot_as_multiturn, gen_kwargs=ns.gen_kwargs,
                   system_instruction=ns.system_instruction, use_cache=ns.use_cache, predict_only=ns.predict_only,
                   bootstrap_iters=ns.bootstrap_iters, confirm_run_unsafe_code=ns.confirm_run_unsafe_code)


def _resolve_tasks(task_manager: Any, tasks: Sequence[str]) -> list[Any]:
    """Task names and YAML file paths as simple_evaluate takes them (what lm_eval's CLI does)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    resolved: list[Any] = []
    for task in tasks:
        if task.endswith(".yaml"):
            path = Path(task).expanduser()
            if not path.is_file():
                raise ConfigError(f"lm_eval task file not found: {path}.", hint="check the path in tasks.")
            resolved.append(load_yaml(str(path.resolve()), resolve_func=True))
            continue
        matches = task_manager.match_tasks([task])
        if not matches:
            raise ConfigError(f"lm_eval: Tasks not found: {task}.{did_you_mean(task, our_task_names())}",
                              hint="list tasks with `harness-ext lm-eval ls tasks`.")
        resolved.extend(m for m in matches if m not in resolved)
    return resolved


def write_results(results: dict[str, Any], out: Path, tracker: Any) -> Path:
    """Write simple_evaluate's results where and as lm_eval's CLI does:
    out/<sanitized model name>/results_<date>.json (+ samples_<task>_<date>.jsonl), atomically."""
    import json
    from dataclasses import asdict
    from datetime import datetime

    from lm_eval.utils import handle_non_serializable, hash_string

    from harness_ext.core.artifacts import atomic_write_text

    samples = results.pop("samples", None)
    tracker.general_config_tracker.log_end_time()
    results["task_hashes"] = {
        task: hash_string("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in rows))
        for task, rows in (samples or {}).items()
    }
    results.update(asdict(tracker.general_config_tracker))
    tracker.date_id = datetime.now().isoformat().replace(":", "-")
    folder = out / str(tracker.general_config_tracker.model_name_sanitized)
    path = folder / f"results_{tracker.date_id}.json"
    atomic_write_text(path, json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False))
    for task in results.get("configs", {}) if samples else ():
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return path


# Over 60 lines by its 12-line signature and 14-line docstring (under 40 of code); the keyword
# arguments are the pipeline's lm_eval stage options, one to one.
def run_lm_eval(
    model_path: str | Path,
    tasks: list[str],
    out: str | Path,
    *,
    limit: int | float | None = None,
    device: str = "cpu",
    backend: str = "hf",
    extra_args: Sequence[str] = (),
    local_data: str | Path | None = None,
    resume: bool = True,
) -> Path:
    """Evaluate a model with lm_eval on `tasks` (ours and lm_eval's); return the results JSON path.

    Calls lm_eval's Python API (`simple_evaluate` with a `TaskManager` over our tasks folder) and
    writes `out/<model name>/results_<timestamp>.json` the way lm_eval's CLI does (and
    samples_<task>_<timestamp>.jsonl with `--log_samples`), so tools reading lm_eval's files read
    ours. When an Open LLM v1 task is among the results, `openllm_summary.json` (leaderboard
    metric per task and their mean) is written next to it. `backend` is lm_eval's model type (hf,
    vllm, ...). `extra_args` are lm_eval CLI flags that simple_evaluate takes (EvalOptions), e.g.
    a second `--model_args k=v,...` merged with pretrained=model_path (tensor_parallel_size=2 for
    vllm); others are an error. `local_data` is a folder of local task data (see
    harness_ext.evals.local_tasks.write_local_tasks). With `resume`, lm_eval's response cache
    lives in out/_lm_eval_cache/, keyed by the model path, its files' mtimes and the backend, so a
    rerun after an interruption skips the requests already answered.
    """
    if not tasks:
        raise ConfigError("run_lm_eval needs at least one task.", hint="e.g. tasks=['hx_openllm'].")
    opts = EvalOptions.from_flags(extra_args)
    require("lm_eval", package="lm-eval", extra="eval", purpose="harness-ext lm-eval")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    include = tasks_path()
    if local_data is not None:
        from harness_ext.evals.local_tasks import write_local_tasks

        include = write_local_tasks(local_data, out / "_local_tasks")
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from harness_ext.evals.task_functions import register_lm_eval_extensions

    register_lm_eval_extensions()
    task_manager = TaskManager(include_path=str(include))
    use_cache = opts.use_cache or (str(out / "_lm_eval_cache" / _model_cache_key(model_path, backend)) if resume else None)
    tracker = EvaluationTracker(output_path=str(out))
    try:
        results = simple_evaluate(
            model=backend, model_args=",".join((f"pretrained={model_path}", *opts.model_args)),
            tasks=_resolve_tasks(task_manager, tasks), num_fewshot=opts.num_fewshot, batch_size=opts.batch_size,
            max_batch_size=opts.max_batch_size, device=device, use_cache=use_cache, limit=limit,
            bootstrap_iters=opts.bootstrap_iters, log_samples=opts.log_samples, evaluation_tracker=tracker,
            system_instruction=opts.system_instruction, apply_chat_template=opts.apply_chat_template,
            fewshot_as_multiturn=opts.fewshot_as_multiturn, gen_kwargs=opts.gen_kwargs, task_manager=task_manager,
            predict_only=opts.predict_only, confirm_run_unsafe_code=opts.confirm_run_unsafe_code,
        )
    except ValueError as exc:  # lm_eval reports bad configs and arguments as ValueError
        raise StageError(f"lm_eval stopped: {exc}", hint="see lm_eval's log above.") from exc
    if results is None:  # only non-zero ranks of a distributed run get None
        raise StageError(f"lm_eval returned no results for tasks {', '.join(tasks)}.",
                         hint="run the pipeline's lm_eval stage in a single process.")
    results_path = write_results(dict(results), out, tracker)
    write_openllm_summary(results_path)
    return results_path


def _model_cache_key(model_path: str | Path, backend: str) -> str:
    """Names a response cache: a retrained checkpoint at the same path gets a new one."""
    p = Path(model_path)
    stamp = max((f.stat().st_mtime_ns for f in p.iterdir() if f.is_file()), default=0) if p.is_dir() else 0
    return stable_hash({"model": str(model_path), "backend": backend, "stamp": stamp})[:16]


def _mmlu_subject_mean(results: dict[str, Any]) -> tuple[float, int] | None:
    """Unweighted mean of per-subject MMLU accuracy, as the Open LLM leaderboard v1 averaged it."""
    groups = set(results.get("group_subtasks", {}))
    subjects = [v["acc,none"] for k, v in results.get("results", {}).items()
                if k.startswith("mmlu_") and k not in groups and isinstance(v.get("acc,none"), (int, float))]
    if not subjects:
        return None
    return sum(subjects) / len(subjects), len(subjects)


def openllm_summary(results: dict[str, Any]) -> dict[str, Any] | None:
    """Leaderboard metric (x100) per Open LLM v1 task present in an lm_eval results dict, and their mean.

    MMLU is the unweighted mean over subjects (the leaderboard's convention; lm_eval's own
    `mmlu` group weights by subject size). Returns None when no Open LLM task is present.
    """
    per_task: dict[str, dict[str, Any]] = {}
    res = results.get("results", {})
    for task, key in OPENLLM_METRICS.items():
        if task == "mmlu":
            mean = _mmlu_subject_mean(results)
            if mean is not None:
                per_task[task] = {"metric": "acc (unweighted subject mean)", "value": 100.0 * mean[0], "subjects": mean[1]}
            continue
        value = res.get(task, {}).get(key)
        if isinstance(value, (int, float)):
            per_task[task] = {"metric": key, "value": 100.0 * value}
    if not per_task:
        return None
    values = [v["value"] for v in per_task.values()]
    return {
        "tasks": per_task,
        "average": sum(values) / len(values),
        "n_tasks": len(values),
        "missing": [t for t in OPENLLM_METRICS if t not in per_task],
        "groups": sorted(g for g in results.get("group_subtasks", {}) if g.startswith("hx_openllm")),
    }


def write_openllm_summary(results_path: str | Path) -> Path | None:
    """Write openllm_summary.json next to an lm_eval results JSON when it holds Open LLM tasks."""
    results_path = Path(results_path)
    summary = openllm_summary(read_json(results_path))
    if summary is None:
        return None
    summary["source"] = str(results_path)
    summary["provenance"] = provenance(results_file=results_path.name)
    return atomic_write_json(results_path.parent / SUMMARY_NAME, summary)


def newest_results(out: str | Path, since: float = 0.0) -> Path | None:
    """The newest results_*.json under `out` written after `since` (a time.time() value)."""
    files = [(m, p) for p, m in _results_files(Path(out)).items() if m >= since]
    return max(files)[1] if files else None


def now() -> float:
    """time.time(), named so callers read as 'results written since now()'."""
    return time.time()

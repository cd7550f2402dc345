"""Point lm_eval tasks (ours and lm_eval's own) at local data files, for offline runs.

lm_eval reads `dataset_kwargs.data_files` paths as given, so they must be absolute, and its CLI
takes one --include_path. `write_local_tasks(data_dir, out_dir)` therefore writes a folder that
lm_eval can use as that one include path:

- one stub per YAML in tasks_path() that `include`s ours by absolute path (so every hx_* task
  and group is available), and
- for each folder DATA_DIR/<task name>/ holding <split>.jsonl (or .json) files, an override
  named <task name> that includes the task's own YAML and swaps its dataset for those files.
  lm_eval lets an include path override a built-in task of the same name.

MMLU is a group of 57 subject tasks: give one folder per subject you have (mmlu_anatomy/,
...), and the `mmlu` group is overridden to the subjects present.

    harness-ext lm-eval-tasks --local-data my_data --out my_tasks
    lm_eval --model hf --model_args pretrained=... --include_path my_tasks --tasks hx_openllm
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness_ext.core.errors import ConfigError, InputError, unknown
from harness_ext.core.paths import tasks_dir

MARKER = ".harness_ext_local_tasks"
_DATA_SUFFIXES = (".jsonl", ".json")
_COMMON_SPLITS = ("train", "validation", "test", "dev")
_MMLU_TAGS = {"mmlu_stem_tasks", "mmlu_other_tasks", "mmlu_social_sciences_tasks", "mmlu_humanities_tasks"}


def _yaml_dump(obj: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)


@functools.lru_cache(maxsize=1)
def _task_index():
    """lm_eval's task index with ours included (scanning every YAML takes seconds, so kept per process)."""
    from harness_ext.core.errors import require

    require("lm_eval", package="lm-eval", extra="eval", purpose="Writing local lm_eval tasks")
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir())).task_index


def _split_files(task: str, folder: Path, cfg: dict[str, Any]) -> dict[str, str]:
    """{split: absolute file} for one task folder, checked against the splits the task reads."""
    declared = {cfg.get(k) for k in ("training_split", "validation_split", "test_split", "fewshot_split")} - {None}
    allowed = sorted(declared | set(_COMMON_SPLITS))
    files: dict[str, str] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or not f.is_file():
            continue
        if f.suffix not in _DATA_SUFFIXES:
            raise InputError(
                f"unexpected file for task '{task}' (suffix '{f.suffix}').", path=f,
                hint=f"name data files <split>{'|'.join(_DATA_SUFFIXES)} with split in {', '.join(allowed)}.",
            )
        if f.stem not in allowed:
            raise InputError(
                f"split '{f.stem}' is not one task '{task}' reads.", path=f,
                hint=f"rename it to one of: {', '.join(allowed)}.",
            )
        if f.stem in files:
            raise InputError(f"two files for split '{f.stem}' of task '{task}'.", path=folder, hint="keep one.")
        files[f.stem] = str(f.resolve())
    eval_split = cfg.get("test_split") or cfg.get("validation_split")
    if eval_split and eval_split not in files:
        raise InputError(
            f"task '{task}' evaluates on split '{eval_split}', but there is no {eval_split}.jsonl here.",
            path=folder, hint=f"add {folder / (eval_split + '.jsonl')} (files present: {', '.join(files) or 'none'}).",
        )
    return files


def _override(name: str, entry: Any, files: dict[str, str]) -> dict[str, Any]:
    cfg = entry.cfg or {}
    out: dict[str, Any] = {
        "include": str(Path(entry.yaml_path).resolve()),
        "task": name,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": files},
    }
    if cfg.get("custom_dataset") is not None:
        out["custom_dataset"] = None  # a loader function would ignore data_files
    return out


def _fresh_out_dir(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ConfigError(f"--out {out_dir} is a file.", hint="choose a folder path.")
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise ConfigError(
                f"--out {out_dir} is a non-empty folder this command did not write; refusing to replace it.",
                hint="choose a new or empty folder.",
            )


def write_local_tasks(data_dir: str | Path, out_dir: str | Path) -> Path:
    """Write an lm_eval include folder whose tasks read DATA_DIR's local files; return out_dir.

    Replaces a folder written earlier by this function; refuses other non-empty folders. The
    folder is built aside and moved into place only when complete.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    out_dir = Path(out_dir).expanduser().resolve()
    if not data_dir.is_dir():
        raise InputError("local data folder not found.", path=data_dir,
                         hint="pass a folder holding <task name>/<split>.jsonl files.")
    _fresh_out_dir(out_dir)
    folders = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError("no task folders inside.", path=data_dir,
                         hint="create <task name>/<split>.jsonl, e.g. arc_challenge/test.jsonl.")
    overrides, mmlu_subjects = _overrides_for(folders)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_include_tree(tmp, overrides, mmlu_subjects, data_dir)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _overrides_for(folders: list[Path]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """{task: override config} for the task folders of a local data folder, and the MMLU subjects among them."""
    index = _task_index()
    from lm_eval.tasks._index import Kind

    tasks = [n for n, e in index.items() if e.kind in (Kind.TASK, Kind.PY_TASK)]
    overrides: dict[str, dict[str, Any]] = {}
    mmlu_subjects: list[str] = []
    for folder in folders:
        name = folder.name
        entry = index.get(name)
        if entry is None:
            raise unknown("lm_eval task (local data folder name)", name, tasks)
        if entry.kind == Kind.GROUP:
            raise ConfigError(
                f"local data folder '{name}' names a group; data belongs to its tasks.",
                hint="use one folder per task (for MMLU: mmlu_anatomy/, mmlu_astronomy/, ...).",
            )
        if entry.kind != Kind.TASK or entry.yaml_path is None:
            raise ConfigError(f"task '{name}' is defined in Python and cannot be pointed at local files.",
                              hint="use a YAML task (ours: hx_govreport, hx_summscreenfd, hx_qmsum).")
        overrides[name] = _override(name, entry, _split_files(name, folder, entry.cfg or {}))
        if entry.tags & _MMLU_TAGS:
            mmlu_subjects.append(name)
    return overrides, mmlu_subjects


def _write_include_tree(tmp: Path, overrides: dict[str, dict[str, Any]], mmlu_subjects: list[str],
                        data_dir: Path) -> None:
    """Stubs including each of our task YAMLs (except those overridden), the overrides, and the MMLU group."""
    ours = tasks_dir().resolve()
    for yml in sorted(ours.rglob("*.yaml")):
        if "__pycache__" in yml.parts:
            continue
        target = tmp / "harness_ext" / yml.relative_to(ours)
        target.parent.mkdir(parents=True, exist_ok=True)
        if declared_name(yml) in overrides:
            continue  # the override below replaces this task
        target.write_text(_yaml_dump({"include": str(yml)}), encoding="utf-8")
    for name, cfg in overrides.items():
        (tmp / "local").mkdir(exist_ok=True)
        (tmp / "local" / f"{name}.yaml").write_text(_yaml_dump(cfg), encoding="utf-8")
    if mmlu_subjects:
        group = {
            "group": "mmlu",
            "task": sorted(mmlu_subjects),
            "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}],
            "metadata": {"version": 2, "local_data": str(data_dir)},
        }
        (tmp / "local" / "_mmlu_local.yaml").write_text(_yaml_dump(group), encoding="utf-8")
    (tmp / MARKER).write_text(f"written by harness-ext from {data_dir}\n", encoding="utf-8")


def declared_name(yml: Path) -> str:
    """The task or group name a YAML file declares (without resolving its includes)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    with open(yml, encoding="utf-8") as f:
        cfg = yaml.load(f, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(cfg, dict):
        return ""
    return str(cfg.get("group") or cfg.get("task") or "")


def convert_qmsum(src: str | Path, dst: str | Path) -> int:
    """Convert original-format QMSum (Yale-LILY, one meeting per line) to SCROLLS rows; return the row count.

    SCROLLS' QMSum pairs each query (general and specific) with the whole meeting: input is the
    query, a blank line, then the transcript as "Speaker: utterance" lines; output is the
    answer. Write the result to DIR/hx_qmsum/validation.jsonl to evaluate hx_qmsum on it.
    """
    from harness_ext.core.artifacts import atomic_write_jsonl, iter_jsonl

    src = Path(src)
    rows: list[dict[str, str]] = []
    for line, meeting in iter_jsonl(src):
        if not isinstance(meeting, dict) or not isinstance(meeting.get("meeting_transcripts"), list):
            raise InputError("not an original-format QMSum meeting (no 'meeting_transcripts' list).", path=src,
                             line=line, hint="pass QMSum's data/*/jsonl/<split>.jsonl, not the SCROLLS version.")
        transcript = "\n".join(f"{t.get('speaker', '')}: {t.get('content', '')}" for t in meeting["meeting_transcripts"])
        queries = list(meeting.get("general_query_list") or []) + list(meeting.get("specific_query_list") or [])
        for q, item in enumerate(queries):
            if not isinstance(item, dict) or not item.get("query") or not item.get("answer"):
                raise InputError(f"query {q} has no 'query'/'answer' text.", path=src, line=line)
            rid = f"qmsum-{line}-{q}"
            rows.append({"id": rid, "pid": rid, "input": f"{item['query'].strip()}\n\n{transcript}",
                         "output": item["answer"].strip()})
    if not rows:
        raise InputError("no queries found.", path=src)
    atomic_write_jsonl(dst, rows)
    return len(rows)

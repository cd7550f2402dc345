"""Evaluation suites: which prompts a model answers, read from the user's local copies.

A suite loader turns files into `SuiteItem`s (id, dataset, user turns, category); generate.py
answers them and writes the files each harness reads. Registered suites:

- alpaca_eval: the 805 AlpacaEval instructions (a JSON/JSONL file with `instruction` and
  `dataset`, or `hf:tatsu-lab/alpaca_eval:alpaca_eval@eval`).
- mt_bench / demo_mt: FastChat question files (`question_id`, `category`, `turns`).
- pairwise: the paper's five test sets (Zhao et al. 2024, Sec. 3.2), one folder holding them,
  each file read with its own field names; lima, vicuna, koala, wizardlm, sinstruct: one set each.
- demo: the bundled harness_ext/resources/demo/eval_prompts.jsonl.
Anything else that is a path is a custom prompts file (an instruction/prompt field per row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness_ext.core.artifacts import iter_rows
from harness_ext.core.errors import ConfigError, InputError, unknown
from harness_ext.core.paths import resources_dir
from harness_ext.core.registry import Registry
from harness_ext.data.hub import is_hf, iter_hf_rows


@dataclass
class SuiteItem:
    """One prompt (or multi-turn question) to answer."""

    id: str
    dataset: str
    turns: list[str]
    category: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # original identifiers to write back


@dataclass
class Suite:
    """A loaded suite: its items in input order and the files they came from."""

    name: str
    kind: Literal["single", "multi"]
    items: list[SuiteItem]
    sources: list[str]


SuiteLoader = Callable[[str | None], Suite]
SUITES: Registry[SuiteLoader] = Registry("suite")

# ---------------------------------------------------------------- reading rows


def read_rows(spec: str | Path) -> Iterator[tuple[Path | str, int, int, dict[str, Any]]]:
    """Yield (source, line or item number, 0-based row, row) from a JSON or JSONL file or
    `hf:NAME[:CONFIG][@SPLIT]` (split `eval` unless named)."""
    text = str(spec)
    if is_hf(text):
        yield from _hub_rows(text)
        return
    path = Path(text).expanduser()
    for row, line, value in iter_rows(path):
        where = line if line is not None else row + 1
        if not isinstance(value, dict):
            raise InputError(f"expected a JSON object, found {type(value).__name__}.", path=path, line=where)
        yield path, where, row, value


def _hub_rows(spec: str) -> Iterator[tuple[str, int, int, dict[str, Any]]]:
    rows = iter_hf_rows(spec, default_split="eval", purpose="loading a suite from the Hugging Face hub")
    for i, row in enumerate(rows):
        yield spec, i + 1, i, row


def _text(row: dict[str, Any], keys: tuple[str, ...], src: Any, line: int) -> str:
    for key in keys:
        if key in row:
            value = row[key]
            if not isinstance(value, str):
                raise InputError(f"field '{key}' must be a string, found {type(value).__name__}.",
                                 path=src, line=line)
            return value
    raise InputError(
        f"no prompt field: expected one of {', '.join(keys)}; the row has {', '.join(sorted(row)) or 'no fields'}.",
        path=src, line=line, hint="rename the prompt field or pick the suite that matches this file.",
    )


def _turns(row: dict[str, Any], src: Any, line: int, want: int | None = None) -> list[str]:
    turns = row.get("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise InputError(f"field 'turns' must be a non-empty list of strings, found {turns!r:.80}.",
                         path=src, line=line)
    if want is not None and len(turns) != want:
        raise InputError(f"expected {want} turns, found {len(turns)}.", path=src, line=line)
    return list(turns)


def _unique(items: list[SuiteItem], src: Any) -> list[SuiteItem]:
    seen: set[tuple[str, str]] = set()
    for item in items:
        key = (item.dataset, item.id)
        if key in seen:
            raise InputError(f"duplicate id '{item.id}' in dataset '{item.dataset}'.", path=src,
                             hint="ids must be unique so a rerun can tell answered prompts apart.")
        seen.add(key)
    return items


#: Suites that read the user's local copy of their data (--data, or generate.data.<suite> in an
#: experiment file), and what that data is.
NEEDS_DATA: dict[str, str] = {
    "mt_bench": "FastChat's fastchat/llm_judge/data/mt_bench/question.jsonl",
    "alpaca_eval": "the 805-instruction AlpacaEval file (alpaca_eval.json from tatsu-lab/alpaca_eval, "
                   "or hf:tatsu-lab/alpaca_eval:alpaca_eval@eval)",
    "pairwise": "a folder with the LIMA, Vicuna, Koala, WizardLM and Self-Instruct test files",
}


def _need(data: str | None, suite: str) -> str:
    if not data:
        raise ConfigError(f"suite '{suite}' needs --data: {NEEDS_DATA[suite]}.")
    return data


# ---------------------------------------------------------------- MT-Bench style files


def load_mt_questions(spec: str | Path, name: str = "mt_bench") -> Suite:
    """FastChat question.jsonl rows {question_id, category, turns}: multi-turn questions."""
    items = []
    for src, line, _, row in read_rows(spec):
        if "question_id" not in row:
            raise InputError("missing field 'question_id'.", path=src, line=line)
        items.append(SuiteItem(id=str(row["question_id"]), dataset=name, turns=_turns(row, src, line),
                               category=row.get("category"), fields={"question_id": row["question_id"]}))
    return Suite(name, "multi", _unique(items, spec), [str(spec)])


@SUITES.register("mt_bench", doc="MT-Bench: 80 two-turn questions -> model_answer/<model_id>.jsonl (FastChat)")
def _mt_bench(data: str | None) -> Suite:
    return load_mt_questions(_need(data, "mt_bench"))


@SUITES.register("demo_mt", doc="bundled two-turn demo questions (MT-Bench format)")
def _demo_mt(data: str | None) -> Suite:
    return load_mt_questions(data or _bundled("eval_mt.jsonl"), "demo_mt")


def _bundled(name: str) -> str:
    path = resources_dir() / "demo" / name
    if not path.is_file():
        raise InputError("bundled demo file is missing from this installation.", path=path,
                         hint="reinstall harness-ext, or pass --data PATH to your own prompts file.")
    return str(path)


# ---------------------------------------------------------------- single-turn suites


def load_prompts(spec: str | Path, dataset: str | None = None, name: str = "custom") -> Suite:
    """A custom prompts file: rows with instruction|prompt|question|text (+ optional input, id,
    dataset, category). Rows that all carry `turns` lists are read as MT-Bench questions."""
    rows = list(read_rows(spec))
    if rows and all("turns" in r for *_, r in rows):
        return load_mt_questions(spec, name)
    default_ds = dataset or Path(str(spec)).stem
    items = []
    for src, line, index, row in rows:
        text = _text(row, ("instruction", "prompt", "question", "text"), src, line)
        extra = row.get("input")
        if isinstance(extra, str) and extra.strip():
            text = f"{text}\n\n{extra}"
        ident = next((row[k] for k in ("id", "question_id", "idx") if k in row), index)
        items.append(SuiteItem(id=str(ident), dataset=str(row.get("dataset") or default_ds), turns=[text],
                               category=row.get("category")))
    return Suite(name, "single", _unique(items, spec), [str(spec)])


@SUITES.register("alpaca_eval", doc="AlpacaEval: 805 instructions -> model_outputs.json")
def _alpaca_eval(data: str | None) -> Suite:
    spec = _need(data, "alpaca_eval")
    items = []
    for src, line, index, row in read_rows(spec):
        text = _text(row, ("instruction",), src, line)
        items.append(SuiteItem(id=str(index), dataset=str(row.get("dataset") or "alpaca_eval"), turns=[text]))
    return Suite("alpaca_eval", "single", items, [spec])


@SUITES.register("demo", doc="bundled demo evaluation prompts (resources/demo/eval_prompts.jsonl)")
def _demo(data: str | None) -> Suite:
    return load_prompts(data or _bundled("eval_prompts.jsonl"), dataset="demo", name="demo")


# ---------------------------------------------------------------- the paper's five test sets

# Each set keeps its own field names; the paper answers self-instruct tasks with their one input.
# A row without an id of its own is named by its 0-based position in the file.
def _lima(row: dict[str, Any], src: Any, line: int, index: int) -> tuple[str, str]:
    conv = row.get("conversations")
    if not isinstance(conv, list) or not conv or not isinstance(conv[0], str):
        raise InputError("field 'conversations' must be a list whose first item is the prompt.", path=src, line=line)
    return str(index), conv[0]


def _vicuna(row: dict[str, Any], src: Any, line: int, index: int) -> tuple[str, str]:
    text = _turns(row, src, line)[0] if "turns" in row else _text(row, ("text",), src, line)
    return str(row.get("question_id", index)), text


def _koala(row: dict[str, Any], src: Any, line: int, index: int) -> tuple[str, str]:
    return str(row.get("id", index)), _text(row, ("prompt",), src, line)


def _wizardlm(row: dict[str, Any], src: Any, line: int, index: int) -> tuple[str, str]:
    return str(row.get("idx", index)), _text(row, ("Instruction",), src, line)


def _sinstruct(row: dict[str, Any], src: Any, line: int, index: int) -> tuple[str, str]:
    text = _text(row, ("instruction",), src, line)
    instances = row.get("instances") or [{}]
    extra = instances[0].get("input", "") if isinstance(instances[0], dict) else ""
    return str(row.get("id", index)), f"{text}\n\n{extra}" if extra.strip() else text


# name -> (row parser, file names tried inside a --data folder, expected row count)
PAIRWISE_SETS: dict[str, tuple[Callable[..., tuple[str, str]], tuple[str, ...], int]] = {
    "lima": (_lima, ("lima_test/lima_test.jsonl", "lima_test.jsonl"), 300),
    "vicuna": (_vicuna, ("long_is_more_testsets/vicuna_test_set.jsonl", "vicuna_bench/question.jsonl",
                         "vicuna_test_set.jsonl", "question.jsonl"), 80),
    "koala": (_koala, ("koala_test_set/koala_test_set.jsonl", "koala_test_set.jsonl"), 180),
    "wizardlm": (_wizardlm, ("long_is_more_testsets/wizardlm_test_set.jsonl", "wizardlm_test_set.jsonl",
                             "wizardlm_testset/WizardLM_testset.jsonl", "WizardLM_testset.jsonl"), 218),
    "sinstruct": (_sinstruct, ("self_instruct_user_oriented/user_oriented_instructions.jsonl",
                               "sinstruct_test_set.jsonl", "user_oriented_instructions.jsonl"), 252),
}


def _set_file(name: str, data: str) -> Path:
    path = Path(data).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise InputError("not found.", path=path, hint=f"point --data at the {name} file or a folder holding it.")
    for rel in PAIRWISE_SETS[name][1]:
        if (path / rel).is_file():
            return path / rel
    raise InputError(f"no {name} test file in this folder (looked for {', '.join(PAIRWISE_SETS[name][1])}).",
                     path=path, hint="pass the folder that holds the five test sets, or the file itself.")


def load_pairwise_set(name: str, spec: str | Path) -> list[SuiteItem]:
    parse = PAIRWISE_SETS[name][0]
    items = []
    for src, line, index, row in read_rows(spec):
        ident, text = parse(row, src, line, index)
        items.append(SuiteItem(id=ident, dataset=name, turns=[text]))
    return _unique(items, spec)


@SUITES.register("pairwise", doc="the paper's five pairwise test sets (1,030 prompts); --data FOLDER")
def _pairwise(data: str | None) -> Suite:
    folder = _need(data, "pairwise")
    if not Path(folder).expanduser().is_dir():
        raise InputError("the pairwise suite needs the folder holding the five test sets.", path=folder,
                         hint=f"pass a folder, or answer one set with --suite {'|'.join(PAIRWISE_SETS)}.")
    items: list[SuiteItem] = []
    sources = []
    for name in PAIRWISE_SETS:
        path = _set_file(name, folder)
        items.extend(load_pairwise_set(name, path))
        sources.append(str(path))
    return Suite("pairwise", "single", items, sources)


def _one_set(name: str) -> SuiteLoader:
    def load(data: str | None) -> Suite:
        path = _set_file(name, _need(data, name))
        return Suite(name, "single", load_pairwise_set(name, path), [str(path)])

    return load


for _name, (_, _, _count) in PAIRWISE_SETS.items():
    NEEDS_DATA[_name] = f"the {_name} test file or a folder holding it"
    SUITES.register(_name, doc=f"one pairwise test set ({_count} prompts in the paper's copy)")(_one_set(_name))


def suite_data_problems(suite: str, data: str) -> list[tuple[InputError, Path, bool]]:
    """What loading registered `suite` from local `data` would fail on, as far as it shows without
    reading the files: (error, the missing path, whether it is a folder) for a missing file or
    folder, or for each test set missing from the pairwise folder. An hf: name is not looked up."""
    if is_hf(data):
        return []
    path = Path(data).expanduser()
    if suite == "pairwise" and not path.is_dir():
        return [(InputError("not found (the pairwise suite reads a folder holding the five test sets).", path=data,
                            hint=f"point it at {NEEDS_DATA['pairwise']}."), path, True)]
    sets = list(PAIRWISE_SETS) if suite == "pairwise" else [suite] if suite in PAIRWISE_SETS else []
    if not sets:
        if path.exists():
            return []
        return [(InputError("not found.", path=data, hint=f"point it at {NEEDS_DATA.get(suite, 'the suite data')}."),
                 path, False)]
    problems = []
    for name in sets:
        try:
            _set_file(name, data)
        except InputError as exc:
            problems.append((exc, path / PAIRWISE_SETS[name][1][0] if path.is_dir() else path, False))
    return problems


def load_suite(suite: str, data: str | Path | None = None) -> Suite:
    """Load a registered suite by name, or a custom prompts file given as `suite`."""
    data_s = str(data) if data is not None else None
    if suite in SUITES:
        loaded = SUITES.get(suite)(data_s)
    elif Path(suite).expanduser().is_file():
        loaded = load_prompts(suite)
    elif any(sep in suite for sep in ("/", "\\", ".json")):
        raise InputError("prompts file not found.", path=suite, hint="check the --suite path.")
    else:
        raise unknown("suite", suite, SUITES.names())
    if not loaded.items:
        src = loaded.sources[0] if len(loaded.sources) == 1 else None
        empty = src is not None and Path(src).expanduser().is_file() and Path(src).expanduser().stat().st_size == 0
        raise InputError("file is empty." if empty else f"suite '{loaded.name}' has no prompts.", path=src,
                         hint="point --suite (or --data) at a file with at least one prompt.")
    return loaded

"""Turn results files from lm_eval, alpaca_eval, MT-Bench and our pairwise judge into metrics.

Each importer reads one file and returns {model name: [Metric, ...]}; `add_results` folds those
into a board as entries. IMPORTERS, below, is the one registry of formats (this module's importers
and those of pairwise_import.py, which, like this module, builds on sources.py only). Every metric records the file's sha256, the judge where there is one,
and the date, so a number on a board can always be traced back to the file it came from.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import iter_jsonl, read_json, sha256_file
from harness_ext.core.errors import ConfigError, InputError
from harness_ext.core.registry import Registry
from harness_ext.leaderboard.model import Metric, today
from harness_ext.leaderboard.pairwise_import import import_pairwise, import_study
from harness_ext.leaderboard.sources import Importer, Source, finite_number

# Open LLM Leaderboard tasks -> (lm_eval metric, filter) the leaderboard reports (v1 protocol).
OPEN_LLM_TASKS = {
    "arc_challenge": ("acc_norm", "none"),
    "hellaswag": ("acc_norm", "none"),
    "mmlu": ("acc", "none"),
    "truthfulqa_mc2": ("acc", "none"),
    "winogrande": ("acc", "none"),
    "gsm8k": ("exact_match", "strict-match"),
}

# MT-Bench's 80 questions come in blocks of 10 per category (question ids 81..160).
MT_BENCH_CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")


def mt_bench_category(question_id: int) -> str | None:
    """Category of a standard MT-Bench question id, None outside 81..160."""
    if 81 <= question_id <= 160:
        return MT_BENCH_CATEGORIES[(question_id - 81) // 10]
    return None


# ---------------------------------------------------------------- lm_eval


def import_lm_eval(src: Source) -> dict[str, list[Metric]]:
    """lm_eval 0.4.x results: {"results": {task: {"acc,none": x, "acc_stderr,none": s}}, "config": ...}."""
    doc = read_json(src.path)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise InputError("not an lm_eval results file: no top-level 'results' object.", path=src.path)
    model = _lm_eval_model_name(doc)
    n_samples = doc.get("n-samples") or {}
    prov = src.prov("lm_eval")
    metrics: list[Metric] = []
    open_llm: dict[str, float] = {}
    for task, values in sorted(doc["results"].items()):
        if not isinstance(values, dict):
            raise InputError(f"results.{task} should be an object of 'metric,filter' keys, got {values!r}.",
                             path=src.path)
        n = (n_samples.get(task) or {}).get("effective") if isinstance(n_samples.get(task), dict) else None
        for key, value in sorted(values.items()):
            if "," not in key or "_stderr," in key or finite_number(value) is None:
                continue  # 'alias', stderr companions and 'N/A' placeholders are not metrics
            metric_name, filt = key.split(",", 1)
            stderr = finite_number(values.get(f"{metric_name}_stderr,{filt}"))
            suite = "rouge" if "rouge" in metric_name else "ifs" if metric_name.startswith("ifs") else "lm_eval"
            metrics.append(Metric(suite=suite, name=f"{task}/{key}", value=float(value), unit="fraction",
                                  stderr=stderr, n=n if isinstance(n, int) else None, provenance=prov))
            if OPEN_LLM_TASKS.get(task) == (metric_name, filt):
                open_llm[task] = 100.0 * float(value)
                metrics.append(Metric(suite="open_llm", name=task, value=100.0 * float(value), unit="%",
                                      stderr=100.0 * stderr if stderr is not None else None, provenance=prov))
    if len(open_llm) >= 2:
        metrics.append(Metric(suite="open_llm", name="average", value=statistics.fmean(open_llm.values()),
                              unit="%", n=len(open_llm), provenance=prov))
    if not metrics:
        raise InputError("lm_eval results hold no numeric 'metric,filter' values.", path=src.path)
    return {model: metrics}


def _lm_eval_model_name(doc: dict[str, Any]) -> str:
    if isinstance(doc.get("model_name"), str) and doc["model_name"]:
        return doc["model_name"]
    args = (doc.get("config") or {}).get("model_args")
    if isinstance(args, dict):
        args = ",".join(f"{k}={v}" for k, v in args.items())
    if isinstance(args, str):
        for part in args.split(","):
            key, _, value = part.partition("=")
            if key.strip() in ("pretrained", "model", "path") and value:
                return value.strip()
    return str((doc.get("config") or {}).get("model") or "unknown-model")


# ---------------------------------------------------------------- alpaca_eval


ALPACA_EVAL_COLUMNS = {
    "win_rate": ("win_rate", "%"),
    "length_controlled_winrate": ("lc_win_rate", "%"),
    "discrete_win_rate": ("discrete_win_rate", "%"),
    "avg_length": ("avg_length", "characters"),
}


def import_alpaca_eval_csv(src: Source) -> dict[str, list[Metric]]:
    """alpaca_eval leaderboard CSV: unnamed first column = model; win_rate, standard_error, ..."""
    with open(src.path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows or "win_rate" not in rows[0]:
        raise InputError(
            f"not an alpaca_eval leaderboard CSV: header {rows[0] if rows else []} has no 'win_rate' column.",
            path=src.path, hint="pass the leaderboard.csv that `alpaca_eval evaluate` writes.",
        )
    header = rows[0]
    judge = src.path.parent.name if src.path.name == "leaderboard.csv" else src.path.stem.replace("_leaderboard", "")
    prov = src.prov("alpaca_eval_csv", judge=judge)
    out: dict[str, list[Metric]] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"row has {len(row)} cells, the header has {len(header)}.", path=src.path, line=lineno)
        rec = dict(zip(header, row, strict=True))
        model = row[0].strip()
        n_total = _int_or_none(rec.get("n_total"))
        metrics = []
        for column, (name, unit) in ALPACA_EVAL_COLUMNS.items():
            cell = (rec.get(column) or "").strip()
            if not cell:
                continue
            try:
                value = float(cell)
            except ValueError:
                raise InputError(f"column {column!r} = {cell!r} is not a number.", path=src.path, line=lineno) from None
            err_col = {"win_rate": "standard_error", "lc_win_rate": "lc_standard_error"}.get(name)
            stderr = _float_or_none(rec.get(err_col)) if err_col else None
            metrics.append(Metric(suite="alpaca_eval", name=name, value=value, unit=unit, stderr=stderr,
                                  n=n_total if unit == "%" else None, provenance=prov))
        out[model] = metrics
    return out


def _float_or_none(cell: str | None) -> float | None:
    try:
        return float(cell) if cell not in (None, "") else None
    except ValueError:
        return None


def _int_or_none(cell: str | None) -> int | None:
    value = _float_or_none(cell)
    return int(value) if value is not None else None


def import_alpaca_eval_annotations(src: Source) -> dict[str, list[Metric]]:
    """annotations.json: [{instruction, output_1, generator_1, output_2, generator_2, annotator, preference}].

    preference 1 = output_1 (the baseline) wins, 2 = output_2 (the model) wins, 1.5 (or 0, alpaca_eval's
    old tie) = tie; a null or out-of-range preference is a failed annotation: counted in n_failed, never
    scored as a tie. win_rate and avg_length are the numbers `judge alpaca-winrate` and alpaca_eval give:
    avg_length is int(mean) over every model output, failed annotations included.
    """
    from harness_ext.judge.lc_winrate import preference_value

    rows = read_json(src.path)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError("not an alpaca_eval annotations file: expected a JSON list of objects.", path=src.path)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for i, row in enumerate(rows):
        missing = [k for k in ("generator_1", "generator_2", "output_2", "preference") if k not in row]
        if missing:
            raise InputError(f"annotation {i} lacks {missing}.", path=src.path,
                             hint="pass the annotations.json that `alpaca_eval evaluate` writes.")
        groups[(str(row["generator_2"]), str(row["generator_1"]), str(row.get("annotator") or ""))].append(row)
    out: dict[str, list[Metric]] = {}
    for (model, baseline, annotator), group in groups.items():
        prefs = [v for v in (preference_value(r["preference"]) for r in group) if v is not None]
        if not prefs:
            raise InputError(f"no usable preference for model {model!r} (all null).", path=src.path)
        prov = src.prov("alpaca_eval_annotations", judge=annotator or None)
        scores = [p - 1.0 for p in prefs]
        stderr = statistics.stdev(scores) / math.sqrt(len(scores)) * 100 if len(scores) > 1 else None
        lengths = [len(str(r["output_2"])) for r in group]
        metrics = [
            Metric(suite="alpaca_eval", name="win_rate", value=100 * statistics.fmean(scores), unit="%",
                   baseline=baseline, stderr=stderr, n=len(scores), provenance=prov),
            Metric(suite="alpaca_eval", name="avg_length", value=float(int(statistics.fmean(lengths))), unit="characters",
                   baseline=baseline, n=len(lengths), provenance=prov),
            Metric(suite="alpaca_eval", name="n_failed", value=len(group) - len(prefs), unit="count",
                   baseline=baseline, provenance=prov),
        ]
        out.setdefault(model, []).extend(metrics)
    return out


# ---------------------------------------------------------------- MT-Bench


def import_mt_bench(src: Source) -> dict[str, list[Metric]]:
    """Rows {question_id, model, judge: [judge model, prompt name], score, turn}; `error` rows or score -1
    are dropped. Rows group by model and judge MODEL: one judge uses several prompts in one file
    (FastChat: single-v1 for turn 1, single-v1-multi-turn for turn 2, the -math- ones with reference
    answers for math/reasoning/coding), and the scores of all of them make up one MT-Bench result."""
    scores: dict[tuple[str, str], list[tuple[int, int, float]]] = defaultdict(list)
    dropped: dict[tuple[str, str], int] = defaultdict(int)
    prompts: dict[tuple[str, str], set[str]] = defaultdict(set)
    for lineno, row in iter_jsonl(src.path):
        missing = [k for k in ("question_id", "model", "turn") if k not in row]
        if not isinstance(row, dict) or missing:
            raise InputError(f"MT-Bench judgment lacks {missing or 'an object'}.", path=src.path, line=lineno,
                             hint="expected FastChat's model_judgment/*_single.jsonl rows.")
        judge = row.get("judge")
        judge_name = str(judge[0]) if isinstance(judge, list) and judge else str(judge or "")
        key = (str(row["model"]), judge_name)
        if isinstance(judge, list) and len(judge) > 1:
            prompts[key].add(str(judge[1]))
        score = finite_number(row.get("score"))
        if row.get("error") or score is None or score < 0:  # FastChat writes -1 when it cannot parse
            dropped[key] += 1
            continue
        scores[key].append((int(row["question_id"]), int(row["turn"]), score))
    if not scores:
        raise InputError("no scored MT-Bench judgments (every row has an error or score -1).", path=src.path)
    out: dict[str, list[Metric]] = {}
    for (model, judge), rows in scores.items():
        names = sorted(prompts[(model, judge)])
        label = f"{judge} ({', '.join(names)})" if judge and names else (judge or None)
        prov = src.prov("mt_bench", judge=label)
        metrics = []
        for turn in (1, 2):
            vals = [s for _, t, s in rows if t == turn]
            if vals:
                metrics.append(Metric(suite="mt_bench", name=f"turn_{turn}", value=statistics.fmean(vals),
                                      unit="score", n=len(vals), provenance=prov))
        metrics.append(Metric(suite="mt_bench", name="average", value=statistics.fmean(s for *_, s in rows),
                              unit="score", n=len(rows), provenance=prov))
        by_cat: dict[str, list[float]] = defaultdict(list)
        for qid, _, s in rows:
            cat = mt_bench_category(qid)
            if cat:
                by_cat[cat].append(s)
        for cat, vals in sorted(by_cat.items()):
            metrics.append(Metric(suite="mt_bench", name="average", test_set=cat, value=statistics.fmean(vals),
                                  unit="score", n=len(vals), provenance=prov))
        metrics.append(Metric(suite="mt_bench", name="n_failed", value=dropped[(model, judge)], unit="count",
                              provenance=prov))
        out.setdefault(model, []).extend(metrics)
    return out


def import_sweep(src: Source) -> dict[str, list[Metric]]:
    """The last checkpoint's IFS and ObjecQA, the IFS plateau step and ObjecQA's move after it."""
    doc = read_json(src.path)
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows or not isinstance(doc.get("plateau"), dict):
        raise InputError("not a sweep.json: no 'rows' list and 'plateau' object.", path=src.path,
                         hint="pass the sweep.json written by `harness-ext sweep`.")
    prov = src.prov("sweep", judge=doc.get("judge"))
    last, plateau = rows[-1], doc["plateau"]
    metrics = [Metric("ifs", "ifs", float(last["ifs"]), prov, unit="fraction", epoch=None),
               Metric("objecqa", "objecqa", float(last["objecqa"]), prov, unit="fraction", n=last.get("objecqa_judged"))]
    named = {"ifs_plateau_step": "step", "objecqa_at_plateau": "fraction", "objecqa_moved_after": "fraction"}
    key = {"ifs_plateau_step": "plateau_step"}
    for name, unit in named.items():
        value = finite_number(plateau.get(key.get(name, name)))
        if value is not None:
            metrics.append(Metric("objecqa" if "objecqa" in name else "ifs", name, value, prov, unit=unit))
    return {Path(str(doc.get("run") or src.path.parent)).name: metrics}


# ---------------------------------------------------------------- the registry


IMPORTERS: Registry[Importer] = Registry("results format")
"""Every results format `add_results` understands, by the name `--kind` takes. The table below is the
one place the built-in importers are named; another importer registers itself on this registry with
`@IMPORTERS.register("name", "one-line description")` on a function (Source) -> {model: [Metric]}."""

for _name, _importer, _doc in (
    ("lm_eval", import_lm_eval, "lm_eval results JSON (results_*.json from `lm_eval --output_path`)"),
    ("alpaca_eval_csv", import_alpaca_eval_csv, "alpaca_eval leaderboard.csv (one row per model)"),
    ("alpaca_eval_annotations", import_alpaca_eval_annotations,
     "alpaca_eval annotations.json (per-instruction preferences)"),
    ("mt_bench", import_mt_bench, "FastChat MT-Bench single-grading judgments (model_judgment/*_single.jsonl)"),
    ("pairwise", import_pairwise, "harness-ext pairwise summary.json (per-test-set win/tie/loss with CIs)"),
    ("study", import_study, "`harness-ext study results --json` output (human win/tie/loss with CIs)"),
    ("sweep", import_sweep, "IFS/ObjecQA checkpoint sweep (sweep.json from `harness-ext sweep`)"),
):
    IMPORTERS.register(_name, _doc)(_importer)


# ---------------------------------------------------------------- detection


def detect_kind(path: Path) -> str:
    """Guess the results format from the file's content; error naming the formats understood."""
    expected = "; ".join(f"{name}: {IMPORTERS.doc(name)}" for name in IMPORTERS.names())
    if path.suffix.lower() == ".csv":
        return "alpaca_eval_csv"
    if path.suffix.lower() == ".jsonl":
        for _, row in iter_jsonl(path):
            if isinstance(row, dict) and {"question_id", "model", "turn"} <= row.keys():
                return "mt_bench"
            break
    else:
        doc = read_json(path)
        if isinstance(doc, dict) and isinstance(doc.get("results"), dict) and ("versions" in doc or "configs" in doc):
            return "lm_eval"
        if isinstance(doc, dict) and any(k in doc for k in ("by_dataset", "test_sets", "per_test_set")):
            return "pairwise"
        if isinstance(doc, dict) and isinstance(doc.get("comparisons"), list):
            return "study"
        if isinstance(doc, dict) and isinstance(doc.get("rows"), list) and isinstance(doc.get("plateau"), dict):
            return "sweep"
        if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "preference" in doc[0]:
            return "alpaca_eval_annotations"
    raise InputError(f"unknown results format. Expected one of: {expected}.", path=path,
                     hint="pass --kind to name the format.")


def read_results(path: str | Path, kind: str = "auto", *, date: str | None = None) -> dict[str, list[Metric]]:
    """Import one results file: {model: metrics}. `kind` is a format name or 'auto'."""
    path = Path(path)
    if not path.is_file():
        raise InputError("results file not found.", path=path)
    if kind == "auto":
        kind = detect_kind(path)
    elif kind not in IMPORTERS:
        raise ConfigError(f"unknown results kind {kind!r}.", hint=f"use auto or one of {', '.join(IMPORTERS.names())}.")
    src = Source(path=path, sha256=sha256_file(path), date=date or today())
    return IMPORTERS.get(kind)(src)


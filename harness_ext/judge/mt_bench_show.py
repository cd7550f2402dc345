"""MT-Bench results from a model_judgment JSONL: per model, per turn and per category.

Reads our files and FastChat's own (its -1 score and "error" winner sentinels are read as parse
failures). Single mode: mean 1-10 score for turn 1, turn 2 and both, per model and category.
Pairwise: wins, losses and ties against the baseline with FastChat's rule (a pair whose two
orders disagree is a tie), win rate and win rate with ties counted as half.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness_ext.core.artifacts import iter_jsonl
from harness_ext.core.errors import InputError
from harness_ext.judge.mt_bench_files import load_questions


def load_judgments(path: str | Path, question_file: str | Path | None = None) -> list[dict[str, Any]]:
    """Judgment records, each with a `category` (from the record or the question file)."""
    path = Path(path)
    cats = {q.question_id: q.category for q in load_questions(question_file)} if question_file else {}
    records = []
    for line, rec in iter_jsonl(path):
        if not isinstance(rec, dict) or "question_id" not in rec or not ({"score", "g1_winner"} & set(rec)):
            raise InputError("not an MT-Bench judgment record (needs question_id and score or g1_winner).",
                             path=path, line=line, hint="pass a model_judgment/*_single.jsonl or *_pair.jsonl file.")
        if not rec.get("category"):
            rec["category"] = cats.get(rec["question_id"], "unknown")
        records.append(rec)
    if not records:
        raise InputError("no judgments in the file.", path=path)
    return records


def _valid_score(rec: dict[str, Any]) -> float | None:
    s = rec.get("score")
    if isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0 or rec.get("error"):
        return None  # null, an explicit error, or FastChat's -1
    return float(s)


def key_order(key: Any) -> tuple[Any, ...]:
    """A total order over record keys that mix int and str ids (ints first, numerically).

    >>> sorted([(10, 1), ("a", 1), (9, 2)], key=key_order)
    [(9, 2), (10, 1), ('a', 1)]
    """
    parts = key if isinstance(key, tuple) else (key,)
    return tuple((0, p, "") if isinstance(p, (int, float)) and not isinstance(p, bool) else (1, 0, str(p))
                 for p in parts)


def _mean(xs: list[float]) -> float | None:
    return round(statistics.fmean(xs), 4) if xs else None


def summarize_single(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean score per model for turn 1, turn 2, both; per category; and parse-failure counts."""
    by_model: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_question: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    errors: dict[str, int] = defaultdict(int)
    for rec in records:
        s = _valid_score(rec)
        if s is None:
            errors[rec["model"]] += 1
            continue
        by_question[rec["model"]][rec["question_id"]].append(s)
        slot = by_model[rec["model"]]
        slot[f"turn{rec['turn']}"].append(s)
        slot["all"].append(s)
        slot[f"cat:{rec['category']}"].append(s)
    models = {}
    for m in sorted(set(by_model) | set(errors)):
        slot = by_model.get(m, {})
        models[m] = {
            "turn1": _mean(slot.get("turn1", [])), "turn2": _mean(slot.get("turn2", [])),
            "average": _mean(slot.get("all", [])), "average_ci95": _question_ci(by_question.get(m, {})),
            "judged": len(slot.get("all", [])), "errors": errors.get(m, 0),
            "categories": {k[4:]: _mean(v) for k, v in sorted(slot.items()) if k.startswith("cat:")},
        }
    return {"mode": "single", "models": models}


def _question_ci(scores: dict[Any, list[float]]) -> list[float] | None:
    """Bootstrap 95% CI of the average score, resampling questions (a question's two turns
    are correlated, so they are drawn together)."""
    if not scores:
        return None
    from harness_ext.judge.scoring import bootstrap_ci

    rows = [sorted(scores[k]) for k in sorted(scores, key=key_order)]  # independent of record order
    width = max(len(v) for v in rows)
    table = np.full((len(rows), width), np.nan)
    for i, v in enumerate(rows):
        table[i, : len(v)] = v
    lo, hi = bootstrap_ci(table, lambda x: np.nanmean(x.reshape(len(x), -1), axis=1))
    return [round(lo, 4), round(hi, 4)]


def _rate_ci(points: dict[Any, float]) -> list[float] | None:
    """Bootstrap 95% CI of the adjusted win rate, resampling judged matches (keyed by question,
    opponent and turn, and drawn in key order, so the CI does not depend on the file's order)."""
    if not points:
        return None
    from harness_ext.judge.scoring import bootstrap_ci

    values = np.array([points[k] for k in sorted(points, key=key_order)])
    lo, hi = bootstrap_ci(values, lambda x: x.mean(axis=1))
    return [round(lo, 4), round(hi, 4)]


def _outcome(rec: dict[str, Any]) -> str | None:
    g1, g2 = rec.get("g1_winner"), rec.get("g2_winner")
    if g1 in (None, "error") or g2 in (None, "error"):
        return None
    if g1 == "tie" or g1 != g2:
        return "tie"
    return g1


def summarize_pairwise(records: list[dict[str, Any]], baseline_model: str | None = None) -> dict[str, Any]:
    """Win / loss / tie per model against the baseline, overall, per turn and per category."""
    if baseline_model is None:
        seconds = {r["model_2"] for r in records}
        baseline_model = seconds.pop() if len(seconds) == 1 else None
    tally: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    errors: dict[str, int] = defaultdict(int)
    points: dict[str, dict[Any, float]] = defaultdict(dict)  # 1 / 0.5 / 0 per judged match, for the CI
    for rec in records:
        res = _outcome(rec)
        pair = (rec["model_1"], rec["model_2"])
        if res is None:
            for m in pair:
                errors[m] += 1
            continue
        inconsistent = rec["g1_winner"] != rec["g2_winner"]
        for m in pair:
            mine = "tie" if res == "tie" else ("win" if res == ("model_1" if m == pair[0] else "model_2") else "loss")
            key: tuple[Any, ...] = (rec["question_id"], *pair, rec["turn"])
            while key in points[m]:  # a repeated match (FastChat files may hold one) still counts
                key = (*key, "again")
            points[m][key] = {"win": 1.0, "tie": 0.5, "loss": 0.0}[mine]
            for group in ("all", f"turn{rec['turn']}", f"cat:{rec['category']}"):
                tally[m][group][mine] += 1
                tally[m][group]["inconsistent"] += int(inconsistent)

    def rates(c: dict[str, int]) -> dict[str, Any]:
        n = c["win"] + c["loss"] + c["tie"]
        return {"win": c["win"], "loss": c["loss"], "tie": c["tie"], "inconsistent": c["inconsistent"],
                "win_rate": round(c["win"] / n, 4) if n else None,
                "loss_rate": round(c["loss"] / n, 4) if n else None,
                "win_rate_adjusted": round((c["win"] + 0.5 * c["tie"]) / n, 4) if n else None}

    models = {}
    for m in sorted(set(tally) | set(errors)):
        if m == baseline_model:
            continue
        groups = tally.get(m, {})
        models[m] = {**rates(groups.get("all", defaultdict(int))), "win_rate_adjusted_ci95": _rate_ci(points[m]),
                     "errors": errors.get(m, 0),
                     "turn1": rates(groups.get("turn1", defaultdict(int))),
                     "turn2": rates(groups.get("turn2", defaultdict(int))),
                     "categories": {k[4:]: rates(v) for k, v in sorted(groups.items()) if k.startswith("cat:")}}
    return {"mode": "pairwise", "baseline_model": baseline_model, "models": models}


def summarize(records: list[dict[str, Any]], baseline_model: str | None = None) -> dict[str, Any]:
    """Single or pairwise summary, chosen by the records' fields."""
    if records and "g1_winner" in records[0]:
        return summarize_pairwise(records, baseline_model)
    return summarize_single(records)


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


def _ci(ci: list[float] | None) -> str:
    return "-" if not ci else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in cells)


def render(summary: dict[str, Any]) -> str:
    """The summary as text tables, best model first (like FastChat's show_result)."""
    models = summary["models"]
    parts = []
    if summary["mode"] == "single":
        order = sorted(models, key=lambda m: -(models[m]["average"] or 0))
        for title, key in (("First turn", "turn1"), ("Second turn", "turn2")):
            rows = sorted(([m, models[m][key]] for m in order), key=lambda r: -(r[1] or 0))
            parts.append(f"########## {title} ##########\n" + _table(["model", "score"], rows))
        parts.append("########## Average ##########\n" + _table(
            ["model", "score", "95% CI (questions resampled)"],
            [[m, models[m]["average"], _ci(models[m]["average_ci95"])] for m in order]))
        cats = sorted({c for m in models.values() for c in m["categories"]})
        parts.append("########## By category ##########\n"
                     + _table(["model", *cats], [[m, *(models[m]["categories"].get(c) for c in cats)] for m in order]))
        parts.append("Parse failures (excluded): " + ", ".join(f"{m}={models[m]['errors']}" for m in order))
    else:
        order = sorted(models, key=lambda m: -(models[m]["win_rate_adjusted"] or 0))
        cols = ["win", "loss", "tie", "inconsistent", "win_rate", "loss_rate", "win_rate_adjusted", "errors"]
        parts.append(f"########## Against {summary['baseline_model']} ##########\n"
                     + _table(["model", *cols, "adjusted 95% CI"],
                              [[m, *(models[m][c] for c in cols), _ci(models[m]["win_rate_adjusted_ci95"])]
                               for m in order]))
        for turn in ("turn1", "turn2"):
            parts.append(f"########## {turn} ##########\n" + _table(
                ["model", "win", "loss", "tie", "win_rate_adjusted"],
                [[m, *(models[m][turn][c] for c in ("win", "loss", "tie", "win_rate_adjusted"))] for m in order]))
        cats = sorted({c for m in models.values() for c in m["categories"]})
        parts.append("########## Adjusted win rate by category ##########\n" + _table(
            ["model", *cats], [[m, *(models[m]["categories"].get(c, {}).get("win_rate_adjusted") for c in cats)]
                               for m in order]))
    return "\n\n".join(parts)

"""Importer for pairwise (head-to-head) judge summaries: win / tie / loss per test set with CIs.

Reads the summary.json that `harness-ext judge pairwise` writes:

    {"inputs": {"a": {"generator": MODEL, ...}, "b": {"generator": BASELINE, ...}},
     "judge": {"model": JUDGE, "prompt_sha256": HASH, ...},
     "by_dataset": {NAME: {"n", "counts": {"win", "tie", "loss"}, "win", "tie", "loss", "win_rate",
                           "ci95": {"win": [lo, hi], ..., "win_rate": [lo, hi]}, "bootstrap": {"level"}}},
     "overall": {same fields}}

and the simpler hand-written form {"model", "baseline", "judge", "prompt_hash",
"test_sets": {NAME: {"win", "tie", "loss", "ci": {...}}}} with counts or rates. Stored as percents.
"""

from __future__ import annotations

import math
from typing import Any

from harness_ext.core.artifacts import read_json
from harness_ext.core.errors import InputError
from harness_ext.leaderboard.model import Metric, Provenance
from harness_ext.leaderboard.sources import Source, finite_number, number_pair

OUTCOMES = ("win", "tie", "loss")


def _side(doc: dict[str, Any], key: str, side: str) -> Any:
    if isinstance(doc.get(key), str) and doc[key]:
        return doc[key]
    inputs = doc.get("inputs") if isinstance(doc.get("inputs"), dict) else {}
    info = inputs.get(side) if isinstance(inputs.get(side), dict) else {}
    return info.get("generator") or info.get("model") or None


def import_pairwise(src: Source) -> dict[str, list[Metric]]:
    """Summary JSON -> pairwise win/tie/loss (and win_rate) metrics per test set and overall."""
    doc = read_json(src.path)
    if not isinstance(doc, dict):
        raise InputError("not a pairwise summary: expected a JSON object.", path=src.path)
    sets = next((doc[k] for k in ("by_dataset", "test_sets", "per_test_set") if isinstance(doc.get(k), dict)), None)
    if not sets:
        raise InputError("pairwise summary has no 'by_dataset' (or 'test_sets') object.", path=src.path,
                         hint="pass the summary.json written by `harness-ext judge pairwise`.")
    model, baseline = _side(doc, "model", "a"), _side(doc, "baseline", "b")
    for field, value, where in (("model", model, "inputs.a.generator"), ("baseline", baseline, "inputs.b.generator")):
        if not value:
            raise InputError(f"pairwise summary names no {field} (looked at '{field}' and '{where}').", path=src.path,
                             hint=f"add \"{field}\": NAME to the summary, or pass --name when adding.")
    judge, prompt_hash = doc.get("judge"), doc.get("prompt_hash")
    if isinstance(judge, dict):
        prompt_hash = prompt_hash or judge.get("prompt_sha256")
        judge = judge.get("model") or judge.get("name")
    prov = Provenance(date=src.date, source=str(src.path), sha256=src.sha256, importer="pairwise",
                      judge=str(judge) if judge else None, prompt_hash=prompt_hash)
    blocks = dict(sets)
    if isinstance(doc.get("overall"), dict):
        blocks["overall"] = doc["overall"]
    metrics: list[Metric] = []
    for name, block in blocks.items():
        metrics += _block(src, str(name), block, str(baseline), prov, doc.get("ci_level"))
    if not metrics:
        raise InputError("pairwise summary holds no scored test set (every n is 0).", path=src.path)
    return {str(model): metrics}


def _block(src: Source, name: str, block: Any, baseline: str, prov: Provenance, ci_level: Any) -> list[Metric]:
    if not isinstance(block, dict):
        raise InputError(f"test set {name!r} should be an object, got {block!r}.", path=src.path)
    if block.get("n") == 0:
        return []  # a test set with no scored items has no rates (null in the summary)
    counts = block.get("counts") if isinstance(block.get("counts"), dict) else block
    raw = {}
    for outcome in OUTCOMES:
        value = next((counts[k] for k in (outcome, outcome + "s", outcome + "_rate") if k in counts), None)
        if finite_number(value) is None:
            raise InputError(f"test set {name!r}: {outcome} is missing or not a number (got {value!r}).",
                             path=src.path, hint="give win, tie and loss as counts or rates.")
        raw[outcome] = float(value)
    total = sum(raw.values())
    is_counts = counts is not block or (all(v.is_integer() for v in raw.values()) and total > 1.5
                                        and not math.isclose(total, 100.0))
    if total <= 0:
        raise InputError(f"test set {name!r}: win + tie + loss = {total}, expected > 0.", path=src.path)
    if is_counts:
        scale = 100.0 / total
    elif math.isclose(total, 1.0, abs_tol=1e-6):
        scale = 100.0
    elif math.isclose(total, 100.0, abs_tol=1e-3):
        scale = 1.0
    else:
        raise InputError(f"test set {name!r}: rates sum to {total}, expected 1 or 100.", path=src.path)
    cis = block.get("ci95") if isinstance(block.get("ci95"), dict) else block.get("ci")
    cis = cis if isinstance(cis, dict) else {}
    bounds = [b for c in cis.values() if number_pair(c) for b in number_pair(c)]
    ci_scale = 100.0 if bounds and max(bounds) <= 1.0 else 1.0  # CIs in [0, 1] are fractions
    boot = block.get("bootstrap") if isinstance(block.get("bootstrap"), dict) else {}
    level = finite_number(block.get("ci_level", boot.get("level", ci_level)))
    if level is None and "ci95" in block:
        level = 0.95
    n = block.get("n") if isinstance(block.get("n"), int) else (int(total) if is_counts else None)
    values = {o: raw[o] * scale for o in OUTCOMES}
    wr = finite_number(block.get("win_rate")) if counts is not block else None
    if wr is not None:
        values["win_rate"] = wr * 100.0 if wr <= 1.0 else wr
    out = []
    for key, value in values.items():
        ci = number_pair(cis.get(key))
        out.append(Metric(suite="pairwise", name=key, value=value, unit="%", test_set=name, baseline=baseline,
                          n=n, provenance=prov, ci=(ci[0] * ci_scale, ci[1] * ci_scale) if ci else None,
                          ci_level=level if level is not None and 0 < level < 1 else None))
    return out


def import_study(src: Source) -> dict[str, list[Metric]]:
    """Human preference results -> suite 'human' win/tie/loss per (model, baseline), plus judge agreement."""
    doc = read_json(src.path)
    comparisons = doc.get("comparisons") if isinstance(doc, dict) else None
    if not isinstance(comparisons, list) or not comparisons:
        raise InputError("not a study results file: no 'comparisons' list.", path=src.path,
                         hint="write one with `harness-ext study results --db FILE --json OUT`.")
    prov = Provenance(date=src.date, source=str(src.path), sha256=src.sha256, importer="study", judge="human")
    out: dict[str, list[Metric]] = {}
    for i, c in enumerate(comparisons):
        if not isinstance(c, dict) or not all(isinstance(c.get(k), str) for k in ("model", "baseline")):
            raise InputError(f"comparisons[{i}] needs 'model' and 'baseline' strings.", path=src.path)
        cis = c.get("ci") if isinstance(c.get("ci"), dict) else {}
        level = finite_number(c.get("ci_level"))
        for outcome in OUTCOMES:
            value = finite_number(c.get(outcome))
            if value is None:
                raise InputError(f"comparisons[{i}].{outcome} is not a number (got {c.get(outcome)!r}).",
                                 path=src.path)
            out.setdefault(c["model"], []).append(Metric(
                suite="human", name=outcome, value=value, unit="%", test_set="human_study", baseline=c["baseline"],
                n=c.get("n_votes") if isinstance(c.get("n_votes"), int) else None, provenance=prov,
                ci=number_pair(cis.get(outcome)), ci_level=level if level is not None and 0 < level < 1 else None))
    agreement = doc.get("judge_agreement") if isinstance(doc.get("judge_agreement"), dict) else None
    if agreement and finite_number(agreement.get("agreement")) is not None:
        for metrics in out.values():
            baseline = metrics[0].baseline
            metrics.append(Metric(suite="human", name="judge_agreement", value=float(agreement["agreement"]),
                                  unit="%", test_set="human_study", baseline=baseline,
                                  n=agreement.get("n_votes_compared"), provenance=prov))
    return out

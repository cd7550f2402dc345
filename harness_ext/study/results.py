"""Score a study: per model pair win/tie/loss with bootstrap CIs, and agreement with an LLM judge."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import iter_jsonl
from harness_ext.core.errors import InputError

OUTCOMES = ("win", "tie", "loss")


def _bootstrap(groups: list[list[str]], n_boot: int, seed: int, level: float) -> dict[str, tuple[float, float]]:
    """Percentile CIs of win/tie/loss rates, resampling pairs (all votes of a pair move together)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    counts = np.array([[g.count(o) for o in OUTCOMES] for g in groups], dtype=float)  # pairs x 3
    idx = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    sampled = counts[idx].sum(axis=1)  # n_boot x 3
    rates = 100 * sampled / sampled.sum(axis=1, keepdims=True)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {o: (float(np.percentile(rates[:, i], lo)), float(np.percentile(rates[:, i], hi)))
            for i, o in enumerate(OUTCOMES)}


def win_rates(rows: list[dict[str, Any]], n_boot: int = 2000, seed: int = 0, level: float = 0.95
              ) -> list[dict[str, Any]]:
    """One summary per (model_a, model_b): rates (%) of model_a winning, tying, losing, with CIs."""
    by_pair: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        outcome = {"a": "win", "b": "loss", "tie": "tie"}[r["choice"]]
        by_pair[(r["model_a"], r["model_b"])][r["pair_id"]].append(outcome)
    out = []
    for (model, baseline), per_pair in by_pair.items():
        flat = [o for votes in per_pair.values() for o in votes]
        rates = {o: 100 * flat.count(o) / len(flat) for o in OUTCOMES}
        out.append({"model": model, "baseline": baseline, "n_votes": len(flat), "n_pairs": len(per_pair),
                    **rates, "ci": _bootstrap(list(per_pair.values()), n_boot, seed, level), "ci_level": level})
    return out


def read_judge_verdicts(path: str | Path, models: dict[str, tuple[str, str]]) -> dict[str, str]:
    """{pair_id: 'a'|'b'|'tie'} from a judge results JSONL.

    Each row names the pair ('pair_id' or 'id') and the verdict ('winner', 'verdict' or
    'preference'): a/b/tie, model_a/model_b, or the winning model's name. Rows with an 'error'
    are skipped (a failed judgment is not a tie).
    """
    verdicts: dict[str, str] = {}
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise InputError("expected a JSON object.", path=path, line=lineno)
        if row.get("error"):
            continue
        pid = row.get("pair_id", row.get("id"))
        raw = next((row[k] for k in ("winner", "verdict", "preference") if k in row), None)
        if pid is None or raw is None:
            raise InputError(f"judge row needs 'pair_id' (or 'id') and 'winner'; got keys {sorted(row)}.",
                             path=path, line=lineno)
        pid = str(pid)
        if pid not in models:
            continue  # the judge saw pairs the people did not; they cannot be compared
        model_a, model_b = models[pid]
        value = str(raw).strip()
        mapped = {"a": "a", "model_a": "a", "b": "b", "model_b": "b", "tie": "tie", model_a: "a", model_b: "b"}
        if value.lower() in ("a", "b", "tie", "model_a", "model_b"):
            value = value.lower()
        if value not in mapped:
            raise InputError(f"verdict {raw!r} for pair {pid!r} is not a, b, tie, model_a, model_b, "
                             f"{model_a!r} or {model_b!r}.", path=path, line=lineno)
        verdicts[pid] = mapped[value]
    return verdicts


def judge_agreement(rows: list[dict[str, Any]], verdicts: dict[str, str]) -> dict[str, Any]:
    """Share of human votes that match the judge's verdict on the same pair (with and without ties)."""
    compared = [(r["choice"], verdicts[r["pair_id"]]) for r in rows if r["pair_id"] in verdicts]
    decisive = [(h, j) for h, j in compared if h != "tie" and j != "tie"]
    return {
        "n_votes_compared": len(compared),
        "n_votes_without_judge": len(rows) - len(compared),
        "agreement": 100 * sum(h == j for h, j in compared) / len(compared) if compared else None,
        "n_decisive": len(decisive),
        "agreement_without_ties": 100 * sum(h == j for h, j in decisive) / len(decisive) if decisive else None,
    }


def format_results(summaries: list[dict[str, Any]], agreement: dict[str, Any] | None) -> str:
    lines = []
    for s in summaries:
        ci = s["ci"]
        lines.append(
            f"{s['model']} vs {s['baseline']}: win {s['win']:.1f}% [{ci['win'][0]:.1f}, {ci['win'][1]:.1f}]  "
            f"tie {s['tie']:.1f}%  loss {s['loss']:.1f}% [{ci['loss'][0]:.1f}, {ci['loss'][1]:.1f}]  "
            f"({s['n_votes']} votes on {s['n_pairs']} pairs, {s['ci_level']:.0%} bootstrap CI)")
    if agreement:
        a, b = agreement["agreement"], agreement["agreement_without_ties"]
        lines.append(
            f"agreement with judge: {'n/a' if a is None else f'{a:.1f}%'} of {agreement['n_votes_compared']} votes; "
            f"{'n/a' if b is None else f'{b:.1f}%'} of {agreement['n_decisive']} decisive votes"
            + (f"; {agreement['n_votes_without_judge']} votes had no judge verdict" if agreement["n_votes_without_judge"] else ""))
    return "\n".join(lines) + "\n"

"""Win/tie/loss aggregation, bootstrap confidence intervals, length statistics and
length-controlled win rates: the statistics every judge report prints.

Outcomes are the strings "win", "tie", "loss" from model A's point of view. Aggregation rules
that turn a pair of order-swapped judgments into one outcome are registered by name in RULES.
A rate or CI over zero items is None (null in JSON), never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness_ext.core.errors import ConfigError
from harness_ext.core.registry import Registry

OUTCOMES = ("win", "tie", "loss")

# A rule maps the two judgments of one item, each (score_of_A, score_of_B), to an outcome.
Rule = Callable[[tuple[float, float], tuple[float, float]], str]
RULES: Registry[Rule] = Registry("aggregation rule")


def _sign(a: float, b: float) -> int:
    return (a > b) - (a < b)


@RULES.register("paper")
def paper_rule(ab: tuple[float, float], ba: tuple[float, float]) -> str:
    """Long-Is-More Sec. 3.2: +1/-1/0 per order by comparing scores, summed; >=1 win, <=-1 loss.

    >>> paper_rule((8, 6), (7, 7))   # A wins one order, ties the other: still a win
    'win'
    >>> paper_rule((8, 6), (5, 7))   # one order each way
    'tie'
    """
    total = _sign(*ab) + _sign(*ba)
    return "win" if total >= 1 else "loss" if total <= -1 else "tie"


@RULES.register("fastchat")
def fastchat_rule(ab: tuple[float, float], ba: tuple[float, float]) -> str:
    """FastChat llm_judge: the winner must be the same in both orders; an inconsistent pair is a tie.

    >>> fastchat_rule((8, 6), (7, 7))
    'tie'
    >>> fastchat_rule((3, 9), (2, 8))
    'loss'
    """
    first, second = _sign(*ab), _sign(*ba)
    if first != second:
        return "tie"
    return "win" if first > 0 else "loss" if first < 0 else "tie"


def win_rate(outcomes: Sequence[str]) -> float | None:
    """Wins plus half the ties, as a fraction (0.5 = no difference); None for no outcomes.

    >>> win_rate(["win", "tie", "loss", "win"])
    0.625
    >>> win_rate([]) is None
    True
    """
    if not outcomes:
        return None
    return (sum(o == "win" for o in outcomes) + 0.5 * sum(o == "tie" for o in outcomes)) / len(outcomes)


def check_n_boot(n_boot: Any) -> None:
    """ConfigError unless `n_boot` (bootstrap resamples) is an integer >= 1; check it before any judging."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ConfigError(f"--n-boot must be an integer >= 1, got {n_boot!r}.",
                          hint="give the number of bootstrap resamples for the 95% CIs, e.g. --n-boot 2000.")


def bootstrap_ci(
    values: np.ndarray,
    stat: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of `stat` over items (rows of `values`), seeded and vectorised.

    `stat` receives an (n_boot, n, ...) array of resamples and returns n_boot statistics.
    """
    check_n_boot(n_boot)
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    stats = stat(values[idx])
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def win_tie_loss(outcomes: Sequence[str], *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Counts, rates and bootstrap 95% CIs for win, tie, loss and win rate (wins + ties/2);
    with no outcomes the rates and CI bounds are None.

    >>> r = win_tie_loss(["win"] * 6 + ["tie"] * 2 + ["loss"] * 2, seed=1)
    >>> r["n"], r["win"], r["tie"], r["loss"], r["win_rate"]
    (10, 0.6, 0.2, 0.2, 0.7)
    >>> lo, hi = r["ci95"]["win"]; lo <= 0.6 <= hi
    True
    >>> e = win_tie_loss([]); e["win_rate"], e["ci95"]["win_rate"]
    (None, (None, None))
    """
    check_n_boot(n_boot)
    n = len(outcomes)
    onehot = np.array([[o == k for k in OUTCOMES] for o in outcomes], dtype=float).reshape(n, 3)
    out: dict[str, Any] = {"n": n, "counts": {k: int(onehot[:, i].sum()) for i, k in enumerate(OUTCOMES)}}
    for i, k in enumerate(OUTCOMES):
        out[k] = float(onehot[:, i].mean()) if n else None
    out["win_rate"] = win_rate(outcomes)
    ci: dict[str, tuple[float | None, float | None]] = {}
    for i, k in enumerate(OUTCOMES):
        ci[k] = bootstrap_ci(onehot[:, i], lambda s: s.mean(axis=1), n_boot=n_boot, seed=seed) if n else (None, None)
    wr = onehot[:, 0] + 0.5 * onehot[:, 1]
    ci["win_rate"] = bootstrap_ci(wr, lambda s: s.mean(axis=1), n_boot=n_boot, seed=seed) if n else (None, None)
    out["ci95"] = ci
    out["bootstrap"] = {"n_boot": n_boot, "seed": seed, "level": 0.95, "method": "percentile, items resampled"}
    return out


def word_count(text: str) -> int:
    """Whitespace-separated words: a tokenizer-free length every judge report can share."""
    return len(text.split())


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """Mean / median / max length in words and characters.

    >>> length_stats(["a b c", "d"])["mean_words"]
    2.0
    """
    if not texts:
        return {"n": 0}
    chars = np.array([len(t) for t in texts], dtype=float)
    return {**word_stats([word_count(t) for t in texts]), "mean_chars": float(chars.mean())}


def word_stats(words: Sequence[int]) -> dict[str, float]:
    """Mean / median / max of word counts.

    >>> word_stats([1, 2, 6])
    {'n': 3, 'mean_words': 3.0, 'median_words': 2.0, 'max_words': 6.0}
    """
    if not words:
        return {"n": 0}
    w = np.asarray(words, dtype=float)
    return {"n": len(w), "mean_words": float(w.mean()), "median_words": float(np.median(w)),
            "max_words": float(w.max())}


DEFAULT_LENGTH_EDGES = (-200, -50, 50, 200)


def length_buckets(diffs: Sequence[float], outcomes: Sequence[str],
                   edges: Sequence[float] = DEFAULT_LENGTH_EDGES) -> list[dict[str, Any]]:
    """Win rate of A by bucket of (len A - len B), to show a judge's length bias. `range_words`
    is [lo, hi) with None for the open ends (JSON has no infinity).

    >>> [b["n"] for b in length_buckets([-300, 0, 10, 400], ["loss", "tie", "win", "win"])]
    [1, 0, 2, 0, 1]
    >>> length_buckets([], [])[0]["range_words"], length_buckets([], [])[-1]["win_rate"]
    ([None, -200], None)
    """
    bounds = [-math.inf, *edges, math.inf]
    rows = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        sel = [o for d, o in zip(diffs, outcomes, strict=True) if lo <= d < hi]
        rows.append({"range_words": [lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None],
                     "n": len(sel), "win_rate": win_rate(sel),
                     "win": sum(o == "win" for o in sel), "tie": sum(o == "tie" for o in sel),
                     "loss": sum(o == "loss" for o in sel)})
    return rows


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Newton's method for logistic regression with soft targets y in [0, 1] and a small L2 penalty."""
    w = np.zeros(x.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def length_controlled_win_rate(preferences: Sequence[float], len_model: Sequence[float],
                               len_ref: Sequence[float]) -> dict[str, float]:
    """Win rate with the length effect regressed out (after Dubois et al. 2024, arXiv 2404.04475).

    `preferences` are P(model beats reference) per item in [0, 1]. We fit
    logit P = theta + phi * tanh((len_model - len_ref) / sd) and report sigmoid(theta): the win
    rate predicted when both answers have the same length. AlpacaEval's own LC also has an
    instruction-difficulty term fitted on other models' annotations, downloaded from the hub; we
    cannot fit that from one model's annotations, so values can differ from the leaderboard's.

    >>> prefs = [1.0] * 40 + [0.0] * 40
    >>> long = [400] * 40 + [100] * 40   # the model wins exactly when it is longer
    >>> r = length_controlled_win_rate(prefs, long, [250] * 80)
    >>> r["win_rate"], r["length_controlled_win_rate"] < 0.6
    (0.5, True)
    """
    y = np.asarray(preferences, dtype=float)
    diff = np.asarray(len_model, dtype=float) - np.asarray(len_ref, dtype=float)
    sd = diff.std() or 1.0
    x = np.column_stack([np.ones_like(diff), np.tanh(diff / sd)])
    theta, phi = _fit_logistic(x, y)
    return {"win_rate": float(y.mean()), "length_controlled_win_rate": float(1 / (1 + math.exp(-theta))),
            "length_coefficient": float(phi), "length_diff_sd": float(sd), "n": int(len(y))}

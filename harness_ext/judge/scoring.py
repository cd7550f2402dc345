"""Win/tie/loss aggregation rules, bootstrap confidence intervals and length statistics: the
statistics every judge report prints (alpaca_eval's length-controlled win rate is in lc_winrate.py).

Outcomes are the strings "win", "tie", "loss" from model A's point of view. Aggregation rules
that turn a pair of order-swapped judgments into one outcome are registered by name in RULES.
A rate or CI over zero items is None (null in JSON), never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness_ext.core.errors import ConfigError
from harness_ext.core.registry import Registry
from harness_ext.judge.verdicts import parse_score_pair, parse_score_pair_authors

OUTCOMES = ("win", "tie", "loss")
Scores = tuple[float, float]  # (score of A, score of B) in one order


def _sign(a: float, b: float) -> int:
    return (a > b) - (a < b)


def sum_of_orders(first: int, second: int) -> str:
    """The paper's combination (Sec. 3.2; utils/result_graph.py): +1/-1/0 per order, summed; >= 1 win,
    <= -1 loss.

    >>> sum_of_orders(1, 0), sum_of_orders(1, -1), sum_of_orders(-1, -1)
    ('win', 'tie', 'loss')
    """
    total = first + second
    return "win" if total >= 1 else "loss" if total <= -1 else "tie"


def same_in_both_orders(first: int, second: int) -> str:
    """FastChat llm_judge: the winner must be the same in both orders; an inconsistent pair is a tie.

    >>> same_in_both_orders(1, 0), same_in_both_orders(-1, -1)
    ('tie', 'loss')
    """
    if first != second:
        return "tie"
    return "win" if first > 0 else "loss" if first < 0 else "tie"


@dataclass(frozen=True)
class PairRule:
    """How one pairwise rule reads a judge reply and turns the two orders into an outcome for A.

    `parse` reads (score of assistant 1, score of assistant 2) from a reply or raises
    VerdictParseError; `failed_as` is the score pair an unparsed reply counts as (None: the item is
    unscored); `truncate` compares int() of the scores; `combine` maps the two orders' signs to
    "win" / "tie" / "loss".
    """

    parse: Callable[[str | None], Scores]
    combine: Callable[[int, int], str]
    failed_as: Scores | None = None
    truncate: bool = False

    def sign(self, scores: Scores) -> int:
        a, b = scores
        return _sign(int(a), int(b)) if self.truncate else _sign(a, b)

    def outcome(self, ab: Scores | None, ba: Scores | None) -> str | None:
        """The outcome for A from (A, B) scores in each order (None: that order did not parse).

        >>> RULES.get("paper").outcome((8.5, 8), (7, 7))       # int(8.5) == 8: a tie in both orders
        'tie'
        >>> RULES.get("paper-strict").outcome((8.5, 8), (7, 7))  # compared as written: A wins one order
        'win'
        >>> RULES.get("paper").outcome(None, (9, 5)), RULES.get("paper-strict").outcome(None, (9, 5))
        ('win', None)
        """
        if self.failed_as is not None:
            ab, ba = ab or self.failed_as, ba or self.failed_as
        if ab is None or ba is None:
            return None
        return self.combine(self.sign(ab), self.sign(ba))


RULES: Registry[PairRule] = Registry("aggregation rule")
RULES.register("paper", "the authors' code (evaluation_gpt4.py parse_score, utils/result_graph.py): their "
               "first-line parser, int() scores, an unparsed reply counts as [-1, -1] (a tie for that order), "
               "orders summed")(PairRule(parse_score_pair_authors, sum_of_orders, failed_as=(-1, -1), truncate=True))
RULES.register("paper-strict", "the paper's summed orders on exact scores; a strict first-line parse (two "
               "scores in 1-10, 'Scores: 7, 5' accepted); an item with an unparsed order is unscored")(
    PairRule(parse_score_pair, sum_of_orders))
RULES.register("fastchat", "FastChat llm_judge: the same winner in both orders, else a tie; strict parse; "
               "an item with an unparsed order is unscored")(PairRule(parse_score_pair, same_in_both_orders))


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

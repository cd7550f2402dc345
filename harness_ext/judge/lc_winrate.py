"""Length-controlled (LC) win rate as alpaca_eval computes it (Dubois et al. 2024, arXiv 2404.04475;
alpaca_eval/metrics/glm_winrate.py, get_length_controlled_winrate), from an annotations file, offline.

The GLM predicts P(model beats reference) per instruction from
    tanh(std_delta_len)                 length difference (reference minus model, in characters,
                                        over its sample standard deviation across all rows)
    + instruction_difficulty            a per-instruction difficulty alpaca_eval fitted on its
                                        leaderboard (row i of the annotations is AlpacaEval item i)
    + not_gamed_baseline                1 for this model's rows, 0 for the two "gamed" baselines
and LC is the mean prediction at std_delta_len = 0, times 100. Which of alpaca_eval's GLMs
(GLM_INFO) is fitted depends on the files given, because alpaca_eval downloads them from the hub:

    gamed-baseline file (df_gamed.csv)   -> length_controlled_v1 (alpaca_eval's default): the gamed
                                            baselines' rows join the fit with weight 0.2 / 2
    instruction-difficulty file only     -> length_controlled_noreg (no gamed rows)
    neither                              -> length_controlled_minimal (length and intercept only)

The fit is alpaca_eval's: soft labels as two weighted rows per instruction, L1 logistic regression
without intercept (liblinear, random_state 123), C chosen by 5-fold group cross-validation on log
loss, rows with a missing preference left out of the fit but predicted. We rebuild the design
matrix and call scikit-learn with the same settings; tests/test_judge_lc.py checks the result
against alpaca_eval's own function on the same annotations.

Ours adds: a bootstrap 95% CI that resamples instructions (each resample refits the GLM at the C
chosen on the full data), and alpaca_eval's warning rule when LC and the raw win rate are far apart.
"""

from __future__ import annotations

import csv
import functools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness_ext.core.errors import InputError

GLMS = {  # name -> (uses instruction difficulty, weight of the gamed baselines' rows or None)
    "length_controlled_v1": (True, 0.2),
    "length_controlled_noreg": (True, None),
    "length_controlled_minimal": (False, None),
}


@dataclass(frozen=True)
class LCFiles:
    """alpaca_eval's hub files, given as local paths (the hub is never contacted)."""

    gamed_baseline: Path | None = None  # tatsu-lab/alpaca_eval dataset: df_gamed.csv
    instruction_difficulty: Path | None = None  # tatsu-lab/alpaca_eval dataset: instruction_difficulty.csv

    @property
    def glm(self) -> str:
        if self.gamed_baseline:
            return "length_controlled_v1"
        return "length_controlled_noreg" if self.instruction_difficulty else "length_controlled_minimal"


@dataclass(frozen=True)
class _Design:
    x_train: np.ndarray  # features of the fitted rows
    y_train: np.ndarray  # P(model wins) in [0, 1]
    w_train: np.ndarray  # sample weights
    x_test: np.ndarray  # features of every model row at zero length difference


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not Path(path).is_file():
        raise InputError("file not found.", path=path,
                         hint="download it once from the tatsu-lab/alpaca_eval dataset on the Hugging Face hub.")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@functools.lru_cache(maxsize=4)
def _gamed(path: Path) -> tuple[dict[int, float], list[dict[str, float]]]:
    """df_gamed.csv: the difficulty alpaca_eval reads from it, and its rows as features."""
    rows = _read_csv(path)
    need = {"index", "preference", "std_delta_len", "instruction_difficulty", "not_gamed_baseline"}
    if not rows or need - set(rows[0]):
        raise InputError(f"expected columns {sorted(need)}.", path=path, hint="use alpaca_eval's df_gamed.csv.")
    # alpaca_eval keeps the first row of each "index" and then looks difficulties up by that row's
    # position in the file (pandas label lookup after drop_duplicates); the same lookup here.
    difficulty: dict[int, float] = {}
    seen: set[str] = set()
    for pos, r in enumerate(rows):
        if r["index"] not in seen:
            seen.add(r["index"])
            difficulty[pos] = float(r["instruction_difficulty"])
    feats = [{"preference": float(r["preference"]) if r["preference"] not in ("", "nan", "NaN") else math.nan,
              "std_delta_len": float(r["std_delta_len"]), "instruction_difficulty": float(r["instruction_difficulty"]),
              "not_gamed_baseline": float(r["not_gamed_baseline"] in ("True", "true", "1", "1.0"))} for r in rows]
    return difficulty, feats


@functools.lru_cache(maxsize=4)
def _difficulty_file(path: Path) -> dict[int, float]:
    """instruction_difficulty.csv: a first column of AlpacaEval item numbers, then the difficulty."""
    rows = _read_csv(path)
    if not rows or len(rows[0]) < 2:
        raise InputError("expected two columns: item number and instruction_difficulty.", path=path)
    key, value = list(rows[0])[:2]
    return {int(float(r[key])): float(r[value]) for r in rows}


def _features(tanh_len: np.ndarray, difficulty: np.ndarray | None, not_gamed: np.ndarray) -> np.ndarray:
    cols = [tanh_len] + ([difficulty] if difficulty is not None else []) + [not_gamed]
    return np.column_stack(cols)


def design(pref: np.ndarray, len_ref: np.ndarray, len_model: np.ndarray, index: list[int],
           files: LCFiles) -> _Design:
    """The GLM's training and prediction matrices for one model's annotations."""
    uses_difficulty, gamed_weight = GLMS[files.glm]
    delta = len_ref - len_model
    std = float(np.std(delta, ddof=1)) if len(delta) > 1 else 0.0
    std_delta = delta / std if std > 0 else np.zeros_like(delta)
    difficulty = gamed_rows = None
    if files.gamed_baseline:  # alpaca_eval takes the difficulty from df_gamed.csv
        lookup, gamed_rows = _gamed(files.gamed_baseline)
        if files.instruction_difficulty:
            other = _difficulty_file(files.instruction_difficulty)
            bad = [i for i in index if i in lookup and abs(other.get(i, math.nan) - lookup[i]) > 1e-9]
            if bad:
                raise InputError(f"instruction difficulty of item {bad[0]} differs between the two files "
                                 f"({other.get(bad[0])} here, {lookup[bad[0]]} in {files.gamed_baseline}).",
                                 path=files.instruction_difficulty,
                                 hint="use the two files of one alpaca_eval release, or pass only df_gamed.csv.")
    elif files.instruction_difficulty:
        lookup = _difficulty_file(files.instruction_difficulty)
    if uses_difficulty:
        missing = [i for i in index if i not in lookup]
        if missing:
            raise InputError(f"no instruction difficulty for annotation rows {missing[:5]} "
                             f"({len(missing)} in all).", path=files.instruction_difficulty or files.gamed_baseline,
                             hint="the difficulty files cover the 805 AlpacaEval instructions, in their order.")
        difficulty = np.array([lookup[i] for i in index], dtype=float)
    ones = np.ones_like(pref)
    x_model = _features(np.tanh(std_delta), difficulty, ones)
    x_test = _features(np.zeros_like(pref), difficulty, ones)
    keep = ~np.isnan(pref)
    x, y, w = x_model[keep], pref[keep], ones[keep]
    if gamed_weight is not None and gamed_rows:
        g = [r for r in gamed_rows if not math.isnan(r["preference"])]
        xg = np.array([[math.tanh(r["std_delta_len"]), r["instruction_difficulty"], r["not_gamed_baseline"]]
                       for r in g]).reshape(len(g), 3)
        wg = np.array([1.0 if r["not_gamed_baseline"] else gamed_weight / 2 for r in g])
        x, y, w = np.vstack([xg, x]), np.concatenate([[r["preference"] for r in g], y]), np.concatenate([wg, w])
    return _Design(x, y, w, x_test)


def _doubled(d: _Design) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Soft labels as two rows per instruction (label 1 weighted p*w, label 0 weighted (1-p)*w)."""
    n = len(d.y_train)
    x = np.vstack([d.x_train, d.x_train])
    label = np.concatenate([np.ones(n), np.zeros(n)])
    prob = np.concatenate([d.y_train, 1 - d.y_train])
    w = np.concatenate([d.w_train, d.w_train])
    groups = np.concatenate([np.arange(n), np.arange(n)])
    return x, label, prob, w, groups


def _log_loss(y_true, y_pred, true_prob, true_sample_weight=None):  # noqa: ANN001 (sklearn scorer signature)
    """alpaca_eval's cross-validation score: mean log loss against the soft labels."""
    target = np.where(y_true == 1, true_prob, 1 - true_prob)
    p = np.clip(y_pred, 1e-15, 1 - 1e-15)
    ll = target * np.log(p) + (1 - target) * np.log(1 - p)
    if true_sample_weight is not None:
        ll = ll * true_sample_weight
    return -np.mean(ll)


def fit(d: _Design, C: float | None = None):  # noqa: N803 (scikit-learn's name)
    """The fitted scikit-learn model: cross-validated C as alpaca_eval does, or a fixed C."""
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    x, label, prob, w, groups = _doubled(d)
    settings: dict[str, Any] = dict(random_state=123, dual=False, solver="liblinear", fit_intercept=False)
    single, cv = dict(settings), dict(settings)
    if _sklearn_version() >= (1, 8):  # "penalty" is deprecated there: the same L1 fit by l1_ratio
        single["l1_ratio"], cv["l1_ratios"], cv["use_legacy_attributes"] = 1.0, (1.0,), False
    else:
        single["penalty"] = cv["penalty"] = "l1"
    with sklearn.config_context(enable_metadata_routing=True):
        if C is not None:  # a bootstrap refit: liblinear's convergence notes on resamples are noise
            model = LogisticRegression(C=C, **single)
            model.set_fit_request(sample_weight=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                return model.fit(x, label, sample_weight=prob * w)
        scorer = make_scorer(_log_loss, response_method="predict_proba", greater_is_better=False)
        scorer = scorer.set_score_request(true_sample_weight=True, true_prob=True)
        model = LogisticRegressionCV(cv=GroupKFold(n_splits=5), scoring=scorer, **cv)
        model.set_fit_request(sample_weight=True)
        true_w = None if np.all(d.w_train == 1) else w
        return model.fit(x, label, sample_weight=prob * w, groups=groups, true_sample_weight=true_w,
                         true_prob=prob)


def _sklearn_version() -> tuple[int, int]:
    import sklearn

    major, minor = sklearn.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def is_extreme_change(win_rate: float, lc: float, abs_diff: float = 10, rel_diff: float = 4) -> bool:
    """alpaca_eval's rule (glm_winrate.get_is_extreme_changes) for warning that LC and the raw win
    rate (both in %) are far apart.

    >>> is_extreme_change(50, 37), is_extreme_change(50, 38), is_extreme_change(20, 9.9)
    (True, False, True)
    """
    too_small = lc < min(win_rate - win_rate / rel_diff, win_rate - abs_diff)
    too_large = lc > max(win_rate + (100 - win_rate) / rel_diff, win_rate + abs_diff)
    return bool(too_small or too_large)


def preference_value(value: Any) -> float | None:
    """An annotation's preference as alpaca_eval reads it: 1 (reference wins) to 2 (model wins), 0 (its
    old tie) as 1.5; missing, unparsable or outside [1, 2] is a failed annotation (None).

    >>> preference_value(2), preference_value(0), preference_value(None), preference_value(-1)
    (2.0, 1.5, None, None)
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    v = 1.5 if v == 0 else v
    return v if 1 <= v <= 2 else None  # NaN fails both comparisons


def _preference(value: Any) -> float:
    """The preference as P(model wins) for the GLM: 1 -> 0, 2 -> 1, tie -> 0.5; a failed annotation
    is NaN (left out of the fit, still predicted)."""
    v = preference_value(value)
    return math.nan if v is None else v - 1


def _lc(pref: np.ndarray, len_ref: np.ndarray, len_model: np.ndarray, index: list[int], files: LCFiles,
        C: float | None = None) -> tuple[float, Any]:  # noqa: N803
    d = design(pref, len_ref, len_model, index, files)
    model = fit(d, C)
    return 100 * float(model.predict_proba(d.x_test)[:, 1].mean()), model


def length_controlled_winrate(rows: list[dict[str, Any]], files: LCFiles = LCFiles(), *, n_boot: int = 200,
                              seed: int = 0) -> dict[str, Any]:
    """alpaca_eval's length-controlled win rate (in %) for one model's annotation rows, in file order.

    Row i is AlpacaEval item i (or the row's own "index" field), as in alpaca_eval. Returns the
    GLM used, LC, alpaca_eval's lc_standard_error (the standard error of the per-row predictions),
    a bootstrap 95% CI over instructions (seeded; rows are resampled by position, and each
    resample refits at the full fit's C), the raw win rate and alpaca_eval's far-apart warning.
    """
    from harness_ext.judge.scoring import check_n_boot

    check_n_boot(n_boot)
    pref = np.array([_preference(r.get("preference")) for r in rows], dtype=float)
    len_ref = np.array([len(str(r["output_1"])) for r in rows], dtype=float)
    len_model = np.array([len(str(r["output_2"])) for r in rows], dtype=float)
    index = [int(r["index"]) if "index" in r else i for i, r in enumerate(rows)]
    valid = pref[~np.isnan(pref)]
    win_rate = 100 * float(valid.mean()) if len(valid) else None
    out: dict[str, Any] = {"glm": files.glm, "win_rate": win_rate, "n": len(rows), "n_fitted": len(valid)}
    if len(valid) < 2 or len(np.unique(valid)) < 2:
        return {**out, "length_controlled_winrate": None, "lc_standard_error": None, "lc_ci95": None,
                "warning": "too few or identical preferences to fit alpaca_eval's GLM"}
    d = design(pref, len_ref, len_model, index, files)
    model = fit(d)
    pred = model.predict_proba(d.x_test)[:, 1]
    lc = 100 * float(pred.mean())
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(rows), size=len(rows))
        if len(np.unique(pref[pick][~np.isnan(pref[pick])])) < 2:
            continue  # a resample with one kind of verdict cannot be fitted
        stats.append(_lc(pref[pick], len_ref[pick], len_model[pick], [index[i] for i in pick], files,
                         C=float(np.ravel(model.C_)[0]))[0])
    lo, hi = (np.quantile(stats, [0.025, 0.975]) if stats else (math.nan, math.nan))
    warning = None
    if is_extreme_change(win_rate, lc):
        warning = (f"Length controlled win rate is very different from the raw one: {lc:.1f}% vs {win_rate:.1f}% "
                   "(alpaca_eval's rule); this might be a sign of failure of the GLM.")
    return {**out, "length_controlled_winrate": lc,
            "lc_standard_error": 100 * float(np.std(pred, ddof=1) / math.sqrt(len(pred))),
            "lc_ci95": [float(lo), float(hi)] if stats else None,
            "lc_bootstrap": {"n_boot": n_boot, "fitted": len(stats), "seed": seed,
                             "method": "percentile; instructions resampled; refit at the full fit's C"},
            "weights": dict(zip(_weight_names(files), (float(c) for c in model.coef_[0]), strict=True)),
            "warning": warning}


def _weight_names(files: LCFiles) -> list[str]:
    uses_difficulty, _ = GLMS[files.glm]
    return ["np.tanh(std_delta_len)", *(["instruction_difficulty"] if uses_difficulty else []),
            "not_gamed_baseline.astype(float)"]

"""The logprob pairwise judge: a continuous preference per item, free of position bias by construction.

For each instruction answered by both models, the judge prompt is built twice, once with A's
answer shown first and once with B's, and the judge's next-token probabilities of the two verdict
tokens are read at the point where its verdict would start (llm/logprob_judge.py): no text is
generated, one forward pass (or one 1-token request) per order. A's preference on the item is

    preference = ( P(first | A shown first) + P(second | B shown first) ) / 2

with each P renormalised over the two verdict tokens. A judge that always favours one position
shifts both terms by opposite amounts, and identical answers score exactly 0.5, so the order the
answers were shown in cannot decide a comparison. AlpacaEval's weighted annotators turn the judge's
verdict logprobs into a continuous preference the same way (e.g. `weighted_alpaca_eval_gpt4_turbo`,
one order per item); averaging the two orders is our addition. A's win rate is the mean preference
over items, with a percentile bootstrap 95% CI that resamples items (each item keeps both orders).

Files: OUT/preferences.jsonl (one row per item) and OUT/preference.json (the summary).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness_ext.core.artifacts import atomic_write_json, atomic_write_jsonl, read_json
from harness_ext.core.errors import InputError, RequestsFailed
from harness_ext.core.records import Turn

PROMPT_VERSION = "preference-v1"
SYSTEM = "You are a careful, impartial judge of answers to user instructions."
TEMPLATE = """Which response follows the instruction better? Judge helpfulness, correctness and level of \
detail. The order of the responses is random and must not affect your judgement.

[Instruction]
{instruction}

[Response A]
{first}

[Response B]
{second}

Reply with one letter: A if Response A is better, B if Response B is better."""


class VerdictScorer(Protocol):
    tokens: tuple[str, str]

    def score_many(self, convs: list[Sequence[Turn]], progress: Any = None) -> list[Any]: ...


def judge_prompt(instruction: str, first: str, second: str) -> list[Turn]:
    return [Turn("system", SYSTEM), Turn("user", TEMPLATE.format(instruction=instruction, first=first, second=second))]


@dataclass
class PreferenceSummary:
    """A's preference over B as judged by next-token verdict probabilities (both orders)."""

    a: str
    b: str
    judge: str
    n: int  # items scored in both orders
    win_rate: float | None  # mean preference of A over B (0..1); 0.5 = no preference
    ci95: tuple[float, float] | None
    prefers_a: int  # items with preference > 0.5
    prefers_b: int
    first_position: float | None  # mean P(the answer shown first), all prompts: the bias averaging cancels
    verdict_mass: float | None  # mean probability the judge put on the two verdict tokens at all
    unusable: int = 0  # items with an order that could not be scored
    method: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci95"] = list(self.ci95) if self.ci95 else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreferenceSummary:
        d = dict(d)
        d["ci95"] = tuple(d["ci95"]) if d.get("ci95") else None
        return cls(**d)


def load_preference_summary(path: Path) -> PreferenceSummary | None:
    """The summary a logprob judge stage wrote, or None when there is none."""
    if not Path(path).is_file():
        return None
    try:
        return PreferenceSummary.from_dict(read_json(path))
    except (TypeError, KeyError) as exc:
        raise InputError(f"not a preference summary: {exc}", path=path) from None


@dataclass(frozen=True)
class PreferenceJob:
    """What to compare and how: the two answer files, names, and the CI settings."""

    a_file: Path
    b_file: Path
    a: str
    b: str
    judge: str
    n_boot: int = 2000
    seed: int = 0
    allow_failures: bool = False
    progress: bool = True  # a progress bar (prompts scored, rate) on stderr


def judge_preference(job: PreferenceJob, scorer: VerdictScorer, out: Path) -> PreferenceSummary:
    """Score every matched item in both orders, write OUT/preferences.jsonl and OUT/preference.json."""
    import numpy as np
    from tqdm import tqdm

    from harness_ext.generate.outputs import load_outputs, match_outputs
    from harness_ext.judge.scoring import bootstrap_ci

    pairs, _ = match_outputs(load_outputs(job.a_file), load_outputs(job.b_file))
    if not pairs:
        raise InputError("the two answer files share no instruction to compare.", path=job.a_file)
    convs = []
    for x, y in pairs:
        convs += [judge_prompt(x.instruction, x.output, y.output), judge_prompt(x.instruction, y.output, x.output)]
    with tqdm(total=len(convs), desc=f"judge {job.a} vs {job.b}", unit="prompt", disable=not job.progress) as bar:
        probs = scorer.score_many(convs, bar.update)
    rows, prefs, firsts = [], [], []
    for i, (x, _) in enumerate(pairs):
        ab, ba = probs[2 * i], probs[2 * i + 1]
        row: dict[str, Any] = {"id": x.id, "dataset": x.dataset, "instruction": x.instruction,
                               "p_a_when_first": ab.first, "p_a_when_second": None if ba.first is None else 1 - ba.first,
                               "mass": [ab.mass, ba.mass], "preference": None,
                               "error": ab.error or ba.error}
        if ab.ok and ba.ok:
            row["preference"] = (ab.first + (1 - ba.first)) / 2
            prefs.append(row["preference"])
            firsts += [ab.first, ba.first]
        rows.append(row)
    unusable = len(rows) - len(prefs)
    if unusable and not job.allow_failures:
        first_error = next(r["error"] for r in rows if r["preference"] is None)
        raise RequestsFailed(f"{unusable} of {len(rows)} items could not be scored in both orders "
                             f"(first error: {first_error})")
    values = np.asarray(prefs, dtype=float)
    ci = bootstrap_ci(values, lambda s: s.mean(axis=1), n_boot=job.n_boot, seed=job.seed) if prefs else None
    masses = [m for r in rows for m in r["mass"] if m is not None]
    summary = PreferenceSummary(
        a=job.a, b=job.b, judge=job.judge, n=len(prefs),
        win_rate=float(values.mean()) if prefs else None, ci95=ci,
        prefers_a=int((values > 0.5).sum()), prefers_b=int((values < 0.5).sum()),
        first_position=float(np.mean(firsts)) if firsts else None,
        verdict_mass=float(np.mean(masses)) if masses else None, unusable=unusable,
        method={"prompt": PROMPT_VERSION, "verdict_tokens": list(scorer.tokens), "orders": 2,
                "bootstrap": {"n_boot": job.n_boot, "seed": job.seed, "level": 0.95,
                              "method": "percentile, items resampled"}},
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(out / "preferences.jsonl", rows)
    atomic_write_json(out / "preference.json", summary.to_dict())
    return summary


def describe(s: PreferenceSummary) -> str:
    """One sentence: A's win rate over B with its CI, and whether the CI excludes 50%.

    >>> describe(PreferenceSummary("x", "y", "j", 40, 0.62, (0.55, 0.69), 30, 10, 0.7, 0.9))
    'x vs y: x preferred on 62.0% (95% CI 55.0-69.0%), 30 of 40 items favour x; the CI excludes 50%: the judge prefers x.'
    """
    if s.win_rate is None or s.ci95 is None:
        return f"{s.a} vs {s.b}: no item could be scored."
    lo, hi = s.ci95
    if lo > 0.5 or hi < 0.5:
        verdict = f"the CI excludes 50%: the judge prefers {s.a if lo > 0.5 else s.b}."
    else:
        verdict = "the CI includes 50%: no preference shown at this size."
    return (f"{s.a} vs {s.b}: {s.a} preferred on {100 * s.win_rate:.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}%), "
            f"{s.prefers_a} of {s.n} items favour {s.a}; {verdict}")


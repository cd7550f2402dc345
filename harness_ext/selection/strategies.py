"""Selection strategies: which examples of a measured pool to keep.

Each strategy is a registered function `(pool, k, opts) -> Picked`, where `pool` is a list of
(example, length) pairs in original row order. Ties in length are always broken by original row
order (lower row first), as in the paper's released Alpaca-1k-longest set (arXiv 2402.04833).
`select_to_dir` (the pipeline entry point) lives in `harness_ext.selection.run`.
Strategies that need model scores (IFD, embeddings) say so in NEEDS; the run computes them first
(harness_ext.selection.ifd) and puts them in each example's metadata and in `Options.embeddings`.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness_ext.core.errors import ConfigError
from harness_ext.core.records import Example
from harness_ext.core.registry import Registry
from harness_ext.selection.ifd import IFD_FIELDS

Pool = list[tuple[Example, int]]
TIE_RULE = "equal lengths: lower original row index first"


@dataclass
class Picked:
    """A strategy's answer: the kept pairs (row order) and what it set aside, by reason."""

    kept: Pool
    drops: Counter[str] = field(default_factory=Counter)
    cutoff: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Options:
    """Strategy options (the CLI flags and the pipeline's `**strategy_options`)."""

    seed: int = 0
    score_field: str = "score"
    threshold: float = 4.5
    allow_fewer: bool = False
    mix_strategy: str = "longest"
    #: Set A of a mixture (every example kept), loaded by select_to_dir from --mix.
    mix_pool: Pool = field(default_factory=list)
    #: IFD scoring (strategy ifd, score fields ifd/ppl_*, diverse without embed_model).
    score_model: str = "smollm2-135m-instruct"
    score_max_length: int = 1024
    score_batch_tokens: int | None = None  # None: the scorer's per-device default
    #: Superfiltering's filter: only rows with IFD below this are eligible (select_data.py, 1).
    ifd_below: float = 1.0
    #: sentence-transformers model for the diverse strategy (default: the scoring model's hidden states).
    embed_model: str | None = None
    #: diverse: what ranks rows ("length", "none", or a numeric field such as ifd or score).
    diverse_rank: str = "length"
    #: diverse: greedy picks ceil(oversample * k) centers, then keeps the k best by diverse_rank.
    diverse_oversample: float = 1.0
    #: Row -> embedding, filled by the run for strategies that need embeddings.
    embeddings: dict[int, Any] = field(default_factory=dict)


STRATEGIES: Registry[Callable[[Pool, int | None, Options], Picked]] = Registry("strategy")
#: Model scores a strategy needs before it runs: "ifd" (metadata fields) and/or "embeddings".
NEEDS: dict[str, frozenset[str]] = {"ifd": frozenset({"ifd"}), "diverse": frozenset({"embeddings"})}


def needed_scores(strategy: str, opts: Options) -> frozenset[str]:
    """What the run must compute for `strategy` with `opts` (mixtures: their inner strategy's needs)."""
    name = opts.mix_strategy if strategy == "mixture" else strategy
    need = set(NEEDS.get(name, frozenset()))
    if opts.score_field in IFD_FIELDS and name in ("top-score", "score-threshold"):
        need.add("ifd")
    if name == "diverse":
        if opts.diverse_rank in IFD_FIELDS:
            need.add("ifd")
        if opts.embed_model is None:
            need.add("ifd")  # the embeddings come from the scoring pass
    return frozenset(need)


def need_k(strategy: str, k: int | None, pool_size: int, allow_fewer: bool) -> int:
    """k checked against the pool: an error when k > pool unless `allow_fewer`."""
    if k is None:
        raise ConfigError(f"Strategy '{strategy}' needs --k (how many examples to keep).", hint="e.g. --k 1000")
    if k < 1:
        raise ConfigError(f"--k must be at least 1 (got {k}).", hint="e.g. --k 1000")
    if k > pool_size and not allow_fewer:
        raise ConfigError(
            f"--k {k} is larger than the pool of {pool_size} usable examples for strategy '{strategy}'.",
            hint=f"lower --k to at most {pool_size}, or pass --allow-fewer to keep all {pool_size}.",
        )
    return min(k, pool_size)


def by_row(pairs: Pool) -> Pool:
    return sorted(pairs, key=lambda p: p[0].row)


def rank_longest(pool: Pool, k: int) -> Pool:
    """The k longest pairs; equal lengths keep the lower row."""
    return sorted(pool, key=lambda p: (-p[1], p[0].row))[:k]


@STRATEGIES.register("longest")
def longest(pool: Pool, k: int | None, opts: Options) -> Picked:
    """The k examples with the longest responses (the paper's Alpaca-1k-longest)."""
    n = need_k("longest", k, len(pool), opts.allow_fewer)
    top = rank_longest(pool, n)
    return Picked(by_row(top), cutoff=top[-1][1] if top else None)


@STRATEGIES.register("shortest")
def shortest(pool: Pool, k: int | None, opts: Options) -> Picked:
    """The k examples with the shortest responses (the paper's length ablation)."""
    n = need_k("shortest", k, len(pool), opts.allow_fewer)
    top = sorted(pool, key=lambda p: (p[1], p[0].row))[:n]
    return Picked(by_row(top), cutoff=top[-1][1] if top else None)


@STRATEGIES.register("random")
def random_k(pool: Pool, k: int | None, opts: Options) -> Picked:
    """k examples drawn uniformly without replacement (seeded; same seed, same set)."""
    n = need_k("random", k, len(pool), opts.allow_fewer)
    rng = random.Random(opts.seed)
    return Picked(by_row(rng.sample(pool, n)), notes={"seed": opts.seed})


def _scored(pool: Pool, score_field: str) -> tuple[list[tuple[Example, int, float]], Counter[str]]:
    out: list[tuple[Example, int, float]] = []
    drops: Counter[str] = Counter()
    for ex, n in pool:
        v = ex.metadata.get(score_field)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(float(v)):
            drops[f"no_numeric_score:{score_field}"] += 1
            continue
        out.append((ex, n, float(v)))
    if not out:
        seen = sorted({k for ex, _ in pool[:50] for k in ex.metadata})
        raise ConfigError(
            f"No example has a numeric score field '{score_field}'.",
            hint=f"pass --score-field with one of the rows' fields ({', '.join(seen) or 'none found'}).",
        )
    return out, drops


@STRATEGIES.register("top-score")
def top_score(pool: Pool, k: int | None, opts: Options) -> Picked:
    """The k examples with the highest value of a score field (--score-field)."""
    scored, drops = _scored(pool, opts.score_field)
    n = need_k("top-score", k, len(scored), opts.allow_fewer)
    top = sorted(scored, key=lambda t: (-t[2], t[0].row))[:n]
    return Picked(by_row([(ex, ln) for ex, ln, _ in top]), drops,
                  notes={"score_field": opts.score_field, "score_cutoff": top[-1][2] if top else None})


@STRATEGIES.register("score-threshold")
def score_threshold(pool: Pool, k: int | None, opts: Options) -> Picked:
    """AlpaGasus: keep score >= --threshold (default 4.5), then draw k uniformly (seeded)."""
    scored, drops = _scored(pool, opts.score_field)
    passing = [(ex, n) for ex, n, s in scored if s >= opts.threshold]
    drops[f"score_below:{opts.threshold:g}"] += len(scored) - len(passing)
    n = need_k("score-threshold", k, len(passing), opts.allow_fewer)
    rng = random.Random(opts.seed)
    return Picked(by_row(rng.sample(passing, n)), drops,
                  notes={"score_field": opts.score_field, "threshold": opts.threshold,
                         "passing": len(passing), "seed": opts.seed})


def largest_remainder(sizes: dict[str, int], k: int) -> dict[str, int]:
    """Quotas proportional to `sizes` summing to k (Hamilton's method; ties: larger source, then name)."""
    total = sum(sizes.values())
    exact = {s: k * n / total for s, n in sizes.items()}
    quotas = {s: math.floor(x) for s, x in exact.items()}
    left = k - sum(quotas.values())
    order = sorted(sizes, key=lambda s: (-(exact[s] - quotas[s]), -sizes[s], s))
    for s in order[:left]:
        quotas[s] += 1
    return quotas


@STRATEGIES.register("stratified-longest")
def stratified_longest(pool: Pool, k: int | None, opts: Options) -> Picked:
    """Longest within each source, quotas proportional to source share (the paper's OpenHermes run)."""
    n = need_k("stratified-longest", k, len(pool), opts.allow_fewer)
    groups: dict[str, Pool] = {}
    for ex, ln in pool:
        groups.setdefault(ex.source or "(none)", []).append((ex, ln))
    quotas = largest_remainder({s: len(g) for s, g in groups.items()}, n)
    kept: Pool = []
    cutoffs: dict[str, int | None] = {}
    for s, g in groups.items():
        top = rank_longest(g, quotas[s])
        kept.extend(top)
        cutoffs[s] = top[-1][1] if top else None
    return Picked(by_row(kept), notes={"quotas": dict(sorted(quotas.items())), "cutoff_per_source": cutoffs})


@STRATEGIES.register("dedup")
def dedup_only(pool: Pool, k: int | None, opts: Options) -> Picked:
    """Every example left after exact-duplicate removal by instruction+input (first kept; k ignored)."""
    return Picked(by_row(pool), notes={"k_ignored": k})


@STRATEGIES.register("mixture")
def mixture(pool: Pool, k: int | None, opts: Options) -> Picked:
    """LIMIT mixture: all of set A (--mix PATH) plus k of this set chosen by --mix-strategy."""
    if not opts.mix_pool:
        raise ConfigError("The mixture strategy needs set A.", hint="pass --mix PATH (every example of it is kept).")
    if opts.mix_strategy == "mixture":
        raise ConfigError("--mix-strategy cannot itself be 'mixture'.", hint="e.g. --mix-strategy longest")
    inner = STRATEGIES.get(opts.mix_strategy)(pool, k, opts)
    taken = {ex.id for ex, _ in opts.mix_pool}
    b_part: Pool = []
    for ex, n in inner.kept:
        if ex.id in taken:  # both sets use identity_<row>; keep ids unique in the mixture
            ex = Example(**{**ex.__dict__, "id": f"mix_b_{ex.id}"})
        b_part.append((ex, n))
    return Picked(list(opts.mix_pool) + b_part, inner.drops, inner.cutoff,
                  notes={"set_a": len(opts.mix_pool), "set_b": len(b_part), "mix_strategy": opts.mix_strategy,
                         **inner.notes})


@STRATEGIES.register("ifd")
def ifd_top(pool: Pool, k: int | None, opts: Options) -> Picked:
    """Superfiltering: keep IFD < --ifd-below (1), then the k highest IFD (scored by a small LM)."""
    eligible: list[tuple[Example, int, float]] = []
    drops: Counter[str] = Counter()
    for ex, n in pool:
        v = ex.metadata.get("ifd")
        if not isinstance(v, (int, float)) or math.isnan(v):
            drops["ifd_undefined"] += 1
        elif v >= opts.ifd_below:
            drops[f"ifd_not_below:{opts.ifd_below:g}"] += 1
        else:
            eligible.append((ex, n, float(v)))
    n = need_k("ifd", k, len(eligible), opts.allow_fewer)
    top = sorted(eligible, key=lambda t: (-t[2], t[0].row))[:n]
    return Picked(by_row([(ex, ln) for ex, ln, _ in top]), drops,
                  notes={"ifd_below": opts.ifd_below, "eligible": len(eligible),
                         "ifd_cutoff": top[-1][2] if top else None})


def _rank_value(ex: Example, length: int, rank: str) -> float:
    if rank == "length":
        return float(length)
    if rank == "none":
        return 0.0
    v = ex.metadata.get(rank)
    return float(v) if isinstance(v, (int, float)) and not math.isnan(float(v)) else -math.inf


@STRATEGIES.register("diverse")
def diverse(pool: Pool, k: int | None, opts: Options) -> Picked:
    """k-center greedy over embeddings (cosine); --diverse-oversample 2 keeps the longest among diverse.

    --diverse-rank (length, none, or a numeric field) picks the first center and, with
    --diverse-oversample > 1, the k best among the oversample * k diverse candidates.
    """
    import numpy as np

    from harness_ext.selection.diversity import k_center_greedy

    n = need_k("diverse", k, len(pool), opts.allow_fewer)
    if opts.diverse_oversample < 1:
        raise ConfigError(f"diverse_oversample must be at least 1 (got {opts.diverse_oversample}).", hint="e.g. 2")
    missing = [ex.row for ex, _ in pool if ex.row not in opts.embeddings]
    if missing:
        raise ConfigError(f"{len(missing)} rows have no embedding (first: row {missing[0]}).",
                          hint="run the diverse strategy through select_to_dir, which computes them.")
    ranks = [_rank_value(ex, ln, opts.diverse_rank) for ex, ln in pool]
    first = max(range(len(pool)), key=lambda i: (ranks[i], -pool[i][0].row))
    m = min(len(pool), math.ceil(n * opts.diverse_oversample))
    centers = k_center_greedy(np.stack([opts.embeddings[ex.row] for ex, _ in pool]), m, first=first)
    best = sorted(centers, key=lambda i: (-ranks[i], pool[i][0].row))[:n]
    return Picked(by_row([pool[i] for i in best]),
                  notes={"candidates": m, "rank": opts.diverse_rank, "oversample": opts.diverse_oversample,
                         "embeddings": opts.embed_model or f"hidden states of {opts.score_model}"})


def strategies_help() -> str:
    return STRATEGIES.help_text()

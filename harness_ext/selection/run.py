"""`select_to_dir`: one selection run, from a data file to a folder of exports and a report.

longest/shortest use the streaming top-k pass (bounded memory, exact pruning, both cores on big
files); the other strategies measure the whole pool in memory and then choose. Everything is
written through `staged_dir`, so a failed run leaves `out` untouched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import (
    atomic_write_json,
    atomic_write_jsonl,
    provenance,
    sha256_file,
    staged_dir,
)
from harness_ext.core.errors import ConfigError, did_you_mean
from harness_ext.data.exports import write_examples
from harness_ext.selection.diversity import sentence_embeddings
from harness_ext.selection.ifd import ScoreConfig, Scorer, is_main_process, row_key, superfiltering_prompt
from harness_ext.selection.options import OPTIONS, RunOptions, parse_options
from harness_ext.selection.report import build_report, plot_lengths
from harness_ext.selection.scan import ScanResult, ScanSpec, scan
from harness_ext.selection.strategies import (
    STRATEGIES,
    TIE_RULE,
    Options,
    Picked,
    Pool,
    need_k,
    needed_scores,
)
from harness_ext.selection.units import COUNT_ON, make_unit

log = logging.getLogger(__name__)
__all__ = ["OPTIONS", "select_to_dir", "attach_scores"]

STREAMING = ("longest", "shortest")


@dataclass
class SelectRun:
    """One selection run's settings, validated (select_to_dir's arguments)."""

    data: str | Path
    strategy: str
    k: int | None
    unit: str
    seed: int
    count_on: str
    mix: str | Path | None
    source_field: str | None
    strict: bool
    opts: RunOptions


# Ten parameters: the `harness-ext select` flags, one to one, so a script reads like the command line;
# inside they are grouped into RunOptions at once (_prepare), and **options are the strategy's own.
def select_to_dir(
    data: str | Path,
    out: str | Path,
    *,
    strategy: str = "longest",
    k: int | None = 1000,
    unit: str = "nltk-words",
    seed: int = 0,
    count_on: str = "response",
    mix: str | Path | None = None,
    source_field: str | None = None,
    strict: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Select examples from `data` (file or hf:NAME) and write them to folder `out`.

    Writes selected.jsonl (Example rows, `metadata.length` = measured length, and the IFD fields when
    they were scored), alpaca.json, fastchat.json (the paper's released format), report.json,
    lengths.png, and scores.jsonl (every pool row's IFD) when the run scored the pool.
    `options`: see harness_ext.selection.options (OPTIONS) and `harness-ext select --help`.
    """
    started = time.time()
    run = _prepare(data, strategy=strategy, k=k, unit=unit, seed=seed, count_on=count_on, mix=mix,
                   source_field=source_field, strict=strict, options=options)
    scan_res, picked, scores = _choose(run)
    selected = []
    for ex, length in picked.kept:
        ex.metadata = {**ex.metadata, "length": length}
        selected.append(ex)
    report = _report(run, scan_res, picked)
    report["timing_s"] = round(time.time() - started, 3)
    report["provenance"] = provenance(stage="select")
    if not is_main_process():  # under `accelerate launch` every process scored; one writes
        return report
    with staged_dir(out) as tmp:
        write_examples(selected, tmp)
        if scores:
            atomic_write_jsonl(tmp / "scores.jsonl", scores)
        plot_lengths(scan_res.lengths, picked.cutoff, tmp / "lengths.png", unit=unit,
                     pruned=scan_res.pruned, title=f"{Path(str(data)).name}: {run.strategy} k={run.k}")
        atomic_write_json(tmp / "report.json", report)
    return report


# Ten parameters: select_to_dir's, passed on unchanged; this is where they become a RunOptions record.
def _prepare(data: str | Path, *, strategy: str, k: int | None, unit: str, seed: int, count_on: str,
             mix: str | Path | None, source_field: str | None, strict: bool, options: dict[str, Any]) -> SelectRun:
    """Every argument checked before any data is read (one ConfigError naming the first problem)."""
    STRATEGIES.get(strategy)
    if count_on not in COUNT_ON:
        raise ConfigError(f"Unknown count-on value '{count_on}'.", hint=f"use one of: {', '.join(COUNT_ON)}")
    opts = parse_options(strategy, seed, options, has_mix=mix is not None)
    if mix is not None and strategy != "mixture":
        opts.strategy.mix_strategy, strategy = strategy, "mixture"
    if k is None and strategy != "dedup":
        k = 1000
    if k is not None and k < 1 and strategy != "dedup":
        raise ConfigError(f"--k must be at least 1 (got {k}).", hint="e.g. --k 1000")
    make_unit(unit)  # fail fast on a bad unit before reading any data
    opts.dedup = opts.dedup or strategy == "dedup"
    return SelectRun(data, strategy, k, unit, seed, count_on, mix, source_field, strict, opts)


def _spec(run: SelectRun, mode: str, **changes: Any) -> ScanSpec:
    o = run.opts
    spec = ScanSpec(unit=run.unit, count_on=run.count_on, mode=mode, k=run.k, fmt=o.fmt,
                    source_field=run.source_field, strict=run.strict, dedup=o.dedup,
                    prune=not o.exact_stats, workers=o.workers)
    return replace(spec, **changes)


def _choose(run: SelectRun) -> tuple[ScanResult, Picked, list[dict[str, Any]]]:
    """Measure the pool, score it when the strategy needs model scores, and apply the strategy."""
    opts = run.opts.strategy
    if run.strategy in STREAMING:
        scan_res = scan(run.data, _spec(run, run.strategy))
        _check_source_field(run, scan_res)
        n = need_k(run.strategy, run.k, scan_res.pool, opts.allow_fewer)
        ranked = scan_res.kept[:n]
        return scan_res, Picked(sorted(ranked, key=lambda p: p[0].row), cutoff=ranked[-1][1] if ranked else None), []
    scan_res = scan(run.data, _spec(run, "all"))
    _check_source_field(run, scan_res)
    scores = attach_scores(scan_res.kept, opts, needed_scores(run.strategy, opts))
    if run.strategy != "mixture":
        return scan_res, STRATEGIES.get(run.strategy)(scan_res.kept, run.k, opts), scores
    a = scan(str(run.mix), _spec(run, "all", fmt=run.opts.mix_format, dedup=False))
    opts.mix_pool = a.kept
    picked = STRATEGIES.get("mixture")(scan_res.kept, run.k, opts)
    picked.notes["mix_input"] = {"path": str(run.mix), "sha256": _sha(run.mix), "rows_read": a.rows_read,
                                 "dropped": dict(a.drops)}
    return scan_res, picked, scores


def attach_scores(pool: Pool, opts: Options, need: frozenset[str]) -> list[dict[str, Any]]:
    """Compute what `need` asks for: IFD fields into each example's metadata, embeddings into
    `opts.embeddings`. Returns one scores.jsonl row per pool example (empty when nothing was scored)."""
    if not need:
        return []
    rows = [(ex.instruction, ex.input, ex.response) for ex, _ in pool]
    rows_out: list[dict[str, Any]] = []
    if "ifd" in need:
        scorer = Scorer(ScoreConfig(model=opts.score_model, max_length=opts.score_max_length,
                                    batch_tokens=opts.score_batch_tokens))
        scores, stats = scorer.score(rows)
        for (ex, _), r in zip(pool, rows, strict=True):
            s = scores[row_key(*r)]
            ex.metadata = {**ex.metadata, "ifd": s.ifd, "ppl_response": s.ppl_response,
                           "ppl_conditional": s.ppl_conditional}
            if opts.embed_model is None and s.embedding is not None:
                opts.embeddings[ex.row] = s.embedding
            rows_out.append({"row": ex.row, "id": ex.id, "ifd": s.ifd, "ppl_response": s.ppl_response,
                             "ppl_conditional": s.ppl_conditional})
        log.info("IFD: %d rows, %d from cache, %d scored in %.1fs", stats.rows, stats.cached, stats.scored,
                 stats.seconds)
    if "embeddings" in need and opts.embed_model is not None:
        texts = [superfiltering_prompt(i, x) + o for i, x, o in rows]
        vecs = sentence_embeddings(opts.embed_model, texts, [row_key(*r) for r in rows])
        for (ex, _), r in zip(pool, rows, strict=True):
            opts.embeddings[ex.row] = vecs[row_key(*r)]
    return rows_out


def _report(run: SelectRun, scan_res: ScanResult, picked: Picked) -> dict[str, Any]:
    opts = run.opts.strategy
    options = {"score_field": opts.score_field, "threshold": opts.threshold, "allow_fewer": opts.allow_fewer,
               "mix_strategy": opts.mix_strategy if run.strategy == "mixture" else None, "dedup": run.opts.dedup,
               "exact_stats": run.opts.exact_stats, "strict": run.strict, "format": scan_res.fmt,
               "source_field": run.source_field}
    if needed_scores(run.strategy, opts) & {"ifd"} or run.strategy in ("ifd", "diverse"):
        options.update(score_model=opts.score_model, score_max_length=opts.score_max_length,
                       ifd_below=opts.ifd_below, embed_model=opts.embed_model, diverse_rank=opts.diverse_rank,
                       diverse_oversample=opts.diverse_oversample)
    return build_report(scan_res, picked, strategy=run.strategy, k=run.k, unit=run.unit, count_on=run.count_on,
                        seed=run.seed, options=options, input_info={"path": str(run.data), "sha256": _sha(run.data)},
                        tie_rule=TIE_RULE)


def _check_source_field(run: SelectRun, scan_res: ScanResult) -> None:
    """An empty pool is explained here: a missing --source-field, or the first unusable row."""
    sf = run.source_field
    if sf and scan_res.pool == 0 and scan_res.drops.get(f"missing_field:{sf}"):
        raise _no_source_field(run.data, sf)
    _check_not_all_dropped(run.data, scan_res, {"fmt": run.opts.fmt, "source_field": sf})


def _no_source_field(data: str | Path, source_field: str) -> ConfigError:
    """Every usable row lacked --source-field: name it and the fields the rows do have."""
    from harness_ext.data.loaders import iter_raw_rows

    seen: set[str] = set()
    for i, (_row, _line, value) in enumerate(iter_raw_rows(data)):
        if isinstance(value, dict):
            seen.update(map(str, value))
        if i >= 999:
            break
    return ConfigError(
        f"{data}: no row has the source field '{source_field}'.{did_you_mean(source_field, seen)}",
        hint=f"pass --source-field with one of the fields the rows have: {', '.join(sorted(seen)) or '(none)'}.",
    )


def _check_not_all_dropped(data: str | Path, scan_res: ScanResult, common: dict[str, Any]) -> None:
    """Every row was unusable: say why, with the first bad row's file:line and what it holds,
    instead of a later "pool of 0 usable examples"."""
    if scan_res.pool or not scan_res.drops:
        return
    from harness_ext.data.loaders import load_examples

    counts = ", ".join(f"{n} {reason}" for reason, n in scan_res.drops.most_common())
    hint = f"none of the {scan_res.rows_read} rows is usable ({counts}); fix the rows or point --data at another file."
    # The error path only: a strict pass stops at the first unusable row and names it.
    load_examples(data, fmt=common["fmt"], source_field=common["source_field"], strict=True, strict_hint=hint)


def _sha(data: str | Path) -> str | None:
    if isinstance(data, str) and data.startswith("hf:"):
        return None
    return sha256_file(data)

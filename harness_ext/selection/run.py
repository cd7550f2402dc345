"""`select_to_dir`: one selection run, from a data file to a folder of exports and a report.

longest/shortest use the streaming top-k pass (bounded memory, exact pruning, both cores on big
files); the other strategies measure the whole pool in memory and then choose. Everything is
written through `staged_dir`, so a failed run leaves `out` untouched.
"""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_json, provenance, sha256_file, staged_dir
from harness_ext.data.loaders import check_format
from harness_ext.core.errors import ConfigError, did_you_mean
from harness_ext.data.exports import write_examples
from harness_ext.selection.strategies import STRATEGIES, TIE_RULE, Options, Picked, need_k
from harness_ext.selection.report import build_report, plot_lengths
from harness_ext.selection.scan import ScanResult, scan
from harness_ext.selection.units import COUNT_ON, make_unit

STREAMING = ("longest", "shortest")
_OPTION_NAMES = {f.name for f in fields(Options)} - {"seed", "mix_pool"}
EXTRA_OPTIONS = {"fmt", "format", "dedup", "exact_stats", "workers", "mix_format"}
#: Every option select_to_dir takes besides the data, out, strategy, k, unit, seed and source_field
#: (an experiment's `select.options`).
OPTIONS = frozenset(_OPTION_NAMES | EXTRA_OPTIONS | {"count_on", "mix", "strict"})


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
    **strategy_options: Any,
) -> dict[str, Any]:
    """Select examples from `data` (file or hf:NAME) and write them to folder `out`.

    Writes selected.jsonl (Example rows, `metadata.length` = measured length), alpaca.json,
    fastchat.json (the paper's released format), report.json and lengths.png. Returns the report.
    Options: score_field, threshold, allow_fewer, mix_strategy, fmt/format, mix_format, dedup,
    exact_stats (measure every row: exact pool statistics, no pruning), workers.
    """
    started = time.time()
    unknown_opts = set(strategy_options) - _OPTION_NAMES - EXTRA_OPTIONS
    if unknown_opts:
        allowed = ", ".join(sorted(_OPTION_NAMES | EXTRA_OPTIONS))
        raise ConfigError(f"Unknown selection option(s): {', '.join(sorted(unknown_opts))}.",
                          hint=f"allowed: {allowed}")
    fn = STRATEGIES.get(strategy)
    if count_on not in COUNT_ON:
        raise ConfigError(f"Unknown count-on value '{count_on}'.", hint=f"use one of: {', '.join(COUNT_ON)}")
    fmt = check_format(strategy_options.pop("format", None) or strategy_options.pop("fmt", "auto"))
    strategy_options.pop("fmt", None)
    mix_format = check_format(strategy_options.pop("mix_format", "auto"))
    dedup = bool(strategy_options.pop("dedup", False)) or strategy == "dedup"
    exact_stats = bool(strategy_options.pop("exact_stats", False))
    workers = strategy_options.pop("workers", None)
    opts = Options(seed=seed, **strategy_options)
    if strategy == "mixture" and mix is None:
        raise ConfigError("Strategy 'mixture' needs set A.", hint="pass --mix PATH (all of it is kept).")
    if mix is not None and strategy != "mixture":
        opts.mix_strategy, strategy, fn = strategy, "mixture", STRATEGIES.get("mixture")
    if strategy == "mixture":
        STRATEGIES.get(opts.mix_strategy)
    if k is None and strategy != "dedup":
        k = 1000
    if k is not None and k < 1 and strategy != "dedup":
        raise ConfigError(f"--k must be at least 1 (got {k}).", hint="e.g. --k 1000")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1 (got {workers}).", hint="e.g. --workers 2, or leave it out")
    make_unit(unit)  # fail fast on a bad unit before reading any data

    common = dict(unit=unit, count_on=count_on, fmt=fmt, source_field=source_field, strict=strict,
                  dedup=dedup, workers=workers)
    scan_res: ScanResult
    if strategy in STREAMING:
        scan_res = scan(data, mode=strategy, k=k, prune=not exact_stats, **common)
        if source_field and scan_res.pool == 0 and scan_res.drops.get(f"missing_field:{source_field}"):
            raise _no_source_field(data, source_field)
        _check_not_all_dropped(data, scan_res, common)
        n = need_k(strategy, k, scan_res.pool, opts.allow_fewer)
        ranked = scan_res.kept[:n]
        picked = Picked(sorted(ranked, key=lambda p: p[0].row), cutoff=ranked[-1][1] if ranked else None)
    else:
        scan_res = scan(data, mode="all", **common)
        if source_field and scan_res.pool == 0 and scan_res.drops.get(f"missing_field:{source_field}"):
            raise _no_source_field(data, source_field)
        _check_not_all_dropped(data, scan_res, common)
        if strategy == "mixture":
            a = scan(str(mix), mode="all", **{**common, "fmt": mix_format, "dedup": False})
            opts.mix_pool = a.kept
            picked = fn(scan_res.kept, k, opts)
            picked.notes["mix_input"] = {"path": str(mix), "sha256": _sha(mix), "rows_read": a.rows_read,
                                         "dropped": dict(a.drops)}
        else:
            picked = fn(scan_res.kept, k, opts)

    selected = []
    for ex, length in picked.kept:
        ex.metadata = {**ex.metadata, "length": length}
        selected.append(ex)
    report = build_report(
        scan_res, picked, strategy=strategy, k=k, unit=unit, count_on=count_on, seed=seed,
        options={"score_field": opts.score_field, "threshold": opts.threshold, "allow_fewer": opts.allow_fewer,
                 "mix_strategy": opts.mix_strategy if strategy == "mixture" else None, "dedup": dedup,
                 "exact_stats": exact_stats, "strict": strict, "format": scan_res.fmt,
                 "source_field": source_field},
        input_info={"path": str(data), "sha256": _sha(data)},
        tie_rule=TIE_RULE,
    )
    report["timing_s"] = round(time.time() - started, 3)
    report["provenance"] = provenance(stage="select")
    with staged_dir(out) as tmp:
        write_examples(selected, tmp)
        plot_lengths(scan_res.lengths, picked.cutoff, tmp / "lengths.png", unit=unit,
                     pruned=scan_res.pruned, title=f"{Path(str(data)).name}: {strategy} k={k}")
        atomic_write_json(tmp / "report.json", report)
    return report


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

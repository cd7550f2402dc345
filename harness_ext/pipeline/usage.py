"""Tokens and cost of a run's judge stages, for the run report.

Each stage that talks to a judge endpoint (pairwise `judge:A-vs-B`, `mt_bench:ARM`, `refine:ARM`)
writes a `usage` block into its summary (llm/ledger.py). This module finds those blocks through the
RunLayout, names each line by the stage it came from, and sums them: `usage.json` beside the report,
a table in index.html and README.md, one line in the leaderboard's description.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from harness_ext.pipeline.experiment import ExperimentConfig
from harness_ext.pipeline.layout import RunLayout

COLUMNS = ("stage", "model", "source", "requests", "prompt_tokens", "completion_tokens", "cost_usd")


def judge_stages(cfg: ExperimentConfig, layout: RunLayout) -> list[str]:
    """The run's stages that may have paid for judge requests, in pipeline order."""
    stages = [layout.refine(arm.name) for arm in cfg.arms if arm.refine]
    stages += [layout.judge(a, b) for a, b in cfg.compare]
    stages += [layout.mt_bench(arm.name) for arm in cfg.arms]
    return stages


def collect_usage(cfg: ExperimentConfig, layout: RunLayout) -> dict[str, Any] | None:
    """Every judge stage's usage lines (named by stage) and their totals; None when none recorded any."""
    from harness_ext.llm.ledger import merge_blocks

    blocks = []
    for stage in judge_stages(cfg, layout):
        folder = layout.dir(stage)
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else ():
            block = _usage_of(path)
            if block is not None:
                lines = [{**ln, "stage": stage} for ln in block.get("lines", [])]
                blocks.append({**block, "lines": lines})
    if not blocks:
        return None
    merged = merge_blocks(blocks)
    merged["prices"] = next((b["prices"] for b in blocks if b.get("prices")), None)
    return merged


def _usage_of(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    usage = doc.get("usage") if isinstance(doc, dict) else None
    return usage if isinstance(usage, dict) and isinstance(usage.get("lines"), list) else None


def _cost(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:,.4f}"


def describe(usage: dict[str, Any] | None) -> str:
    """One sentence for the leaderboard's description.

    >>> describe(None)
    'Judge cost: no paid judge requests (a local judge, or none ran).'
    >>> describe({"total": {"requests_paid": 3, "requests_cached": 1, "prompt_tokens": 900,
    ...                     "completion_tokens": 30, "cost_usd": 0.0021, "unpriced_models": []}})
    'Judge cost: $0.0021 for 3 paid requests (900 prompt + 30 completion tokens; 1 from the cache).'
    """
    if usage is None:
        return "Judge cost: no paid judge requests (a local judge, or none ran)."
    t = usage["total"]
    unpriced = f"; no price for {', '.join(t['unpriced_models'])}" if t.get("unpriced_models") else ""
    return (f"Judge cost: {_cost(t.get('cost_usd'))} for {t['requests_paid']} paid requests "
            f"({t['prompt_tokens']} prompt + {t['completion_tokens']} completion tokens; "
            f"{t['requests_cached']} from the cache{unpriced}).")


def _rows(usage: dict[str, Any]) -> list[list[str]]:
    rows = [[str(ln.get(c, "")) if c != "cost_usd" else _cost(ln.get(c)) for c in COLUMNS] for ln in usage["lines"]]
    t = usage["total"]
    rows.append(["total", "", "paid", str(t["requests_paid"]), str(t["prompt_tokens"]),
                 str(t["completion_tokens"]), _cost(t.get("cost_usd"))])
    return rows


def usage_html(usage: dict[str, Any] | None) -> str:
    """The report's "Judge tokens and cost" section."""
    if usage is None:
        return f"<h2>Judge tokens and cost</h2><p>{html.escape(describe(None))}</p>\n"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in _rows(usage))
    prices = usage.get("prices") or {}
    note = f"<p>Prices: {html.escape(json.dumps(prices))}</p>" if prices else ""
    return f"<h2>Judge tokens and cost</h2><table><tr>{head}</tr>{body}</table>{note}\n"


def usage_markdown(usage: dict[str, Any] | None) -> str:
    if usage is None:
        return f"## Judge tokens and cost\n\n{describe(None)}\n"
    lines = ["## Judge tokens and cost", "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(usage)]
    return "\n".join(lines) + "\n"

"""Render a leaderboard as a terminal table, Markdown, CSV, or a self-contained HTML report."""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Iterable
from pathlib import Path

from harness_ext.leaderboard.model import Entry, Leaderboard, Metric

# (column title, suite, metric name): the headline numbers, in the paper's table order.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("AE win %", "alpaca_eval", "win_rate"),
    ("AE LC %", "alpaca_eval", "lc_win_rate"),
    ("AE len", "alpaca_eval", "avg_length"),
    ("MT t1", "mt_bench", "turn_1"),
    ("MT t2", "mt_bench", "turn_2"),
    ("MT avg", "mt_bench", "average"),
    ("OpenLLM avg", "open_llm", "average"),
)

Table = tuple[list[str], list[list[str]]]


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if abs(value) >= 100 and float(value).is_integer() else f"{value:.{digits}f}"


def _headline(entry: Entry, suite: str, name: str) -> Metric | None:
    """The entry's overall value for suite/name: no test set, no epoch; first one recorded wins."""
    return next((m for m in entry.metrics if (m.suite, m.name, m.test_set, m.epoch) == (suite, name, None, None)), None)


def _extra_columns(entries: list[Entry]) -> list[tuple[str, str, str]]:
    """ROUGE and IFS headline columns for whatever metric names the entries carry."""
    seen: dict[tuple[str, str], None] = {}
    for e in entries:
        for m in e.metrics:
            if m.suite in ("rouge", "ifs") and m.test_set is None and m.epoch is None:
                seen[(m.suite, m.name)] = None
    return [(f"{suite}:{name}", suite, name) for suite, name in seen]


def _ift(entry: Entry) -> str:
    if entry.ift_data and entry.ift_data_size is not None:
        return f"{entry.ift_data} ({entry.ift_data_size:,})"
    return entry.ift_data or ""


def summary_table(board: Leaderboard) -> Table:
    """One row per entry: descriptors + the headline metrics any entry has."""
    columns = [c for c in HEADLINE if any(_headline(e, c[1], c[2]) for e in board.entries)]
    columns += _extra_columns(board.entries)
    headers = ["Model", "Origin", "Base model", "IFT data", "Selection", "Refinement", "NEFTune"]
    headers += [c[0] for c in columns]
    rows = []
    for e in board.entries:
        row = [e.model, e.origin, e.base_model or "", _ift(e), e.selection or "", e.refinement or "",
               _fmt(e.neftune_alpha, 0) if e.neftune_alpha is not None else ""]
        for _, suite, name in columns:
            m = _headline(e, suite, name)
            row.append(_fmt(m.value) if m else "")
        rows.append(row)
    return headers, rows


def pairwise_table(board: Leaderboard) -> Table:
    """Win / tie / loss (%, with CI when known) per model, baseline, test set and judge."""
    groups: dict[tuple[str, str, str, str, float | None], dict[str, Metric]] = {}
    for e in board.entries:
        for m in e.metrics:
            if m.suite in ("pairwise", "human") and m.name in ("win", "tie", "loss"):
                key = (e.model, m.baseline or "", m.test_set or "", m.provenance.judge or "", m.epoch)
                groups.setdefault(key, {})[m.name] = m
    headers = ["Model", "vs", "Test set", "Judge", "Win %", "Tie %", "Loss %", "n"]
    rows = []
    for (model, baseline, test_set, judge, epoch), ms in groups.items():
        cells = []
        for outcome in ("win", "tie", "loss"):
            m = ms.get(outcome)
            text = _fmt(m.value, 1) if m else ""
            if m and m.ci:
                text += f" [{m.ci[0]:.1f}, {m.ci[1]:.1f}]"
            cells.append(text)
        n = next((m.n for m in ms.values() if m.n is not None), None)
        label = test_set if epoch is None else f"{test_set} (epoch {epoch:g})"
        rows.append([model, baseline, label, judge, *cells, str(n) if n is not None else ""])
    return headers, rows


def suite_table(board: Leaderboard, suite: str) -> Table:
    """Per-task (open_llm) or per-category (mt_bench) values: one column per task/category."""
    names: dict[str, None] = {}
    values: dict[tuple[str, str], float] = {}
    for e in board.entries:
        for m in e.metrics:
            if m.suite != suite or m.epoch is not None:
                continue
            if suite == "mt_bench" and m.test_set and m.name == "average":
                col = m.test_set
            elif suite == "open_llm" and m.test_set is None:
                col = m.name
            else:
                continue
            names[col] = None
            values.setdefault((e.model, col), m.value)
    cols = list(names)
    rows = [[e.model] + [_fmt(values.get((e.model, c))) for c in cols]
            for e in board.entries if any((e.model, c) in values for c in cols)]
    return ["Model", *cols], rows


def all_tables(board: Leaderboard) -> list[tuple[str, Table]]:
    """The titled tables every rendering shows (empty ones left out)."""
    tables = [
        ("Summary", summary_table(board)),
        ("Pairwise (win / tie / loss)", pairwise_table(board)),
        ("Open LLM per task", suite_table(board, "open_llm")),
        ("MT-Bench per category", suite_table(board, "mt_bench")),
    ]
    return [(title, t) for title, t in tables if t[1]]


def format_text(headers: list[str], rows: list[list[str]]) -> str:
    """A plain aligned table for the terminal."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(s.rstrip() for s in out)


def render_text(board: Leaderboard) -> str:
    parts = [f"{board.name}: {len(board.entries)} entries"]
    for title, (headers, rows) in all_tables(board):
        parts += ["", title, format_text(headers, rows)]
    return "\n".join(parts) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(map(_md_cell, headers)) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
    return "\n".join(out)


def citations(board: Leaderboard) -> list[str]:
    """Distinct citations of published numbers on the board, for a Sources section."""
    seen: dict[str, None] = {}
    for e in board.entries:
        for m in e.metrics:
            if m.provenance.citation:
                via = f" (retrieved via {m.provenance.retrieved_via})" if m.provenance.retrieved_via else ""
                seen[m.provenance.citation + via] = None
    return list(seen)


def render_markdown(board: Leaderboard, images: Iterable[Path] = ()) -> str:
    parts = [f"# {board.name}", ""]
    if board.description:
        parts += [board.description, ""]
    for title, (headers, rows) in all_tables(board):
        parts += [f"## {title}", "", format_markdown(headers, rows), ""]
    for img in images:
        parts += [f"![{img.stem}]({img.name})", ""]
    cites = citations(board)
    if cites:
        parts += ["## Sources", ""] + [f"- {c}" for c in cites] + [""]
    return "\n".join(parts)


def render_csv(board: Leaderboard) -> str:
    """One row per metric with its provenance: the flat export for spreadsheets and pandas."""
    buf = io.StringIO()
    cols = ["model", "origin", "suite", "name", "value", "unit", "test_set", "baseline", "epoch", "stderr",
            "ci_low", "ci_high", "n", "judge", "source", "sha256", "citation", "date"]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for e in board.entries:
        for m in e.metrics:
            p = m.provenance
            writer.writerow([e.model, e.origin, m.suite, m.name, m.value, m.unit, m.test_set, m.baseline, m.epoch,
                             m.stderr, m.ci[0] if m.ci else None, m.ci[1] if m.ci else None, m.n, p.judge,
                             p.source, p.sha256, p.citation, p.date])
    return buf.getvalue()


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}th{background:#f2f2f2}
tr.paper td{color:#555;font-style:italic}figure{display:inline-block;margin:1em}img{max-width:720px}"""


def format_html_table(headers: list[str], rows: list[list[str]]) -> str:
    origin = headers.index("Origin") if "Origin" in headers else None
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"]
    for r in rows:
        cls = ' class="paper"' if origin is not None and r[origin] == "paper" else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html_page(board: Leaderboard, images: Iterable[Path] = ()) -> str:
    """A single HTML file: tables plus the PNG plots embedded as data URIs (no network needed)."""
    parts = ["<!doctype html>", "<html><head><meta charset='utf-8'>",
             f"<title>{html.escape(board.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(board.name)}</h1>"]
    if board.description:
        parts.append(f"<p>{html.escape(board.description)}</p>")
    for title, (headers, rows) in all_tables(board):
        parts += [f"<h2>{html.escape(title)}</h2>", format_html_table(headers, rows)]
    images = list(images)
    if images:
        parts.append("<h2>Plots</h2>")
    for img in images:
        data = base64.b64encode(img.read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(img.stem)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(img.name)}</figcaption></figure>")
    cites = citations(board)
    if cites:
        parts.append("<h2>Sources</h2><ul>" + "".join(f"<li>{html.escape(c)}</li>" for c in cites) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

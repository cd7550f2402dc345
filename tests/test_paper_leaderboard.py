"""The paper's published numbers (leaderboards/long_is_more_2402.04833.json) against the paper's text.

The board is built by scripts/build_paper_leaderboard.py from tables typed in by hand. These tests hold
that transcription to the paper: every cell of the tables whose text extraction is clean (Tables 1, 4, 6,
8) is parsed from ../shared/papers/long-is-more-2402.04833.txt and compared with the board; the mangled
ones (2, 5, 7) are checked value by value inside their table's block of text.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness_ext.core.paths import shared_data_dir
from harness_ext.leaderboard import paper_board
from harness_ext.leaderboard.citations import cited, select_tables
from harness_ext.leaderboard.schema import schema_errors

ROOT = Path(__file__).resolve().parents[1]
PAPER = shared_data_dir().parent / "papers" / "long-is-more-2402.04833.txt"
needs_paper = pytest.mark.skipif(not PAPER.is_file(), reason=f"the paper's text is not at {PAPER}")

# Table -> number of published cells (Table 8's "/" and "?" cells are not numbers and are not counted).
CELLS = {"Table 1": 68, "Table 2": 18, "Table 4": 48, "Table 5": 18, "Table 6": 9, "Table 7": 5, "Table 8": 56}


def _count(board) -> dict[str, int]:
    counts = dict.fromkeys(CELLS, 0)
    for e in board.entries:
        for m in e.metrics:
            for cite in m.provenance.citation.split(" | "):  # a shared value counts for each table citing it
                for table in CELLS:
                    if f", {table}," in cite:
                        counts[table] += 1
    return counts


def _block(text: str, start: str, end: str) -> str:
    a = text.index(start)
    return text[a: text.index(end, a + len(start))]


def _metric(board, model: str, suite: str, name: str, **kw):
    entry = board.get(model)
    assert entry is not None, model
    m = entry.metric(suite, name, **kw)
    assert m is not None, (model, suite, name, kw)
    return m


def test_committed_board_is_the_scripts_output_and_valid():
    out = subprocess.run([sys.executable, "scripts/build_paper_leaderboard.py", "--check"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    import json

    assert schema_errors(json.loads((ROOT / "leaderboards/long_is_more_2402.04833.json").read_text())) == []


def test_every_table_cell_is_on_the_board_with_a_primary_citation():
    board = paper_board()
    assert _count(board) == CELLS
    assert sum(CELLS.values()) == 222
    for e in board.entries:
        assert e.origin == "paper"
        for m in e.metrics:
            assert "arXiv:2402.04833" in m.provenance.citation and cited(m), m
            assert "secondary" not in (m.provenance.retrieved_via or "")
    # named as `harness-ext study` results import, so a user's own study lines up with it
    human = _metric(board, "paper: Llama-2-7B / Alpaca-1k-longest", "human", "win", test_set="human_study")
    assert (human.value, human.n, human.baseline) == (71.0, 425, "paper: Llama-2-7B / Alpaca-52k")
    # the same number printed in two tables is one metric citing both
    shared = _metric(board, "paper: Llama-2-7B / Refined-Alpaca-1k-longest", "alpaca_eval", "win_rate",
                     baseline="gpt4_turbo")
    assert shared.value == 6.0 and {"Table 1", "Table 8"} <= cited(shared)


@needs_paper
def test_tables_1_4_6_8_equal_the_papers_text_cell_by_cell():
    text = PAPER.read_text(encoding="utf-8")
    board = paper_board()
    # Table 1: "<row>\t<ift>\t<pref>\t<win>\t<len>" under "Base model: X" headers.
    t1 = _block(text, "Models\t# IFT Data", "Llama-2-7B models, both LIMA-1k")
    base, checked = "Notable baselines", 0
    for line in t1.splitlines()[1:]:
        if line.startswith("Base model: "):
            base = line.split(": ", 1)[1].strip()
            continue
        cells = line.split("\t")
        if len(cells) != 5 or cells[0] == "Notable baselines":
            continue
        win, length = float(cells[3]), float(cells[4].lstrip("-"))  # AlpaGasus-1k prints '-745'
        in_base = [e for e in board.entries
                   if (e.base_model == base if base != "Notable baselines" else e.base_model is None)]
        pairs = {(e.model, m.name, m.value) for e in in_base for m in e.metrics
                 if m.suite == "alpaca_eval" and any(", Table 1, row" in c for c in m.provenance.citation.split(" | "))}
        assert any((model, "win_rate", win) in pairs and (model, "avg_length", length) in pairs
                   for model, _, _ in pairs), (base, cells)
        checked += 1
    assert checked == 34
    # Table 4: one line per model, 12 numbers.
    t4 = _block(text, "Models\tROUGE-1", "B.6. Diversity")
    names = {"Llama-2-7B (base)": "paper: Llama-2-7B", "Alpaca-52k": "paper: Llama-2-7B / Alpaca-52k",
             "AlpaGasus-1k": "paper: Llama-2-7B / AlpaGasus-1k",
             "Alpaca-1k-longest": "paper: Llama-2-7B / Alpaca-1k-longest"}
    for line in t4.splitlines()[1:]:
        cells = line.split("\t")
        if cells[0] not in names:
            continue
        values = [float(re.sub(r"</?u>", "", c)) for c in cells[1:13]]
        for i, value in enumerate(values):
            task = ("govreport", "summscreenfd", "qmsum")[i // 4]
            name = f"{task}/{('rouge1', 'rouge2', 'rougeL', 'avg')[i % 4]}"
            assert _metric(board, names[cells[0]], "rouge", name, test_set=task).value == value
    # Table 6: rows 1k-shortest/random/longest, columns Alpaca, Evol-Instruct, Open-Hermes.
    t6 = _block(text, "Model\tAlpaca-52k\tEvol-Instruct-70k", "D.1.")
    for line in t6.splitlines()[1:]:
        cells = line.split("\t")
        if len(cells) != 4:
            continue
        for prefix, value in zip(("Alpaca", "Evol-Instruct", "Open-Hermes"), cells[1:], strict=True):
            m = _metric(board, f"paper: Llama-2-7B / {prefix}-{cells[0]}", "mt_bench", "average")
            assert m.value == float(value) and "Table 6" in cited(m)
    # Table 8: 8 numbers per row, "/" and "?" are not published.
    t8 = _block(text, "Models\t# SFT data\tARC", "LIMA-1k also provides")
    tasks = ("arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2", "winogrande", "average")
    rows = 0
    for line in t8.splitlines()[1:]:
        cells = line.split("\t")
        if len(cells) != 10:
            continue
        base, _, data = cells[0].partition("-Alpaca") if "Alpaca" in cells[0] else (cells[0], "", "")
        base = base.removesuffix("-Refined").removesuffix("-Recycled")
        if data:
            data = cells[0][len(base) + 1:].rstrip("*").replace("Refined-Alpaca-1k-L", "Refined-Alpaca-1k-longest")
        model = f"paper: {base}" + (f" / {data}" if data else "")
        for task, value in zip(tasks, cells[2:8], strict=True):
            if value in ("?", "/"):
                assert board.get(model).metric("open_llm", task,
                                               test_set="5 tasks (no GSM8K)" if task == "average" else None) is None
                continue
            test_set = "5 tasks (no GSM8K)" if task == "average" else None
            assert _metric(board, model, "open_llm", task, test_set=test_set).value == float(value), (model, task)
        if cells[8] not in ("?", "/"):
            assert _metric(board, model, "alpaca_eval", "win_rate", baseline="gpt4_turbo").value == float(cells[8])
            assert _metric(board, model, "alpaca_eval", "avg_length", baseline="gpt4_turbo").value == float(cells[9])
        rows += 1
    assert rows == 8


@needs_paper
def test_mangled_tables_2_5_7_values_appear_in_their_blocks():
    text = PAPER.read_text(encoding="utf-8")
    board = paper_board()
    blocks = {"Table 2": _block(text, "Table 2. Single-score", "the instructions refined by introspection"),
              "Table 5": _block(text, "Table 5. Head-to-head", "Table 6."),
              "Table 7": _block(text, "Table 7. Performance", "Table 8.")}
    for table, block in blocks.items():
        numbers = re.findall(r"\d+\.\d+", re.sub(r"</?u>", "", block))
        values = sorted(f"{m.value:.2f}" if table != "Table 5" else f"{m.value:.1f}"
                        for e in board.entries for m in e.metrics
                        for cite in m.provenance.citation.split(" | ") if f", {table}," in cite)
        pool = list(numbers)
        for v in values:  # each board value consumes one printed number of its table
            assert v in pool, (table, v)
            pool.remove(v)
        assert len(values) == CELLS[table]


def test_show_filters_by_table(tmp_path):
    board = paper_board()
    only2 = select_tables(board, ["2"])
    assert {m.suite for e in only2.entries for m in e.metrics} == {"mt_bench"}
    assert _count(only2)["Table 2"] == 18 and _count(only2)["Table 1"] == 0
    cli = [sys.executable, "-m", "harness_ext", "leaderboard", "show",
           str(ROOT / "leaderboards/long_is_more_2402.04833.json"), "--no-paper"]
    out = subprocess.run([*cli, "--table", "Fig. 4", "--table", "human"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "59.9" in out.stdout and "71.0" in out.stdout and "7.88" not in out.stdout
    bad = subprocess.run([*cli, "--table", "Table 9"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "cite no Table 9" in bad.stderr and "Table 8" in bad.stderr

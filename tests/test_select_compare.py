"""`select compare` on real selections: folders written by `select` and the paper's released FastChat files."""

from __future__ import annotations

import json

import pytest

from harness_ext.commands.select import default_data
from harness_ext.selection.compare import compare, load_selection, render_table
from harness_ext.selection.run import select_to_dir
from tests.conftest import run_cli


@pytest.fixture
def demo_selections(tmp_path):
    data = default_data()
    for strategy in ("longest", "shortest", "random"):
        select_to_dir(data, tmp_path / strategy, strategy=strategy, k=40, unit="words")
    return tmp_path


def test_overlap_jaccard_and_lengths_of_our_selections(demo_selections):
    d = demo_selections
    res = compare([d / "longest", d / "shortest", d / "random", d / "longest" / "fastchat.json"], unit="words")
    names = res["selections"]
    assert names == ["longest", "shortest", "random", "fastchat"] and res["match_key"] == "row"
    rows = {n: {json.loads(x)["row"] for x in (d / n / "selected.jsonl").read_text().splitlines()}
            for n in names[:3]}
    assert res["overlap"][0][2] == len(rows["longest"] & rows["random"])
    assert res["jaccard"][0][2] == round(len(rows["longest"] & rows["random"])
                                         / len(rows["longest"] | rows["random"]), 4)
    assert res["overlap"][0][1] == 0 and res["jaccard"][0][0] == 1.0
    assert res["overlap"][0][3] == 40  # our FastChat export (identity_<row>) matches its own folder
    per = res["per_selection"]
    assert per["longest"]["length"]["min"] >= per["random"]["length"]["median"] >= per["shortest"]["length"]["max"]
    assert sum(per["random"]["sources"].values()) == 40
    assert "score" in per["longest"]["scores"]  # the demo rows carry a numeric score
    table = render_table(res)
    assert "overlap (rows in both; matched by row)" in table and "longest" in table


def test_cli_writes_table_json_and_plot(demo_selections, tmp_path):
    d = demo_selections
    r = run_cli("select", "compare", str(d / "longest"), str(d / "random"), "--out", str(tmp_path / "cmp"),
                "--compare-unit", "words")
    assert r.returncode == 0, r.stderr
    assert "Jaccard" in r.stdout
    out = tmp_path / "cmp"
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "compare.json").read_text())["selections"] == ["longest", "random"]
    r = run_cli("select", "compare", str(d / "longest"), "--out", str(tmp_path / "one"))
    assert r.returncode == 2 and "at least two" in r.stderr and not (tmp_path / "one").exists()
    r = run_cli("select", "compare", str(d / "longest"), str(tmp_path / "nope"))
    assert r.returncode == 2 and "no selected.jsonl" in r.stderr


def test_the_papers_released_fastchat_selection(shared_data, tmp_path):
    """The paper's LIMA-1k (FastChat, identity_<row> ids, a score per row) against our longest-100 of it."""
    lima = shared_data / "lima" / "fastchat_lima_1k.json"
    select_to_dir(lima, tmp_path / "lima-100", strategy="longest", k=100, unit="words")
    paper = load_selection(lima)
    assert len(paper.rows) == 1000 and all(r is not None for r in paper.rows)
    res = compare([lima, tmp_path / "lima-100"], unit="words")
    assert res["match_key"] == "row"
    assert res["overlap"][0][1] == 100 and res["jaccard"][0][1] == 0.1
    per = res["per_selection"]
    assert per["lima-100"]["length"]["min"] >= per["fastchat_lima_1k"]["length"]["median"]
    assert per["fastchat_lima_1k"]["scores"]["score"]["count"] == 1000

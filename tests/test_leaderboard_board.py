"""Boards: schema validation, merge without loss, the paper's numbers, and the CLI round trip."""

from __future__ import annotations

import json

import pytest

from harness_ext.core.errors import InputError
from harness_ext.core.paths import leaderboards_dir
from harness_ext.leaderboard import Leaderboard, MergeConflictError, add_results, merge_boards, paper_board
from harness_ext.leaderboard.plots import read_loss_log
from tests import lb_fixtures as fx
from tests.conftest import run_cli


def _board(tmp_path, name="b", csv_model="my-7b"):
    board = Leaderboard(name=name)
    folder = tmp_path / "weighted_alpaca_eval_gpt4_turbo"  # alpaca_eval names the folder after the judge
    folder.mkdir(exist_ok=True)
    add_results(board, fx.write_alpaca_csv(folder / "leaderboard.csv"), model=csv_model)
    return board


def test_saved_board_validates_and_bad_fields_are_named(tmp_path):
    path = tmp_path / "board.json"
    _board(tmp_path).save(path)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1 and doc["entries"][0]["metrics"][0]["provenance"]["sha256"]
    doc["entries"][0]["metrics"][1]["value"] = "high"
    doc["entries"][0]["neftune_alpha"] = -1
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as exc:
        Leaderboard.load(path)
    msg = str(exc.value)
    assert "entry 0 ('my-7b')" in msg and "$.entries[0].metrics[1].value" in msg and '"high"' in msg
    assert "$.entries[0].neftune_alpha = -1" in msg
    proc = run_cli("leaderboard", "validate", str(path))
    assert proc.returncode == 1
    assert "$.entries[0].metrics[1].value" in proc.stderr and "is not of type 'number'" in proc.stderr


def test_merge_keeps_everything_and_reports_conflicts(tmp_path):
    a = _board(tmp_path)
    b = Leaderboard(name="b2")
    add_results(b, fx.write_mt_bench(tmp_path / "j.jsonl", {"my-7b": 5.0}), model="my-7b", base_model="Llama-2-7B")
    merged, conflicts = merge_boards([a, b])
    assert conflicts == []
    (entry,) = merged.entries
    assert {m.suite for m in entry.metrics} == {"alpaca_eval", "mt_bench"} and entry.base_model == "Llama-2-7B"
    again, conflicts = merge_boards([merged, a])  # the same numbers again are not a conflict
    assert conflicts == [] and len(again.entries[0].metrics) == len(entry.metrics)

    c = Leaderboard(name="c")
    csv2 = tmp_path / "rerun" / "weighted_alpaca_eval_gpt4_turbo" / "leaderboard.csv"
    csv2.parent.mkdir(parents=True)
    csv2.write_text(fx.AE_HEADER + "\nmy-7b,9.9,0.9,58,745,2,805,7.3,community,1700,6.1,0.3\n")
    add_results(c, csv2, model="my-7b")
    with pytest.raises(MergeConflictError, match="win_rate.*7.5.*9.9"):
        merge_boards([merged, c])
    resolved, conflicts = merge_boards([merged, c], prefer="incoming")
    assert len(conflicts) == 1
    assert resolved.entries[0].metric("alpaca_eval", "win_rate").value == 9.9

    with pytest.raises(MergeConflictError):  # add_results leaves the board untouched on conflict
        add_results(merged, csv2, model="my-7b")
    assert merged.entries[0].metric("alpaca_eval", "win_rate").value == 7.5


def test_paper_numbers_cite_their_tables():
    board = paper_board()
    assert (leaderboards_dir() / "long_is_more_2402.04833.json").is_file()
    for entry in board.entries:
        assert entry.origin == "paper" and entry.model.startswith("paper: ")
        for m in entry.metrics:
            assert "arXiv:2402.04833" in m.provenance.citation
            assert any(t in m.provenance.citation for t in ("Table ", "Fig. ", "Sec. "))
            assert m.provenance.retrieved_via.startswith("the paper's text")
    best = board.get("paper: Llama-2-7B / Refined-Alpaca-1k-longest + NEFTune")
    assert best.metric("alpaca_eval", "win_rate").value == 7.88
    assert "Table 1, row 'Refined-Alpaca-1k-longest + NEFTune' (base model Llama-2-7B)" in best.metric("alpaca_eval", "win_rate").provenance.citation


def test_loss_log_rows_are_checked(tmp_path):
    log = fx.write_loss_log(tmp_path / "log.jsonl", [2.0, 1.5, 1.0])
    assert read_loss_log(log) == [(0.0, 2.0), (10.0, 1.5), (20.0, 1.0)]
    log.write_text('{"step": 1, "loss": 2.0}\n{"step": "x", "loss": 1.0}\n')
    with pytest.raises(InputError, match=r"log.jsonl:2: .*step='x'"):
        read_loss_log(log)


def test_cli_round_trip_every_importer_export_validate_render(tmp_path):
    board = tmp_path / "board.json"
    lm = fx.write_lm_eval(tmp_path / "results.json", model="my-7b")
    steps = [
        ("add", str(board), str(lm), "--base-model", "Llama-2-7B", "--ift-data", "Alpaca-1k-longest",
         "--ift-size", "1000", "--selection", "longest", "--neftune-alpha", "5"),
        ("add", str(board), str(fx.write_alpaca_csv(tmp_path / "leaderboard.csv")), "--model", "my-7b"),
        ("add", str(board), str(fx.write_mt_bench(tmp_path / "gpt-4_single.jsonl", {"my-7b": 5.0, "b": 4.0})), "--all"),
        ("add", str(board), str(fx.write_pairwise(tmp_path / "pairwise.json"))),
        ("add", str(board), str(fx.write_annotations(tmp_path / "annotations.json", "my-7b")), "--epoch", "3"),
    ]
    for args in steps:
        proc = run_cli("leaderboard", *args)
        assert proc.returncode == 0, proc.stderr
    saved = Leaderboard.load(board)
    assert [e.model for e in saved.entries] == ["my-7b", "b"]
    assert {m.suite for m in saved.get("my-7b").metrics} >= {"open_llm", "alpaca_eval", "mt_bench", "pairwise", "rouge"}

    out_json, out_md = tmp_path / "export.json", tmp_path / "export.md"
    assert run_cli("leaderboard", "export", str(board), "-o", str(out_json)).returncode == 0
    assert run_cli("leaderboard", "validate", str(out_json)).returncode == 0
    assert run_cli("leaderboard", "export", str(board), "-o", str(out_md), "--with-paper").returncode == 0
    md = out_md.read_text()
    assert "| my-7b |" in md and "paper: Llama-2-7B / Alpaca-1k-longest" in md and "## Sources" in md

    shown = run_cli("leaderboard", "show", str(board))
    assert shown.returncode == 0 and "my-7b" in shown.stdout and "7.88" in shown.stdout  # paper beside the run

    log = fx.write_loss_log(tmp_path / "train_log.jsonl", [2.0, 1.6, 1.3, 1.1])
    report = tmp_path / "report"
    proc = run_cli("leaderboard", "render", str(board), "--out", str(report), "--loss-log", f"my-7b={log}")
    assert proc.returncode == 0, proc.stderr
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert pngs == ["epochs.png", "loss_curves.png", "mt_bench_radar.png", "pairwise_win_tie_loss.png",
                    "response_length.png"]
    for png in report.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    page = (report / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "my-7b" in page and "lima_test" in page
    assert "![mt_bench_radar](mt_bench_radar.png)" in (report / "README.md").read_text()

    bad = run_cli("leaderboard", "render", str(board), "--out", str(tmp_path / "r2"), "--plots", "radr")
    assert bad.returncode == 2 and "Did you mean 'radar'" in bad.stderr and not (tmp_path / "r2").exists()


def test_a_wrong_document_is_named_briefly_not_echoed(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps([{"model": "m" * 100}] * 2000))  # a list, not a board: ~200 kB
    proc = run_cli("leaderboard", "show", str(big))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr) < 600, proc.stderr
    assert str(big) in proc.stderr and "field $ = [" in proc.stderr and "is not of type 'object'" in proc.stderr

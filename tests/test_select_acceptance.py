"""Acceptance: the paper's published Alpaca-1k-longest set, reproduced exactly from Alpaca-52k."""

from __future__ import annotations

import hashlib
import json

from tests.conftest import run_cli

PAPER_SET_SHA256 = "e08c6bfba075bdf48dab8067bc0df7ff7246180896fc8debfb3e41d9e10a19ff"


def test_alpaca_1k_longest_matches_the_paper(shared_data, tmp_path):
    out = tmp_path / "alpaca-1k"
    r = run_cli("select", "--data", str(shared_data / "alpaca" / "alpaca_data.json"), "--strategy", "longest",
                "--k", "1000", "--unit", "nltk-words", "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = sorted(json.loads(line)["row"] for line in (out / "selected.jsonl").read_text().splitlines())
    assert len(rows) == 1000
    assert hashlib.sha256("\n".join(map(str, rows)).encode()).hexdigest() == PAPER_SET_SHA256
    report = json.loads((out / "report.json").read_text())
    assert report["cutoff"] == 192
    assert report["counts"]["rows_read"] == 52002
    fc = json.loads((out / "fastchat.json").read_text())
    assert fc[0]["id"] == "identity_7"

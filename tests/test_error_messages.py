"""Errors name what the user gave: their --out path (not a temp file), the file:line and content
of the first unusable row (not "pool of 0 usable examples"), and the endpoint's URL without its
credentials."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def _rows(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_read_only_existing_out_is_named_and_left_alone(tmp_path):
    data = _rows(tmp_path / "d.jsonl", [json.dumps({"instruction": "a", "output": "bb"})])
    out = tmp_path / "ro"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    out.chmod(0o555)
    try:
        res = run_cli("select", "--data", str(data), "--out", str(out), "--strategy", "longest", "--k", "1")
    finally:
        out.chmod(0o755)
    assert res.returncode == 1
    assert res.stderr.strip() == (f"harness-ext select: error: '{out}': Permission denied (the output folder is "
                                  "read-only). Fix: choose a location you can write to (or fix its permissions).")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "ro"]  # no temp folder left
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_rows_that_are_not_objects_are_named_with_file_and_line(tmp_path):
    data = _rows(tmp_path / "bad.jsonl", ['[1, 2]', '"just a string"', '42'])
    for strategy in ("longest", "random"):
        res = run_cli("select", "--data", str(data), "--out", str(tmp_path / "o"), "--strategy", strategy,
                      "--k", "1")
        assert res.returncode == 2 and "pool of 0" not in res.stderr
        assert res.stderr.strip() == (
            f"harness-ext select: error: {data}:1: row 0: row is a list, expected a JSON object. Fix: none of the 3 "
            "rows is usable (3 not_an_object); fix the rows or point --data at another file.")
        assert not (tmp_path / "o").exists()


def test_unreachable_endpoint_is_named_without_credentials(tmp_path):
    data = _rows(tmp_path / "d.jsonl", [json.dumps({"instruction": "a", "output": "bb"})])
    res = run_cli("score", "--data", str(data), "--out", str(tmp_path / "o"), "--judge-model", "j",
                  "--base-url", "http://alice:pw-canary-991@127.0.0.1:9/v1?api-key=qk-canary-992", "--max-retries", "0")
    assert res.returncode != 0
    assert "APIConnectionError: Connection error. (http://127.0.0.1:9/v1)" in res.stderr
    assert "canary" not in res.stderr and "alice" not in res.stderr

"""The one reader of JSON/JSONL data files (core.artifacts.iter_rows) and the stages built on it."""

from __future__ import annotations

import json

import pytest

from harness_ext.core.artifacts import iter_jsonl, iter_rows
from harness_ext.core.errors import InputError
from harness_ext.data.contamination import read_rows as contamination_rows
from harness_ext.generate.outputs import load_outputs
from harness_ext.generate.suites import load_suite


def test_json_array_rows_carry_the_line_they_start_on(tmp_path):
    p = tmp_path / "rows.json"
    p.write_text('[\n  {"a": 1},\n\n  {"a": 2,\n   "b": 3},\n  {"a": 4}\n]\n')
    assert [(r.row, r.line, r.value["a"]) for r in iter_rows(p)] == [(0, 2, 1), (1, 4, 2), (2, 6, 4)]


def test_jsonl_in_any_spelling_and_wrapped_or_keyed_objects(tmp_path):
    rows = [{"a": 1}, {"a": 2}]
    for name in ("r.jsonl", "r.json", "r.txt"):  # a .json or unknown suffix holding one object per line is JSONL
        p = tmp_path / name
        p.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n\n" for r in rows).encode())
        assert [(r.line, r.value) for r in iter_rows(p)] == [(1, rows[0]), (3, rows[1])]
    wrapped = tmp_path / "w.json"
    wrapped.write_text(json.dumps({"meta": 1, "data": rows}))
    assert [r.value for r in iter_rows(wrapped)] == rows
    keyed = tmp_path / "k.json"
    keyed.write_text(json.dumps({"x": rows[0], "y": rows[1]}))
    with pytest.raises(InputError, match="expected a JSON list of rows at the top level, found an object"):
        list(iter_rows(keyed))
    assert [r.value for r in iter_rows(keyed, keyed=True)] == rows


def test_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('[\n {"a": 1},\n {"a": 2,,}\n]')
    with pytest.raises(InputError, match=f"{p}:3:"):
        list(iter_rows(p))
    q = tmp_path / "bad.jsonl"
    q.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    with pytest.raises(InputError, match=f"{q}:2: invalid UTF-8"):
        list(iter_rows(q))
    with pytest.raises(InputError, match="file not found"):
        list(iter_rows(tmp_path / "missing.json"))


def test_truncated_tail_is_tolerated_only_when_asked(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_bytes(b'{"step": 1}\n{"step": 2}\n{"ste')
    assert [v["step"] for _, v in iter_jsonl(p, allow_truncated_tail=True)] == [1, 2]
    with pytest.raises(InputError, match=f"{p}:3: malformed JSON line"):
        list(iter_jsonl(p))


def test_stages_report_the_line_of_a_bad_row_in_a_json_list(tmp_path):
    prompts = tmp_path / "prompts.json"
    prompts.write_text('[\n {"instruction": "ok"},\n {"instruction": 7}\n]')
    with pytest.raises(InputError, match=f"{prompts}:3: field 'instruction' must be a string"):
        load_suite(str(prompts))
    evals = tmp_path / "eval.json"
    evals.write_text('[\n "a string row is fine",\n 42\n]')
    with pytest.raises(InputError, match=f"{evals}:3:"):
        contamination_rows(evals)
    outputs = tmp_path / "out.json"
    outputs.write_text(json.dumps({"data": [{"instruction": "q", "output": "a", "generator": "m"}]}))
    assert [o.output for o in load_outputs(outputs)] == ["a"]

"""`harness-ext select` end to end: outputs, formats, help, clean errors, no partial output."""

from __future__ import annotations

import json

from tests.conftest import run_cli

ROWS = [
    {"instruction": "Write a poem.", "input": "", "output": "Roses are red. Violets are blue. Sugar is sweet.", "source": "poems"},
    {"instruction": "Translate to English.", "input": "Hola amigo", "output": "Hello friend.", "source": "mt"},
    {"instruction": "List three fruits.", "input": "", "output": "Apple, banana and cherry are three fruits.", "source": "lists"},
    {"instruction": "Say hi.", "input": "", "output": "Hi.", "source": "chat"},
]


def data_file(tmp_path):
    p = tmp_path / "data.json"
    p.write_text(json.dumps(ROWS))
    return p


def test_select_writes_all_outputs(tmp_path):
    out = tmp_path / "out"
    r = run_cli("select", "--data", str(data_file(tmp_path)), "--k", "2", "--unit", "nltk-words", "--out", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["selected"] == 2 and summary["cutoff"] == 9
    for name in ("selected.jsonl", "alpaca.json", "fastchat.json", "report.json", "lengths.png"):
        assert (out / name).is_file(), name
    assert (out / "lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sel = [json.loads(x) for x in (out / "selected.jsonl").read_text().splitlines()]
    assert [s["id"] for s in sel] == ["identity_0", "identity_2"]
    assert json.loads((out / "alpaca.json").read_text())[0] == {k: ROWS[0][k] for k in ("instruction", "input", "output")}
    fc = json.loads((out / "fastchat.json").read_text())
    assert fc[0] == {"id": "identity_0", "conversations": [
        {"from": "human", "value": "Below is an instruction that describes a task. Write a response that "
                                   "appropriately completes the request. ### Instruction: Write a poem."},
        {"from": "gpt", "value": ROWS[0]["output"]}]}
    rep = json.loads((out / "report.json").read_text())
    assert rep["counts"] == {"rows_read": 4, "dropped": 0, "pool": 4, "set_aside_by_strategy": 0, "selected": 2}
    assert rep["unit"] == "nltk-words" and rep["tie_rule"].startswith("equal lengths")
    assert rep["per_source"]["selected"] == {"lists": 1, "poems": 1}
    assert rep["input"]["sha256"] and rep["provenance"]["version"] == rep["package_version"]
    assert set(rep["lengths"]["pool"]) >= {"min", "median", "mean", "max"}


def test_fastchat_turn_with_input(tmp_path):
    out = tmp_path / "out"
    r = run_cli("select", "--data", str(data_file(tmp_path)), "--strategy", "shortest", "--k", "2",
                "--unit", "words", "--out", str(out))
    assert r.returncode == 0, r.stderr
    fc = json.loads((out / "fastchat.json").read_text())
    assert fc[0]["conversations"][0]["value"] == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request. ### Instruction: Translate to English. "
        "### Input: Hola amigo")


def test_help_lists_strategies_and_units():
    r = run_cli("select", "--help")
    assert r.returncode == 0
    for name in ("longest", "shortest", "random", "top-score", "score-threshold", "stratified-longest",
                 "mixture", "dedup", "chars", "words", "nltk-words", "hf-tokens"):
        assert name in r.stdout, name
    v = run_cli("--version")
    assert v.returncode == 0 and "harness-ext" in v.stdout


def test_errors_are_one_clean_line_and_leave_no_output(tmp_path):
    data = data_file(tmp_path)
    out = tmp_path / "out"
    cases = [
        (["--strategy", "longst", "--unit", "words"], "Did you mean 'longest'"),
        (["--unit", "nltk-word"], "Did you mean 'nltk-words'"),
        (["--k", "10", "--unit", "words"], "larger than the pool of 4"),
        (["--k", "-5", "--unit", "words"], "--k must be at least 1 (got -5)"),
        (["--k", "0", "--strategy", "random", "--unit", "words"], "--k must be at least 1 (got 0)"),
        (["--k", "2", "--workers", "0", "--unit", "words"], "--workers must be at least 1"),
        (["--k", "2", "--strategy", "stratified-longest", "--source-field", "srcc", "--unit", "words"],
         "no row has the source field 'srcc'. Did you mean 'source'? Fix: pass --source-field with one of the "
         "fields the rows have: input, instruction, output, source."),
        (["--k", "2", "--source-field", "srcc", "--unit", "words"], "no row has the source field 'srcc'"),
    ]
    for extra, needle in cases:
        r = run_cli("select", "--data", str(data), "--out", str(out), *extra)
        assert r.returncode == 2, r.stderr
        assert needle in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert not out.exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}}\n')
    r = run_cli("select", "--data", str(bad), "--out", str(out), "--k", "1", "--unit", "words")
    assert r.returncode == 2 and f"{bad}:2:" in r.stderr and not out.exists()
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"instruction": "c", "output": 3}]))
    r = run_cli("select", "--data", str(strict), "--out", str(out), "--k", "1", "--strict", "--unit", "chars")
    assert r.returncode == 2 and "row 1" in r.stderr and "'output'" in r.stderr and not out.exists()
    r = run_cli("select", "--data", str(strict), "--out", str(out), "--k", "1", "--unit", "chars")
    assert r.returncode == 0
    assert json.loads((out / "report.json").read_text())["drops"] == {"non_string_field:output": 1}


def test_failed_rerun_keeps_previous_output(tmp_path):
    data = data_file(tmp_path)
    out = tmp_path / "out"
    assert run_cli("select", "--data", str(data), "--out", str(out), "--k", "2", "--unit", "words").returncode == 0
    before = (out / "selected.jsonl").read_bytes()
    r = run_cli("select", "--data", str(data), "--out", str(out), "--k", "99", "--unit", "words")
    assert r.returncode == 2
    assert (out / "selected.jsonl").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_default_data_is_the_bundled_demo(tmp_path):
    from harness_ext.commands.select import DEMO_K, default_data

    out = tmp_path / "out"
    r = run_cli("select", "--out", str(out))
    if default_data().exists():
        assert r.returncode == 0, r.stderr
        rep = json.loads((out / "report.json").read_text())
        assert rep["input"]["path"] == str(default_data()) and rep["counts"]["selected"] == DEMO_K
        assert rep["unit"] == "nltk-words" and rep["strategy"] == "longest"
        assert rep["counts"]["rows_read"] >= 200 and len(rep["per_source"]["pool"]) > 1
    else:
        assert r.returncode == 2 and "bundled demo dataset is missing" in r.stderr

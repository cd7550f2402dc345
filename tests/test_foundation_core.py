"""The shared plumbing: errors, registry, atomic writes, JSON/JSONL reading, append logs, CLI edge."""

from __future__ import annotations

import json
import os

import pytest

from harness_ext import __version__
from harness_ext.core.artifacts import (
    AppendLog,
    atomic_write_json,
    atomic_write_jsonl,
    iter_jsonl,
    read_json,
    sha256_file,
    stable_hash,
    staged_dir,
    to_json,
)
from harness_ext.core.errors import ConfigError, InputError
from harness_ext.core.registry import Registry
from tests.conftest import run_cli


def test_registry_unknown_name_suggests_closest():
    reg: Registry = Registry("strategy")
    reg.register("longest")(lambda: None)
    reg.register("random")(lambda: None)
    with pytest.raises(ConfigError) as e:
        reg.get("longst")
    assert "Unknown strategy 'longst'" in str(e.value)
    assert "Did you mean 'longest'?" in str(e.value)
    assert "longest, random" in str(e.value)


def test_registry_rejects_duplicates():
    reg: Registry = Registry("unit")
    reg.register("chars")(len)
    with pytest.raises(ConfigError):
        reg.register("chars")(len)


def test_read_json_names_line_of_syntax_error(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('[\n {"a": 1},\n {"a": 2,,}\n]')
    with pytest.raises(InputError) as e:
        read_json(p)
    assert f"{p}:3:" in str(e.value)


def test_iter_jsonl_reports_line_and_rejects_invalid_utf8(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n\n{"a": oops}\n')
    with pytest.raises(InputError) as e:
        list(iter_jsonl(p))
    assert f"{p}:3:" in str(e.value)
    q = tmp_path / "latin1.jsonl"
    q.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    with pytest.raises(InputError) as e:
        list(iter_jsonl(q))
    assert f"{q}:2:" in str(e.value) and "UTF-8" in str(e.value)


def test_empty_and_missing_files_are_clear(tmp_path):
    (tmp_path / "e.json").write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        read_json(tmp_path / "e.json")
    with pytest.raises(InputError, match="not found"):
        read_json(tmp_path / "nope.json")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "out.json"
    atomic_write_json(p, {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(p, {1j: 2})
    assert json.loads(p.read_text()) == {"v": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["out.json"]


def test_atomic_write_uses_normal_file_mode(tmp_path):
    p = atomic_write_json(tmp_path / "a.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_staged_dir_publishes_only_on_success(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), staged_dir(out) as d:
        (d / "a.txt").write_text("half")
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with staged_dir(out) as d:
        (d / "a.txt").write_text("whole")
    assert (out / "a.txt").read_text() == "whole"


def test_append_log_cuts_torn_tail(tmp_path):
    p = tmp_path / "log.jsonl"
    with AppendLog(p) as log:
        log.append({"i": 1})
        log.append({"i": 2})
    with open(p, "a") as f:
        f.write('{"i": 3, "tr')  # a writer killed mid-line
    assert [r["i"] for _, r in iter_jsonl(p, allow_truncated_tail=True)] == [1, 2]
    with AppendLog(p) as log:
        assert [r["i"] for r in log.records()] == [1, 2]
        log.append({"i": 3})
    assert [r["i"] for _, r in iter_jsonl(p)] == [1, 2, 3]


def test_json_writers_write_strict_json_null_for_nan_and_infinity(tmp_path):
    import math

    import numpy as np

    def reject(token):
        raise AssertionError(f"{token} is not JSON")

    bad = {"rate": math.nan, "ci": (-math.inf, np.float64("nan")), "ok": 0.5, "rows": [{"x": math.inf}]}
    clean = {"rate": None, "ci": [None, None], "ok": 0.5, "rows": [{"x": None}]}
    atomic_write_json(tmp_path / "a.json", bad)
    atomic_write_jsonl(tmp_path / "a.jsonl", [bad, {"y": 1}])
    with AppendLog(tmp_path / "log.jsonl") as log:
        log.append(bad)
    assert json.loads((tmp_path / "a.json").read_text(), parse_constant=reject) == clean
    assert [json.loads(line, parse_constant=reject) for line in (tmp_path / "a.jsonl").read_text().splitlines()] \
        == [clean, {"y": 1}]
    assert json.loads((tmp_path / "log.jsonl").read_text(), parse_constant=reject) == clean
    assert to_json({"a": 1.5, "b": [1, "x"]}) == '{"a": 1.5, "b": [1, "x"]}'  # finite input: unchanged


def test_hashes_are_stable(tmp_path):
    assert stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": [1, 2], "b": 1})
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_cli_version_and_help():
    r = run_cli("--version")
    assert r.returncode == 0 and __version__ in r.stdout
    r = run_cli("--help")
    assert r.returncode == 0 and "usage: harness-ext" in r.stdout


def test_no_api_key_in_environment_by_default():
    # The default test run must not depend on (or leak) a real key.
    assert os.environ.get("HF_HUB_OFFLINE") == "1"

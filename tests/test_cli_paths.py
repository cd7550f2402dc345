"""Output paths of the wrong kind are refused before any work, as one clean line naming the path."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

LEADERBOARD = "leaderboards/long_is_more_2402.04833.json"


@pytest.fixture
def spots(tmp_path):
    (tmp_path / "afile").write_text("keep me\n")
    (tmp_path / "adir").mkdir()
    return tmp_path


@pytest.mark.parametrize(("args", "needle"), [
    (["select", "--out", "{t}/afile"], "--out names an existing file, but a folder is needed"),
    (["select", "--out", "{t}/afile/sub"], "is a file, so nothing can be written under it"),
    (["score", "--data", "{t}/afile", "--out", "{t}/afile", "--judge-model", "m"], "a folder is needed"),
    (["train-plot", "--out", "{t}/adir", "{t}/afile"], "--out names a folder, but a file is needed"),
    (["contamination", "--train", "{t}/afile", "--eval", "{t}/afile", "--out", "{t}/adir"], "a file is needed"),
    (["leaderboard", "export", LEADERBOARD, "-o", "{t}/adir"], "--output names a folder"),
    (["study", "results", "--db", "{t}/adir"], "--db names a folder"),
])
def test_wrong_kind_of_output_path_is_one_clean_line(spots, args, needle):
    before = sorted(p.name for p in spots.rglob("*"))
    res = run_cli(*[a.format(t=spots) for a in args])
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert needle in lines[0] and str(spots) in lines[0] and "Fix:" in lines[0]
    assert sorted(p.name for p in spots.rglob("*")) == before  # nothing written, nothing moved
    assert (spots / "afile").read_text() == "keep me\n"


def test_file_system_refusal_names_the_requested_path_not_a_temp_name(tmp_path):
    # /proc accepts no new entries, even for root: the OSError backstop must name what the user asked for.
    res = run_cli("select", "--out", "/proc/harness_ext_cannot_write_here")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "'/proc/harness_ext_cannot_write_here'" in res.stderr and ".partial" not in res.stderr

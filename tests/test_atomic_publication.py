"""Publication of a stage's output folder is atomic: a process SIGKILLed at any file-system step
of `staged_dir` leaves OUT holding one whole run (the previous one or the new one, never a mix),
and the next run removes every temp folder the killed one left."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness_ext.core.artifacts import clean_orphans, staged_dir
from tests.conftest import cli_env

# A child that publishes run RUN (files a..d, each tagged with RUN) and SIGKILLs itself at the
# K-th file-system mutation (rename, replace, link, copy, mkdir, rmtree, renameat2 exchange).
CHILD = textwrap.dedent("""
    import os, shutil, signal, sys
    from pathlib import Path
    import harness_ext.core.artifacts as art

    out, run, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if sys.argv[4] == "no-exchange":  # a file system without renameat2 RENAME_EXCHANGE
        art._exchange = lambda a, b: False
    calls = [0]

    def counted(fn):
        def wrapper(*a, **k):
            calls[0] += 1
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*a, **k)
        return wrapper

    for name in ("rename", "replace", "link", "symlink"):
        setattr(os, name, counted(getattr(os, name)))
    shutil.copy2 = counted(shutil.copy2)
    shutil.rmtree = counted(shutil.rmtree)
    art._exchange = counted(art._exchange)
    with art.staged_dir(out) as tmp:
        calls[0] = 0  # count only publication, not the stage's own writes
        for name in ("a", "b", "c", "d"):
            (tmp / name).write_text(run)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "e").write_text(run)
    print("published")
""")


def _publish(out: Path, run: str, kill_at: int, mode: str = "exchange") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(out), run, str(kill_at), mode], env=cli_env(),
                          capture_output=True, text=True, timeout=60)


def _runs_in(out: Path) -> set[str]:
    return {p.read_text() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("mode", ["exchange", "no-exchange"])
def test_a_kill_at_any_publication_step_leaves_one_whole_run(tmp_path, mode):
    steps_seen = 0
    for kill_at in range(1, 40):
        case = tmp_path / f"k{kill_at}"
        out = case / "OUT"
        first = _publish(out, "run1", 0)
        assert first.returncode == 0 and _runs_in(out) == {"run1"}, first.stderr
        (out / "kept").write_text("run1")  # a file of the earlier run that the next run does not rewrite
        res = _publish(out, "run2", kill_at, mode)
        runs = _runs_in(out)
        assert out.is_dir() or any(p.name.endswith(".old") for p in case.iterdir()), kill_at
        if res.returncode == 0:  # no step left to kill at: the publication completed
            assert runs == {"run2", "run1"} and (out / "kept").read_text() == "run1"
            assert sorted(p.name for p in case.iterdir()) == ["OUT"]
            break
        steps_seen += 1
        assert res.returncode == -9, res.stderr
        # one whole run: all files of run1, or all files of run2 (plus the carried-over file)
        files = {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()} if out.is_dir() \
            else {}
        tags = {v for k, v in files.items() if k != "kept"}
        # (no OUT at all only between the two renames where the file system cannot exchange)
        assert tags in ({"run1"}, {"run2"}, set()), (kill_at, files)
        # the next run cleans what the killed one left, and publishes whole
        again = _publish(out, "run3", 0)
        assert again.returncode == 0, again.stderr
        assert sorted(p.name for p in case.iterdir()) == ["OUT"], (kill_at, list(case.iterdir()))
        new = {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
        assert {k: v for k, v in new.items() if k != "kept"} == {n: "run3" for n in ("a", "b", "c", "d", "sub/e")}
    else:
        raise AssertionError("publication never completed")
    assert steps_seen >= 3  # carry-over link, exchange or renames, removal of the previous run


def test_orphans_of_killed_runs_are_removed_and_live_ones_kept(tmp_path):
    out = tmp_path / "OUT"
    dead = tmp_path / ".OUT.999999999.abc.partial"  # no such process
    legacy = tmp_path / ".OUT.x1y2z3.partial"  # the layout of earlier versions (no pid)
    live = tmp_path / f".OUT.{__import__('os').getppid()}.abc.partial"
    for d in (dead, legacy, live):
        d.mkdir()
        (d / "f").write_text("x")
    with staged_dir(out) as tmp:
        (tmp / "result.json").write_text(json.dumps({"ok": True}))
    assert not dead.exists() and not legacy.exists() and live.exists()
    assert json.loads((out / "result.json").read_text()) == {"ok": True}
    assert clean_orphans(out) == []


def test_an_out_that_is_a_symlink_stays_a_symlink(tmp_path):
    target = tmp_path / "big-disk" / "results"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    link = tmp_path / "OUT"
    link.symlink_to(target)
    with staged_dir(link) as tmp:
        (tmp / "new.txt").write_text("new")
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert sorted(p.name for p in target.iterdir()) == ["new.txt", "old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OUT", "big-disk"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["results"]

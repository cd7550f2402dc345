"""tasks/ (and judges/) ship inside the wheel, and tasks_dir() finds them from an install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

pytest.importorskip("hatchling")

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def test_wheel_holds_tasks_and_tasks_dir_works_from_an_install(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("harness_ext", "tasks", "judges", "leaderboards"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, src / folder, ignore=_IGNORE)
        else:
            # Another area's folder not on this branch yet: hatch's force-include needs it to exist.
            (src / folder).mkdir()
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("harness_ext-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for yml in (ROOT / "tasks").rglob("*"):
        if yml.is_file() and "__pycache__" not in yml.parts:
            assert f"harness_ext/tasks/{yml.relative_to(ROOT / 'tasks').as_posix()}" in names
    judges = [p for p in (ROOT / "judges").rglob("*") if p.is_file()] if (ROOT / "judges").is_dir() else []
    for j in judges:
        assert f"harness_ext/judges/{j.relative_to(ROOT / 'judges').as_posix()}" in names

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    probe = subprocess.run(
        [sys.executable, "-c",
         "import harness_ext.evals.runner as m; p = m.tasks_path(); print(p); "
         "assert (p / 'openllm' / 'hx_openllm.yaml').is_file(); assert (p / 'longform' / '_hx_scrolls_template').is_file()"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == str(site / "harness_ext" / "tasks")

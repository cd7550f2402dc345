"""Where the package's data folders and caches are.

tasks/, judges/ and leaderboards/ sit at the top of a checkout and are copied into the package
(harness_ext/tasks, ...) when a wheel is built, so both layouts are looked up here.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent.parent  # harness_ext/, this file being harness_ext/core/paths.py


def _data_folder(name: str) -> Path:
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"harness_ext's '{name}' folder is missing from {_PKG} and {_PKG.parent}")


def tasks_dir() -> Path:
    """The lm-eval task folder to pass as `lm_eval --include_path`."""
    return _data_folder("tasks")


def judges_dir() -> Path:
    """Judge configs and prompt templates (AlpacaEval annotator folders, pairwise, MT-Bench)."""
    return _data_folder("judges")


def leaderboards_dir() -> Path:
    """Committed leaderboard JSON files (the paper's published numbers)."""
    return _data_folder("leaderboards")


def resources_dir() -> Path:
    """Bundled data shipped inside the package (the demo dataset, schemas)."""
    return _PKG / "resources"


def cache_dir() -> Path:
    """User cache: $HARNESS_EXT_CACHE, else $XDG_CACHE_HOME/harness_ext, else ~/.cache/harness_ext."""
    env = os.environ.get("HARNESS_EXT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "harness_ext"


def shared_data_dir() -> Path:
    """The real public data used by integration tests/benchmarks: $HARNESS_EXT_SHARED_DATA or ../shared/data."""
    env = os.environ.get("HARNESS_EXT_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    return _PKG.parent.parent / "shared" / "data"

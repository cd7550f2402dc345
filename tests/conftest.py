"""Shared fixtures. The default run is offline, CPU-only and needs no API key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _offline_env() -> None:
    # Nothing in the default run may reach a hub; make any attempt fail fast instead of hanging.
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(k, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_offline_env()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $HARNESS_EXT_SHARED_DATA); skips when absent, as on a user's clone."""
    from harness_ext.core.paths import shared_data_dir

    d = shared_data_dir()
    if not (d / "README.md").exists():
        pytest.skip(f"shared data not found at {d} (set HARNESS_EXT_SHARED_DATA to use it)")
    return d


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama checkpoint with a chat template, built once per session."""
    pytest.importorskip("transformers")
    from tests.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own harness_ext cache so nothing leaks between tests or into ~/.cache."""
    monkeypatch.setenv("HARNESS_EXT_CACHE", str(tmp_path / "_cache"))


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for running `python -m harness_ext` (or lm_eval, alpaca_eval) as a subprocess
    so that it imports this checkout's harness_ext."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def run_cli(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m harness_ext ARGS` in a subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "harness_ext", *args],
        cwd=cwd, env=env or cli_env(), capture_output=True, text=True, timeout=timeout,
    )

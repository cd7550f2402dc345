"""AlpacaEval integration: our annotator config folders, and win rates computed from annotations.

`alpaca_eval evaluate --annotators_config <folder>` reads `<folder>/configs.yaml`, resolves the
prompt path relative to the folder's parent, and caches annotations next to configs.yaml
(`annotations_seed0_configs.json`). A config inside an installed wheel would therefore cache into
site-packages; `alpaca_config_dir` copies the folder to the user cache (or a chosen place) first.

alpaca_eval's length-controlled win rate downloads a GLM's instruction-difficulty data from the
Hugging Face hub; `alpaca_winrates` computes the plain win rate and our own length-controlled win
rate (scoring.length_controlled_win_rate) from the annotations file, offline.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness_ext.core.artifacts import atomic_write_json, read_json, sha256_file, staged_dir
from harness_ext.core.errors import DependencyError, InputError, StageError, unknown
from harness_ext.core.paths import cache_dir, judges_dir
from harness_ext.judge.scoring import bootstrap_ci, length_controlled_win_rate
from harness_ext.core.secrets import register_environment, register_url, scrub

log = logging.getLogger(__name__)


def alpaca_config_names() -> list[str]:
    """The annotator folders shipped in judges/alpaca_eval/."""
    root = judges_dir() / "alpaca_eval"
    return sorted(p.name for p in root.iterdir() if (p / "configs.yaml").is_file())


def alpaca_config_dir(name: str = "harness_pairwise", dest: str | Path | None = None,
                      judge_model: str | None = None) -> Path:
    """A copy of judges/alpaca_eval/<name>/ outside the package, ready for `--annotators_config`.

    The copy goes to `dest/<name>` (default: <cache>/alpaca_eval/<judge model or "default">/<name>),
    so alpaca_eval's annotation cache lives there. With `judge_model`, its completions use that
    model name. An existing identical copy is reused, keeping its annotation cache.
    """
    names = alpaca_config_names()
    if name not in names:
        raise unknown("AlpacaEval annotator config", name, names)
    src = judges_dir() / "alpaca_eval" / name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", judge_model) if judge_model else "default"
    target = (Path(dest) if dest else cache_dir() / "alpaca_eval" / slug) / name
    config = yaml.safe_load((src / "configs.yaml").read_text(encoding="utf-8"))
    if judge_model:
        for entry in config.values():
            entry.setdefault("completions_kwargs", {})["model_name"] = judge_model
    config_text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    wanted = {"configs.yaml": config_text}
    for f in src.iterdir():
        if f.is_file() and f.name != "configs.yaml" and not f.name.startswith("annotations_"):
            wanted[f.name] = f.read_text(encoding="utf-8")
    if all((target / k).is_file() and (target / k).read_text(encoding="utf-8") == v for k, v in wanted.items()):
        return target
    with staged_dir(target) as tmp:
        for k, v in wanted.items():
            (tmp / k).write_text(v, encoding="utf-8")
    return target


def _preference(value: Any) -> float | None:
    """alpaca_eval's preference (1 = reference wins, 2 = model wins, 1.5 = tie) or None when missing."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(v) or not 1 <= v <= 2:
        return None
    return v


def alpaca_winrates(annotations: str | Path, *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Win rate and our length-controlled win rate (both in %) from an alpaca_eval annotations.json.

    Rows whose preference is missing (alpaca_eval stores failed or unparsed annotations as null)
    are counted as `unparsed` and left out, never scored as ties.
    """
    path = Path(annotations)
    rows = read_json(path)
    if not isinstance(rows, list) or not rows:
        raise InputError("expected a non-empty JSON list of annotations.", path=path,
                         hint="point at the annotations.json that `alpaca_eval evaluate` wrote.")
    for i, r in enumerate(rows):
        missing = [k for k in ("output_1", "output_2", "preference") if not isinstance(r, dict) or k not in r]
        if missing:
            raise InputError(f"record {i}: missing field(s) {missing}.", path=path,
                             hint="alpaca_eval annotations have output_1 (reference), output_2 (model), preference.")
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_model.setdefault(str(r.get("generator_2", "model")), []).append(r)
    report: dict[str, Any] = {"annotations": str(path), "sha256": sha256_file(path), "models": {}}
    for model, rs in by_model.items():
        prefs = [_preference(r["preference"]) for r in rs]
        kept = [(p, r) for p, r in zip(prefs, rs, strict=True) if p is not None]
        if not kept:
            report["models"][model] = {"n": 0, "unparsed": len(rs)}
            continue
        y = np.array([p - 1 for p, _ in kept])  # P(model preferred) in [0, 1]
        lc = length_controlled_win_rate(y, [len(str(r["output_2"])) for _, r in kept],
                                        [len(str(r["output_1"])) for _, r in kept])
        lo, hi = bootstrap_ci(y, lambda s: s.mean(axis=1), n_boot=n_boot, seed=seed)
        report["models"][model] = {
            "reference": str(kept[0][1].get("generator_1", "reference")),
            "n": len(kept), "unparsed": len(rs) - len(kept),
            "win_rate": 100 * float(y.mean()), "win_rate_ci95": [100 * lo, 100 * hi],
            "standard_error": 100 * float(y.std(ddof=1) / math.sqrt(len(y))) if len(y) > 1 else None,
            "wins": int((y == 1).sum()), "ties": int((y == 0.5).sum()), "losses": int((y == 0).sum()),
            "length_controlled_win_rate": 100 * lc["length_controlled_win_rate"],
            "length_coefficient": lc["length_coefficient"],
            "avg_length": float(np.mean([len(str(r["output_2"])) for _, r in kept])),
            "avg_length_reference": float(np.mean([len(str(r["output_1"])) for _, r in kept])),
            "lc_method": "logit P = theta + phi*tanh(len diff / sd); LC = sigmoid(theta) (no instruction-"
                         "difficulty term; see docs)",
        }
    return report



_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")


def _last_error(output: str) -> str:
    """The exception line of a traceback in `output` (one line for the error message), else its last line."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line[:500]
    return lines[-1][:500] if lines else "no output"


def run_alpaca_eval(model_outputs: str | Path, reference_outputs: str | Path, out: str | Path, *,
                    config: str = "harness_pairwise", judge_model: str | None = None,
                    base_url: str | None = None, api_key: str | None = None,
                    timeout: float | None = None) -> dict[str, Any]:
    """Run the real `alpaca_eval evaluate` CLI with our annotator config against an OpenAI-compatible
    endpoint, then compute win rates (and our offline LC win rate) from its annotations.

    Writes out/alpaca_eval/ (alpaca_eval's own outputs, annotations.json among them) and
    out/winrates.json. The API key travels in the child's environment only; it is redacted from
    any error text.
    """
    exe = shutil.which("alpaca_eval") or os.path.join(os.path.dirname(sys.executable), "alpaca_eval")
    if not os.path.exists(exe):
        raise DependencyError("alpaca-eval", "judge", "Judging the alpaca_eval suite")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = alpaca_config_dir(config, judge_model=judge_model)
    env = dict(os.environ)
    if base_url:
        register_url(base_url)
        env["OPENAI_API_BASE"] = base_url
    if api_key:
        env["OPENAI_API_KEY"] = api_key
    register_environment(env)  # whatever key the child uses, its echo in an error is scrubbed
    # Use the endpoint and key above, not a client-config file alpaca_eval might find elsewhere.
    env.setdefault("OPENAI_CLIENT_CONFIG_PATH", str(out / "no-client-config.yaml"))
    cmd = [exe, "evaluate", "--model_outputs", str(Path(model_outputs).resolve()),
           "--reference_outputs", str(Path(reference_outputs).resolve()), "--annotators_config", str(cfg),
           "--fn_metric", "get_winrate", "--sort_by", "win_rate", "--output_path", str(out / "alpaca_eval"),
           "--is_cache_leaderboard", "False"]
    proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = scrub((proc.stderr or proc.stdout)[-4000:], api_key)  # also URL credentials, sk-... keys
        log.debug("alpaca_eval evaluate output:\n%s", tail)
        raise StageError(f"alpaca_eval evaluate exited with {proc.returncode}: {_last_error(tail)}",
                         hint="check the judge endpoint (base_url), model name and API key variable "
                         "(-v shows alpaca_eval's output).")
    annotations = sorted((out / "alpaca_eval").rglob("annotations.json"))
    if not annotations:
        raise StageError(f"alpaca_eval finished but wrote no annotations.json under {out / 'alpaca_eval'}.")
    report = alpaca_winrates(annotations[0])
    atomic_write_json(out / "winrates.json", report)
    return report

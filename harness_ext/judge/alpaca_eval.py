"""AlpacaEval integration: our annotator config folders, and win rates computed from annotations.

`alpaca_eval evaluate --annotators_config <folder>` reads `<folder>/configs.yaml`, resolves the
prompt path relative to the folder's parent, and caches annotations next to configs.yaml
(`annotations_seed0_configs.json`). A config inside an installed wheel would therefore cache into
site-packages; `alpaca_config_dir` copies the folder to the user cache (or a chosen place) first.

`alpaca_winrates` computes alpaca_eval's win rate, avg_length and length-controlled win rate
(lc_winrate.py, the same GLM fit; alpaca_eval downloads that GLM's data from the Hugging Face hub,
we read it from local files when given) from the annotations file, offline.
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
from harness_ext.core.secrets import register_environment, register_url, scrub
from harness_ext.judge.lc_winrate import LCFiles, length_controlled_winrate, preference_value
from harness_ext.judge.scoring import bootstrap_ci, check_n_boot

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
    if not all((target / k).is_file() and (target / k).read_text(encoding="utf-8") == v for k, v in wanted.items()):
        with staged_dir(target) as tmp:
            for k, v in wanted.items():
                (tmp / k).write_text(v, encoding="utf-8")
    for annotator in config:
        anchor_cache(target / CACHE_FILE, annotator)
    return target


# alpaca_eval caches annotations in <config folder>/annotations_seed<seed>_<config stem>.json.
CACHE_FILE = "annotations_seed0_configs.json"
ANCHOR_INSTRUCTION = ("[harness_ext cache anchor: keeps the preference column float when pandas reads this file; "
                      "never matches an instruction]")


def anchor_cache(path: Path, annotator: str) -> None:
    """Make sure alpaca_eval's annotation cache at `path` holds one anchor row with preference 1.5.

    Why: alpaca_eval reloads the cache with pandas.read_json, which turns a column of integral floats
    (our verdicts are 1.0 or 2.0) into int64. When every annotation of a run is cached, alpaca_eval
    (pairwise_evaluator._preprocess) then assigns 1.5 into that int64 column, which pandas >= 3
    refuses ("Invalid value '1.5' for dtype 'int64'"), so a second run on the same outputs crashed.
    One non-integral value keeps the column float64. The anchor's instruction and outputs match no
    real example, so alpaca_eval never merges it into a result, and it keeps the row when it rewrites
    the file.
    """
    rows = read_json(path) if path.is_file() else []
    if not isinstance(rows, list):
        raise InputError("alpaca_eval's annotation cache is not a JSON list.", path=path,
                         hint="delete the file to start the cache afresh (the judge is then asked again).")
    if any(isinstance(r, dict) and r.get("instruction") == ANCHOR_INSTRUCTION and r.get("annotator") == annotator
           for r in rows):
        return
    rows.append({"instruction": ANCHOR_INSTRUCTION, "output_1": "", "output_2": "", "annotator": annotator,
                 "preference": 1.5})
    atomic_write_json(path, rows)


def _model_winrates(rs: list[dict[str, Any]], *, n_boot: int, seed: int, lc_files: LCFiles,
                    lc_n_boot: int) -> dict[str, Any]:
    """One model's numbers, each under alpaca_eval's name where alpaca_eval defines it."""
    prefs = [preference_value(r["preference"]) for r in rs]
    kept = [(p, r) for p, r in zip(prefs, rs, strict=True) if p is not None]
    # alpaca_eval (main.evaluate): int(mean character length of every model output), unparsed rows included
    avg_length = int(np.mean([len(str(r["output_2"])) for r in rs]))
    if not kept:
        return {"n": 0, "unparsed": len(rs), "avg_length": avg_length}
    # the order of rows in the file does not matter: resample in instruction order
    y = np.array([p - 1 for p, _ in sorted(kept, key=lambda pr: str(pr[1].get("instruction")))])
    lo, hi = bootstrap_ci(y, lambda s: s.mean(axis=1), n_boot=n_boot, seed=seed)
    lc = length_controlled_winrate(rs, lc_files, n_boot=lc_n_boot, seed=seed)
    if lc["warning"]:
        log.warning("%s: %s", rs[0].get("generator_2", "model"), lc["warning"])
    return {
        "reference": str(kept[0][1].get("generator_1", "reference")),
        "n": len(kept), "unparsed": len(rs) - len(kept),
        "win_rate": 100 * float(y.mean()), "win_rate_ci95": [100 * lo, 100 * hi],
        "standard_error": 100 * float(y.std(ddof=1) / math.sqrt(len(y))) if len(y) > 1 else None,
        "wins": int((y == 1).sum()), "ties": int((y == 0.5).sum()), "losses": int((y == 0).sum()),
        "length_controlled_winrate": lc["length_controlled_winrate"],
        "lc_standard_error": lc["lc_standard_error"], "lc_ci95": lc["lc_ci95"], "lc_glm": lc["glm"],
        "lc_weights": lc.get("weights"), "lc_bootstrap": lc.get("lc_bootstrap"), "lc_warning": lc["warning"],
        "avg_length": avg_length,
        "avg_length_scored": float(np.mean([len(str(r["output_2"])) for _, r in kept])),
        "avg_length_reference": int(np.mean([len(str(r["output_1"])) for r in rs])),
    }


def alpaca_winrates(annotations: str | Path, *, n_boot: int = 2000, seed: int = 0, lc_files: LCFiles | None = None,
                    lc_n_boot: int = 200) -> dict[str, Any]:
    """Win rate, length-controlled win rate and avg_length (as alpaca_eval computes them) per model
    from an alpaca_eval annotations.json, offline.

    Rows whose preference is missing (alpaca_eval stores failed or unparsed annotations as null)
    are counted as `unparsed` and left out of the win rate, never scored as ties; like alpaca_eval,
    `avg_length` and the LC prediction still cover them. The LC GLM is alpaca_eval's default
    (length_controlled_v1) when `lc_files` names its gamed-baseline file, else the smaller model
    those files allow (lc_winrate.LCFiles); `lc_glm` says which.
    """
    check_n_boot(lc_n_boot)
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
    files = lc_files or LCFiles()
    return {"annotations": str(path), "sha256": sha256_file(path),
            "lc_files": {"gamed_baseline": str(files.gamed_baseline) if files.gamed_baseline else None,
                         "instruction_difficulty": str(files.instruction_difficulty)
                         if files.instruction_difficulty else None},
            "models": {m: _model_winrates(rs, n_boot=n_boot, seed=seed, lc_files=files, lc_n_boot=lc_n_boot)
                       for m, rs in by_model.items()}}


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")


def _last_error(output: str) -> str:
    """The exception line of a traceback in `output` (one line for the error message), else its last line."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line[:500]
    return lines[-1][:500] if lines else "no output"


_ENDPOINT_ERRORS = re.compile(r"(?i)\b(APIConnectionError|AuthenticationError|PermissionDeniedError|NotFoundError|"
                              r"RateLimitError|APITimeoutError|InternalServerError|ConnectError|ConnectTimeout|"
                              r"Connection refused|Incorrect API key|status code: (?:401|403|404|429|5\d\d))")


def _failure_hint(output: str) -> str:
    """What to check, from alpaca_eval's output: the endpoint only when the failure came from it.

    >>> _failure_hint("openai.APIConnectionError: Connection error.").startswith("check the judge endpoint")
    True
    >>> "not from the judge endpoint" in _failure_hint("TypeError: Invalid value '1.5' for dtype 'int64'")
    True
    """
    if _ENDPOINT_ERRORS.search(output):
        return ("check the judge endpoint (base_url), model name and API key variable "
                "(-v shows alpaca_eval's output).")
    return ("the error is alpaca_eval's own, not from the judge endpoint: -v shows its traceback; "
            "answers it already received are kept in its annotation cache.")


# Nine parameters: the inputs and the endpoint options of the `alpaca_eval evaluate` child process,
# one to one (the key only travels in its environment).
def run_alpaca_eval(model_outputs: str | Path, reference_outputs: str | Path, out: str | Path, *,
                    config: str = "harness_pairwise", judge_model: str | None = None,
                    base_url: str | None = None, api_key: str | None = None,
                    timeout: float | None = None, lc_files: LCFiles | None = None) -> dict[str, Any]:
    """Run the real `alpaca_eval evaluate` CLI with our annotator config against an OpenAI-compatible
    endpoint, then compute win rates, avg_length and the LC win rate (alpaca_winrates) from its annotations.

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
                         hint=_failure_hint(tail))
    annotations = sorted((out / "alpaca_eval").rglob("annotations.json"))
    if not annotations:
        raise StageError(f"alpaca_eval finished but wrote no annotations.json under {out / 'alpaca_eval'}.")
    report = alpaca_winrates(annotations[0], lc_files=lc_files)
    atomic_write_json(out / "winrates.json", report)
    return report

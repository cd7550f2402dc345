"""Answer an evaluation suite with a backend and write the files the harnesses read.

`generate_suite` is resumable: every answer is appended to `answers.log.jsonl` in the output
folder as soon as it exists, and a rerun with the same settings answers only what is missing.
The final files are rebuilt from the log and written atomically:

- single-turn suites: `outputs.jsonl` (id, dataset, instruction, output, generator, token counts,
  finish reason) and `model_outputs.json` (AlpacaEval's format, same order as the input);
- multi-turn suites: `model_answer/<model_id>.jsonl` (FastChat's format; turn 2 is conditioned
  on the model's own turn-1 answer);
- always `generation_meta.json`: backend, model, prompt format, sampling parameters, seed,
  counts of skipped/truncated prompts and average answer length in tokens and characters.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness_ext.generate.answers import META_NAME, write_outputs
from harness_ext.core.artifacts import AppendLog, read_json, sha256_file, stable_hash
from harness_ext.generate.backends.prompting import budget
from harness_ext.core.errors import ConfigError
from harness_ext.generate.length_prompts import apply_length_prompt, resolve_length_prompt
from harness_ext.core.records import Backend, SamplingParams, Turn
from harness_ext.generate.suites import Suite, SuiteItem, load_suite

log = logging.getLogger(__name__)

LOG_NAME = "answers.log.jsonl"
OVERFLOW_POLICIES = ("truncate", "skip")

# FastChat's MT-Bench sampling temperatures per category (fastchat/llm_judge/common.py,
# `temperature_config`); categories not listed get 0.7 there, and here.
MT_BENCH_TEMPERATURES: dict[str, float] = {
    "writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0,
    "coding": 0.0, "reasoning": 0.0, "stem": 0.1, "humanities": 0.1,
}
MT_BENCH_DEFAULT_TEMPERATURE = 0.7


def default_model_id(model: str | Path) -> str:
    p = Path(str(model).rstrip("/"))
    return p.stem if p.suffix.lower() == ".gguf" else p.name


def _source_hashes(suite: Suite) -> dict[str, str]:
    return {s: (sha256_file(s) if Path(s).is_file() else s) for s in suite.sources}


def _make_backend(backend: str, model: str | Path, prompt_format: str | None, batch_size: int,
                  options: dict[str, Any] | None) -> Backend:
    from harness_ext.generate.backends import get_backend

    opts = dict(options or {})
    if backend in ("hf", "vllm"):  # local backends render prompts; an API server applies its own template
        if prompt_format:
            opts.setdefault("prompt_format", prompt_format)
        opts.setdefault("batch_size", batch_size)
    return get_backend(backend, str(model), **opts)


def generate_suite(
    model: str | Path,
    suite: str,
    out: Path,
    *,
    backend: str = "hf",
    data: str | Path | None = None,
    params: SamplingParams | None = None,
    model_id: str | None = None,
    prompt_format: str | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    length_prompt: str | None = None,
    overflow: str = "truncate",
    category_temperatures: bool | None = None,
    backend_options: dict[str, Any] | None = None,
    backend_obj: Backend | None = None,
    progress: bool = True,
) -> Path:
    """Answer `suite` with `model` on `backend`; returns the main output file.

    `category_temperatures` (default: on for multi-turn suites) uses FastChat's MT-Bench
    temperature per category instead of params.temperature. `overflow` says what happens to a
    prompt longer than the context window allows: "truncate" cuts it from the left, "skip" leaves
    it out; both are counted in the meta file. `backend_obj` reuses an already built backend.
    """
    from harness_ext.generate.backends.hf import validate_params

    params = params or SamplingParams()
    validate_params(params)  # before anything is loaded or written
    out = Path(out)
    if overflow not in OVERFLOW_POLICIES:
        raise ConfigError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, got '{overflow}'.")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
    length_sentence = resolve_length_prompt(length_prompt)
    loaded = load_suite(suite, data)
    items = _limited(loaded, limit)
    use_cat_temps = loaded.kind == "multi" if category_temperatures is None else category_temperatures
    model_id = model_id or default_model_id(model)
    started = time.time()
    engine = backend_obj or _make_backend(backend, model, prompt_format, batch_size, backend_options)
    fmt_name = getattr(engine, "prompt_format", None) or prompt_format
    settings = {
        "suite": loaded.name, "sources": _source_hashes(loaded), "backend": getattr(engine, "name", backend),
        "model": str(model), "prompt_format": fmt_name, "params": params.to_dict(),
        "length_prompt": length_sentence, "overflow": overflow,
        "category_temperatures": MT_BENCH_TEMPERATURES if use_cat_temps else None,
    }
    fingerprint = stable_hash(settings)[:16]
    out.mkdir(parents=True, exist_ok=True)
    with AppendLog(out / LOG_NAME) as answer_log:
        done = _read_log(answer_log, fingerprint, out)
        _answer(items, engine, params, answer_log, done, fingerprint, length_sentence, overflow,
                use_cat_temps, batch_size, progress)
    meta = {
        **settings, "model_id": model_id, "seed": params.seed, "limit": limit, "fingerprint": fingerprint,
        "elapsed_s": round(time.time() - started, 3),
    }
    return write_outputs(out, loaded, items, done, model_id, meta)


def answers_file(out: str | Path, suite: str) -> Path:
    """The main answer file `generate_suite(..., suite, out)` writes (or wrote) into `out`.

    Read from the run's generation_meta.json when present; otherwise inferred from the suite:
    model_outputs.json for alpaca_eval, the one model_answer/*.jsonl for MT-Bench-style suites,
    outputs.jsonl for the rest. The file may not exist yet.
    """
    out = Path(out)
    meta = out / META_NAME
    if meta.is_file():
        main = read_json(meta).get("main_output")
        if isinstance(main, str):
            return out / main
    if suite == "alpaca_eval":
        return out / "model_outputs.json"
    answer_dir = out / "model_answer"
    if suite in ("mt_bench", "demo_mt") or answer_dir.is_dir():
        found = sorted(answer_dir.glob("*.jsonl")) if answer_dir.is_dir() else []
        if len(found) == 1:
            return found[0]
        if found:
            raise ConfigError(f"{answer_dir} holds answers of several models ({', '.join(f.stem for f in found)}).",
                              hint="point at one model_answer/<model_id>.jsonl file.")
        return answer_dir / "answers.jsonl"
    return out / "outputs.jsonl"


def _limited(suite: Suite, limit: int | None) -> list[SuiteItem]:
    """The first `limit` items; for the pairwise suite, the first `limit` of each test set, so a
    quick run still covers all five."""
    if not limit:
        return suite.items
    if suite.name != "pairwise":
        return suite.items[:limit]
    taken: Counter[str] = Counter()
    kept = []
    for item in suite.items:
        if taken[item.dataset] < limit:
            taken[item.dataset] += 1
            kept.append(item)
    return kept


def _read_log(answer_log: AppendLog, fingerprint: str, out: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    for rec in answer_log.records():
        if rec.get("config") != fingerprint:
            raise ConfigError(
                f"{out / LOG_NAME} holds answers made with different settings (model, backend, suite "
                "files, prompt format, sampling or length options changed).",
                hint="use a new --out folder, or delete that folder to start over.",
            )
        done[(rec["dataset"], rec["id"], rec["turn"])] = rec
    return done


def _temperature(item: SuiteItem, params: SamplingParams, use_cat_temps: bool) -> float:
    if not use_cat_temps:
        return params.temperature
    return MT_BENCH_TEMPERATURES.get(item.category or "", MT_BENCH_DEFAULT_TEMPERATURE)


def _conversation(item: SuiteItem, turn: int, done: dict, sentence: str | None) -> list[Turn]:
    conv: list[Turn] = []
    for t in range(turn + 1):
        conv.append(Turn("user", apply_length_prompt(item.turns[t], sentence)))
        if t < turn:
            conv.append(Turn("assistant", done[(item.dataset, item.id, t)]["text"]))
    return conv


def _answer(items: list[SuiteItem], engine: Backend, params: SamplingParams, answer_log: AppendLog,
            done: dict, fingerprint: str, sentence: str | None, overflow: str, use_cat_temps: bool,
            batch_size: int, progress: bool) -> None:
    from tqdm import tqdm

    prompter = getattr(engine, "prompter", None)
    window = getattr(prompter, "context_length", None)
    limit_tokens, _ = budget(window, params.max_new_tokens)
    # Prompts per backend call: each call's answers are logged when it returns. Local backends
    # length-sort within a call; API backends (no prompter) run a call's requests concurrently.
    chunk = getattr(engine, "chunk_size", None) or (max(4 * batch_size, 32) if prompter is not None else 256)

    def record(item: SuiteItem, turn: int, **fields: Any) -> None:
        rec = {"config": fingerprint, "dataset": item.dataset, "id": item.id, "turn": turn,
               "tstamp": time.time(), **fields}
        answer_log.append(rec)
        done[(item.dataset, item.id, turn)] = rec

    def skipped(item: SuiteItem) -> bool:
        return any("skipped" in done.get((item.dataset, item.id, t), {}) for t in range(len(item.turns)))

    total = sum(len(i.turns) for i in items)
    todo = sum(1 for i in items for t in range(len(i.turns)) if (i.dataset, i.id, t) not in done)
    bar = tqdm(total=total, initial=total - todo, desc="generate", unit="answer", disable=not progress)
    try:
        for turn in range(max((len(i.turns) for i in items), default=0)):
            pending: list[tuple[SuiteItem, list[Turn], bool]] = []
            for item in items:
                if turn >= len(item.turns) or (item.dataset, item.id, turn) in done or skipped(item):
                    continue
                if any(not t.strip() for t in item.turns):
                    record(item, turn, skipped="empty")
                    bar.update(len(item.turns) - turn)
                    continue
                conv = _conversation(item, turn, done, sentence)
                truncated = False
                if prompter is not None and limit_tokens is not None:
                    fitted = None
                    if len(prompter.encode(conv)) <= limit_tokens:
                        fitted = (conv, 0)
                    elif overflow == "truncate":
                        fitted = prompter.fit(conv, limit_tokens)
                        truncated = True
                    if fitted is None:
                        record(item, turn, skipped="too_long")
                        bar.update(len(item.turns) - turn)
                        continue
                    conv = fitted[0]
                pending.append((item, conv, truncated))
            by_temp: dict[float, list[tuple[SuiteItem, list[Turn], bool]]] = {}
            for entry in pending:
                by_temp.setdefault(_temperature(entry[0], params, use_cat_temps), []).append(entry)
            for temp, group in by_temp.items():
                turn_params = replace(params, temperature=temp)
                for start in range(0, len(group), chunk):
                    part = group[start : start + chunk]
                    completions = engine.generate([c for _, c, _ in part], turn_params)
                    if len(completions) != len(part):
                        raise ConfigError(f"backend {getattr(engine, 'name', engine)} returned "
                                          f"{len(completions)} answers for {len(part)} prompts.")
                    for (item, _, truncated), comp in zip(part, completions, strict=True):
                        record(item, turn, text=comp.text, prompt_tokens=comp.prompt_tokens,
                               completion_tokens=comp.completion_tokens, finish_reason=comp.finish_reason,
                               truncated=truncated, temperature=temp)
                    bar.update(len(part))
    finally:
        bar.close()

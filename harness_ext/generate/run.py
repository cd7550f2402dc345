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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import AppendLog, read_json, sha256_file, stable_hash
from harness_ext.core.errors import ConfigError
from harness_ext.core.records import Backend, SamplingParams, Turn
from harness_ext.generate.answers import META_NAME, write_outputs
from harness_ext.generate.backends.prompting import budget
from harness_ext.generate.length_prompts import apply_length_prompt, resolve_length_prompt
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


@dataclass(frozen=True)
class GenerateOptions:
    """How `generate_suite` answers a suite (the `harness-ext generate` flags, one to one)."""

    backend: str = "hf"  # a registered backend: hf, vllm, openai
    data: str | Path | None = None  # the suite's input file or folder, or hf:NAME[:CONFIG][@SPLIT]
    params: SamplingParams | None = None  # sampling; None = SamplingParams()
    model_id: str | None = None  # the name written into the answer files (default: from the model path)
    prompt_format: str | None = None  # local backends' prompt format (default: the model's own)
    limit: int | None = None  # answer the first N items (of each test set, for pairwise)
    batch_size: int = 8  # local backends' batch size
    length_prompt: str | None = None  # a length_prompts template appended to every user turn
    overflow: str = "truncate"  # a prompt over the context window: "truncate" (from the left) or "skip"
    # FastChat's MT-Bench temperature per category instead of params.temperature (default: on for
    # multi-turn suites)
    category_temperatures: bool | None = None
    backend_options: dict[str, Any] = field(default_factory=dict)  # passed to the backend's constructor
    progress: bool = True  # a tqdm bar

    def check(self) -> None:
        """Every option problem before anything is loaded or written."""
        from harness_ext.generate.backends.hf import validate_params

        validate_params(self.params or SamplingParams())
        if self.overflow not in OVERFLOW_POLICIES:
            raise ConfigError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, got '{self.overflow}'.")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}.")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}.")


def _make_backend(model: str | Path, options: GenerateOptions) -> Backend:
    from harness_ext.generate.backends import get_backend

    opts = dict(options.backend_options or {})
    if options.backend in ("hf", "vllm"):  # local backends render prompts; an API server applies its own template
        if options.prompt_format:
            opts.setdefault("prompt_format", options.prompt_format)
        opts.setdefault("batch_size", options.batch_size)
    return get_backend(options.backend, str(model), **opts)


def generate_suite(
    model: str | Path,
    suite: str,
    out: Path,
    options: GenerateOptions | None = None,
    *,
    backend_obj: Backend | None = None,
    **overrides: Any,
) -> Path:
    """Answer `suite` with `model`; returns the main output file.

    `options` (or its fields as keywords, e.g. `data=..., limit=5`) say how; see GenerateOptions.
    `backend_obj` reuses an already built backend (across suites) instead of building one.
    """
    unknown_opts = set(overrides) - {f.name for f in fields(GenerateOptions)}
    if unknown_opts:
        raise TypeError(f"generate_suite() got unexpected keyword argument(s) {sorted(unknown_opts)}")
    opts = replace(options or GenerateOptions(), **overrides)
    opts.check()
    params = opts.params or SamplingParams()
    out = Path(out)
    length_sentence = resolve_length_prompt(opts.length_prompt)
    loaded = load_suite(suite, opts.data)
    items = _limited(loaded, opts.limit)
    use_cat_temps = loaded.kind == "multi" if opts.category_temperatures is None else opts.category_temperatures
    model_id = opts.model_id or default_model_id(model)
    started = time.time()
    engine = backend_obj or _make_backend(model, opts)
    settings = {
        "suite": loaded.name, "sources": _source_hashes(loaded), "backend": getattr(engine, "name", opts.backend),
        "model": str(model), "prompt_format": getattr(engine, "prompt_format", None) or opts.prompt_format,
        "params": params.to_dict(), "length_prompt": length_sentence, "overflow": opts.overflow,
        "category_temperatures": MT_BENCH_TEMPERATURES if use_cat_temps else None,
    }
    fingerprint = stable_hash(settings)[:16]
    out.mkdir(parents=True, exist_ok=True)
    with AppendLog(out / LOG_NAME) as answer_log:
        run = _AnswerRun(engine, params, answer_log, _read_log(answer_log, fingerprint, out), fingerprint,
                         length_sentence, opts.overflow, use_cat_temps)
        run.answer(items, opts.batch_size, opts.progress)
    meta = {
        **settings, "model_id": model_id, "seed": params.seed, "limit": opts.limit, "fingerprint": fingerprint,
        "elapsed_s": round(time.time() - started, 3),
    }
    return write_outputs(out, loaded, items, run.done, model_id, meta)


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


Pending = tuple[SuiteItem, list[Turn], bool]  # an item, the conversation to answer, whether it was cut


@dataclass
class _AnswerRun:
    """One resumable pass over a suite: every answer is logged the moment its backend call returns."""

    engine: Backend
    params: SamplingParams
    answer_log: AppendLog
    done: dict[tuple[str, str, int], dict[str, Any]]  # (dataset, id, turn) -> its log record
    fingerprint: str
    sentence: str | None  # the length prompt, if any
    overflow: str
    use_cat_temps: bool

    def answer(self, items: list[SuiteItem], batch_size: int, progress: bool) -> None:
        from tqdm import tqdm

        prompter = getattr(self.engine, "prompter", None)
        # Prompts per backend call: each call's answers are logged when it returns. Local backends
        # length-sort within a call; API backends (no prompter) run a call's requests concurrently.
        chunk = getattr(self.engine, "chunk_size", None) or (max(4 * batch_size, 32) if prompter is not None else 256)
        total = sum(len(i.turns) for i in items)
        todo = sum(1 for i in items for t in range(len(i.turns)) if (i.dataset, i.id, t) not in self.done)
        bar = tqdm(total=total, initial=total - todo, desc="generate", unit="answer", disable=not progress)
        try:
            for turn in range(max((len(i.turns) for i in items), default=0)):
                pending = [p for item in items if (p := self._prepare(item, turn, bar)) is not None]
                by_temp: dict[float, list[Pending]] = {}
                for entry in pending:
                    by_temp.setdefault(_temperature(entry[0], self.params, self.use_cat_temps), []).append(entry)
                for temp, group in by_temp.items():
                    for start in range(0, len(group), chunk):
                        self._generate(group[start : start + chunk], turn, temp)
                        bar.update(len(group[start : start + chunk]))
        finally:
            bar.close()

    def _record(self, item: SuiteItem, turn: int, **values: Any) -> None:
        rec = {"config": self.fingerprint, "dataset": item.dataset, "id": item.id, "turn": turn,
               "tstamp": time.time(), **values}
        self.answer_log.append(rec)
        self.done[(item.dataset, item.id, turn)] = rec

    def _prepare(self, item: SuiteItem, turn: int, bar: Any) -> Pending | None:
        """The conversation to send for `item`'s `turn`, fitted to the context window; None when
        there is nothing to send (answered, an earlier turn skipped, or skipped now and logged)."""
        key = (item.dataset, item.id, turn)
        if turn >= len(item.turns) or key in self.done or any(
                "skipped" in self.done.get((item.dataset, item.id, t), {}) for t in range(len(item.turns))):
            return None
        if any(not t.strip() for t in item.turns):
            self._record(item, turn, skipped="empty")
            bar.update(len(item.turns) - turn)
            return None
        conv = _conversation(item, turn, self.done, self.sentence)
        prompter = getattr(self.engine, "prompter", None)
        limit_tokens, _ = budget(getattr(prompter, "context_length", None), self.params.max_new_tokens)
        if prompter is None or limit_tokens is None or len(prompter.encode(conv)) <= limit_tokens:
            return item, conv, False
        fitted = prompter.fit(conv, limit_tokens) if self.overflow == "truncate" else None
        if fitted is None:
            self._record(item, turn, skipped="too_long")
            bar.update(len(item.turns) - turn)
            return None
        return item, fitted[0], True

    def _generate(self, part: list[Pending], turn: int, temp: float) -> None:
        completions = self.engine.generate([c for _, c, _ in part], replace(self.params, temperature=temp))
        if len(completions) != len(part):
            raise ConfigError(f"backend {getattr(self.engine, 'name', self.engine)} returned "
                              f"{len(completions)} answers for {len(part)} prompts.")
        for (item, _, truncated), comp in zip(part, completions, strict=True):
            self._record(item, turn, text=comp.text, prompt_tokens=comp.prompt_tokens,
                         completion_tokens=comp.completion_tokens, finish_reason=comp.finish_reason,
                         truncated=truncated, temperature=temp)

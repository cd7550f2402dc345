"""The vLLM backend: tensor parallel inside a replica, data parallel across replicas.

Prompts are rendered and tokenized by our `Prompter` (the same one the hf backend uses) and sent
to vLLM as token ids, so both backends see byte-identical prompts. With `data_parallel_size` > 1,
one worker process per replica owns `tensor_parallel_size` GPUs (CUDA_VISIBLE_DEVICES is set in
the process before vLLM is imported); prompts are dealt round-robin across replicas, which
balances prompt lengths, and the answers are merged back into input order. Workers live as long
as the backend, so repeated `generate` calls do not reload the model.

vLLM is imported only inside the engine adapter (`make_llm`), so this module imports without it.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness_ext.core.errors import ConfigError, StageError
from harness_ext.core.records import Completion, SamplingParams, Turn
from harness_ext.generate.backends.hf import trim_at_stop, validate_params
from harness_ext.generate.backends.prompting import (
    Prompter,
    answer_cap,
    context_length_of,
    resolve_prompt_format,
    split_model_path,
)

log = logging.getLogger(__name__)

DEFAULT_ENGINE = "harness_ext.generate.backends.vllm:make_llm"


class _VLLMEngine:
    """Adapter over vllm.LLM: token-id prompts + plain-dict sampling settings in, plain dicts out
    (plain data crosses process boundaries; vLLM objects stay inside the process that made them)."""

    def __init__(self, **llm_kwargs: Any) -> None:
        from vllm import LLM

        self.llm = LLM(**llm_kwargs)

    def run(self, prompt_ids: list[list[int]], sampling: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from vllm import SamplingParams as VSamplingParams

        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in prompt_ids],
            sampling_params=[VSamplingParams(**s) for s in sampling],
            use_tqdm=False,
        )
        return [
            {"text": o.outputs[0].text, "token_ids": list(o.outputs[0].token_ids),
             "finish_reason": o.outputs[0].finish_reason}
            for o in outputs
        ]


def make_llm(**llm_kwargs: Any) -> _VLLMEngine:
    """The default engine: a vllm.LLM built with `llm_kwargs`."""
    return _VLLMEngine(**llm_kwargs)


def _load_factory(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    if not attr:
        raise ConfigError(f"engine factory must look like 'module:function', got '{spec}'.")
    return getattr(importlib.import_module(module), attr)


def sampling_kwargs(params: SamplingParams, cap: int, eos_ids: Sequence[int], stops: Sequence[str]) -> dict[str, Any]:
    """vllm.SamplingParams keyword arguments for one prompt (answer capped at `cap` tokens).

    min_tokens holds back EOS, the extra end-of-turn ids and stop strings alike (vLLM's rule).
    """
    greedy = params.temperature <= 0
    return {
        "n": 1,
        "temperature": 0.0 if greedy else params.temperature,
        "top_p": 1.0 if greedy else params.top_p,
        "max_tokens": cap,
        "min_tokens": min(params.min_new_tokens, cap),
        "seed": params.seed,
        "stop": [s for s in stops if s],
        "stop_token_ids": list(eos_ids),
        "skip_special_tokens": True,
    }


def device_groups(data_parallel: int, tensor_parallel: int, visible: Sequence[str]) -> list[list[str]]:
    """Split the visible GPU ids into `data_parallel` groups of `tensor_parallel` GPUs.

    >>> device_groups(2, 2, ["0", "1", "2", "3"])
    [['0', '1'], ['2', '3']]
    """
    need = data_parallel * tensor_parallel
    if need > len(visible):
        raise ConfigError(
            f"data_parallel_size x tensor_parallel_size = {data_parallel} x {tensor_parallel} = {need} GPUs, "
            f"but {len(visible)} are visible ({', '.join(visible) or 'none'}).",
            hint="lower --data-parallel-size / --tensor-parallel-size or set CUDA_VISIBLE_DEVICES.",
        )
    return [list(visible[r * tensor_parallel : (r + 1) * tensor_parallel]) for r in range(data_parallel)]


def visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def shard_round_robin(n: int, shards: int) -> list[list[int]]:
    """Indices 0..n-1 dealt round-robin into `shards` lists.

    >>> shard_round_robin(5, 2)
    [[0, 2, 4], [1, 3]]
    """
    return [list(range(r, n, shards)) for r in range(shards)]


def _worker(rank: int, gpus: list[str] | None, factory: str, llm_kwargs: dict[str, Any],
            tasks: Any, results: Any) -> None:
    """One data-parallel replica: build the engine on its GPUs, then answer jobs until told to stop."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)  # before vLLM/torch touch CUDA
    try:
        engine = _load_factory(factory)(**llm_kwargs)
    except BaseException:  # report any start-up failure to the parent instead of dying silently
        results.put((rank, "error", traceback.format_exc()))
        return
    results.put((rank, "ready", None))
    while True:
        job = tasks.get()
        if job is None:
            return
        job_id, prompt_ids, sampling = job
        try:
            results.put((rank, job_id, engine.run(prompt_ids, sampling)))
        except BaseException:
            results.put((rank, "error", traceback.format_exc()))


class _ReplicaPool:
    """Persistent worker processes, one per data-parallel replica."""

    def __init__(self, groups: list[list[str]] | list[None], factory: str, llm_kwargs: dict[str, Any],
                 start_timeout: float) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
        self.results = ctx.Queue()
        self.tasks = [ctx.Queue() for _ in groups]
        self.procs = [
            ctx.Process(target=_worker, args=(r, g, factory, llm_kwargs, self.tasks[r], self.results), daemon=True)
            for r, g in enumerate(groups)
        ]
        for p in self.procs:
            p.start()
        self._job = 0
        pending = set(range(len(groups)))
        while pending:
            rank, status, payload = self._get(start_timeout)
            if status == "error":
                self.close()
                raise StageError(f"vLLM replica {rank} failed to start:\n{payload}")
            pending.discard(rank)

    def _get(self, timeout: float) -> tuple[int, Any, Any]:
        waited = 0.0
        while True:
            try:
                return self.results.get(timeout=5.0)
            except queue.Empty:
                waited += 5.0
                dead = [r for r, p in enumerate(self.procs) if not p.is_alive()]
                if dead:
                    self.close()
                    raise StageError(f"vLLM replica(s) {dead} exited unexpectedly (out of GPU memory?).") from None
                if waited >= timeout:
                    self.close()
                    raise StageError(f"vLLM replicas did not answer within {timeout:.0f} s.") from None

    def run(self, shards: list[tuple[list[list[int]], list[dict[str, Any]]]], timeout: float) -> list[list[dict[str, Any]]]:
        self._job += 1
        job = self._job
        for r, (prompt_ids, sampling) in enumerate(shards):
            self.tasks[r].put((job, prompt_ids, sampling))
        answers: dict[int, list[dict[str, Any]]] = {}
        while len(answers) < len(shards):
            rank, status, payload = self._get(timeout)
            if status == "error":
                self.close()
                raise StageError(f"vLLM replica {rank} failed:\n{payload}")
            if status == job:
                answers[rank] = payload
        return [answers[r] for r in range(len(shards))]

    def close(self) -> None:
        for q, p in zip(self.tasks, self.procs, strict=True):
            if p.is_alive():
                q.put(None)
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)


@dataclass(frozen=True)
class VLLMOptions:
    """The vllm backend's settings (`generate --backend vllm` flags and `backend_options` keys)."""

    prompt_format: str | None = None  # default: the model's own (see prompting.resolve_prompt_format)
    tensor_parallel_size: int = 1  # GPUs per replica
    data_parallel_size: int = 1  # replicas, each in its own process on its own GPU group
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None  # vLLM's context length (default: the model config's)
    dtype: str = "auto"
    seed: int = 0
    trust_remote_code: bool = False
    enforce_eager: bool = False  # no CUDA graphs: slower, less memory, quicker start
    context_length: int | None = None  # the window for prompt budgeting (default: max_model_len, else the config's)
    engine_factory: str = DEFAULT_ENGINE  # "module:function" that builds the engine in each replica
    start_timeout: float = 1800.0  # seconds a replica may take to load
    # vLLM schedules its own batches (continuous batching); batch_size is accepted so the same
    # command line works for both local backends, and ignored.
    batch_size: int | None = None

    def engine_kwargs(self, model_dir: str, gguf_file: str | None) -> dict[str, Any]:
        """What vllm.LLM (or the engine factory) is built with."""
        kwargs: dict[str, Any] = {
            "model": str(Path(model_dir) / gguf_file) if gguf_file else model_dir,
            "tensor_parallel_size": self.tensor_parallel_size, "dtype": self.dtype,
            "gpu_memory_utilization": self.gpu_memory_utilization, "seed": self.seed,
            "trust_remote_code": self.trust_remote_code, "enforce_eager": self.enforce_eager,
        }
        if gguf_file:
            kwargs["tokenizer"] = model_dir
        if self.max_model_len:
            kwargs["max_model_len"] = self.max_model_len
        return kwargs


class VLLMBackend:
    """vLLM behind the Backend protocol, set up by a VLLMOptions (or its fields as keywords)."""

    name = "vllm"
    OPTIONS = VLLMOptions  # the registry checks backend options against these fields

    def __init__(self, model: str, options: VLLMOptions | None = None, **fields: Any) -> None:
        from transformers import AutoConfig, AutoTokenizer

        opts = replace(options or VLLMOptions(), **fields)
        if opts.tensor_parallel_size < 1 or opts.data_parallel_size < 1:
            raise ConfigError("tensor_parallel_size and data_parallel_size must be >= 1, got "
                              f"{opts.tensor_parallel_size} and {opts.data_parallel_size}.")
        model_dir, gguf_file = split_model_path(model)
        self.model_path = str(model)
        tok_kw: dict[str, Any] = {"trust_remote_code": opts.trust_remote_code}
        if gguf_file:
            tok_kw["gguf_file"] = gguf_file
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, **tok_kw)
        config = AutoConfig.from_pretrained(model_dir, **tok_kw)
        fmt_name, fmt = resolve_prompt_format(model_dir, self.tokenizer, opts.prompt_format)
        window = opts.context_length or opts.max_model_len or context_length_of(config, self.tokenizer)
        self.prompter = Prompter(self.tokenizer, fmt, fmt_name, window)
        self.prompt_format = fmt_name
        eos = config.eos_token_id if getattr(config, "eos_token_id", None) is not None else self.tokenizer.eos_token_id
        self._base_eos = [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None]
        llm_kwargs = opts.engine_kwargs(model_dir, gguf_file)
        self.timeout = opts.start_timeout
        self.data_parallel_size = opts.data_parallel_size
        self._engine: Any = None
        self._pool: _ReplicaPool | None = None
        if opts.data_parallel_size == 1:
            self._engine = _load_factory(opts.engine_factory)(**llm_kwargs)
        else:
            if opts.tensor_parallel_size > 1:
                os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
            groups = device_groups(opts.data_parallel_size, opts.tensor_parallel_size, visible_gpus())
            self._pool = _ReplicaPool(groups, opts.engine_factory, llm_kwargs, opts.start_timeout)

    def eos_ids(self, extra_stops: Sequence[str] = ()) -> list[int]:
        ids = list(self._base_eos)
        for i in self.prompter.single_token_ids([*self.prompter.stop, *extra_stops]):
            if i not in ids:
                ids.append(i)
        return ids

    def generate(self, conversations: list[list[Turn]], params: SamplingParams) -> list[Completion]:
        """One Completion per conversation, in input order."""
        validate_params(params)
        prompts = [self.prompter.encode(c) for c in conversations]
        eos = self.eos_ids(params.stop)
        stops = [s for s in (*self.prompter.stop, *params.stop) if s]
        window = self.prompter.context_length
        sampling = [sampling_kwargs(params, answer_cap(window, len(p), params.max_new_tokens), eos, stops)
                    for p in prompts]
        if self._pool is None:
            raw = self._engine.run(prompts, sampling)
        else:
            shards = shard_round_robin(len(prompts), self.data_parallel_size)
            answers = self._pool.run(
                [([prompts[i] for i in s], [sampling[i] for i in s]) for s in shards], self.timeout
            )
            raw = [None] * len(prompts)
            for shard, outs in zip(shards, answers, strict=True):
                for i, out in zip(shard, outs, strict=True):
                    raw[i] = out
        return [self._completion(r, len(p), eos, stops) for r, p in zip(raw, prompts, strict=True)]

    def _completion(self, out: dict[str, Any], prompt_tokens: int, eos: list[int], stops: Sequence[str]) -> Completion:
        ids = list(out["token_ids"])
        if ids and ids[-1] in eos:  # count answer tokens only, as the hf backend does
            ids = ids[:-1]
        text, _ = trim_at_stop(out["text"], stops)
        reason = "length" if out["finish_reason"] == "length" else "stop"
        return Completion(text=text.strip(), prompt_tokens=prompt_tokens, completion_tokens=len(ids),
                          finish_reason=reason)

    def close(self) -> None:
        """Stop the replica processes (data parallel mode)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

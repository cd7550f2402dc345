"""Generation backends behind one protocol (`records.Backend`): hf, vllm, openai.

`get_backend(name, model, **options)` builds one. The registry holds small factories that import
their module only when called, so listing backends never imports torch or vllm, and a backend
whose optional package is missing fails with a DependencyError naming the extra to install.
Another backend registers itself with `@BACKENDS.register("name")` on a factory
`(model, **options) -> Backend`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from harness_ext.core.errors import ConfigError, require
from harness_ext.core.records import Backend
from harness_ext.core.registry import Registry

BackendFactory = Callable[..., Backend]

BACKENDS: Registry[BackendFactory] = Registry("backend")


def _build(module: str, cls: str, model: Any, options: dict[str, Any]) -> Backend:
    factory = getattr(importlib.import_module(module), cls)
    # A backend that groups its settings in a dataclass names it as OPTIONS; else its keywords are them.
    options_cls = getattr(factory, "OPTIONS", None)
    allowed = ([f.name for f in dataclasses.fields(options_cls)] if options_cls is not None
               else [p for p in inspect.signature(factory).parameters if p != "model"])
    unknown_opts = sorted(set(options) - set(allowed))
    if unknown_opts:
        raise ConfigError(
            f"backend option(s) {', '.join(unknown_opts)} are not understood by {cls}.",
            hint=f"allowed options: {', '.join(allowed)}",
        )
    return factory(model, **options)


@BACKENDS.register("hf", doc="transformers on CPU or GPU; length-sorted batches, left padding")
def _hf(model: Any, **options: Any) -> Backend:
    require("torch", extra="generate", purpose="The hf generation backend")
    require("transformers", extra="generate", purpose="The hf generation backend")
    return _build("harness_ext.generate.backends.hf", "HFBackend", model, options)


@BACKENDS.register("vllm", doc="vLLM on GPUs; tensor parallel and data parallel replicas")
def _vllm(model: Any, **options: Any) -> Backend:
    require("vllm", extra="vllm", purpose="The vllm generation backend")
    return _build("harness_ext.generate.backends.vllm", "VLLMBackend", model, options)


# Backends defined in their own modules register themselves on import (the openai backend lives in
# harness_ext/generate/backends/openai.py, on top of the judge client); they are imported on first lookup.
_SELF_REGISTERING = ("harness_ext.generate.backends.openai",)


def _load_self_registering() -> None:
    for module in _SELF_REGISTERING:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module exists but something it imports is missing
                raise


def get_backend(name: str, model: Any, **options: Any) -> Backend:
    """Build backend `name` for `model` (a checkpoint folder, .gguf file, hub id or API model name).

    Options are passed to the backend's constructor (e.g. prompt_format, batch_size, device for
    hf; tensor_parallel_size, data_parallel_size for vllm); unknown options are errors.
    """
    _load_self_registering()
    return BACKENDS.get(name)(model, **options)


def backend_names() -> list[str]:
    _load_self_registering()
    return BACKENDS.names()

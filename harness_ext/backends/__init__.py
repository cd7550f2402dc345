"""Generation backends behind one protocol (`records.Backend`), registered by name in BACKENDS.

Minimal registry so the openai backend can register itself; the generation stage's fuller version
(with hf and vllm factories and `get_backend`) supersedes this file when branches are merged.
"""

from __future__ import annotations

from collections.abc import Callable

from harness_ext.records import Backend
from harness_ext.registry import Registry

BackendFactory = Callable[..., Backend]

BACKENDS: Registry[BackendFactory] = Registry("backend")

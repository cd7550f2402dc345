"""Helpers for the generation tests: a scripted backend, an EOS-loving tiny model, a fake vLLM engine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.records import Completion, SamplingParams, Turn


@dataclass
class ScriptedBackend:
    """A Backend whose answer names the last user turn, and which records every call.

    `interrupt_on_call` raises KeyboardInterrupt on that (1-based) call, as a run stopped by ^C
    while a batch is in flight. `chunk_size` is how many prompts generate.py sends per call.
    """

    name: str = "scripted"
    calls: list[tuple[list[list[Turn]], SamplingParams]] = field(default_factory=list)
    interrupt_on_call: int | None = None
    chunk_size: int | None = None
    n_calls: int = 0

    def generate(self, conversations: list[list[Turn]], params: SamplingParams) -> list[Completion]:
        self.n_calls += 1
        if self.interrupt_on_call == self.n_calls:
            raise KeyboardInterrupt("simulated interruption")
        self.calls.append((conversations, params))
        out = []
        for conv in conversations:
            text = f"answer to: {conv[-1].content[:40]} (turns={len(conv)})"
            out.append(Completion(text, prompt_tokens=len(conv) * 10, completion_tokens=len(text.split()),
                                  finish_reason="stop"))
        return out

    def prompts_seen(self) -> list[str]:
        return [conv[-1].content for convs, _ in self.calls for conv in convs]


def build_eos_heavy_model(src: Path, dst: Path) -> Path:
    """Copy of the tiny model whose every next-token distribution is dominated by EOS.

    The residual stream is reduced to the embeddings (attention and MLP outputs zeroed), embedding
    dimension 0 is a large constant, and only the EOS row of an untied output head reads it: so
    EOS is always the argmax, and only min_new_tokens can keep the model talking.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src)
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())  # untie
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        emb[:, 0] = 10.0
        head = torch.zeros_like(model.lm_head.weight)
        head[tok.eos_token_id, 0] = 5.0
        model.lm_head.weight.copy_(head)
    model.config.tie_word_embeddings = False
    model.save_pretrained(dst)
    tok.save_pretrained(dst)
    return dst


class FakeVLLMEngine:
    """Stands in for vllm.LLM in data-parallel tests: answers say which GPUs their replica saw."""

    def __init__(self, **llm_kwargs: Any) -> None:
        self.kwargs = llm_kwargs
        self.gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        self.pid = os.getpid()

    def run(self, prompt_ids: list[list[int]], sampling: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for ids, s in zip(prompt_ids, sampling, strict=True):
            n = min(s["max_tokens"], max(s["min_tokens"], 3))
            out.append({"text": f"gpus={self.gpus} pid={self.pid} len={len(ids)} min={s['min_tokens']}",
                        "token_ids": [7] * n, "finish_reason": "length" if n >= s["max_tokens"] else "stop"})
        return out


def make_fake_engine(**llm_kwargs: Any) -> FakeVLLMEngine:
    return FakeVLLMEngine(**llm_kwargs)

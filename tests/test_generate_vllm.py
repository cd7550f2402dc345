"""The vLLM backend: everything around the engine on CPU (with a stand-in engine in real worker
processes), and the real engine on a GPU (marked gpu)."""

from __future__ import annotations

import pytest

from harness_ext.core.errors import ConfigError
from harness_ext.core.records import SamplingParams, Turn
from harness_ext.generate.backends.vllm import VLLMBackend, device_groups, sampling_kwargs, shard_round_robin

FAKE = "tests.gen_helpers:make_fake_engine"
TEXTS = ["Write a poem", "Explain how a binary search works, step by step", "List three ways",
         "Summarize the meeting", "Classify the sentiment of this review"]


def convs():
    return [[Turn("user", t)] for t in TEXTS]


def test_sampling_kwargs_map_our_params_to_vllm():
    greedy = sampling_kwargs(SamplingParams(max_new_tokens=2048, min_new_tokens=150, top_p=0.5, seed=3), 1000,
                             [2, 5], ["</s>", "USER:"])
    assert greedy == {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 1000, "min_tokens": 150, "seed": 3,
                      "stop": ["</s>", "USER:"], "stop_token_ids": [2, 5], "skip_special_tokens": True}
    sampled = sampling_kwargs(SamplingParams(temperature=0.7, top_p=0.9, min_new_tokens=150), 100, [2], [])
    assert (sampled["temperature"], sampled["top_p"], sampled["min_tokens"]) == (0.7, 0.9, 100)


def test_device_groups_and_sharding():
    assert device_groups(2, 1, ["3", "5"]) == [["3"], ["5"]]
    with pytest.raises(ConfigError, match="4 GPUs, but 2 are visible"):
        device_groups(2, 2, ["0", "1"])
    shards = shard_round_robin(7, 3)
    assert sorted(i for s in shards for i in s) == list(range(7))
    assert [len(s) for s in shards] == [3, 2, 2]


def test_single_replica_caps_answers_at_the_context_window(tiny_model_dir):
    backend = VLLMBackend(str(tiny_model_dir), engine_factory=FAKE, max_model_len=40)
    assert backend._engine.kwargs["max_model_len"] == 40 and backend._engine.kwargs["model"] == str(tiny_model_dir)
    out = backend.generate(convs(), SamplingParams(max_new_tokens=500, min_new_tokens=5))
    for comp, conv in zip(out, convs(), strict=True):
        assert comp.prompt_tokens == len(backend.prompter.encode(conv))
        assert f"len={comp.prompt_tokens} min=5" in comp.text
        assert comp.completion_tokens == 5 and comp.finish_reason == "stop"


def test_data_parallel_replicas_own_their_gpus_and_merge_in_order(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    backend = VLLMBackend(str(tiny_model_dir), tensor_parallel_size=2, data_parallel_size=2, engine_factory=FAKE)
    try:
        for _ in range(2):  # workers persist across calls
            out = backend.generate(convs(), SamplingParams(max_new_tokens=8))
            assert len(out) == len(TEXTS)
            for i, (comp, conv) in enumerate(zip(out, convs(), strict=True)):
                assert f"len={len(backend.prompter.encode(conv))} " in comp.text  # merged back in input order
                assert comp.text.startswith("gpus=4,5" if i % 2 == 0 else "gpus=6,7")
        pids = {c.text.split()[1] for c in out}
        assert len(pids) == 2  # two replica processes
    finally:
        backend.close()
    assert backend._pool is None


def test_options_dataclass_or_keywords_build_the_same_engine_and_unknown_options_are_named(tiny_model_dir):
    from harness_ext.generate.backends import _build
    from harness_ext.generate.backends.vllm import VLLMOptions

    by_options = VLLMBackend(str(tiny_model_dir), VLLMOptions(engine_factory=FAKE, max_model_len=40, seed=3))
    by_keywords = VLLMBackend(str(tiny_model_dir), engine_factory=FAKE, max_model_len=40, seed=3)
    assert by_options._engine.kwargs == by_keywords._engine.kwargs
    assert by_options._engine.kwargs["seed"] == 3 and by_options.prompter.context_length == 40
    with pytest.raises(ConfigError, match="max_model_lenn are not understood by VLLMBackend.*max_model_len"):
        _build("harness_ext.generate.backends.vllm", "VLLMBackend", str(tiny_model_dir), {"max_model_lenn": 1})


def test_a_replica_that_cannot_start_is_reported(tiny_model_dir, monkeypatch):
    from harness_ext.core.errors import StageError

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(StageError, match="failed to start"):
        VLLMBackend(str(tiny_model_dir), data_parallel_size=2, engine_factory="tests.gen_helpers:no_such_factory")


@pytest.mark.gpu
def test_real_vllm_min_tokens_postpones_eos(tmp_path):
    pytest.importorskip("vllm")
    from tests.gen_helpers import build_eos_heavy_model
    from tests.tiny_models import build_tiny_llama

    base = build_tiny_llama(tmp_path / "base", hidden=128)  # head size 64: supported by vLLM kernels
    model = build_eos_heavy_model(base, tmp_path / "eos")
    backend = VLLMBackend(str(model), gpu_memory_utilization=0.3, enforce_eager=True, dtype="float32")
    plain = backend.generate(convs(), SamplingParams(max_new_tokens=40))
    assert all(c.completion_tokens == 0 and c.finish_reason == "stop" for c in plain)
    held = backend.generate(convs(), SamplingParams(max_new_tokens=40, min_new_tokens=25))
    assert [c.completion_tokens for c in held] == [25] * len(TEXTS)

"""The backend registry and the transformers backend, on tiny checkpoints built in the test."""

from __future__ import annotations

import importlib.util
import json

import pytest

from harness_ext.core.errors import ConfigError, DependencyError
from harness_ext.core.records import Backend, SamplingParams, Turn
from harness_ext.generate.backends import backend_names, get_backend
from harness_ext.generate.backends.hf import trim_at_stop
from harness_ext.llm.formats import save_format
from tests.gen_helpers import build_eos_heavy_model

PROMPTS = ["Write a poem", "Explain how a binary search works, step by step, with an example",
           "List three ways", "Summarize the meeting: the team agreed to ship the release on Friday",
           "Classify the sentiment", "The quick brown fox jumps over the lazy dog"]


def convs(texts=PROMPTS):
    return [[Turn("user", t)] for t in texts]


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    return get_backend("hf", str(tiny_model_dir), batch_size=4)


@pytest.fixture(scope="module")
def eos_heavy_dir(tiny_model_dir, tmp_path_factory):
    return build_eos_heavy_model(tiny_model_dir, tmp_path_factory.mktemp("eos-heavy"))


def test_registry_lists_local_backends_and_rejects_unknown_names():
    assert {"hf", "vllm"} <= set(backend_names())
    with pytest.raises(ConfigError, match="Unknown backend 'hff'. Did you mean 'hf'"):
        get_backend("hff", "m")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_missing_names_the_extra(tiny_model_dir):
    with pytest.raises(DependencyError) as info:
        get_backend("vllm", str(tiny_model_dir))
    assert "harness-ext[vllm]" in str(info.value) and "vllm" in info.value.message


def test_unknown_backend_option_is_an_error(tiny_model_dir):
    with pytest.raises(ConfigError, match="batchsize"):
        get_backend("hf", str(tiny_model_dir), batchsize=4)


def test_hf_backend_is_a_backend_and_uses_the_chat_template(hf):
    assert isinstance(hf, Backend)
    assert hf.prompt_format == "chat-template"
    assert hf.prompter.render([Turn("user", "hi")]).endswith("<|im_start|>assistant\n")


def test_batching_and_length_sorting_do_not_change_greedy_answers(tiny_model_dir, hf):
    params = SamplingParams(max_new_tokens=12)
    batched = hf.generate(convs(), params)
    single = get_backend("hf", str(tiny_model_dir), batch_size=1).generate(convs(), params)
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in single]
    assert [c.text for c in batched] == [c.text for c in single]
    # input order is kept even though batches are formed longest-first
    prompt_lens = [len(hf.prompter.encode(c)) for c in convs()]
    assert [c.prompt_tokens for c in batched] == prompt_lens
    for c in batched:
        assert c.finish_reason in ("stop", "length")
        assert 0 <= c.completion_tokens <= 12
        assert c.finish_reason == "stop" or c.completion_tokens == 12


def test_sampling_is_reproducible_with_a_seed(hf):
    a = hf.generate(convs(), SamplingParams(max_new_tokens=10, temperature=1.0, seed=7))
    b = hf.generate(convs(), SamplingParams(max_new_tokens=10, temperature=1.0, seed=7))
    c = hf.generate(convs(), SamplingParams(max_new_tokens=10, temperature=1.0, seed=8))
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.text for x in a] != [x.text for x in c]


def test_min_new_tokens_postpones_eos(eos_heavy_dir):
    backend = get_backend("hf", str(eos_heavy_dir), batch_size=3)
    plain = backend.generate(convs(PROMPTS[:3]), SamplingParams(max_new_tokens=40))
    assert [c.completion_tokens for c in plain] == [0, 0, 0]  # EOS straight away
    held = backend.generate(convs(PROMPTS[:3]), SamplingParams(max_new_tokens=40, min_new_tokens=25))
    assert [c.completion_tokens for c in held] == [25, 25, 25]  # EOS only once allowed
    assert all(c.finish_reason == "stop" for c in held)
    sampled = backend.generate(convs(PROMPTS[:3]), SamplingParams(max_new_tokens=40, min_new_tokens=25,
                                                                  temperature=1.0))
    assert all(c.completion_tokens >= 25 for c in sampled)
    capped = backend.generate(convs(PROMPTS[:1]), SamplingParams(max_new_tokens=10, min_new_tokens=10))
    assert capped[0].completion_tokens == 10 and capped[0].finish_reason == "length"


def test_bad_sampling_parameters_are_rejected(hf):
    with pytest.raises(ConfigError, match="min_new_tokens"):
        hf.generate(convs(PROMPTS[:1]), SamplingParams(max_new_tokens=5, min_new_tokens=6))
    with pytest.raises(ConfigError, match="top_p"):
        hf.generate(convs(PROMPTS[:1]), SamplingParams(top_p=0))


def test_stop_strings_end_and_trim_the_answer(hf):
    free = hf.generate(convs(PROMPTS[:2]), SamplingParams(max_new_tokens=30, temperature=1.0, seed=1))
    # stop at a character the sampled text really contains: the answer must end right before it
    target = next(c.text for c in free if len(c.text) > 4)
    stop = target[3]
    stopped = hf.generate(convs(PROMPTS[:2]), SamplingParams(max_new_tokens=30, temperature=1.0, seed=1,
                                                             stop=(stop,)))
    for c in stopped:
        assert stop not in c.text
    assert any(c.finish_reason == "stop" and c.completion_tokens < 30 for c in stopped)


def test_trim_at_stop_cuts_at_the_earliest_stop():
    assert trim_at_stop("a USER: b </s>", ["</s>", "USER:"]) == ("a ", True)


def test_recorded_prompt_format_is_used_and_explicit_one_wins(tiny_model_dir, tmp_path):
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_model_dir, ckpt)
    save_format(ckpt, "vicuna")
    recorded = get_backend("hf", str(ckpt))
    assert recorded.prompt_format == "vicuna"
    assert "USER: hi ASSISTANT:" in recorded.prompter.render([Turn("user", "hi")])
    explicit = get_backend("hf", str(ckpt), prompt_format="alpaca")
    assert explicit.prompt_format == "alpaca"


def test_chat_template_requested_from_a_model_without_one(tiny_model_dir, tmp_path):
    import shutil

    ckpt = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, ckpt)
    cfg = json.loads((ckpt / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (ckpt / "tokenizer_config.json").write_text(json.dumps(cfg))
    for extra in ckpt.glob("chat_template.*"):
        extra.unlink()
    with pytest.raises(ConfigError, match="no chat template"):
        get_backend("hf", str(ckpt), prompt_format="chat-template")
    # without a request, a model with neither record nor template falls back to vicuna (the paper's)
    assert get_backend("hf", str(ckpt)).prompt_format == "vicuna"


def test_missing_model_path_is_an_input_error(tmp_path):
    from harness_ext.core.errors import InputError

    with pytest.raises(InputError, match="model folder not found"):
        get_backend("hf", str(tmp_path / "nope" / "ckpt"))


def test_prompts_beyond_the_context_window_cap_the_answer(tiny_model_dir):
    small = get_backend("hf", str(tiny_model_dir), context_length=40)
    out = small.generate(convs(PROMPTS[:1]), SamplingParams(max_new_tokens=100, temperature=1.0))
    assert out[0].prompt_tokens + out[0].completion_tokens <= 40


def test_bad_device_dtype_and_unloadable_models_are_clear_errors(tiny_model_dir, tmp_path):
    import shutil

    import torch

    from harness_ext.core.errors import InputError

    with pytest.raises(ConfigError, match=r"Unknown dtype 'floatt16'. Did you mean 'float16'\?.*bfloat16, float16"):
        get_backend("hf", str(tiny_model_dir), dtype="floatt16")
    with pytest.raises(ConfigError, match=r"device 'gpu' is not a device .*Did you mean 'cuda'\?.*cuda:N"):
        get_backend("hf", str(tiny_model_dir), device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"device 'cuda' asked for, but .*Fix: use --device cpu"):
            get_backend("hf", str(tiny_model_dir), device="cuda")
    else:
        n = torch.cuda.device_count()
        with pytest.raises(ConfigError, match=f"has {n} CUDA device"):
            get_backend("hf", str(tiny_model_dir), device=f"cuda:{n}")
    # a bare name that is no folder is tried as a hub id: offline (as the tests run) it cannot load
    with pytest.raises(InputError, match="'no-such-model' is not a local model directory and could not be "
                       "loaded from the hub: .*Fix: check the --model path"):
        get_backend("hf", "no-such-model")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"empty: is not a model folder \(no config.json in it\)"):
        get_backend("hf", str(empty))
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, no_weights / name)
    with pytest.raises(InputError, match=r"no-weights: could not load a model from this folder: .*model.safetensors"):
        get_backend("hf", str(no_weights))

"""Prompt formats: rendering, loss segments, and the format record a checkpoint carries."""

from __future__ import annotations

import pytest

from harness_ext.core.errors import ConfigError, InputError
from harness_ext.core.records import Turn
from harness_ext.llm.formats import get_format, load_format, resolve_format, save_format

CONV = [
    Turn("user", "Name a prime."),
    Turn("assistant", "Seven."),
    Turn("user", "Another?"),
    Turn("assistant", "Eleven."),
]


class _Tok:
    eos_token = "<|end|>"
    chat_template = "x"
    name_or_path = "fake"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        text = "".join(f"[{m['role']}]{m['content']}<|end|>" for m in messages)
        return text + ("[assistant]" if add_generation_prompt else "")


@pytest.mark.parametrize("name", ["vicuna", "alpaca"])
def test_fastchat_formats_generation_prompt_ends_at_assistant_role(name):
    fmt = get_format(name)
    text = fmt.render(CONV[:1], add_generation_prompt=True)
    assert "Name a prime." in text
    assert text.rstrip().endswith(("ASSISTANT:", "### Response:"))


@pytest.mark.parametrize("name", ["vicuna", "alpaca"])
def test_segments_reassemble_and_only_replies_carry_loss(name):
    fmt = get_format(name, _Tok())
    segs = fmt.training_segments(CONV)
    assert "".join(s for s, _ in segs) == fmt.render(CONV, add_generation_prompt=False)
    trained = [s for s, loss in segs if loss]
    assert [s.strip() for s in trained] == ["Seven.<|end|>", "Eleven.<|end|>"]
    assert all("Name a prime" not in s for s in trained)


def test_tokenizer_eos_replaces_fastchat_literal():
    assert get_format("vicuna").render(CONV[:2], False).endswith("Seven.</s>")
    assert get_format("vicuna", _Tok()).render(CONV[:2], False).endswith("Seven.<|end|>")
    assert "<|end|>" in get_format("vicuna", _Tok()).stop


def test_chat_template_format_and_missing_template():
    fmt = get_format("chat-template", _Tok())
    segs = fmt.training_segments(CONV)
    assert [s for s, loss in segs if loss] == ["Seven.<|end|>", "Eleven.<|end|>"]

    class NoTemplate(_Tok):
        chat_template = None

    with pytest.raises(ConfigError, match="has no chat template"):
        get_format("chat-template", NoTemplate())


def test_bad_turn_order_and_unknown_format():
    with pytest.raises(InputError, match="alternate"):
        get_format("vicuna").render([Turn("assistant", "hi")], False)
    with pytest.raises(ConfigError, match="Did you mean 'vicuna'"):
        get_format("vicunna")


def test_format_record_round_trip_and_resolution(tmp_path):
    assert load_format(tmp_path) is None
    save_format(tmp_path, "alpaca")
    assert load_format(tmp_path) == "alpaca"
    assert resolve_format(tmp_path, _Tok()).name == "alpaca"
    assert resolve_format(tmp_path, _Tok(), requested="vicuna").name == "vicuna"
    assert resolve_format(tmp_path / "none", _Tok()).name == "chat-template"
    (tmp_path / "harness_ext_format.json").write_text('{"prompt_format": "zzz"}')
    with pytest.raises(InputError, match="unknown prompt format"):
        load_format(tmp_path)


def test_tiny_model_chat_template_is_prefix_stable(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    fmt = resolve_format(tiny_model_dir, tok)
    assert fmt.name == "chat-template"
    segs = fmt.training_segments(CONV)
    assert [s for s, loss in segs if loss] == ["Seven.<|im_end|>\n", "Eleven.<|im_end|>\n"]

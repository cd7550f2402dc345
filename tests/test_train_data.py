"""Response-only labels for every prompt format, over-length handling, and input errors."""

from __future__ import annotations

import json

import pytest

from harness_ext.core.errors import InputError
from harness_ext.core.records import Turn
from harness_ext.llm.formats import get_format
from harness_ext.train.data import IGNORE_INDEX, ResponseOnlyCollator, tokenize_examples
from tests.train_fixtures import (
    one_torch_thread,  # noqa: F401  (autouse fixture)
    write_examples,
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _responses(row, tokenizer):
    """The text of every maximal run of loss-carrying tokens."""
    runs, cur = [], []
    for tok, lab in zip(row["input_ids"], row["labels"], strict=True):
        assert lab in (IGNORE_INDEX, tok)  # a label is either masked or the token itself
        if lab == IGNORE_INDEX:
            if cur:
                runs.append(tokenizer.decode(cur))
            cur = []
        else:
            cur.append(tok)
    if cur:
        runs.append(tokenizer.decode(cur))
    return runs


@pytest.mark.parametrize("fmt_name", ["vicuna", "alpaca", "chat-template"])
def test_only_response_tokens_carry_loss(tmp_path, tokenizer, fmt_name):
    data = tmp_path / "d.jsonl"
    rows = [
        {"id": "a", "instruction": "Explain how a binary search works.", "response": "Split the list in half."},
        {"id": "b", "conversation": [
            {"role": "user", "content": "Write a short poem."}, {"role": "assistant", "content": "The sea."},
            {"role": "user", "content": "List three ways."}, {"role": "assistant", "content": "Turn off lights."}]},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fmt = get_format(fmt_name, tokenizer)
    out = tokenize_examples(data, tokenizer, fmt, max_length=1024, overlength="truncate")
    assert len(out.rows) == 2
    single = _responses(out.rows[0], tokenizer)
    assert len(single) == 1 and "Split the list in half." in single[0]
    assert "binary search" not in single[0] and "Explain" not in single[0]
    multi = _responses(out.rows[1], tokenizer)
    assert len(multi) == 2 and "The sea." in multi[0] and "Turn off lights." in multi[1]
    # every prompt token (instruction text, role markers, system text) is masked
    masked = [t for t, lab in zip(out.rows[1]["input_ids"], out.rows[1]["labels"], strict=True) if lab == IGNORE_INDEX]
    masked_text = tokenizer.decode(masked)
    assert "Write a short poem." in masked_text and "List three ways." in masked_text
    # the model learns to stop: each response ends on the end-of-turn marker / EOS
    assert any(multi[-1].rstrip().endswith(s) for s in (*fmt.stop, tokenizer.eos_token))
    # the whole rendered conversation is what the model sees
    full = fmt.render([Turn(**t) for t in rows[1]["conversation"]], add_generation_prompt=False)
    assert tokenizer.decode(out.rows[1]["input_ids"]).replace(" ", "").startswith(full.replace(" ", "")[:40])


def test_overlength_truncate_and_drop_are_counted(tmp_path, tokenizer):
    data = write_examples(tmp_path / "d.jsonl", n=12)
    fmt = get_format("chat-template", tokenizer)
    full = tokenize_examples(data, tokenizer, fmt, max_length=4096, overlength="truncate")
    limit = sorted(len(r["input_ids"]) for r in full.rows)[6]
    n_long = sum(len(r["input_ids"]) > limit for r in full.rows)
    assert n_long > 0
    cut = tokenize_examples(data, tokenizer, fmt, max_length=limit, overlength="truncate")
    assert cut.report()["truncated"] == n_long and len(cut.rows) == 12
    assert max(len(r["input_ids"]) for r in cut.rows) == limit
    dropped = tokenize_examples(data, tokenizer, fmt, max_length=limit, overlength="drop")
    assert dropped.report()["dropped"] == {"overlength": n_long} and len(dropped.rows) == 12 - n_long
    # a limit shorter than every prompt leaves no response token: dropped with its own reason
    tiny = tokenize_examples(data, tokenizer, fmt, max_length=limit, overlength="truncate")
    assert tiny.report()["rows_read"] == 12
    with pytest.raises(InputError, match=r"no usable training examples .*overlength=12"):
        tokenize_examples(data, tokenizer, fmt, max_length=3, overlength="drop")
    with pytest.raises(InputError, match="prompt_fills_max_length=12"):
        tokenize_examples(data, tokenizer, fmt, max_length=3, overlength="truncate")


def test_row_forms_and_bad_rows(tmp_path, tokenizer):
    fmt = get_format("alpaca", tokenizer)
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": "Sum", "input": "1 2", "output": "3"}]))
    fastchat = tmp_path / "fc.jsonl"
    fastchat.write_text(json.dumps({"id": "x", "conversations": [
        {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello there."}]}) + "\n")
    assert len(tokenize_examples(alpaca, tokenizer, fmt, max_length=512, overlength="drop").rows) == 1
    row = tokenize_examples(fastchat, tokenizer, fmt, max_length=512, overlength="drop").rows[0]
    assert "Hello there." in _responses(row, tokenizer)[0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "response": "b"}\n{"text": "no fields"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: row has neither 'instruction'"):
        tokenize_examples(bad, tokenizer, fmt, max_length=512, overlength="drop")
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"instruction": "a", "response": ""}\n')
    with pytest.raises(InputError, match="no_response=1"):
        tokenize_examples(empty, tokenizer, fmt, max_length=512, overlength="drop")


def test_collator_pads_right_with_masked_labels():
    coll = ResponseOnlyCollator(pad_token_id=0)
    batch = coll([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]


def test_bad_conversation_names_file_and_line(tmp_path, tokenizer):
    data = tmp_path / "c.jsonl"
    data.write_text('{"instruction": "a", "response": "b"}\n' + json.dumps({"conversation": [
        {"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}) + "\n")
    with pytest.raises(InputError, match=r"c.jsonl:2: conversation turns must alternate"):
        tokenize_examples(data, tokenizer, get_format("vicuna", tokenizer), max_length=512, overlength="drop")


def test_non_string_fields_are_dropped_and_counted(tmp_path, tokenizer, caplog):
    data = tmp_path / "types.jsonl"
    rows = [
        {"instruction": "Sum", "output": "3"},
        {"instruction": "Sum", "output": 5},  # line 2: int output
        {"instruction": ["a"], "output": "x"},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": None}]},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": 7}]},
        {"instruction": "Sum", "input": 2, "response": "4"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fmt = get_format("alpaca", tokenizer)
    with caplog.at_level("WARNING", logger="harness_ext.train.data"):
        out = tokenize_examples(data, tokenizer, fmt, max_length=512, overlength="drop")
    assert out.report()["rows_read"] == 6 and len(out.rows) == 1
    assert out.report()["dropped"] == {"no_response": 1, "non_string_field:conversations.value": 1,
                                       "non_string_field:input": 1, "non_string_field:instruction": 1,
                                       "non_string_field:output": 1}
    assert f"{data}:2: field 'output' is a int ('5'), expected a string" in caplog.text
    only_bad = tmp_path / "bad.json"
    only_bad.write_text(json.dumps([{"instruction": "Sum", "output": 5}]))
    with pytest.raises(InputError, match=r"no usable training examples \(1 rows read; dropped_non_string_field:output=1"):
        tokenize_examples(only_bad, tokenizer, fmt, max_length=512, overlength="drop")

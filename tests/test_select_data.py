"""Loaders: every row shape and file type, ids and row order, and every bad-input case."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from harness_ext.core.errors import HarnessError, InputError
from harness_ext.data.loaders import load_examples

ALPACA = [
    {"instruction": "Name a color.", "input": "", "output": "Blue."},
    {"instruction": "Translate.", "input": "Hola", "output": "Hello.", "category": "translation"},
    {"instruction": "Sum 2+2.", "input": "", "output": "4"},
]


def write(path, rows, jsonl=False):
    if jsonl:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return path


def test_alpaca_json_keeps_order_rows_and_identity_ids(tmp_path):
    exs = load_examples(write(tmp_path / "a.json", ALPACA))
    assert [e.id for e in exs] == ["identity_0", "identity_1", "identity_2"]
    assert [e.row for e in exs] == [0, 1, 2]
    assert exs[1].input == "Hola" and exs[1].response == "Hello."
    assert exs[1].metadata == {"category": "translation"}


def test_jsonl_and_file_ids(tmp_path):
    rows = [dict(r, id=f"ex-{i}") for i, r in enumerate(ALPACA)]
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n" + json.dumps(rows[2]), encoding="utf-8")
    exs = load_examples(p)
    assert [e.id for e in exs] == ["ex-0", "ex-1", "ex-2"]
    assert [e.row for e in exs] == [0, 1, 2]


def test_evol_instruct(tmp_path):
    exs = load_examples(write(tmp_path / "evol.json", [{"instruction": "Explain X.", "output": "X is..."}]))
    assert exs[0].instruction == "Explain X." and exs[0].input == "" and exs[0].response == "X is..."
    exs = load_examples(write(tmp_path / "evol2.json", [{"instruction": "Q", "output": "A"}]), fmt="evol-instruct")
    assert exs[0].response == "A"


def test_fastchat_strips_the_alpaca_preamble_like_the_papers_lima_file(tmp_path):
    rows = [
        {"id": "identity_0", "conversations": [
            {"from": "human", "value": "Below is an instruction that describes a task. Write a response that "
                                       "appropriately completes the request. ### Instruction: Can cells move?"},
            {"from": "gpt", "value": "Yes, some can."}]},
        {"id": "identity_1", "conversations": [
            {"from": "human", "value": "Below is an instruction that describes a task, paired with an input that "
                                       "provides further context. Write a response that appropriately completes "
                                       "the request. ### Instruction: Translate. ### Input: Hola"},
            {"from": "gpt", "value": "Hello"}]},
    ]
    exs = load_examples(write(tmp_path / "lima.json", rows))
    assert (exs[0].instruction, exs[0].input, exs[0].response) == ("Can cells move?", "", "Yes, some can.")
    assert (exs[1].instruction, exs[1].input) == ("Translate.", "Hola")
    assert exs[0].conversation is None


def test_openhermes_multiturn_with_source(tmp_path):
    rows = [
        {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                           {"from": "gpt", "value": "Hello!"}, {"from": "human", "value": "Bye"},
                           {"from": "gpt", "value": "Bye!"}], "source": "airoboros"},
        {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}], "source": "glaive"},
    ]
    exs = load_examples(write(tmp_path / "oh.jsonl", rows, jsonl=True), fmt="openhermes")
    assert [e.source for e in exs] == ["airoboros", "glaive"]
    assert exs[0].instruction == "Hi" and exs[0].response == "Hello!"
    assert [t.role for t in exs[0].conversation] == ["system", "user", "assistant", "user", "assistant"]


def test_custom_source_field_and_messages_format(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}], "origin": "x"}]
    exs = load_examples(write(tmp_path / "m.json", rows), source_field="origin")
    assert exs[0].source == "x" and exs[0].response == "A1"


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist(ALPACA), p)
    exs = load_examples(p)
    assert [e.response for e in exs] == ["Blue.", "Hello.", "4"]
    assert exs[2].id == "identity_2"


def test_hf_dataset_offline_is_a_clean_error(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(InputError) as e:
        load_examples("hf:harness-ext-test/no-such-dataset")
    assert "could not load the Hugging Face dataset 'harness-ext-test/no-such-dataset'" in str(e.value)
    assert "offline" in str(e.value)


# ---------------------------------------------------------------- bad input


def test_malformed_json_names_file_and_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "output": }\n]\n')
    with pytest.raises(InputError) as e:
        load_examples(p)
    assert f"{p}:3:" in str(e.value)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"\n')
    with pytest.raises(InputError) as e:
        load_examples(p)
    assert f"{p}:2:" in str(e.value) and "malformed JSON line" in str(e.value)


def test_invalid_utf8(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"instruction": "a", "output": "b"}\n{"instruction": "\xff\xfe", "output": "d"}\n')
    with pytest.raises(InputError) as e:
        load_examples(p)
    assert f"{p}:2:" in str(e.value) and "invalid UTF-8" in str(e.value)
    q = tmp_path / "bad.json"
    q.write_bytes(b'[\n{"instruction": "\xc3", "output": "d"}]')
    with pytest.raises(InputError, match="invalid UTF-8"):
        load_examples(q)


@pytest.mark.parametrize("content", ["", "   \n\n", "[]"])
def test_empty_file(tmp_path, content):
    p = tmp_path / "empty.json"
    p.write_text(content)
    with pytest.raises(InputError, match="empty|no rows"):
        load_examples(p)


def test_missing_file_and_not_a_list(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_examples(tmp_path / "nope.json")
    p = tmp_path / "obj.json"
    p.write_text('{"a": 1}')
    with pytest.raises(InputError, match="expected a JSON list"):
        load_examples(p)


def test_bad_fields_are_dropped_with_reasons(tmp_path):
    rows = [
        {"instruction": "ok", "input": "", "output": "fine"},
        {"instruction": "no output", "input": ""},
        {"instruction": "empty", "input": "", "output": "   "},
        {"instruction": "number", "input": "", "output": 42},
        {"instruction": 7, "input": "", "output": "x"},
        ["not", "an", "object"],
        {"conversations": [{"from": "human", "value": "hi"}]},
        {"foo": "bar"},
    ]
    drops: Counter = Counter()
    exs = load_examples(write(tmp_path / "mixed.json", rows), drops=drops)
    assert [e.row for e in exs] == [0]
    # The format is fixed by the first usable row (alpaca), so other shapes lack 'instruction'.
    assert drops == Counter({"missing_field:output": 1, "empty_field:output": 1, "non_string_field:output": 1,
                             "non_string_field:instruction": 1, "not_an_object": 1,
                             "missing_field:instruction": 2})
    conv_rows = [{"foo": "bar"}, {"conversations": [{"from": "human", "value": "hi"}]},
                 {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}]
    drops = Counter()
    exs = load_examples(write(tmp_path / "conv.json", conv_rows), drops=drops)
    assert [e.row for e in exs] == [2]
    assert drops == Counter({"unknown_format": 1, "no_assistant_turn": 1})


def test_strict_fails_on_the_first_bad_row_naming_line_and_field(tmp_path):
    rows = [{"instruction": "ok", "output": "fine"}, {"instruction": "bad", "output": ""}]
    p = write(tmp_path / "s.jsonl", rows, jsonl=True)
    with pytest.raises(InputError) as e:
        load_examples(p, strict=True)
    msg = str(e.value)
    assert f"{p}:2:" in msg and "'output' is empty" in msg and "--strict" in msg


def test_unknown_format_did_you_mean(tmp_path):
    with pytest.raises(HarnessError, match="Did you mean 'sharegpt'"):
        load_examples(write(tmp_path / "a.json", ALPACA), fmt="sharegtp")


def test_own_example_rows_round_trip_with_conversation_and_original_row(tmp_path):
    from harness_ext.core.records import Example, Turn
    from harness_ext.data.loaders import load_examples

    ex = Example(id="identity_41", instruction="Hi", response="Hello!", source="lima", row=41,
                 conversation=[Turn("user", "Hi"), Turn("assistant", "Hello!"), Turn("user", "More?"),
                               Turn("assistant", "Sure.")], metadata={"length": 3})
    p = tmp_path / "selected.jsonl"
    p.write_text(json.dumps(ex.to_dict()) + "\n")
    (back,) = load_examples(p)
    assert back.to_dict() == ex.to_dict()


def test_jsonl_content_in_a_json_file(tmp_path):
    p = tmp_path / "lines.json"
    p.write_text("".join(json.dumps(r) + "\n" for r in ALPACA))
    assert [e.response for e in load_examples(p)] == ["Blue.", "Hello.", "4"]
    p.write_text(json.dumps(ALPACA[0]) + "\n{bad\n")
    with pytest.raises(InputError, match=":2:"):
        load_examples(p)

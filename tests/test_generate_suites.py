"""Suite loaders: each test set's own field names, custom files, and bad input."""

from __future__ import annotations

import json

import pytest

from harness_ext.core.errors import ConfigError, InputError
from harness_ext.generate.suites import SUITES, load_suite


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def testsets(tmp_path):
    """A folder laid out like the paper's test sets, two rows each, with each file's own fields."""
    root = tmp_path / "testsets"
    write_jsonl(root / "lima_test.jsonl", [{"conversations": ["Help me write an intro."], "source": ""},
                                           {"conversations": ["Why is the sky blue?"], "source": ""}])
    write_jsonl(root / "vicuna_test_set.jsonl", [{"question_id": 1, "text": "Time management tips?", "category": "generic"},
                                                 {"question_id": 2, "text": "Deal with stress?", "category": "generic"}])
    write_jsonl(root / "koala_test_set.jsonl", [{"id": "koala_0", "prompt": "List films."},
                                                {"id": "koala_1", "prompt": "Turn a speech into a song."}])
    write_jsonl(root / "wizardlm_test_set.jsonl", [{"idx": 1, "Skill": "Math", "Difficulty": 1, "Instruction": "Average speed?"},
                                                   {"idx": 2, "Skill": "Math", "Difficulty": 3, "Instruction": "x - y = ?"}])
    write_jsonl(root / "sinstruct_test_set.jsonl", [
        {"id": "user_oriented_task_0", "motivation_app": "Grammarly", "instruction": "Rewrite concisely.",
         "instances": [{"input": "If you have any questions, let me know.", "output": "..."}]},
        {"id": "user_oriented_task_1", "motivation_app": "x", "instruction": "Tell a joke.",
         "instances": [{"input": "", "output": "..."}]},
    ])
    return root


def test_pairwise_reads_each_set_with_its_own_fields(testsets):
    suite = load_suite("pairwise", testsets)
    assert suite.kind == "single" and len(suite.items) == 10
    by = {(i.dataset, i.id): i.turns[0] for i in suite.items}
    assert by[("lima", "0")] == "Help me write an intro."
    assert by[("vicuna", "1")] == "Time management tips?"
    assert by[("koala", "koala_1")] == "Turn a speech into a song."
    assert by[("wizardlm", "2")] == "x - y = ?"
    assert by[("sinstruct", "user_oriented_task_0")] == "Rewrite concisely.\n\nIf you have any questions, let me know."
    assert by[("sinstruct", "user_oriented_task_1")] == "Tell a joke."
    assert [i.dataset for i in suite.items][::2] == ["lima", "vicuna", "koala", "wizardlm", "sinstruct"]


def test_one_set_as_a_suite_and_fastchat_vicuna_layout(tmp_path):
    f = write_jsonl(tmp_path / "vicuna_bench" / "question.jsonl",
                    [{"question_id": 5, "category": "generic", "turns": ["Quantum computing basics?"]}])
    suite = load_suite("vicuna", tmp_path)
    assert [(i.id, i.turns) for i in suite.items] == [("5", ["Quantum computing basics?"])]
    assert load_suite("vicuna", f).items[0].dataset == "vicuna"


def test_pairwise_folder_missing_a_set_names_what_was_looked_for(testsets):
    (testsets / "koala_test_set.jsonl").unlink()
    with pytest.raises(InputError, match="no koala test file.*koala_test_set.jsonl"):
        load_suite("pairwise", testsets)


def test_wrong_field_names_the_file_line_and_expected_field(testsets):
    write_jsonl(testsets / "koala_test_set.jsonl", [{"id": "k0", "prompt": "ok"}, {"id": "k1", "question": "?"}])
    with pytest.raises(InputError) as info:
        load_suite("koala", testsets)
    msg = str(info.value)
    assert "koala_test_set.jsonl:2" in msg and "prompt" in msg and "question" in msg


def test_mt_bench_questions(tmp_path):
    f = write_jsonl(tmp_path / "question.jsonl", [
        {"question_id": 81, "category": "writing", "turns": ["Write a blog post.", "Rewrite it."]},
        {"question_id": 101, "category": "reasoning", "turns": ["A riddle?", "And now?"], "reference": ["x", "y"]},
    ])
    suite = load_suite("mt_bench", f)
    assert suite.kind == "multi"
    assert [(i.fields["question_id"], i.category, len(i.turns)) for i in suite.items] == [(81, "writing", 2),
                                                                                           (101, "reasoning", 2)]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question_id": 1, "turns": "not a list"}])
    with pytest.raises(InputError, match="bad.jsonl:1.*turns"):
        load_suite("mt_bench", bad)


def test_alpaca_eval_json_array_keeps_order_and_datasets(tmp_path):
    f = tmp_path / "alpaca_eval.json"
    f.write_text(json.dumps([{"instruction": "b?", "dataset": "koala"}, {"instruction": "a?", "dataset": "oasst"},
                             {"instruction": "c?", "dataset": "koala"}]))
    suite = load_suite("alpaca_eval", f)
    assert [(i.turns[0], i.dataset) for i in suite.items] == [("b?", "koala"), ("a?", "oasst"), ("c?", "koala")]


def test_custom_prompt_files(tmp_path):
    f = write_jsonl(tmp_path / "mine.jsonl", [{"prompt": "one"}, {"instruction": "two", "input": "ctx", "id": "x"}])
    suite = load_suite(str(f))
    assert [(i.id, i.dataset, i.turns[0]) for i in suite.items] == [("0", "mine", "one"), ("x", "mine", "two\n\nctx")]
    mt = write_jsonl(tmp_path / "mt.jsonl", [{"question_id": 1, "turns": ["a", "b"]}])
    assert load_suite(str(mt)).kind == "multi"
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"id": 1, "prompt": "a"}, {"id": 1, "prompt": "b"}])
    with pytest.raises(InputError, match="duplicate id '1'"):
        load_suite(str(dup))


def test_unknown_suite_and_missing_data():
    with pytest.raises(ConfigError, match="Unknown suite 'mt_bnech'. Did you mean 'mt_bench'"):
        load_suite("mt_bnech")
    with pytest.raises(ConfigError, match="needs --data"):
        load_suite("alpaca_eval")
    with pytest.raises(InputError, match="prompts file not found"):
        load_suite("missing/prompts.jsonl")


def test_malformed_files(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "ok"}\n{"prompt": \n')
    with pytest.raises(InputError, match="p.jsonl:2"):
        load_suite(str(f))
    g = tmp_path / "p.json"
    g.write_text('{"prompt": "a dict, not a list"}')
    with pytest.raises(InputError, match="JSON array"):
        load_suite(str(g))


def test_demo_suites_read_the_bundled_files_or_data(tmp_path):
    f = write_jsonl(tmp_path / "eval_prompts.jsonl",
                    [{"id": "demo-eval-001", "instruction": "Name a prime.", "category": "math"}])
    suite = load_suite("demo", f)
    assert [(i.id, i.dataset, i.category) for i in suite.items] == [("demo-eval-001", "demo", "math")]
    assert "demo" in SUITES and "demo_mt" in SUITES


def test_real_shared_data_has_the_papers_counts(shared_data):
    pairwise = load_suite("pairwise", shared_data)
    counts = {}
    for item in pairwise.items:
        counts[item.dataset] = counts.get(item.dataset, 0) + 1
    assert counts == {"lima": 300, "vicuna": 80, "koala": 180, "wizardlm": 218, "sinstruct": 252}
    assert all(item.turns[0].strip() for item in pairwise.items)
    # the paper's own WizardLM copy is preferred over the upstream file when both are present
    assert any("long_is_more_testsets" in s for s in pairwise.sources)
    mt = load_suite("mt_bench", shared_data / "mt_bench" / "question.jsonl")
    assert len(mt.items) == 80 and all(len(i.turns) == 2 for i in mt.items)
    ae = load_suite("alpaca_eval", shared_data / "alpaca_eval" / "alpaca_eval_805_instructions.jsonl")
    assert len(ae.items) == 805

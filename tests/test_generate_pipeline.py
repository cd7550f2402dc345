"""generate_suite end to end: every suite's files, read back by the harnesses' own loaders;
resume, length control and bad input."""

from __future__ import annotations

import json

import pytest

from harness_ext.artifacts import read_json, read_jsonl
from harness_ext.errors import ConfigError
from harness_ext.generate import MT_BENCH_TEMPERATURES, generate_suite
from harness_ext.records import SamplingParams
from tests.conftest import run_cli
from tests.gen_helpers import ScriptedBackend, build_eos_heavy_model


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def alpaca_file(tmp_path):
    rows = [{"instruction": f"Question number {i}: why?", "dataset": ["koala", "oasst", "vicuna"][i % 3]}
            for i in range(7)]
    path = tmp_path / "alpaca_eval.json"
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture
def mt_file(tmp_path):
    rows = [
        {"question_id": 81, "category": "writing", "turns": ["Write a travel blog post.", "Rewrite it in A-words."]},
        {"question_id": 111, "category": "math", "turns": ["What is 2+2?", "And 3+3?"]},
        {"question_id": 131, "category": "extraction", "turns": ["Extract names.", "Now as JSON."]},
        {"question_id": 150, "category": "newcat", "turns": ["Hmm?", "Hmm!"]},
    ]
    return write_jsonl(tmp_path / "question.jsonl", rows)


def test_alpaca_eval_outputs_load_unchanged_in_alpaca_eval(tiny_model_dir, alpaca_file, tmp_path):
    from alpaca_eval import utils

    out = tmp_path / "gen"
    main = generate_suite(tiny_model_dir, "alpaca_eval", out, data=alpaca_file, model_id="tiny-1k",
                          params=SamplingParams(max_new_tokens=6, temperature=1.0, seed=3), batch_size=4,
                          progress=False)
    assert main == out / "model_outputs.json"
    df = utils.load_or_convert_to_dataframe(main)
    ref = utils.load_or_convert_to_dataframe(alpaca_file)
    assert set(df.columns) == {"instruction", "output", "generator", "dataset", "datasplit"}
    assert df["instruction"].tolist() == ref["instruction"].tolist()  # aligned with the input order
    assert df["dataset"].tolist() == ref["dataset"].tolist()
    assert utils.get_generator_name(None, df) == "tiny-1k"
    assert (df["datasplit"] == "eval").all()
    meta = read_json(out / "generation_meta.json")
    assert meta["backend"] == "hf" and meta["prompt_format"] == "chat-template" and meta["seed"] == 3
    assert meta["params"]["max_new_tokens"] == 6 and meta["answered_turns"] == 7
    rows = read_jsonl(out / "outputs.jsonl")
    assert meta["avg_completion_tokens"] == pytest.approx(sum(r["completion_tokens"] for r in rows) / 7, abs=0.01)
    assert meta["avg_chars"] == pytest.approx(sum(len(r["output"]) for r in rows) / 7, abs=0.01)
    assert set(meta["per_dataset"]) == {"koala", "oasst", "vicuna"}


def _fastchat_load_model_answers(monkeypatch):
    """FastChat's own answer reader. Its module imports the anthropic SDK at top level, which
    reading answer files never uses; an empty stand-in module lets it import without that SDK."""
    import sys
    import types

    if "anthropic" not in sys.modules:
        try:
            import anthropic  # noqa: F401
        except ImportError:
            monkeypatch.setitem(sys.modules, "anthropic", types.ModuleType("anthropic"))
    from fastchat.llm_judge.common import load_model_answers

    return load_model_answers


def test_mt_bench_answers_are_fastchat_format_and_condition_turn_two(mt_file, tmp_path, monkeypatch):
    load_model_answers = _fastchat_load_model_answers(monkeypatch)

    backend = ScriptedBackend()
    main = generate_suite("models/my-model", "mt_bench", tmp_path / "mt", data=mt_file, backend_obj=backend,
                          progress=False)
    assert main == tmp_path / "mt" / "model_answer" / "my-model.jsonl"
    answers = load_model_answers(str(main.parent))["my-model"]
    assert sorted(answers) == [81, 111, 131, 150]
    for qid, ans in answers.items():
        assert set(ans) == {"question_id", "answer_id", "model_id", "choices", "tstamp"}
        assert ans["model_id"] == "my-model" and isinstance(ans["tstamp"], float)
        assert ans["choices"][0]["index"] == 0 and len(ans["choices"][0]["turns"]) == 2
        assert isinstance(ans["answer_id"], str) and ans["question_id"] == qid
    assert [json.loads(line)["question_id"] for line in main.read_text().splitlines()] == [81, 111, 131, 150]
    # turn 2 saw the question, the model's own turn-1 answer, then the follow-up
    second = [conv for convs, _ in backend.calls for conv in convs if len(conv) == 3]
    by_q = {conv[0].content: conv for conv in second}
    conv = by_q["What is 2+2?"]
    assert conv[1].role == "assistant" and conv[1].content == answers[111]["choices"][0]["turns"][0]
    assert conv[2].content == "And 3+3?"
    # FastChat's per-category temperatures (0.7 for categories it does not list)
    temps = {conv[0].content: params.temperature for convs, params in backend.calls for conv in convs}
    assert temps["Write a travel blog post."] == MT_BENCH_TEMPERATURES["writing"] == 0.7
    assert temps["What is 2+2?"] == 0.0 and temps["Extract names."] == 0.0 and temps["Hmm?"] == 0.7


def test_explicit_temperature_overrides_category_temperatures(mt_file, tmp_path):
    backend = ScriptedBackend()
    generate_suite("m", "mt_bench", tmp_path / "mt", data=mt_file, backend_obj=backend, progress=False,
                   params=SamplingParams(temperature=0.3), category_temperatures=False)
    assert {p.temperature for _, p in backend.calls} == {0.3}


def test_pairwise_limit_is_per_test_set(shared_data, tmp_path):
    backend = ScriptedBackend()
    main = generate_suite("m", "pairwise", tmp_path / "pw", data=shared_data, backend_obj=backend, limit=2,
                          progress=False)
    rows = read_jsonl(main)
    assert [r["dataset"] for r in rows] == ["lima"] * 2 + ["vicuna"] * 2 + ["koala"] * 2 + ["wizardlm"] * 2 + [
        "sinstruct"] * 2
    assert rows[4]["id"] == "koala_0"
    alpaca_style = read_json(tmp_path / "pw" / "model_outputs.json")
    assert [r["instruction"] for r in alpaca_style] == [r["instruction"] for r in rows]


def test_rerun_resumes_and_skips_answered_prompts(alpaca_file, tmp_path):
    out = tmp_path / "gen"
    first = ScriptedBackend(chunk_size=3, interrupt_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        generate_suite("m", "alpaca_eval", out, data=alpaca_file, backend_obj=first, progress=False)
    assert not (out / "model_outputs.json").exists()  # no half-written output
    assert len(read_jsonl(out / "answers.log.jsonl")) == 3  # the first chunk was kept
    second = ScriptedBackend(chunk_size=3)
    main = generate_suite("m", "alpaca_eval", out, data=alpaca_file, backend_obj=second, progress=False)
    assert len(second.prompts_seen()) == 4  # only the 4 unanswered prompts
    assert not set(second.prompts_seen()) & set(first.prompts_seen())
    outputs = read_json(main)
    assert [o["instruction"] for o in outputs] == [f"Question number {i}: why?" for i in range(7)]
    third = ScriptedBackend()
    generate_suite("m", "alpaca_eval", out, data=alpaca_file, backend_obj=third, progress=False)
    assert third.calls == []  # everything answered: nothing to do
    with pytest.raises(ConfigError, match="different settings"):
        generate_suite("m", "alpaca_eval", out, data=alpaca_file, backend_obj=ScriptedBackend(), progress=False,
                       params=SamplingParams(max_new_tokens=99))


def test_empty_prompts_are_counted_and_skipped(tmp_path):
    f = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "fine"}, {"prompt": "   "}, {"prompt": "also fine"}])
    backend = ScriptedBackend()
    main = generate_suite("m", str(f), tmp_path / "out", backend_obj=backend, progress=False)
    assert [r["instruction"] for r in read_jsonl(main)] == ["fine", "also fine"]
    meta = read_json(tmp_path / "out" / "generation_meta.json")
    assert meta["skipped_empty"] == 1 and meta["skipped"] == [{"dataset": "p", "id": "1", "reason": "empty"}]
    assert backend.prompts_seen() == ["fine", "also fine"]


def test_length_prompt_is_appended_but_outputs_keep_the_instruction(alpaca_file, tmp_path):
    backend = ScriptedBackend()
    main = generate_suite("m", "alpaca_eval", tmp_path / "o", data=alpaca_file, backend_obj=backend,
                          length_prompt="paragraphs=3", progress=False)
    assert all(p.endswith("\n\nAnswer in 3 paragraphs.") for p in backend.prompts_seen())
    assert read_json(main)[0]["instruction"] == "Question number 0: why?"
    assert read_json(tmp_path / "o" / "generation_meta.json")["length_prompt"] == "Answer in 3 paragraphs."
    with pytest.raises(ConfigError, match="Unknown length prompt 'paragraph'. Did you mean 'paragraphs'"):
        generate_suite("m", "alpaca_eval", tmp_path / "o2", data=alpaca_file, backend_obj=backend,
                       length_prompt="paragraph=3", progress=False)


def test_prompts_longer_than_the_context_are_truncated_or_skipped(tiny_model_dir, tmp_path):
    from harness_ext.backends import get_backend

    long_text = "The quick brown fox jumps over the lazy dog. " * 30 + "What did the fox do?"
    f = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Write a poem"}, {"prompt": long_text}])
    backend = get_backend("hf", str(tiny_model_dir), context_length=96)
    params = SamplingParams(max_new_tokens=16)
    main = generate_suite(tiny_model_dir, str(f), tmp_path / "t", backend_obj=backend, params=params, progress=False)
    rows = read_jsonl(main)
    assert [r["truncated"] for r in rows] == [False, True]
    assert rows[1]["prompt_tokens"] <= 96 - 16 and rows[1]["instruction"] == long_text
    assert read_json(tmp_path / "t" / "generation_meta.json")["truncated"] == 1
    generate_suite(tiny_model_dir, str(f), tmp_path / "s", backend_obj=backend, params=params, overflow="skip",
                   progress=False)
    meta = read_json(tmp_path / "s" / "generation_meta.json")
    assert meta["skipped_too_long"] == 1 and meta["answered_items"] == 1


def test_cli_generates_with_min_new_tokens_and_reports_bad_input(tiny_model_dir, tmp_path):
    model = build_eos_heavy_model(tiny_model_dir, tmp_path / "eos-heavy")
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"id": "a", "instruction": "Write a poem"},
                                                       {"id": "b", "instruction": "List three ways"}])
    res = run_cli("generate", "--model", str(model), "--suite", str(prompts), "--out", str(tmp_path / "g"),
                  "--min-new-tokens", "20", "--max-new-tokens", "32", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("outputs.jsonl")
    meta = read_json(tmp_path / "g" / "generation_meta.json")
    assert meta["avg_completion_tokens"] == 20.0  # the model wants EOS at once; min-new-tokens held it back
    assert meta["params"]["min_new_tokens"] == 20
    bad = run_cli("generate", "--model", str(model), "--suite", "alpaca_evl", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        bad.stderr.strip().splitlines()[0]] and "Did you mean 'alpaca_eval'" in bad.stderr
    assert not (tmp_path / "x").exists()

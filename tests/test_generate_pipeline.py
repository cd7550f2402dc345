"""generate_suite end to end: every suite's files, read back by the harnesses' own loaders;
resume, length control and bad input."""

from __future__ import annotations

import json

import pytest

from harness_ext.core.artifacts import read_json, read_jsonl
from harness_ext.core.errors import ConfigError
from harness_ext.core.records import SamplingParams
from harness_ext.generate.run import MT_BENCH_TEMPERATURES, generate_suite
from tests.conftest import cli_env, run_cli
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


@pytest.fixture
def testsets(tmp_path):
    """Three rows per pairwise test set, each file with its own field names."""
    root = tmp_path / "testsets"
    root.mkdir()
    sets = {
        "lima_test.jsonl": [{"conversations": [f"LIMA prompt {i}"], "source": ""} for i in range(3)],
        "vicuna_test_set.jsonl": [{"question_id": i + 1, "text": f"Vicuna prompt {i}", "category": "generic"}
                                  for i in range(3)],
        "koala_test_set.jsonl": [{"id": f"koala_{i}", "prompt": f"Koala prompt {i}"} for i in range(3)],
        "wizardlm_test_set.jsonl": [{"idx": i + 1, "Skill": "Math", "Difficulty": 1, "Instruction": f"Wiz {i}"}
                                    for i in range(3)],
        "sinstruct_test_set.jsonl": [{"id": f"user_oriented_task_{i}", "motivation_app": "x", "instruction": f"SI {i}",
                                      "instances": [{"input": "", "output": ""}]} for i in range(3)],
    }
    for name, rows in sets.items():
        write_jsonl(root / name, rows)
    return root


def test_pairwise_writes_every_set_and_limit_is_per_set(testsets, tmp_path):
    backend = ScriptedBackend()
    main = generate_suite("m", "pairwise", tmp_path / "pw", data=testsets, backend_obj=backend, limit=2,
                          progress=False)
    rows = read_jsonl(main)
    assert [r["dataset"] for r in rows] == ["lima"] * 2 + ["vicuna"] * 2 + ["koala"] * 2 + ["wizardlm"] * 2 + [
        "sinstruct"] * 2
    assert [r["id"] for r in rows][4:6] == ["koala_0", "koala_1"]
    assert all(r["output"].startswith("answer to: ") and r["generator"] == "m" for r in rows)
    alpaca_style = read_json(tmp_path / "pw" / "model_outputs.json")
    assert [r["instruction"] for r in alpaca_style] == [r["instruction"] for r in rows]
    meta = read_json(tmp_path / "pw" / "generation_meta.json")
    assert set(meta["per_dataset"]) == {"lima", "vicuna", "koala", "wizardlm", "sinstruct"}


@pytest.mark.parametrize("suite,rows,main_name", [
    ("demo", [{"id": "demo-eval-001", "instruction": "Name a prime.", "category": "math"}], "outputs.jsonl"),
    ("demo_mt", [{"question_id": 1, "category": "writing", "turns": ["Write a line.", "Shorter."]}],
     "model_answer/m.jsonl"),
    ("koala", [{"id": "koala_0", "prompt": "List films."}], "outputs.jsonl"),
])
def test_demo_and_single_set_suites_write_their_files(suite, rows, main_name, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", rows)
    main = generate_suite("m", suite, tmp_path / "o", data=data, backend_obj=ScriptedBackend(), progress=False)
    assert main == tmp_path / "o" / main_name
    assert len(read_jsonl(main)) == 1


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
    from harness_ext.generate.backends import get_backend

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


def test_answers_are_read_by_our_judging_stages(mt_file, testsets, tmp_path):
    """The MT-Bench judge reads model_answer/<id>.jsonl and the pairwise judge pairs outputs.jsonl
    files of two models, both unchanged."""
    from harness_ext.generate.outputs import load_outputs, match_outputs
    from harness_ext.judge.mt_bench_files import load_answers, load_questions

    generate_suite("m", "mt_bench", tmp_path / "mt", data=mt_file, backend_obj=ScriptedBackend(), progress=False)
    questions = load_questions(mt_file)
    answers = load_answers(tmp_path / "mt" / "model_answer", ["m"], questions)["m"]
    assert answers[111][0].startswith("answer to: What is 2+2?") and len(answers[111]) == 2
    paths = [generate_suite(name, "pairwise", tmp_path / name, data=testsets, backend_obj=ScriptedBackend(),
                            progress=False) for name in ("model-a", "model-b")]
    pairs, counts = match_outputs(load_outputs(paths[0]), load_outputs(paths[1]))
    assert counts["matched"] == 15 and counts["matched_on_dataset"] == 1
    assert all(a.instruction == b.instruction and a.generator == "model-a" for a, b in pairs)


def test_bundled_demo_suites_generate_without_data(tmp_path):
    main = generate_suite("m", "demo", tmp_path / "d", backend_obj=ScriptedBackend(), limit=3, progress=False)
    assert [r["dataset"] for r in read_jsonl(main)] == ["demo"] * 3
    mt = generate_suite("m", "demo_mt", tmp_path / "dm", backend_obj=ScriptedBackend(), limit=2, progress=False)
    rows = read_jsonl(mt)
    assert len(rows) == 2 and all(len(r["choices"][0]["turns"]) == 2 for r in rows)


def test_cli_openai_backend_against_a_loopback_server(mt_file, tmp_path):
    """`--backend openai` through the CLI: MT-Bench turn 2 carries the server's own turn-1 answer,
    and the API key appears in no output file."""
    from tests.openai_server import LoopbackServer, last_user_text

    key = "sk-test-secret-123"
    with LoopbackServer(reply=lambda body: "reply to " + last_user_text(body), api_key=key) as srv:
        res = run_cli("generate", "--model", "served-model", "--backend", "openai", "--base-url", srv.base_url,
                      "--suite", "mt_bench", "--data", str(mt_file), "--out", str(tmp_path / "o"), "--no-progress",
                      env=cli_env(OPENAI_API_KEY=key))
        bodies = list(srv.bodies)
    assert res.returncode == 0, res.stderr
    rows = read_jsonl(tmp_path / "o" / "model_answer" / "served-model.jsonl")
    assert rows[1]["choices"][0]["turns"] == ["reply to What is 2+2?", "reply to And 3+3?"]
    second = next(b for b in bodies if b["messages"][-1]["content"] == "And 3+3?")
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][1]["content"] == "reply to What is 2+2?"
    assert {b["temperature"] for b in bodies} == {0.7, 0.0}  # FastChat's per-category temperatures
    for f in (tmp_path / "o").rglob("*"):
        if f.is_file():
            assert key not in f.read_text(encoding="utf-8")


def test_cli_openai_backend_client_options_reach_the_client(mt_file, tmp_path):
    """--max-retries, --timeout, --concurrency and --rpm configure the openai backend's client."""
    from tests.openai_server import LoopbackServer, last_user_text

    args = ["generate", "--model", "served-model", "--backend", "openai", "--suite", "mt_bench", "--data",
            str(mt_file), "--no-progress", "--concurrency", "1", "--rpm", "6000", "--timeout", "30"]
    with LoopbackServer(reply=lambda body: "ok " + last_user_text(body), fail_first=1, faults=("500",)) as srv:
        res = run_cli(*args, "--base-url", srv.base_url, "--out", str(tmp_path / "o1"), "--max-retries", "0")
        assert res.returncode != 0 and "gave up after 1 attempt:" in res.stderr and "HTTP 500" in res.stderr
        assert not (tmp_path / "o1" / "model_answer").exists()
        res = run_cli(*args, "--base-url", srv.base_url, "--out", str(tmp_path / "o2"), "--max-retries", "2")
    assert res.returncode == 0, res.stderr
    res = run_cli(*args, "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "o3"), "--timeout", "0")
    assert res.returncode == 2 and "--timeout" in res.stderr


def test_answers_file_names_the_main_output(mt_file, alpaca_file, tmp_path):
    from harness_ext.generate.run import answers_file

    assert answers_file(tmp_path / "none", "alpaca_eval") == tmp_path / "none" / "model_outputs.json"
    assert answers_file(tmp_path / "none", "pairwise") == tmp_path / "none" / "outputs.jsonl"
    for suite, data in (("mt_bench", mt_file), ("alpaca_eval", alpaca_file)):
        main = generate_suite("m", suite, tmp_path / suite, data=data, backend_obj=ScriptedBackend(), progress=False)
        assert answers_file(tmp_path / suite, suite) == main
        (tmp_path / suite / "generation_meta.json").unlink()  # inferred from the suite and the files
        assert answers_file(tmp_path / suite, suite) == main


def test_mt_bench_with_the_tiny_model(tiny_model_dir, mt_file, tmp_path):
    from harness_ext.judge.mt_bench_files import load_answers, load_questions

    main = generate_suite(tiny_model_dir, "mt_bench", tmp_path / "mt", data=mt_file, model_id="tiny",
                          params=SamplingParams(max_new_tokens=4), progress=False)
    answers = load_answers(main.parent, ["tiny"], load_questions(mt_file))["tiny"]
    assert sorted(answers) == [81, 111, 131, 150] and all(len(t) == 2 for t in answers.values())
    meta = read_json(tmp_path / "mt" / "generation_meta.json")
    assert meta["answered_turns"] == 8 and meta["category_temperatures"]["writing"] == 0.7


def test_cli_checks_options_and_prompts_before_loading_the_model(tiny_model_dir, tmp_path):
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"instruction": "Write a poem"}])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    no_rows = tmp_path / "none.json"
    no_rows.write_text("[]")
    out = tmp_path / "g"
    cases = [
        (["--suite", str(prompts), "--temperature", "-1"], "temperature must be >= 0, got -1.0. Fix: pass --temperature"),
        (["--suite", str(prompts), "--top-p", "1.5"], "top_p must be in (0, 1], got 1.5."),
        (["--suite", str(prompts), "--min-new-tokens", "9", "--max-new-tokens", "4"], "min_new_tokens must be between"),
        (["--suite", str(prompts), "--dtype", "floatt16"], "Unknown dtype 'floatt16'. Did you mean 'float16'?"),
        (["--suite", str(prompts), "--dtype", "floatt16", "--backend", "vllm"], "Unknown dtype 'floatt16'."),
        (["--suite", str(prompts), "--device", "gpu"], "device 'gpu' is not a device the hf backend can use."),
        (["--suite", str(empty)], f"{empty}: file is empty. Fix: point --suite"),
        (["--suite", str(no_rows)], f"{no_rows}: suite 'custom' has no prompts."),
    ]
    for extra, needle in cases:
        res = run_cli("generate", "--model", str(tiny_model_dir), "--out", str(out), "--no-progress", *extra)
        assert res.returncode == 2, (extra, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (extra, res.stderr)
        assert not out.exists()
    res = run_cli("generate", "--model", "no-such-model", "--suite", str(prompts), "--out", str(out))
    assert res.returncode == 2 and not out.exists()
    assert res.stderr.strip().splitlines() == [res.stderr.strip().splitlines()[0]]
    assert "'no-such-model' is not a local model directory and could not be loaded from the hub" in res.stderr


def test_cli_openai_backend_takes_api_key_flags(tmp_path):
    from tests.openai_server import LoopbackServer, last_user_text

    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "instruction": "Say hi"}])
    key = "sk-flag-secret-456"
    env = {k: v for k, v in cli_env().items() if k not in ("OPENAI_API_KEY", "HARNESS_EXT_JUDGE_API_KEY")}
    common = ["generate", "--model", "served", "--backend", "openai", "--suite", str(prompts), "--no-progress"]
    with LoopbackServer(reply=lambda body: "hi from " + last_user_text(body), api_key=key) as srv:
        by_flag = run_cli(*common, "--base-url", srv.base_url, "--api-key", key, "--out", str(tmp_path / "a"), env=env)
        by_env = run_cli(*common, "--base-url", srv.base_url, "--api-key-env", "MY_KEY", "--out", str(tmp_path / "b"),
                         env={**env, "MY_KEY": key, "HARNESS_EXT_CACHE": str(tmp_path / "cache-b")})
        unset = run_cli(*common, "--base-url", srv.base_url, "--api-key-env", "MY_KEY", "--out", str(tmp_path / "c"),
                        env=env)
    for res in (by_flag, by_env):
        assert res.returncode == 0, res.stderr
    assert read_jsonl(tmp_path / "a" / "outputs.jsonl")[0]["output"] == "hi from Say hi"
    assert read_jsonl(tmp_path / "b" / "outputs.jsonl")[0]["output"] == "hi from Say hi"
    assert unset.returncode == 2 and "--api-key-env MY_KEY: that environment variable is empty" in unset.stderr
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert key not in f.read_text(encoding="utf-8", errors="replace"), f
    no_key = run_cli(*common, "--out", str(tmp_path / "d"), env=env)
    assert no_key.returncode == 2 and "pass --api-key" in no_key.stderr and not (tmp_path / "d").exists()
    assert "--api-key" in run_cli("generate", "--help").stdout

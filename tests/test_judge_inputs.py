"""Reading and matching model outputs, and loading/rendering pairwise templates (pure, fast)."""

from __future__ import annotations

import pytest

from harness_ext.core.errors import ConfigError, InputError
from harness_ext.generate.outputs import load_outputs, match_outputs
from harness_ext.judge.pairwise import load_template
from tests.judge_helpers import pairwise_answers, write_outputs


def test_match_on_dataset_and_instruction_or_instruction_alone(tmp_path):
    a = write_outputs(tmp_path / "a.json", [
        {"instruction": "q1", "output": "a1", "dataset": "lima"},
        {"instruction": "q1", "output": "a1v", "dataset": "vicuna"},
        {"instruction": "q2", "output": "a2", "dataset": "lima"}])
    b = write_outputs(tmp_path / "b.jsonl", [
        {"id": "x", "instruction": "q1", "output": "b1", "dataset": "vicuna"},
        {"id": "y", "instruction": "q3", "output": "b3", "dataset": "lima"}], fmt="jsonl")
    pairs, counts = match_outputs(load_outputs(a), load_outputs(b))
    assert [(x.output, y.output) for x, y in pairs] == [("a1v", "b1")]
    assert counts == {"a": 3, "b": 2, "matched": 1, "only_in_a": 2, "only_in_b": 1, "matched_on_dataset": 1,
                      "matched_on_id": 0}
    c = write_outputs(tmp_path / "c.jsonl", [{"instruction": "q2", "output": "c2"}], fmt="jsonl")
    with pytest.raises(InputError, match="duplicate instruction"):  # without datasets q1 appears twice in a
        match_outputs(load_outputs(a), load_outputs(c))
    d = write_outputs(tmp_path / "d.json", [{"instruction": "q2", "output": "d2"}])
    pairs, counts = match_outputs(load_outputs(c), load_outputs(d))
    assert [(x.output, y.output) for x, y in pairs] == [("c2", "d2")] and counts["matched_on_dataset"] == 0


def test_bad_output_files_name_the_place(tmp_path):
    p = tmp_path / "o.json"
    p.write_text('[{"instruction": "q", "output": 3}]')
    with pytest.raises(InputError, match=r"o.json: record 0: field 'output' must be a string, found int 3"):
        load_outputs(p)
    p.write_text('{"instruction": "q"}')
    with pytest.raises(InputError, match="expected a JSON list"):
        load_outputs(p)
    j = tmp_path / "o.jsonl"
    j.write_text('{"instruction": "q", "output": "x"}\n{"instruction": "q", "output": \n')
    with pytest.raises(InputError, match=r"o.jsonl:2: malformed JSON"):
        load_outputs(j)


def test_template_validation(tmp_path):
    t = tmp_path / "t.yaml"
    t.write_text("user: 'Q {question} A {answer_1}'\nsystme: x\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['systme'\]"):
        load_template(t)
    t.write_text("user: 'Q {question} A {answer_1}'\n")
    with pytest.raises(ConfigError, match=r"lacks the placeholder \{answer_2\}"):
        load_template(t)
    with pytest.raises(InputError, match="not found"):
        load_template(tmp_path / "missing.yaml")


def test_render_keeps_braces_and_placeholder_names_literal():
    tpl = load_template()
    turns = tpl.render("Explain {answer_2} and {x}", "uses {tag} {question}", "plain")
    user = turns[-1].content
    assert turns[0].role == "system" and "Explain {answer_2} and {x}" in user
    assert pairwise_answers(user) == ("uses {tag} {question}", "plain")
    # the nonce depends on the content, so swapping the answers gives another tag, and both orders differ
    assert tpl.render("q", "a", "b")[-1].content != tpl.render("q", "b", "a")[-1].content


def test_repeated_instruction_under_two_ids_matches_by_id(tmp_path):
    # The paper's WizardLM test copy asks one instruction twice (two ids); our outputs carry ids.
    import json

    from harness_ext.generate.outputs import load_outputs, match_outputs

    def write(name, answers):
        p = tmp_path / name
        p.write_text("".join(json.dumps({"id": i, "dataset": "wizardlm", "instruction": q, "output": o}) + "\n"
                             for i, q, o in answers))
        return p

    a = write("a.jsonl", [("20", "Same question?", "a20"), ("27", "Same question?", "a27")])
    b = write("b.jsonl", [("27", "Same question?", "b27"), ("20", "Same question?", "b20")])
    pairs, counts = match_outputs(load_outputs(a), load_outputs(b))
    assert [(x.output, y.output) for x, y in pairs] == [("a20", "b20"), ("a27", "b27")]
    assert counts["matched_on_id"] == 1
    c = write("c.jsonl", [("20", "Other question?", "c20")])
    with pytest.raises(InputError, match="same id '20' but different instructions"):
        match_outputs(load_outputs(a), load_outputs(c))


def test_missing_inputs_are_reported_before_the_missing_api_key(tmp_path):
    from tests.conftest import cli_env, run_cli

    env = {k: v for k, v in cli_env().items() if k not in ("OPENAI_API_KEY", "HARNESS_EXT_JUDGE_API_KEY")}
    for args in (["judge", "pairwise", "--a", str(tmp_path / "a.jsonl"), "--b", str(tmp_path / "b.jsonl")],
                 ["score", "--data", str(tmp_path / "a.jsonl")], ["refine", "--data", str(tmp_path / "a.jsonl")]):
        r = run_cli(*args, "--out", str(tmp_path / "out"), "--judge-model", "m", env=env)
        assert r.returncode == 2 and f"{tmp_path / 'a.jsonl'}: file not found" in r.stderr, (args, r.stderr)
        assert "API key" not in r.stderr and not (tmp_path / "out").exists()

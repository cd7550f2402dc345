"""ROUGE, length statistics and SCROLLS reference merging used by the long-form tasks."""

from __future__ import annotations

import pytest

pytest.importorskip("rouge_score")

from harness_ext.evals.task_functions import (  # noqa: E402
    count_words,
    gen_chars,
    gen_words,
    length_stats,
    rouge_scores,
    summary_process_results,
)

PRED = "The committee approved the new budget on Friday after a long debate about schools."
REF_A = "After long debates, the committee approved the budget for schools on Friday."
REF_B = "Funding for roads was rejected."


def test_rouge_matches_rouge_score_on_a_fixed_pair():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = scorer.score(REF_A, PRED)
    got = rouge_scores(PRED, [REF_A])
    for key in ("rouge1", "rouge2", "rougeL"):
        assert got[key] == pytest.approx(100 * expected[key].fmeasure)
    assert 0 < got["rouge2"] < got["rouge1"] <= 100
    assert got["rouge_gm"] == pytest.approx((got["rouge1"] * got["rouge2"] * got["rougeL"]) ** (1 / 3))


def test_rouge_takes_the_best_reference_and_keeps_newlines():
    one = rouge_scores(PRED, [REF_A])
    both = rouge_scores(PRED, [REF_B, REF_A])
    assert both == pytest.approx(one)
    # a multi-line summary is scored whole (lm_eval's SCROLLS tasks stop at the first newline)
    two_lines = rouge_scores("The committee approved the budget.\nSchools get more on Friday.", [REF_A])
    first_line = rouge_scores("The committee approved the budget.", [REF_A])
    assert two_lines["rouge1"] > first_line["rouge1"]


def test_rouge_of_disjoint_texts_is_zero_and_empty_references_rejected():
    assert rouge_scores("alpha beta", ["gamma delta"]) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "rouge_gm": 0.0}
    with pytest.raises(ValueError):
        rouge_scores("x", [])


def test_length_statistics():
    text = "Hello, world! It's 42."
    assert count_words(text) == 9  # Hello , world ! It ' s 42 .
    assert length_stats(text) == {"gen_chars": 22.0, "gen_words": 9.0}
    assert gen_chars(references=["x"], predictions=[text]) == 22.0
    assert gen_words(references=["x"], predictions=["a b", "c d e f"]) == 3.0


def test_summary_process_results_strips_and_scores():
    doc = {"outputs": [REF_B, REF_A]}
    out = summary_process_results(doc, ["  " + PRED + "\n"])
    assert out["rouge1"] == pytest.approx(rouge_scores(PRED, [REF_A])["rouge1"])
    assert out["gen_chars"] == len(PRED)


def test_qmsum_prompt_puts_the_query_last():
    from harness_ext.evals.task_functions import qmsum_prompt

    prompt = qmsum_prompt({"input": "What was decided?\n\nA: ship it .\n\nB: ok ."})
    assert prompt.startswith("A: ship it .\n\nB: ok .\n\nQuery: What was decided?\n")
    assert prompt.endswith("Summary:")


def test_scrolls_rows_sharing_an_input_are_merged():
    datasets = pytest.importorskip("datasets")
    from harness_ext.evals.task_functions import merge_scrolls_references

    ds = datasets.Dataset.from_list([
        {"id": "a", "pid": "a1", "input": "doc one", "output": "sum 1"},
        {"id": "b", "pid": "b1", "input": "doc two", "output": "sum 2"},
        {"id": "a", "pid": "a2", "input": "doc one", "output": "sum 1 again"},
        {"id": "c", "pid": "c1", "input": "doc three", "output": ""},
    ])
    merged = merge_scrolls_references(ds)
    assert merged["input"] == ["doc one", "doc two"]  # first-seen order; no reference -> dropped
    assert merged["outputs"] == [["sum 1", "sum 1 again"], ["sum 2"]]


def test_length_metrics_register_with_lm_eval():
    pytest.importorskip("lm_eval")
    from lm_eval.api import registry

    from harness_ext.evals.task_functions import register_lm_eval_extensions

    names = register_lm_eval_extensions()
    assert register_lm_eval_extensions() == names  # idempotent
    for name in names:
        assert registry.get_metric(name) is not None
        assert registry.get_metric_aggregation(name) is registry.get_aggregation("mean")
    assert registry.get_metric("hx_gen_chars")(references=["r"], predictions=["abc"]) == 3.0


def test_token_count_needs_a_tokenizer(tiny_model_dir):
    from harness_ext.core.errors import ConfigError
    from harness_ext.evals.task_functions import gen_tokens

    with pytest.raises(ConfigError, match="tokenizer"):
        gen_tokens(references=["r"], predictions=["abc"])
    n = gen_tokens(references=["r"], predictions=["Write a short poem about the sea."], tokenizer=str(tiny_model_dir))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    assert n == len(tok("Write a short poem about the sea.", add_special_tokens=False)["input_ids"])

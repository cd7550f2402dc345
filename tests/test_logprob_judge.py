"""The logprob pairwise judge: verdict-token probabilities in both answer orders, no generation.

Local: a tiny random checkpoint built in the test. Endpoint: the loopback OpenAI-compatible server
returning logprobs, as vLLM does with logprobs=true and top_logprobs=N."""

from __future__ import annotations

import doctest
import json

import pytest

from harness_ext.core.errors import RequestsFailed
from harness_ext.core.records import Turn
from harness_ext.judge.preference import PreferenceJob, judge_preference, load_preference_summary
from tests.judge_helpers import outputs, write_outputs

pytest.importorskip("transformers")


def _files(tmp_path, a_text, b_text, n=6):
    a = write_outputs(tmp_path / "a.json", outputs("a", {("d", f"q{i}"): a_text(i) for i in range(n)}))
    b = write_outputs(tmp_path / "b.json", outputs("b", {("d", f"q{i}"): b_text(i) for i in range(n)}))
    return a, b


def test_doctests_of_the_logprob_modules():
    import harness_ext.judge.preference as pref
    import harness_ext.llm.logprob_judge as lj

    for mod in (lj, pref):
        result = doctest.testmod(mod)
        assert result.attempted and not result.failed, mod.__name__


def test_local_scorer_reads_one_forward_pass_per_prompt_batched_equal_and_cached(tiny_model_dir, tmp_path):
    from harness_ext.llm.logprob_judge import LocalVerdictScorer

    convs = [[Turn("user", f"Which is better? item {i} " + "x " * i)] for i in range(5)]
    scorer = LocalVerdictScorer(tiny_model_dir, batch_size=3, cache_dir=tmp_path / "c")
    seen = []
    probs = scorer.score_many(convs, seen.append)
    assert sum(seen) == 5 and all(p.ok and 0 < p.first < 1 and 0 < p.mass <= 1 for p in probs)
    single = LocalVerdictScorer(tiny_model_dir, batch_size=1, use_cache=False).score_many(convs)
    assert [round(p.first, 5) for p in single] == [round(p.first, 5) for p in probs]  # left padding is harmless
    again = LocalVerdictScorer(tiny_model_dir, cache_dir=tmp_path / "c")
    assert [p.first for p in again.score_many(convs)] == [p.first for p in probs]
    assert again._backend is None  # every answer came from the cache: the model was never loaded


def test_identical_answers_score_exactly_half_and_swapping_the_arms_mirrors_the_win_rate(tiny_model_dir, tmp_path):
    from harness_ext.llm.logprob_judge import LocalVerdictScorer

    scorer = LocalVerdictScorer(tiny_model_dir, batch_size=4, cache_dir=tmp_path / "c")
    same_a, same_b = _files(tmp_path / "same", lambda i: f"answer {i}", lambda i: f"answer {i}")
    s = judge_preference(PreferenceJob(same_a, same_b, "a", "b", judge="tiny", progress=False), scorer, tmp_path / "o1")
    rows = [json.loads(x) for x in (tmp_path / "o1" / "preferences.jsonl").read_text().splitlines()]
    # the random judge favours one position, yet a tie stays a tie: the two orders cancel exactly
    assert s.first_position != pytest.approx(0.5, abs=1e-3)
    assert all(r["preference"] == pytest.approx(0.5, abs=1e-6) for r in rows) and s.win_rate == pytest.approx(0.5)

    a, b = _files(tmp_path / "diff", lambda i: f"The answer is {i}.", lambda i: "Write a short poem about the sea " * 3)
    ab = judge_preference(PreferenceJob(a, b, "a", "b", judge="tiny", progress=False), scorer, tmp_path / "o2")
    ba = judge_preference(PreferenceJob(b, a, "b", "a", judge="tiny", progress=False), scorer, tmp_path / "o3")
    assert ab.n == ba.n == 6 and ab.win_rate == pytest.approx(1 - ba.win_rate, abs=1e-9)
    lo, hi = ab.ci95
    assert lo <= ab.win_rate <= hi and ab.method["bootstrap"]["level"] == 0.95
    assert load_preference_summary(tmp_path / "o2" / "preference.json") == ab


def _server(**kw):
    from tests.openai_server import LoopbackServer, last_user_text

    def probs(body):  # a judge that likes the answer saying "detailed" and is biased to the letter A
        text = last_user_text(body)
        first = text.split("[Response A]")[1].split("[Response B]")[0]
        good_first = "detailed" in first
        return {"A": 0.6 if good_first else 0.3, "B": 0.1 if good_first else 0.3, "The": 0.3}

    return LoopbackServer(reply=lambda body: "A", top_logprobs=probs, **kw)


def test_endpoint_scorer_asks_for_logprobs_and_removes_the_judges_letter_bias(tmp_path):
    pytest.importorskip("openai")
    from harness_ext.llm.logprob_judge import EndpointOptions, EndpointVerdictScorer

    a, b = _files(tmp_path, lambda i: f"A detailed answer {i}.", lambda i: f"Short {i}.")
    with _server() as srv:
        scorer = EndpointVerdictScorer("judge-x", base_url=srv.base_url, api_key="sk-test-123",
                                       options=EndpointOptions(concurrency=4, cache_dir=tmp_path / "c"))
        s = judge_preference(PreferenceJob(a, b, "a", "b", judge="judge-x", progress=False), scorer, tmp_path / "o")
        body = srv.bodies[0]
        assert body["logprobs"] is True and body["max_tokens"] == 1 and body["top_logprobs"] == 20
        assert len(srv.bodies) == 12  # 6 items x 2 orders
    # a shown first: P(A)=0.6/(0.7); a shown second: P(B)=0.3/0.6 -> (0.857 + 0.5) / 2
    assert s.win_rate == pytest.approx((0.6 / 0.7 + 0.5) / 2) and s.prefers_a == 6
    assert s.verdict_mass == pytest.approx((0.7 + 0.6) / 2)
    assert "sk-test-123" not in (tmp_path / "o" / "preference.json").read_text()


def test_endpoint_without_logprobs_fails_the_stage_unless_failures_are_allowed(tmp_path):
    pytest.importorskip("openai")
    from harness_ext.llm.logprob_judge import EndpointOptions, EndpointVerdictScorer
    from tests.openai_server import LoopbackServer

    a, b = _files(tmp_path, lambda i: f"x {i}", lambda i: f"y {i}", n=2)
    with LoopbackServer(reply=lambda body: "A") as srv:  # answers, but without logprobs
        scorer = EndpointVerdictScorer("judge-x", base_url=srv.base_url, api_key="sk-test",
                                       options=EndpointOptions(use_cache=False))
        with pytest.raises(RequestsFailed, match="does the endpoint support logprobs"):
            judge_preference(PreferenceJob(a, b, "a", "b", judge="j", progress=False), scorer, tmp_path / "o")
        assert not (tmp_path / "o" / "preference.json").exists()
        s = judge_preference(PreferenceJob(a, b, "a", "b", judge="j", progress=False, allow_failures=True),
                             scorer, tmp_path / "o")
    assert s.n == 0 and s.unusable == 2 and s.win_rate is None


def test_a_misspelt_judge_method_is_one_problem_with_a_did_you_mean(tmp_path):
    from harness_ext.core.errors import ConfigError
    from harness_ext.pipeline.experiment import load_experiment

    exp = tmp_path / "e.yaml"
    exp.write_text("name: x\nbase_model: m\narms: [{name: a}, {name: b}]\n"
                   "judge: {local: base, method: logprob}\ncompare: [[a, b]]\n")
    with pytest.raises(ConfigError) as exc:
        load_experiment(exp)
    assert "judge.method: 'logprob' is not a judging method. Did you mean 'logprobs'?" in str(exc.value)

"""IFD scoring: equals a direct per-example computation (the reference's formula), resumes from its
cache without calling the model again, and drives the `ifd` strategy and score fields."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from harness_ext.core.errors import ConfigError  # noqa: E402
from harness_ext.selection.ifd import ScoreConfig, Scorer, row_key  # noqa: E402

ROWS = [
    ("Write a short poem about the sea.", "", "The sea is wide, the wind is loud, the waves roll in."),
    ("Summarize the meeting.", "The team agreed to ship on Friday after testing.", "Ship on Friday."),
    ("List three ways to save energy.", "", "Turn off lights, insulate walls, use LED bulbs. " * 6),
    ("Classify the sentiment.", "The food was great!", "positive"),
    ("Explain binary search.", "", "Split the sorted list in half and keep the half that holds the key. " * 3),
    ("Say nothing.", "", ""),
]


@pytest.fixture
def tiny(tiny_model_dir):
    return tiny_model_dir


def direct_ifd(path, instruction, input_text, response, max_length):
    """Superfiltering's per-example computation, written out: two model calls with labels."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompt = f"{instruction}\n{input_text}\n" if input_text else f"{instruction}\n"
    whole = prompt + response
    plen = len(tok.encode(prompt, truncation=True, max_length=max_length))
    with torch.no_grad():
        alone = tok.encode(response, return_tensors="pt", truncation=True, max_length=max_length - plen + 1)
        ppl_r = torch.exp(model(alone, labels=alone).loss).item()
        ids = tok.encode(whole, return_tensors="pt", truncation=True, max_length=max_length)
        labels = ids.clone()
        labels[0, : len(tok.encode(whole[: whole.rfind(response)]))] = -100
        ppl_c = torch.exp(model(ids, labels=labels).loss).item()
    return ppl_c / ppl_r, ppl_r, ppl_c


@pytest.mark.parametrize("max_length", [1024, 24])
def test_ifd_equals_direct_computation(tiny, tmp_path, max_length):
    scorer = Scorer(ScoreConfig(model=str(tiny), max_length=max_length, batch_tokens=max(96, max_length),
                                cache=tmp_path, progress=False))
    scores, stats = scorer.score(ROWS)
    assert stats.scored == len(ROWS) and stats.cached == 0
    assert scorer.forward_calls >= 2  # batched: far fewer calls than the reference's 2 per row
    assert scorer.forward_calls < 2 * (len(ROWS) - 1)
    for row in ROWS[:-1]:
        got = scores[row_key(*row)]
        want = direct_ifd(tiny, *row, max_length)
        if math.isnan(want[0]):  # truncation left no response token: both must say so
            assert math.isnan(got.ifd)
            continue
        assert got.ifd == pytest.approx(want[0], rel=1e-4)
        assert got.ppl_response == pytest.approx(want[1], rel=1e-4)
        assert got.ppl_conditional == pytest.approx(want[2], rel=1e-4)
        assert got.embedding is not None and got.embedding.shape == (32,)
    empty = scores[row_key(*ROWS[-1])]
    assert math.isnan(empty.ifd)  # an empty response has no IFD (the reference writes {} there)


def test_resume_pays_nothing_twice(tiny, tmp_path):
    cfg = ScoreConfig(model=str(tiny), cache=tmp_path, chunk_rows=2, batch_tokens=256, progress=False)
    first = Scorer(cfg)

    class Stop(Exception):
        pass

    def stop_after_first_chunk(done):
        raise Stop

    with pytest.raises(Stop):
        first.score(ROWS, on_chunk=stop_after_first_chunk)
    assert len(list(tmp_path.rglob("*.npz"))) == 1  # the first chunk survived the interruption

    second = Scorer(cfg)
    scores, stats = second.score(ROWS)
    assert stats.cached == 2 and stats.scored == len(ROWS) - 2
    third = Scorer(cfg)
    again, stats = third.score(list(reversed(ROWS)))
    assert third.forward_calls == 0 and third.model is None  # nothing rescored, model never loaded
    assert stats.cached == len(ROWS) and stats.scored == 0
    for key, s in scores.items():
        assert again[key].ifd == s.ifd or (math.isnan(again[key].ifd) and math.isnan(s.ifd))


def test_cpu_lanes_and_batch_sizes_do_not_change_scores(tiny, tmp_path):
    """Batches scored concurrently (one torch thread each) or one at a time, small batches or one big
    one: the same numbers, and the same as the direct computation."""
    rows = ROWS + [(f"Item {i}.", "", "word " * (3 + 5 * i)) for i in range(12)]
    results = []
    for lanes, budget in ((1, 4096), (2, 64), (3, 200)):
        scorer = Scorer(ScoreConfig(model=str(tiny), cache=tmp_path / f"{lanes}-{budget}", cpu_lanes=lanes,
                                    batch_tokens=budget, progress=False, device="cpu"))
        assert scorer.lanes() == lanes
        scores, _ = scorer.score(rows)
        results.append(scores)
        if budget == 64:
            assert scorer.forward_calls > 6  # many small batches, run on two lanes
    for key, first in results[0].items():
        for other in results[1:]:
            if math.isnan(first.ifd):
                assert math.isnan(other[key].ifd)
            else:
                assert other[key].ifd == pytest.approx(first.ifd, rel=1e-6)
                assert other[key].embedding == pytest.approx(first.embedding, rel=1e-4, abs=1e-5)
    want = direct_ifd(tiny, *rows[-1], 1024)
    assert results[1][row_key(*rows[-1])].ifd == pytest.approx(want[0], rel=1e-4)


def test_lanes_restore_torch_threads(tiny, tmp_path):
    before = torch.get_num_threads()
    scorer = Scorer(ScoreConfig(model=str(tiny), cache=tmp_path, cpu_lanes=2, batch_tokens=32, progress=False,
                                device="cpu"))
    scorer.score(ROWS)
    assert torch.get_num_threads() == before
    assert Scorer(ScoreConfig(device="cpu")).batch_tokens() == 1024  # the CPU default


def test_bad_lengths_are_config_errors():
    with pytest.raises(ConfigError, match="score_max_length"):
        Scorer(ScoreConfig(max_length=1))
    with pytest.raises(ConfigError, match="score_batch_tokens"):
        Scorer(ScoreConfig(batch_tokens=0))


def _write_alpaca(path, rows):
    path.write_text(json.dumps([{"instruction": i, "input": x, "output": o} for i, x, o in rows]))
    return path


def test_ifd_strategy_and_score_fields_through_select_to_dir(tiny, tmp_path, monkeypatch):
    from harness_ext.selection.run import select_to_dir

    rows = [(f"Task {i}: describe item {i}.", "", f"Item {i} is " + "a fine thing " * (i % 7 + 1)) for i in range(30)]
    data = _write_alpaca(tmp_path / "pool.json", rows)
    calls = []
    real = Scorer.forward
    monkeypatch.setattr(Scorer, "forward", lambda self, *a: calls.append(1) or real(self, *a))
    rep = select_to_dir(data, tmp_path / "ifd", strategy="ifd", k=5, unit="words", score_model=str(tiny),
                        ifd_below=1e9)
    assert calls and rep["counts"]["selected"] == 5
    scores = [json.loads(x) for x in (tmp_path / "ifd" / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 30 and {s["row"] for s in scores} == set(range(30))
    want = sorted(scores, key=lambda s: (-s["ifd"], s["row"]))[:5]
    picked = [json.loads(x) for x in (tmp_path / "ifd" / "selected.jsonl").read_text().splitlines()]
    assert [p["row"] for p in picked] == sorted(s["row"] for s in want)
    assert all("ifd" in p["metadata"] for p in picked)

    # the usual IFD < 1 filter: rows at or above it are set aside, counted by reason
    cut = sorted(s["ifd"] for s in scores)[10]
    rep = select_to_dir(data, tmp_path / "ifd1", strategy="ifd", k=5, unit="words", score_model=str(tiny),
                        ifd_below=cut)
    assert rep["drops"][f"ifd_not_below:{cut:g}"] == 20

    # a second strategy on the same pool reads the cached scores: no model call at all
    calls.clear()
    rep = select_to_dir(data, tmp_path / "top", strategy="top-score", score_field="ifd", k=3, unit="words",
                        score_model=str(tiny))
    assert calls == [] and rep["counts"]["selected"] == 3


@pytest.mark.parametrize("name", ["selection-ablation-demo", "selection-ablation"])
def test_ablation_experiments_pass_the_option_check(name):
    """Every arm's strategy and options are known to the experiment check (data paths aside)."""
    from harness_ext.core.paths import resources_dir
    from harness_ext.pipeline.check import check_experiment
    from harness_ext.pipeline.experiment import load_experiment

    path = resources_dir() / "experiments" / f"{name}.yaml"
    problems = check_experiment(load_experiment(path), path.parent)
    assert [p for p in problems if ".select" in p.field] == []
    strategies = {a.select.strategy for a in load_experiment(path).arms}
    assert strategies == {"longest", "ifd", "diverse", "score-threshold", "random"}

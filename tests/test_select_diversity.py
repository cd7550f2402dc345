"""k-center greedy: each pick is the row farthest from those already picked; the diverse strategy
uses it over model embeddings and combines it with a length/score rank."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness_ext.core.errors import ConfigError
from harness_ext.core.records import Example
from harness_ext.selection.diversity import k_center_greedy
from harness_ext.selection.strategies import STRATEGIES, Options


def _cos_dist(a, b):
    return 1.0 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_each_pick_is_the_farthest_from_those_already_picked():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 16))
    picked = k_center_greedy(emb, 25, first=7)
    assert picked[0] == 7 and len(set(picked)) == 25
    for step in range(1, len(picked)):
        chosen = picked[:step]
        nearest = [min(_cos_dist(emb[i], emb[c]) for c in chosen) for i in range(len(emb))]
        best = max(nearest[i] for i in range(len(emb)) if i not in chosen)
        assert nearest[picked[step]] == pytest.approx(best, abs=1e-5)


def test_duplicates_are_picked_last_and_k_caps_at_n():
    emb = np.array([[1, 0], [1, 0], [0, 1], [-1, 0], [1, 0.001]], dtype=float)
    picked = k_center_greedy(emb, 3, first=0)
    assert set(picked) == {0, 2, 3}  # the copies of row 0 add nothing
    assert sorted(k_center_greedy(emb, 9)) == [0, 1, 2, 3, 4]


def _pool(n):
    return [(Example(id=f"identity_{i}", instruction=f"q{i}", response="w " * (i + 1), row=i), i + 1)
            for i in range(n)]


def test_diverse_strategy_with_length_rank():
    pool = _pool(6)
    # rows 0-2 are one cluster, rows 3-5 another; the longest row (5) is the first center
    emb = {i: np.array([1.0, 0.01 * i]) if i < 3 else np.array([0.01 * i, 1.0]) for i in range(6)}
    picked = STRATEGIES.get("diverse")(pool, 2, Options(embeddings=emb))
    rows = [ex.row for ex, _ in picked.kept]
    assert 5 in rows and len({r < 3 for r in rows}) == 2  # one from each cluster, the longest first
    # oversample 3: six diverse candidates, the two longest kept ("longest among diverse")
    picked = STRATEGIES.get("diverse")(pool, 2, Options(embeddings=emb, diverse_oversample=3))
    assert [ex.row for ex, _ in picked.kept] == [4, 5]
    with pytest.raises(ConfigError, match="no embedding"):
        STRATEGIES.get("diverse")(pool, 2, Options(embeddings={}))


def test_diverse_through_select_to_dir_with_scoring_model_states(tiny_model_dir, tmp_path):
    from harness_ext.selection.run import select_to_dir

    rows = [{"instruction": f"Topic {i % 3}: explain part {i}.", "input": "",
             "output": ["Code: def f(x): return x + 1", "Poem: the sea and the wind", "List: one, two, three"][i % 3]
             + " more" * i} for i in range(18)]
    data = tmp_path / "pool.json"
    data.write_text(json.dumps(rows))
    rep = select_to_dir(data, tmp_path / "div", strategy="diverse", k=4, unit="words",
                        score_model=str(tiny_model_dir))
    assert rep["counts"]["selected"] == 4
    assert rep["strategy_notes"]["embeddings"].startswith("hidden states of")
    again = select_to_dir(data, tmp_path / "div2", strategy="diverse", k=4, unit="words",
                          score_model=str(tiny_model_dir))
    a = (tmp_path / "div" / "selected.jsonl").read_text()
    assert a == (tmp_path / "div2" / "selected.jsonl").read_text() and again["counts"]["selected"] == 4

"""Strategies through select_to_dir: each strategy's choice, ties, seeds, quotas, mixture, dedup,
and the streaming top-k (pruned, parallel) against a plain sort."""

from __future__ import annotations

import json
import random

import pytest

from harness_ext.core.errors import ConfigError
from harness_ext.selection.run import select_to_dir
from harness_ext.selection.scan import scan
from harness_ext.selection.strategies import largest_remainder
from harness_ext.selection.units import make_unit


def pool_file(tmp_path, n=40, seed=0, name="pool.jsonl", sources=("a", "b", "c"), words=12):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        resp = " ".join(f"w{j}" for j in range(rng.randint(1, words)))
        rows.append({"instruction": f"task {i}", "input": "", "output": resp,
                     "source": sources[i % len(sources)], "score": rng.choice([3.0, 4.0, 4.5, 5.0])})
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p, rows


def selected(out):
    return [json.loads(line) for line in (out / "selected.jsonl").read_text().splitlines()]


def wlen(row):
    return len(row["output"].split())


def test_longest_picks_top_k_with_row_order_ties(tmp_path):
    p, rows = pool_file(tmp_path)
    rep = select_to_dir(p, tmp_path / "out", strategy="longest", k=10, unit="words")
    expected = sorted(range(len(rows)), key=lambda i: (-wlen(rows[i]), i))[:10]
    got = selected(tmp_path / "out")
    assert [r["row"] for r in got] == sorted(expected)
    assert rep["cutoff"] == wlen(rows[expected[-1]])
    assert all(r["metadata"]["length"] == wlen(rows[r["row"]]) for r in got)
    ties = rep["ties_at_cutoff"]
    assert ties["in_pool"] == sum(1 for r in rows if wlen(r) == rep["cutoff"])
    assert ties["selected"] + ties["not_selected"] == ties["in_pool"]


def test_shortest(tmp_path):
    p, rows = pool_file(tmp_path)
    select_to_dir(p, tmp_path / "out", strategy="shortest", k=7, unit="words")
    expected = sorted(range(len(rows)), key=lambda i: (wlen(rows[i]), i))[:7]
    assert [r["row"] for r in selected(tmp_path / "out")] == sorted(expected)


def test_random_is_seeded(tmp_path):
    p, _ = pool_file(tmp_path)
    a = select_to_dir(p, tmp_path / "a", strategy="random", k=10, unit="chars", seed=3)
    select_to_dir(p, tmp_path / "b", strategy="random", k=10, unit="chars", seed=3)
    select_to_dir(p, tmp_path / "c", strategy="random", k=10, unit="chars", seed=4)
    ra, rb, rc = ([r["row"] for r in selected(tmp_path / x)] for x in "abc")
    assert ra == rb and ra != rc and len(set(ra)) == 10
    assert a["cutoff"] is None


def test_top_score_and_missing_score_field(tmp_path):
    p, rows = pool_file(tmp_path)
    select_to_dir(p, tmp_path / "out", strategy="top-score", k=5, unit="words")
    expected = sorted(range(len(rows)), key=lambda i: (-rows[i]["score"], i))[:5]
    assert [r["row"] for r in selected(tmp_path / "out")] == sorted(expected)
    with pytest.raises(ConfigError, match="numeric score field 'quality'"):
        select_to_dir(p, tmp_path / "bad", strategy="top-score", k=5, unit="words", score_field="quality")
    assert not (tmp_path / "bad").exists()


def test_score_threshold_alpagasus(tmp_path):
    p, rows = pool_file(tmp_path, n=60)
    rep = select_to_dir(p, tmp_path / "out", strategy="score-threshold", k=8, unit="words", seed=1)
    got = selected(tmp_path / "out")
    assert len(got) == 8 and all(rows[r["row"]]["score"] >= 4.5 for r in got)
    passing = sum(1 for r in rows if r["score"] >= 4.5)
    assert rep["strategy_notes"]["passing"] == passing
    assert rep["drops"]["score_below:4.5"] == len(rows) - passing
    again = select_to_dir(p, tmp_path / "again", strategy="score-threshold", k=8, unit="words", seed=1)
    assert [r["row"] for r in selected(tmp_path / "again")] == [r["row"] for r in got]
    assert again["counts"]["selected"] == 8
    with pytest.raises(ConfigError, match="larger than the pool"):
        select_to_dir(p, tmp_path / "x", strategy="score-threshold", k=passing + 1, unit="words")


def test_largest_remainder_quotas():
    assert largest_remainder({"a": 50, "b": 30, "c": 20}, 10) == {"a": 5, "b": 3, "c": 2}
    q = largest_remainder({"a": 1, "b": 1, "c": 1}, 2)
    assert sum(q.values()) == 2 and q == {"a": 1, "b": 1, "c": 0}
    assert largest_remainder({"x": 7, "y": 2}, 3) == {"x": 2, "y": 1}  # 2.33 / 0.67: y gets the remainder


def test_stratified_longest(tmp_path):
    p, rows = pool_file(tmp_path, n=50, sources=("a", "a", "a", "b", "c"))
    rep = select_to_dir(p, tmp_path / "out", strategy="stratified-longest", k=10, unit="words")
    got = selected(tmp_path / "out")
    quotas = rep["strategy_notes"]["quotas"]
    assert quotas == {"a": 6, "b": 2, "c": 2}
    assert rep["per_source"]["selected"] == quotas
    for src, q in quotas.items():
        idx = [i for i, r in enumerate(rows) if r["source"] == src]
        best = sorted(idx, key=lambda i: (-wlen(rows[i]), i))[:q]
        assert sorted(r["row"] for r in got if r["source"] == src) == sorted(best)


def test_mixture_keeps_all_of_a_plus_k_of_b(tmp_path):
    a, arows = pool_file(tmp_path, n=5, name="a.jsonl", sources=("lima",))
    b, brows = pool_file(tmp_path, n=30, seed=2, name="b.jsonl", sources=("alpaca",))
    rep = select_to_dir(b, tmp_path / "out", strategy="mixture", mix=a, k=4, unit="words")
    got = selected(tmp_path / "out")
    assert len(got) == 9 and [r["source"] for r in got[:5]] == ["lima"] * 5
    assert len({r["id"] for r in got}) == 9  # B ids renamed where they collide with A's identity_<row>
    best_b = sorted(range(30), key=lambda i: (-wlen(brows[i]), i))[:4]
    assert [r["row"] for r in got[5:]] == sorted(best_b)
    assert rep["strategy_notes"]["set_a"] == 5 and rep["strategy_notes"]["mix_strategy"] == "longest"
    select_to_dir(b, tmp_path / "out2", strategy="random", mix=a, k=4, unit="words", seed=1)
    assert len(selected(tmp_path / "out2")) == 9
    with pytest.raises(ConfigError, match="needs set A"):
        select_to_dir(b, tmp_path / "x", strategy="mixture", k=4, unit="words")


def test_dedup_exact_instruction_plus_input(tmp_path):
    rows = [{"instruction": "Q", "input": "", "output": "first"},
            {"instruction": "Q", "input": "", "output": "second, longer answer"},
            {"instruction": "Q", "input": "x", "output": "different input"},
            {"instruction": "R", "input": "", "output": "r"}]
    p = tmp_path / "d.json"
    p.write_text(json.dumps(rows))
    rep = select_to_dir(p, tmp_path / "out", strategy="dedup", k=None, unit="words")
    assert [r["row"] for r in selected(tmp_path / "out")] == [0, 2, 3]
    assert rep["drops"] == {"duplicate": 1}
    select_to_dir(p, tmp_path / "out2", strategy="longest", k=1, unit="words", dedup=True)
    assert [r["row"] for r in selected(tmp_path / "out2")] == [2]


def test_k_larger_than_pool(tmp_path):
    p, rows = pool_file(tmp_path, n=5)
    with pytest.raises(ConfigError) as e:
        select_to_dir(p, tmp_path / "out", strategy="longest", k=6, unit="words")
    assert "larger than the pool of 5" in str(e.value) and "--allow-fewer" in str(e.value)
    assert not (tmp_path / "out").exists()
    rep = select_to_dir(p, tmp_path / "out", strategy="longest", k=6, unit="words", allow_fewer=True)
    assert rep["counts"]["selected"] == 5


def test_unknown_strategy_and_option(tmp_path):
    p, _ = pool_file(tmp_path, n=5)
    with pytest.raises(ConfigError, match="Did you mean 'longest'"):
        select_to_dir(p, tmp_path / "o", strategy="longets", k=2, unit="words")
    with pytest.raises(ConfigError, match="Unknown selection option"):
        select_to_dir(p, tmp_path / "o", k=2, unit="words", treshold=4)


@pytest.mark.parametrize("mode", ["longest", "shortest"])
def test_streaming_pruned_parallel_equals_plain_sort(tmp_path, mode, monkeypatch):
    import harness_ext.selection.scan as streaming

    monkeypatch.setattr(streaming, "BLOCK_ROWS", 50)  # many blocks, so thresholds go stale across workers
    rng = random.Random(7)
    vocab = ["a", "b.", "c,d", "e-f", "(g)", "h's", "i?", "cannot", "x"]
    rows = [{"instruction": f"q{i}", "output": " ".join(rng.choice(vocab) for _ in range(min(300, int(rng.paretovariate(1.2) * 3))))}
            for i in range(800)]
    p = tmp_path / "p.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    unit = make_unit("nltk-words")
    counts = [unit.count(r["output"]) for r in rows]
    sign = 1 if mode == "longest" else -1
    expected = sorted(range(len(rows)), key=lambda i: (-sign * counts[i], i))[:100]
    res = scan(p, unit="nltk-words", mode=mode, k=100, workers=2)
    assert res.workers == 2 and res.pruned > 0
    assert [ex.row for ex, _ in res.kept] == expected
    assert [n for _, n in res.kept] == [counts[i] for i in expected]
    cutoff = counts[expected[-1]]
    assert res.lengths[cutoff] == counts.count(cutoff)  # ties at the cutoff are all measured
    full = scan(p, unit="nltk-words", mode=mode, k=100, workers=1, prune=False)
    assert [ex.row for ex, _ in full.kept] == expected and full.pruned == 0
    assert sum(full.lengths.values()) == len(rows)


def test_select_reads_parquet_and_fastchat_files(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    _, rows = pool_file(tmp_path, n=12)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    rep = select_to_dir(tmp_path / "p.parquet", tmp_path / "out", strategy="longest", k=3, unit="words")
    expected = sorted(range(12), key=lambda i: (-wlen(rows[i]), i))[:3]
    assert [r["row"] for r in selected(tmp_path / "out")] == sorted(expected)
    assert rep["options"]["format"] == "alpaca"
    conv = [{"id": f"c{i}", "conversations": [{"from": "human", "value": r["instruction"]},
                                               {"from": "gpt", "value": r["output"]}]} for i, r in enumerate(rows)]
    (tmp_path / "fc.json").write_text(json.dumps(conv))
    select_to_dir(tmp_path / "fc.json", tmp_path / "out2", strategy="longest", k=3, unit="words")
    assert [r["id"] for r in selected(tmp_path / "out2")] == [f"c{i}" for i in sorted(expected)]


def test_count_on_all_and_exact_stats(tmp_path):
    rows = [{"instruction": "a " * 30, "input": "", "output": "short"},
            {"instruction": "b", "input": "", "output": "a bit longer answer"},
            {"instruction": "c", "input": "x " * 10, "output": "mid size"}]
    p = tmp_path / "c.json"
    p.write_text(json.dumps(rows))
    select_to_dir(p, tmp_path / "resp", strategy="longest", k=1, unit="words")
    assert [r["row"] for r in selected(tmp_path / "resp")] == [1]
    rep = select_to_dir(p, tmp_path / "all", strategy="longest", k=1, unit="words", count_on="all")
    assert [r["row"] for r in selected(tmp_path / "all")] == [0]
    assert rep["cutoff"] == 31 and rep["count_on"] == "all"
    rep = select_to_dir(p, tmp_path / "ex", strategy="longest", k=1, unit="words", exact_stats=True)
    assert rep["lengths"]["pool"] == {"count": 3, "min": 1, "median": 2, "mean": 2.333, "max": 4,
                                      "complete": True, "not_measured": 0}


def test_one_validator_for_select_options(tmp_path):
    from harness_ext.selection.options import option_problems, parse_options

    probs = option_problems("ifd", {"ifd_below": "x", "score_max_length": 0, "scor_model": "a", "k": 3,
                                    "fmt": "alpacca"})
    by_key = {p.key: p for p in probs}
    assert set(by_key) == {"ifd_below", "score_max_length", "scor_model", "k", "fmt"}
    assert "Did you mean 'score_model'?" in by_key["scor_model"].message
    assert by_key["k"].fix == "set it as select.k."
    assert parse_options("longest", 0, {"fmt": "alpaca"}, has_mix=False).fmt == "alpaca"
    assert parse_options("longest", 0, {"format": "sharegpt", "fmt": "alpaca"}, has_mix=False).fmt == "sharegpt"
    p = tmp_path / "d.json"
    p.write_text(json.dumps([{"instruction": "a", "output": "b"}]))
    with pytest.raises(ConfigError, match="diverse_oversample"):
        select_to_dir(p, tmp_path / "o", strategy="diverse", k=1, unit="words", diverse_oversample=0.5)
    assert not (tmp_path / "o").exists()

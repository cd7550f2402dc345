"""Contamination check: planted overlaps are found and listed, disjoint sets report none."""

from __future__ import annotations

import json

import pytest

from harness_ext.data.contamination import check_contamination, normalize_words, word_ngrams
from tests.conftest import run_cli

WIKIHOW = ("How to clean a cast iron pan. Rinse the pan with hot water while it is still warm, "
           "scrub off stuck food with coarse salt and a paper towel, then dry it on the stove and rub in a thin layer of oil.")


def _train(path):
    rows = [
        {"instruction": "Give me a recipe for pancakes.", "input": "", "output": "Mix flour, eggs and milk; fry in a pan."},
        {"instruction": "How do I care for cast iron?", "input": "", "output": WIKIHOW},  # planted: a wikiHow text
        {"instruction": "Name three primary colours.", "input": "", "output": "Red, yellow and blue."},
        {"instruction": "Translate 'good morning' into French.", "input": "", "output": "Bonjour."},
    ]
    path.write_text(json.dumps(rows))
    return path


def _eval(path):
    rows = [  # HellaSwag-like rows: the second copies the wikiHow context
        {"ind": 10, "ctx": "A man is standing on a ladder painting the ceiling of a large hall with a roller.",
         "endings": ["He climbs down.", "He sings."]},
        {"ind": 11, "ctx": "Rinse the pan with hot water while it is still warm, scrub off stuck food with coarse salt",
         "endings": ["and a paper towel.", "and a brush."]},
        {"ind": 12, "instruction": "name three PRIMARY colours", "endings": []},  # planted exact instruction
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_normalization_matches_lm_eval_convention():
    assert normalize_words("Hello, World!  It's\tdone.") == ["hello", "world", "it", "s", "done"]
    assert word_ngrams("a b c", 13) == set()
    assert word_ngrams("A b, c d", 3) == {"a b c", "b c d"}


def test_planted_overlaps_are_found(tmp_path):
    report = check_contamination(_train(tmp_path / "train.json"), [_eval(tmp_path / "eval.jsonl")])
    (s,) = report["eval_sets"]
    assert report["ngram"] == 13 and report["train"]["rows"] == 4
    assert s["rows"] == 3 and s["ngram_contaminated"] == 1 and s["exact_instruction_matches"] == 1
    by_id = {o["eval_id"]: o for o in s["overlaps"]}
    assert set(by_id) == {"11", "12"}
    wiki = by_id["11"]
    assert wiki["ngram_overlap"] and not wiki["exact_instruction_match"]
    match = wiki["train_matches"][0]
    assert match["train_index"] == 1 and match["shared_ngrams"] >= 3
    assert match["example_ngram"] in " ".join(normalize_words(WIKIHOW))
    colours = by_id["12"]
    assert colours["exact_instruction_match"] and colours["train_matches"][0]["train_index"] == 2


def test_disjoint_sets_report_nothing(tmp_path):
    train = _train(tmp_path / "train.json")
    other = tmp_path / "mt.jsonl"
    other.write_text(json.dumps({"question_id": 81, "turns": ["Compose a travel blog post about Hawaii.", "Rewrite it."]}) + "\n")
    report = check_contamination(train, [other])
    (s,) = report["eval_sets"]
    assert s["overlaps"] == [] and s["ngram_contaminated"] == 0 and s["exact_instruction_matches"] == 0


def test_cli_writes_report_and_can_fail_on_overlap(tmp_path):
    train, ev = _train(tmp_path / "train.json"), _eval(tmp_path / "eval.jsonl")
    out = tmp_path / "report.json"
    proc = run_cli("contamination", "--train", str(train), "--eval", str(ev), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "1/3 rows share a 13-gram" in proc.stdout
    assert json.loads(out.read_text())["eval_sets"][0]["exact_instruction_matches"] == 1
    proc = run_cli("contamination", "--train", str(train), "--eval", str(ev), "--fail-on-overlap")
    assert proc.returncode == 1


def test_conversation_formats_and_bad_rows(tmp_path):
    sharegpt = tmp_path / "lima.json"
    sharegpt.write_text(json.dumps([{"id": "identity_0", "conversations": [
        {"from": "human", "value": "How do I care for cast iron?"}, {"from": "gpt", "value": WIKIHOW}]}]))
    report = check_contamination(sharegpt, [_eval(tmp_path / "eval.jsonl")])
    assert [o["eval_id"] for o in report["eval_sets"][0]["overlaps"]] == ["11"]
    assert report["eval_sets"][0]["overlaps"][0]["train_matches"][0]["train_id"] == "identity_0"

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok"}\n42\n')
    proc = run_cli("contamination", "--train", str(bad), "--eval", str(sharegpt))
    assert proc.returncode == 2
    assert "bad.jsonl:2" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "report.json").exists()


@pytest.mark.slow
def test_lima_against_the_pairwise_test_sets(shared_data):
    """Real data: LIMA train vs LIMA test runs end to end and reports per-set counts."""
    report = check_contamination(shared_data / "lima" / "fastchat_lima_1k.json",
                                 [shared_data / "vicuna_bench" / "question.jsonl"])
    assert report["train"]["rows"] == 1000 and report["eval_sets"][0]["rows"] == 80

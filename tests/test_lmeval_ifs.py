"""The IFS response-tone classifier: training fragments, reproducibility, caching, scoring."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT

pytest.importorskip("sklearn")

from harness_ext.core.records import ToneClassifier  # noqa: E402
from harness_ext.evals.ifs import (  # noqa: E402
    ToneModel,
    ifs_score,
    load_tone_classifier,
    make_tone_pairs,
    read_instruction_rows,
    train_tone_classifier,
)

TRAIN = ROOT / "tests" / "fixtures" / "ifs_train.jsonl"


def test_fragments_follow_the_paper():
    rows = [("Write a short poem about the quiet sea at night.", "Waves whisper softly.")]
    pairs = make_tone_pairs(rows, seed=3)
    answer, cont = pairs
    assert (answer.instruction, answer.response, answer.answer_like) == (rows[0][0], rows[0][1], True)
    # the continuation example is the instruction split in two: prefix + rest
    assert not cont.answer_like
    assert f"{cont.instruction} {cont.response}" == rows[0][0]
    assert cont.instruction and cont.response
    assert make_tone_pairs(rows, seed=3) == pairs  # fixed seed -> same cut


def test_classifier_separates_answers_from_continuations():
    rows = read_instruction_rows(TRAIN)
    train, held = rows[::2] + rows[1::4], rows[3::4]
    model = ToneModel(seed=0).fit(make_tone_pairs(train, seed=0))
    assert isinstance(model, ToneClassifier)
    held_pairs = make_tone_pairs(held, seed=1)
    predicted = model.answer_like([p.instruction for p in held_pairs], [p.response for p in held_pairs])
    accuracy = sum(p == q.answer_like for p, q in zip(predicted, held_pairs, strict=True)) / len(held_pairs)
    assert accuracy >= 0.8
    # a typical base-model continuation of an unfinished instruction vs a direct answer
    flags = model.answer_like(
        ["Write a short poem about", "Write a short poem about the moon."],
        ["the moon and the stars in the night sky.", "Sure! Here is a short piece about the moon: silver and calm."],
    )
    assert flags == [False, True]
    assert model.answer_like(["Explain chess."], ["   "]) == [False]


def test_training_is_reproducible():
    a = train_tone_classifier(TRAIN, seed=0)
    b = train_tone_classifier(TRAIN, seed=0)
    probe = ["List three facts about tea.", "Describe"]
    resp = ["1. Tea is old. 2. It is popular. 3. It has caffeine.", "the colour of the sky in winter"]
    assert a.answer_probability(probe, resp) == b.answer_probability(probe, resp)


def test_classifier_is_cached_and_retrained_when_data_changes(tmp_path):
    from harness_ext.core.paths import cache_dir

    data = tmp_path / "train.jsonl"
    data.write_text(TRAIN.read_text())
    first = load_tone_classifier(data)
    cached = list((cache_dir() / "ifs").glob("tone-*.model.json.gz"))
    assert len(cached) == 1
    meta = json.loads(cached[0].with_name(cached[0].name.replace(".model.json.gz", ".json")).read_text())
    assert meta["rows"] == 60 and meta["seed"] == 0
    again = load_tone_classifier(data)
    probe = (["Give me two tips for enjoying tea."], ["Here are two tips: go early and share it."])
    assert again.answer_probability(*probe) == first.answer_probability(*probe)
    data.write_text(TRAIN.read_text() + json.dumps({"instruction": "Name a red fruit for a salad.", "output": "A strawberry."}) + "\n")
    load_tone_classifier(data)
    assert len(list((cache_dir() / "ifs").glob("tone-*.model.json.gz"))) == 2


def test_default_data_comes_from_the_environment_or_fails_clearly(monkeypatch, tmp_path):
    from harness_ext.core.errors import ConfigError

    monkeypatch.setenv("HARNESS_EXT_IFS_DATA", str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="missing.jsonl"):
        load_tone_classifier()
    monkeypatch.setenv("HARNESS_EXT_IFS_DATA", str(TRAIN))
    assert isinstance(load_tone_classifier(), ToneModel)


def test_ifs_score_is_the_answer_like_share():
    clf = load_tone_classifier(TRAIN)
    instructions = ["Write a short poem about the moon.", "Explain to a child how", "List three facts about owls."]
    responses = ["Sure! Here is a short piece about the moon: silver and calm.", "magnets work with a fridge door.",
                 "1. Owls hunt at night. 2. They have sharp eyes. 3. Many live in trees."]
    flags = clf.answer_like(instructions, responses)
    assert ifs_score(clf, instructions, responses) == pytest.approx(sum(flags) / 3)
    with pytest.raises(ValueError):
        ifs_score(clf, [], [])
    with pytest.raises(ValueError):
        ifs_score(clf, ["a"], ["b", "c"])


def test_bad_training_rows_name_file_and_line(tmp_path):
    from harness_ext.core.errors import InputError

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "ok", "output": "fine"}) + "\n" + json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:2: row has no string field 'instruction'"):
        read_instruction_rows(bad)
    few = tmp_path / "few.json"
    few.write_text(json.dumps([{"instruction": "Say hi to the team.", "output": "Hi team!"}]))
    with pytest.raises(InputError, match="at least 10"):
        train_tone_classifier(few)


def test_cli_scores_a_generations_file(tmp_path):
    from tests.conftest import cli_env, run_cli

    gens = tmp_path / "model_outputs.json"
    gens.write_text(json.dumps([
        {"instruction": "List three facts about owls.", "output": "1. Owls hunt at night. 2. They see well. 3. They fly quietly."},
        {"instruction": "Write a short poem about", "output": "the moon and the stars above the quiet sea."},
        {"instruction": "Describe tea.", "output": ""},
    ]))
    out = tmp_path / "ifs.json"
    proc = run_cli("ifs", str(gens), "--train", str(TRAIN), "--out", str(out),
                   env=cli_env(HARNESS_EXT_CACHE=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    labels = [x["answer_like"] for x in report["labels"]]
    assert labels[2] is False  # an empty response never counts as an answer
    assert report["ifs"] == pytest.approx(sum(labels) / 3) and report["rows"] == 3
    assert f"IFS {report['ifs']:.4f}" in proc.stdout
    assert report["classifier"]["rows"] == 60


@pytest.mark.slow
def test_classifier_on_alpaca(shared_data):
    """On real Alpaca data the classifier tells answers from instruction continuations."""
    rows = read_instruction_rows(shared_data / "alpaca" / "alpaca_data.json")
    model = ToneModel(seed=0).fit(make_tone_pairs(rows[:4000], seed=0))
    held = make_tone_pairs(rows[4000:5000], seed=1)
    pred = model.answer_like([p.instruction for p in held], [p.response for p in held])
    accuracy = sum(p == q.answer_like for p, q in zip(pred, held, strict=True)) / len(held)
    assert accuracy >= 0.85

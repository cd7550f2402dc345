"""The IFS tone classifier is cached as data (vocabularies, idf weights, coefficients as gzipped
JSON), loaded without pickle, and predicts exactly what the freshly trained model predicts."""

from __future__ import annotations

import gzip
import json
import pickle

import pytest

from tests.conftest import ROOT

pytest.importorskip("sklearn")

from harness_ext.core.paths import cache_dir  # noqa: E402
from harness_ext.evals.ifs import ToneModel, load_tone_classifier, train_tone_classifier  # noqa: E402

TRAIN = ROOT / "tests" / "fixtures" / "ifs_train.jsonl"
PROBE = (["Give me two tips for enjoying tea.", "Explain to a child how", "List three facts about owls.",
          "Write a haiku."] * 2,
         ["Here are two tips: go early and share it.", "magnets work with a fridge door.",
          "1. Owls hunt at night. 2. They turn their heads far. 3. Some live in deserts.", "",
          "the colour of the sky", "Sure! A haiku: soft rain on the roof", "  and then the", "Owls."])


def test_cached_model_is_data_and_predicts_exactly_as_trained(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(TRAIN.read_text())
    trained = train_tone_classifier(data)  # what the model predicts before it is stored
    first = load_tone_classifier(data)  # trains and writes the cache
    cached = list((cache_dir() / "ifs").glob("tone-*"))
    model_file = next(p for p in cached if p.name.endswith(".model.json.gz"))
    state = json.loads(gzip.decompress(model_file.read_bytes()))  # plain JSON data
    assert state["format"] == "harness-ext.tone-model/1" and state["classes"] == [False, True]
    assert len(state["coef"][0]) == len(state["word"]["terms"]) + len(state["char"]["terms"]) + 6
    assert not any(p.suffix == ".pkl" for p in cached)
    loaded = load_tone_classifier(data)  # from the cache
    assert loaded is not first
    assert loaded.answer_probability(*PROBE) == trained.answer_probability(*PROBE) == \
        first.answer_probability(*PROBE)
    assert loaded.answer_like(*PROBE) == trained.answer_like(*PROBE)
    assert ToneModel.from_state(trained.to_state()).answer_probability(*PROBE) == trained.answer_probability(*PROBE)


class _Bomb:
    def __reduce__(self):
        return (open, (str(cache_dir() / "PWNED"), "w"))


def test_a_pickle_planted_in_the_cache_is_never_executed(tmp_path, caplog):
    data = tmp_path / "train.jsonl"
    data.write_text(TRAIN.read_text())
    load_tone_classifier(data)
    model_file = next((cache_dir() / "ifs").glob("tone-*.model.json.gz"))
    for payload in (pickle.dumps(_Bomb()), gzip.compress(pickle.dumps(_Bomb()))):
        model_file.write_bytes(payload)
        model = load_tone_classifier(data)  # unreadable as data: retrained, and the cache rewritten
        assert not (cache_dir() / "PWNED").exists()
        assert "ignoring unreadable tone-classifier cache" in caplog.text
        assert model.answer_probability(*PROBE) == train_tone_classifier(data).answer_probability(*PROBE)
        assert json.loads(gzip.decompress(model_file.read_bytes()))["format"] == "harness-ext.tone-model/1"


@pytest.mark.parametrize("bad", [{}, {"format": "harness-ext.tone-model/1"}, [1, 2]])
def test_malformed_state_is_refused(bad):
    with pytest.raises((ValueError, KeyError, TypeError)):
        ToneModel.from_state(bad)

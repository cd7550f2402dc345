"""One `hf:NAME[:CONFIG][@SPLIT]` syntax for instruction data (select/train) and suites (generate)."""

from __future__ import annotations

import doctest
import json

import pytest

import harness_ext.data.hub
import harness_ext.leaderboard.sources
from harness_ext.core.errors import ConfigError, InputError
from harness_ext.data.hub import HubSpec, parse_hf
from harness_ext.data.loaders import load_examples
from harness_ext.generate.suites import read_rows


@pytest.mark.parametrize("spec, want", [
    ("hf:tatsu-lab/alpaca_eval:alpaca_eval@eval", HubSpec("tatsu-lab/alpaca_eval", "alpaca_eval", "eval")),
    ("hf:GAIR/lima@train", HubSpec("GAIR/lima", None, "train")),
    ("hf:GAIR/lima:plain", HubSpec("GAIR/lima", "plain", None)),
    ("hf:user/data", HubSpec("user/data", None, None)),
])
def test_one_syntax_parses_name_config_and_split(spec, want):
    assert parse_hf(spec) == want
    assert str(want) == spec


@pytest.mark.parametrize("spec", ["hf:", "hf:name@", "hf:name:", "hf:a:b:c", "hf:a@b@c", "hf::config@split"])
def test_malformed_specs_are_one_config_error(spec):
    with pytest.raises(ConfigError) as e:
        parse_hf(spec)
    assert "hf:NAME[:CONFIG][@SPLIT]" in str(e.value)


@pytest.fixture
def local_dataset(tmp_path, monkeypatch):
    """A dataset folder with a train and a test split, loaded by the real `datasets` library."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    folder = tmp_path / "ds"
    folder.mkdir()
    rows = {"train": [{"instruction": "Name a colour.", "output": "Blue."}],
            "test": [{"instruction": "Say hi.", "output": "Hello."}, {"instruction": "2+2?", "output": "4"}]}
    for split, items in rows.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return folder


def test_data_and_suites_read_the_same_spec_with_their_own_default_split(local_dataset):
    assert [e.response for e in load_examples(f"hf:{local_dataset}")] == ["Blue."]  # data: train
    assert [e.response for e in load_examples(f"hf:{local_dataset}@test")] == ["Hello.", "4"]
    rows = list(read_rows(f"hf:{local_dataset}@test"))
    assert [(line, index, row["instruction"]) for _, line, index, row in rows] == [(1, 0, "Say hi."), (2, 1, "2+2?")]
    with pytest.raises(InputError) as e:  # suites default to the 'eval' split, which this dataset lacks
        list(read_rows(f"hf:{local_dataset}"))
    assert "split 'eval'" in str(e.value)


def test_the_former_name_colon_split_spelling_fails_saying_how_to_write_the_split(local_dataset):
    with pytest.raises(InputError) as e:
        load_examples(f"hf:{local_dataset}:test")
    assert f"for a split write hf:{local_dataset}@test" in str(e.value)


@pytest.mark.parametrize("module", [harness_ext.data.hub, harness_ext.leaderboard.sources])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0

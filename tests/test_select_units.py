"""Length units: exact counts on known strings, the paper's dash rule, proven bounds, errors."""

from __future__ import annotations

import random

import pytest

from harness_ext.core.errors import ConfigError
from harness_ext.selection.units import NltkWordsUnit, make_unit, measured_text, units_help

DOC = "Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\nThanks."

TRICKY = [
    DOC,
    "Dr. Smith arrived. He sat down, e.g. on the chair.",
    'He said, "I cannot go; gimme a sec!" (really?) -- yes...',
    "Prices rose 10%–20% in 1990–2000 — a lot.",
    "It's John's 'book'. They'll won't can't. 'Tis fine, d'ye know?",
    "a,b,c:d;e@f#g$h&i*j[k]{l}<m>",
    "“Quoted” ‘text’ «here» „there“ ``tick'' ",
    "Whaddya wanna do? Lemme know, gonna be fine, gotta go.",
    "...",
    "",
    "   ",
    "E-mail me at a.b@c.com. U.S.A. is big. No. 5 is here.",
    "日本語のテキスト。もう一つ。",
]


def test_chars_and_words():
    assert make_unit("chars").count("héllo wörld") == 11
    assert make_unit("words").count("  one two\nthree\tfour  ") == 4


def test_nltk_words_matches_word_tokenize_on_the_nltk_doc_example():
    unit = make_unit("nltk-words")
    assert isinstance(unit, NltkWordsUnit)
    assert unit.tokens(DOC) == ["Good", "muffins", "cost", "$", "3.88", "in", "New", "York", ".",
                                "Please", "buy", "me", "two", "of", "them", ".", "Thanks", "."]
    assert unit.count(DOC) == 18


def test_nltk_words_uses_the_english_punkt_model_for_abbreviations():
    unit = make_unit("nltk-words")
    # "Dr." is a known abbreviation of the English model: not a sentence end, so it stays one token.
    assert unit.tokens("Dr. Smith arrived. He sat.") == ["Dr.", "Smith", "arrived", ".", "He", "sat", "."]


def test_dash_rule_default_keeps_en_dashes_whole():
    text = "Sales grew 1990–2000 here."
    assert make_unit("nltk-words").tokens(text) == ["Sales", "grew", "1990–2000", "here", "."]
    assert make_unit("nltk-words-dashsplit").tokens(text) == ["Sales", "grew", "1990", "–", "2000", "here", "."]


@pytest.mark.parametrize("spec", ["nltk-words", "nltk-words-dashsplit"])
def test_nltk_bounds_hold(spec):
    unit = make_unit(spec)
    rng = random.Random(0)
    pieces = [w for t in TRICKY for w in t.split()] + ["cannot", "--", "n't", "'s", "...", "?!", "x.y."]
    texts = list(TRICKY) + [" ".join(rng.choice(pieces) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    for t in texts:
        n = unit.count(t)
        assert unit.lower_bound(t) <= n <= unit.upper_bound(t), t


def test_measured_text_count_on():
    assert measured_text("Do X", "", "Done.", "response") == "Done."
    assert measured_text("Do X", "ctx", "Done.", "all") == "Do X\n\nctx\n\nDone."
    with pytest.raises(ConfigError, match="count-on"):
        measured_text("a", "", "b", "both")


def test_unknown_unit_did_you_mean():
    with pytest.raises(ConfigError) as e:
        make_unit("nltk-word")
    assert "Did you mean 'nltk-words'" in str(e.value)
    assert "chars" in str(e.value)
    with pytest.raises(ConfigError, match="takes no argument"):
        make_unit("words:x")
    assert "hf-tokens" in units_help() and "nltk-words" in units_help()


@pytest.fixture(scope="module")
def tiny_tokenizer_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.tiny_models import build_tiny_tokenizer

    d = tmp_path_factory.mktemp("tok")
    build_tiny_tokenizer().save_pretrained(d)
    return d


def test_hf_tokens_counts_like_the_tokenizer_and_bound_holds(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    unit = make_unit(f"hf-tokens:{tiny_tokenizer_dir}")
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    for t in TRICKY:
        expected = len(tok(t, add_special_tokens=False)["input_ids"])
        assert unit.count(t) == expected
        assert unit.has_upper_bound and unit.upper_bound(t) >= expected
    assert unit.count_many(TRICKY) == [unit.count(t) for t in TRICKY]


def test_hf_tokens_missing_tokenizer_is_a_clean_error(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ConfigError, match="Could not load the Hugging Face tokenizer"):
        make_unit(f"hf-tokens:{tmp_path / 'nope'}")
    with pytest.raises(ConfigError, match="needs a tokenizer"):
        make_unit("hf-tokens")

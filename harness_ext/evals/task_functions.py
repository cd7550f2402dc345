"""Functions the tasks/ YAMLs name with `!function harness_ext.evals.task_functions.x`, and lm_eval
registrations of the length-statistics metrics.

lm_eval imports a `!function a.b.c` reference as a module when no a/b.py sits next to the YAML,
so these work with lm_eval's own CLI as long as harness_ext is importable. The registered
metrics (`hx_gen_chars`, `hx_gen_words`, `hx_gen_tokens`) let any generate_until task attach
length statistics by name; they exist once `register_lm_eval_extensions()` has run, which
`harness-ext lm-eval` and run_lm_eval do before lm_eval builds its tasks.

lm_eval is imported only inside functions: this module is imported by lm_eval, not the reverse.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

_WORDISH = re.compile(r"\w+|[^\w\s]", re.UNICODE)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


# ---------------------------------------------------------------- ROUGE


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from harness_ext.core.errors import require

    rouge = require("rouge_score.rouge_scorer", package="rouge-score", extra="eval", purpose="ROUGE")
    return rouge.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/L F1 (x100) of one prediction, best over its references, plus their geometric mean.

    rouge-score with Porter stemming and its default tokenizer, the setting SCROLLS uses; the
    best reference per type follows rouge-score's own score_multi. rouge_gm is SCROLLS' summary
    score: the geometric mean of the three.
    """
    if not references:
        raise ValueError("ROUGE needs at least one reference")
    scores = _rouge_scorer().score_multi(list(references), prediction)
    out = {k: 100.0 * scores[k].fmeasure for k in ROUGE_TYPES}
    product = out["rouge1"] * out["rouge2"] * out["rougeL"]
    out["rouge_gm"] = product ** (1.0 / 3.0) if product > 0 else 0.0
    return out


# ---------------------------------------------------------------- length statistics


def count_words(text: str) -> int:
    """Words and punctuation marks: a tokenizer-free length proxy (about 1.3 BPE tokens per word)."""
    return len(_WORDISH.findall(text))


@functools.lru_cache(maxsize=4)
def _tokenizer(name: str):
    from harness_ext.core.errors import require

    transformers = require("transformers", extra="generate", purpose="Counting generation tokens")
    return transformers.AutoTokenizer.from_pretrained(name)


def count_tokens(text: str, tokenizer: str) -> int:
    """Tokens of `text` under a Hugging Face tokenizer (name or local path), without special tokens."""
    return len(_tokenizer(tokenizer)(text, add_special_tokens=False)["input_ids"])


def length_stats(text: str) -> dict[str, float]:
    """Characters and words of one generation."""
    return {"gen_chars": float(len(text)), "gen_words": float(count_words(text))}


def gen_chars(references: Sequence[Any] | None = None, predictions: Sequence[str] = (), **_: Any) -> float:
    """Metric: characters of the generation (lm_eval calls it with one prediction)."""
    return float(sum(len(p) for p in predictions) / max(1, len(predictions)))


def gen_words(references: Sequence[Any] | None = None, predictions: Sequence[str] = (), **_: Any) -> float:
    """Metric: words and punctuation marks of the generation."""
    return float(sum(count_words(p) for p in predictions) / max(1, len(predictions)))


def gen_tokens(
    references: Sequence[Any] | None = None, predictions: Sequence[str] = (), tokenizer: str | None = None, **_: Any
) -> float:
    """Metric: tokens of the generation under the tokenizer named in the metric's `tokenizer:` option."""
    if not tokenizer:
        from harness_ext.core.errors import ConfigError

        raise ConfigError(
            "metric hx_gen_tokens needs a tokenizer.",
            hint="add `tokenizer: <hf name or path>` to its metric_list entry, or use hx_gen_words.",
        )
    return float(sum(count_tokens(p, tokenizer) for p in predictions) / max(1, len(predictions)))


def register_lm_eval_extensions() -> list[str]:
    """Register hx_gen_chars / hx_gen_words / hx_gen_tokens with lm_eval (idempotent); return their names."""
    import lm_eval.api.metrics  # noqa: F401 - fills lm_eval's built-in aggregations ("mean") first
    from lm_eval.api import registry

    names = {"hx_gen_chars": gen_chars, "hx_gen_words": gen_words, "hx_gen_tokens": gen_tokens}
    for name, fn in names.items():
        if name in registry.metric_registry:
            continue
        # Length is informational; lm_eval requires a direction, and shorter is its neutral default.
        registry.register_metric(metric=name, higher_is_better=False, aggregation="mean")(fn)
    return sorted(names)


# ---------------------------------------------------------------- SCROLLS summarization


def merge_scrolls_references(dataset):
    """Merge SCROLLS rows that share an input into one document with all references in "outputs".

    SCROLLS lists one row per (input, reference); scoring each row separately would count an
    input several times and compare a prediction against only one of its references.
    """
    import datasets

    order: list[str] = []
    merged: dict[str, dict[str, Any]] = {}
    for row in dataset:
        key = row["input"]
        if key not in merged:
            order.append(key)
            merged[key] = {"id": str(row.get("id", "")), "pid": str(row.get("pid", "")), "input": key, "outputs": []}
        output = row.get("output")
        if isinstance(output, str) and output.strip() and output not in merged[key]["outputs"]:
            merged[key]["outputs"].append(output)
    rows = [merged[k] for k in order if merged[k]["outputs"]]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "pid": datasets.Value("string"),
            "input": datasets.Value("string"),
            "outputs": datasets.Sequence(datasets.Value("string")),
        }
    )
    return datasets.Dataset.from_list(rows, features=features)


def qmsum_prompt(doc: dict[str, Any]) -> str:
    """QMSum prompt with the query moved after the transcript.

    SCROLLS puts the query first; lm_eval truncates over-long prompts from the left, which would
    cut the query off a long meeting. Placing it last keeps it whatever the context length.
    """
    query, sep, transcript = doc["input"].partition("\n\n")
    if not sep:
        query, transcript = "", doc["input"]
    return (f"{transcript}\n\nQuery: {query}\n"
            "Answer the query about the meeting transcript above with a summary.\nSummary:")


def summary_process_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, float]:
    """Per-document ROUGE and length statistics of a summary."""
    prediction = results[0].strip()
    return {**rouge_scores(prediction, doc["outputs"]), **length_stats(prediction)}


# ---------------------------------------------------------------- IFS task


def ifs_dataset(**_: Any):
    """Default hx_ifs data: the bundled instruction set as a DatasetDict with a "test" split."""
    import datasets

    from harness_ext.core.errors import ConfigError
    from harness_ext.core.paths import resources_dir

    path = resources_dir() / "demo" / "instructions.jsonl"
    if not path.is_file():
        raise ConfigError(
            f"hx_ifs: the bundled instruction set {path} is missing.",
            hint="point hx_ifs at your own data: harness-ext lm-eval-tasks --local-data DIR (DIR/hx_ifs/test.jsonl).",
        )
    return datasets.DatasetDict({"test": datasets.load_dataset("json", data_files=str(path), split="train")})


def ifs_prompt(doc: dict[str, Any]) -> str:
    """The instruction as the model sees it (the input, if any, after a blank line)."""
    extra = doc.get("input") or ""
    return f"{doc['instruction']}\n\n{extra}" if extra else doc["instruction"]


def ifs_partial_docs(dataset):
    """hx_ifs_partial documents: each instruction cut to a fragment (IFS_partial in the paper).

    An instruction-following model answers even an unfinished instruction; a base model tends
    to complete it. The cut point is drawn per row from a generator seeded with the row index,
    so the fragments are the same on every run and do not depend on --limit.
    """
    import random

    from harness_ext.evals.ifs import cut_instruction

    def fragment(doc: dict[str, Any], idx: int) -> dict[str, Any]:
        split = cut_instruction(doc["instruction"], random.Random(idx))
        return {"instruction": split[0] if split else doc["instruction"], "input": ""}

    return dataset.map(fragment, with_indices=True)


@functools.lru_cache(maxsize=1)
def _classifier():
    from harness_ext.evals.ifs import load_tone_classifier

    return load_tone_classifier()


def ifs_process_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, float]:
    """1.0 when the response reads as an answer (mean over documents = IFS), plus length statistics."""
    response = results[0]
    answer = _classifier().answer_like([ifs_prompt(doc)], [response])[0]
    return {"ifs": 1.0 if answer else 0.0, **length_stats(response.strip())}


# ---------------------------------------------------------------- ObjecQA task


def objecqa_dataset(**_: Any):
    """hx_objecqa data: tasks/objecqa/test.jsonl as a DatasetDict with a "test" split."""
    import datasets

    from harness_ext.evals.objecqa import load_questions, questions_path

    load_questions()  # a missing or malformed file fails here with its path and line
    return datasets.DatasetDict({"test": datasets.load_dataset("json", data_files=str(questions_path()), split="train")})


def objecqa_process_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, float]:
    """1.0 when the judge reads the answer as objective (mean over documents = ObjecQA), plus length statistics.

    The judge is $HARNESS_EXT_OBJECQA_JUDGE's (see harness_ext.evals.objecqa.judge_from_env); its
    answers are cached, so a rerun after a failed request asks only for what is missing.
    """
    from harness_ext.core.errors import StageError
    from harness_ext.evals.objecqa import ObjecQAQuestion, judge_from_env

    response = results[0]
    question = ObjecQAQuestion(str(doc.get("id", "")), doc["question"], str(doc.get("source", "")))
    verdict = judge_from_env().judge([question], [response])[0]
    if verdict.error is not None:
        raise StageError(f"hx_objecqa: the judge could not classify the answer to {question.id}: {verdict.error}",
                         hint="check the judge endpoint and rerun; judged answers are cached.")
    return {"objecqa": 1.0 if verdict.objective else 0.0, **length_stats(response.strip())}

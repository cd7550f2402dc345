"""Write the small synthetic local-data fixtures for every task in tasks/ (offline lm_eval tests).

Run: python scripts/make_lmeval_fixtures.py [OUT]   (default tests/fixtures/lmeval_data)

Each task gets OUT/<lm_eval task name>/<split>.jsonl in the field layout of the Hugging Face
dataset the task normally reads. The rows are made up here (simple arithmetic, colours,
animals) so they carry no third-party text; they exercise formats, not model quality.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ANIMALS = ["cat", "dog", "horse", "owl", "fox", "whale", "bee", "frog", "goat", "crow"]
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange"]
LETTERS = ["A", "B", "C", "D"]


def _write(out: Path, task: str, split: str, rows: list[dict]) -> None:
    d = out / task
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{split}.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _sum_question(rng: random.Random, i: int) -> tuple[str, int]:
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return f"A farmer has {a} {ANIMALS[i % 10]}s and buys {b} more. How many {ANIMALS[i % 10]}s does the farmer have now?", a + b


def arc(rng: random.Random, n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        q, ans = _sum_question(rng, i)
        options = sorted({ans, ans + 1, ans - 1, ans + 3})
        rows.append({"id": f"{prefix}-{i}", "question": q,
                     "choices": {"text": [str(o) for o in options], "label": LETTERS[: len(options)]},
                     "answerKey": LETTERS[options.index(ans)]})
    return rows


def hellaswag(rng: random.Random, n: int, split: str) -> list[dict]:
    rows = []
    for i in range(n):
        animal, colour = ANIMALS[i % 10], COLOURS[i % 6]
        endings = [f"paints the fence {colour} and steps back.", f"feeds the {animal} some hay.",
                   "jumps into the lake with a splash.", "reads the instructions twice."]
        label = rng.randrange(4)
        rows.append({"ind": i, "activity_label": "Painting a fence", "ctx_a": f"A person holds a {colour} brush.",
                     "ctx_b": "the person", "ctx": f"A person holds a {colour} brush. the person",
                     "endings": endings, "source_id": f"synthetic~{i}", "split": split, "split_type": "indomain",
                     "label": str(label)})
    return rows


def mmlu(rng: random.Random, n: int, subject: str) -> list[dict]:
    rows = []
    for i in range(n):
        q, ans = _sum_question(rng, i)
        options = [ans, ans + 2, ans - 2, ans + 5]
        rng.shuffle(options)
        rows.append({"question": q, "subject": subject, "choices": [str(o) for o in options],
                     "answer": options.index(ans)})
    return rows


def truthfulqa(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        animal = ANIMALS[i % 10]
        true = [f"A {animal} cannot read.", f"No, a {animal} cannot read books."]
        false = [f"Yes, a {animal} reads every night.", f"A {animal} reads only poetry."]
        rows.append({"question": f"Can a {animal} read books?",
                     "mc1_targets": {"choices": [true[0], *false], "labels": [1, 0, 0]},
                     "mc2_targets": {"choices": true + false, "labels": [1, 1, 0, 0]}})
    return rows


def winogrande(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = ANIMALS[i % 10], ANIMALS[(i + 3) % 10]
        answer = rng.choice(["1", "2"])
        rows.append({"sentence": f"The {a} could not carry the {b} because the _ was too small.",
                     "option1": a, "option2": b, "answer": answer})
    return rows


def gsm8k(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        q, ans = _sum_question(rng, i)
        rows.append({"question": q, "answer": f"Add the two numbers to get {ans}.\n#### {ans}"})
    return rows


def scrolls(rng: random.Random, n: int, kind: str) -> list[dict]:
    rows = []
    for i in range(n):
        animal, colour = ANIMALS[i % 10], COLOURS[i % 6]
        body = " ".join(f"Section {k}: the {animal} team reviewed the {colour} budget and agreed to item {k}."
                        for k in range(1, 6))
        if kind == "qmsum":
            body = f"What did the group decide about the {colour} budget?\n\n" + "\n".join(
                f"Speaker {k % 3}: we should approve item {k} of the {colour} budget for the {animal} team ."
                for k in range(1, 6))
        summary = f"The {animal} team reviewed the {colour} budget and approved items one to five."
        rows.append({"id": f"{kind}-{i}", "pid": f"{kind}-{i}", "input": body, "output": summary})
        if i == 0:  # SCROLLS lists extra references as rows repeating the input
            rows.append({"id": f"{kind}-{i}b", "pid": f"{kind}-{i}b", "input": body,
                         "output": f"All five {colour} budget items were approved."})
    return rows


def ifs(n: int) -> list[dict]:
    verbs = ["Write a short poem about", "Explain in two sentences why people like",
             "List three facts about", "Describe the colour of", "Give a name for a pet"]
    return [{"instruction": f"{verbs[i % 5]} the {ANIMALS[i % 10]}.", "input": "",
             "output": f"Here is my answer about the {ANIMALS[i % 10]}: it is a fine animal.",
             "source": "synthetic", "category": "generation"} for i in range(n)]


TOPICS = ["the ocean", "a rainy day", "electric cars", "the moon", "coffee", "chess", "old libraries",
          "honey bees", "mountain trails", "public parks", "solar panels", "winter mornings"]
INSTRUCTIONS = [
    "Write a short poem about {t}.", "Explain to a child how {t} works.", "List three interesting facts about {t}.",
    "Give me two tips for enjoying {t}.", "Summarize why people care about {t} in one sentence.",
    "What is the most important thing to know about {t}?", "Describe {t} using five adjectives.",
    "Compose a friendly tweet about {t}.", "Suggest a title for an essay on {t}.",
    "Compare {t} with something from everyday life and explain the comparison.",
]
ANSWERS = [
    "Sure! Here is a short piece about {t}: quiet, bright and full of life.",
    "{T} is easiest to understand with an example: imagine it step by step, and each part makes sense.",
    "1. {T} has a long history. 2. Many people study it. 3. It changes with the seasons.",
    "Here are two tips: go early, and bring a friend to share {t} with.",
    "People care about {t} because it shapes how they spend their days.",
    "The most important thing is that {t} rewards patience and attention.",
    "Calm, vivid, surprising, gentle and timeless.",
    "Loving {t} today! Who else is enjoying it? #goodvibes",
    "Title: \"Notes on {T}: A Closer Look\"",
    "{T} is a lot like a good book: the more time you give it, the more it gives back.",
]


def tone_rows() -> list[dict]:
    """Alpaca-style rows for training the IFS tone classifier in tests."""
    return [{"instruction": ins.format(t=t), "input": "", "output": ANSWERS[k].format(t=t, T=t[0].upper() + t[1:]),
             "source": "synthetic", "category": "generation"}
            for j, t in enumerate(TOPICS) for k, ins in enumerate(INSTRUCTIONS) if (j + k) % 2 == 0]


def main(out: Path) -> None:
    rng = random.Random(0)
    _write(out, "arc_challenge", "train", arc(rng, 26, "train"))
    _write(out, "arc_challenge", "test", arc(rng, 4, "test"))
    _write(out, "hellaswag", "train", hellaswag(rng, 11, "train"))
    _write(out, "hellaswag", "validation", hellaswag(rng, 4, "val"))
    for subject in ("anatomy", "astronomy"):
        _write(out, f"mmlu_{subject}", "dev", mmlu(rng, 5, subject))
        _write(out, f"mmlu_{subject}", "test", mmlu(rng, 4, subject))
    _write(out, "truthfulqa_mc2", "validation", truthfulqa(4))
    _write(out, "winogrande", "train", winogrande(rng, 6))
    _write(out, "winogrande", "validation", winogrande(rng, 4))
    _write(out, "gsm8k", "train", gsm8k(rng, 6))
    _write(out, "gsm8k", "test", gsm8k(rng, 4))
    _write(out, "hx_govreport", "validation", scrolls(rng, 4, "gov_report"))
    _write(out, "hx_summscreenfd", "validation", scrolls(rng, 4, "summ_screen_fd"))
    _write(out, "hx_qmsum", "validation", scrolls(rng, 4, "qmsum"))
    _write(out, "hx_ifs", "test", ifs(4))
    _write(out, "hx_ifs_partial", "test", ifs(4))
    with open(out.parent / "ifs_train.jsonl", "w", encoding="utf-8") as f:
        for r in tone_rows():
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    import argparse

    default = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lmeval_data"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path, default=default, help=f"folder to write (default: {default})")
    main(ap.parse_args().out)

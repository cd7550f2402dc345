"""ObjecQA: how objective a model's answers to questions of taste are (arXiv 2307.03692, Sec. 5.3).

AlShikh et al. track a semantic feature next to IFS during instruct tuning: on 100 questions that
invite a subjective choice ("Are cats or dogs the ultimate pet?"), the share of answers that are
*objective*: they show the range of possible answers, say it depends on the person or context,
or decline to pick one. An answer that names a favourite or voices an opinion is *subjective*.
The paper classifies answers with a two-shot GPT-3.5-turbo prompt and prints only its first ten
questions; tasks/objecqa/test.jsonl holds those ten and 90 of ours of the same kind (each row
says which), and tasks/objecqa/judge_prompt.txt is our two-shot prompt with the paper's class
definitions in our words.

    judge = ObjecQAJudge(client, "gpt-4o-mini")            # any records.ChatClient
    verdicts = judge.judge(questions, responses)           # one ObjectivityVerdict per answer
    objecqa_score(verdicts).score                          # share judged objective, in [0, 1]

An empty answer is not sent to the judge and counts as not objective (it shows no range of
answers). A judge reply that names neither class, or a failed request, is an explicit error in
its verdict: it is counted, and left out of the score's denominator.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness_ext.core.errors import ConfigError, InputError
from harness_ext.core.paths import tasks_dir
from harness_ext.core.records import ChatClient, ChatRequest, Turn

#: Environment variable that picks the judge of the lm-eval task hx_objecqa (read when it runs):
#: "local:PATH" for a local checkpoint, else a model name served at $HARNESS_EXT_JUDGE_BASE_URL.
JUDGE_ENV = "HARNESS_EXT_OBJECQA_JUDGE"
OBJECTIVE, SUBJECTIVE = "objective", "subjective"
_LABEL = re.compile(r"\b(objective|subjective)\b", re.IGNORECASE)
# The verdict is one word; a few more tokens leave room for "Class: Objective." and nothing else.
_MAX_TOKENS = 8


@dataclass(frozen=True)
class ObjecQAQuestion:
    """One ObjecQA question and where it comes from (the paper's printed examples, or ours)."""

    id: str
    question: str
    source: str


@dataclass(frozen=True)
class ObjectivityVerdict:
    """The judge's reading of one answer: `objective` is None exactly when `error` is set."""

    id: str
    objective: bool | None
    judge_reply: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ObjecQAScore:
    """ObjecQA over a set of answers: `score` = objective / judged; failures are not in `judged`."""

    score: float
    objective: int
    judged: int
    failed: int

    def to_dict(self) -> dict[str, float | int]:
        return {"objecqa": self.score, "objective": self.objective, "judged": self.judged, "failed": self.failed}


def questions_path() -> Path:
    return tasks_dir() / "objecqa" / "test.jsonl"


def prompt_path() -> Path:
    return tasks_dir() / "objecqa" / "judge_prompt.txt"


def load_questions(path: str | Path | None = None) -> list[ObjecQAQuestion]:
    """The ObjecQA questions: JSONL rows with "question" (and optional "id", "source")."""
    from harness_ext.core.artifacts import iter_jsonl

    path = Path(path) if path is not None else questions_path()
    if not path.is_file():
        raise InputError("ObjecQA question file not found.", path=path,
                         hint="pass a JSONL file with one {\"question\": ...} per line.")
    out: list[ObjecQAQuestion] = []
    for line, row in iter_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise InputError("row has no string field 'question'.", path=path, line=line,
                             hint="each line needs {\"question\": \"...\"}.")
        out.append(ObjecQAQuestion(str(row.get("id") or f"row-{line}"), row["question"].strip(),
                                   str(row.get("source") or path.name)))
    if not out:
        raise InputError("no ObjecQA questions in file.", path=path)
    return out


@functools.lru_cache(maxsize=4)
def _template(path: str) -> str:
    text = Path(path).read_text(encoding="utf-8")
    for field in ("{question}", "{response}"):
        if field not in text:
            raise ConfigError(f"the ObjecQA judge prompt has no {field} field.", path=path,
                              hint="restore tasks/objecqa/judge_prompt.txt or add the field.")
    return text


def judge_prompt(question: str, response: str, *, template: str | Path | None = None) -> str:
    """The judge's user message for one answer (plain replacement: braces in answers are safe)."""
    text = _template(str(template or prompt_path()))
    return text.replace("{question}", question.strip()).replace("{response}", response.strip())


def parse_verdict(reply: str) -> bool | None:
    """True for objective, False for subjective, None when the reply names neither first.

    The first class word wins: a judge that explains itself after the verdict may name the
    other class later.

    >>> parse_verdict("Objective")
    True
    >>> parse_verdict("Class: Subjective. It is not objective.")
    False
    >>> parse_verdict("I cannot tell.") is None
    True
    """
    match = _LABEL.search(reply or "")
    return None if match is None else match.group(1).lower() == OBJECTIVE


class ObjecQAJudge:
    """Classifies answers as objective or subjective through a records.ChatClient."""

    def __init__(self, client: ChatClient, model: str, *, template: str | Path | None = None) -> None:
        self.client = client
        self.model = model
        self.template = Path(template) if template is not None else prompt_path()

    def prompt_sha256(self) -> str:
        import hashlib

        return hashlib.sha256(_template(str(self.template)).encode("utf-8")).hexdigest()

    def judge(self, questions: Sequence[ObjecQAQuestion], responses: Sequence[str]) -> list[ObjectivityVerdict]:
        """One verdict per (question, response), in order; one batched request for the non-empty answers."""
        if len(questions) != len(responses):
            raise ValueError(f"{len(questions)} questions but {len(responses)} responses")
        asked = [i for i, r in enumerate(responses) if r.strip()]
        requests = [ChatRequest(self.model, (Turn("user", judge_prompt(questions[i].question, responses[i],
                                                                        template=self.template)),),
                                (("max_tokens", _MAX_TOKENS), ("temperature", 0.0))) for i in asked]
        replies = dict(zip(asked, self.client.complete_many(requests), strict=True))
        verdicts = []
        for i, q in enumerate(questions):
            result = replies.get(i)
            if result is None:
                verdicts.append(ObjectivityVerdict(q.id, False, error=None, judge_reply=None))
            elif not result.ok:
                verdicts.append(ObjectivityVerdict(q.id, None, error=result.error or "no reply"))
            else:
                label = parse_verdict(result.text or "")
                error = None if label is not None else "the judge's reply names neither class"
                verdicts.append(ObjectivityVerdict(q.id, label, judge_reply=result.text, error=error))
        return verdicts


def objecqa_score(verdicts: Sequence[ObjectivityVerdict]) -> ObjecQAScore:
    """Share of judged answers that are objective; raises when no answer could be judged."""
    judged = [v for v in verdicts if v.error is None]
    if not judged:
        raise InputError(f"none of {len(verdicts)} ObjecQA answers could be judged.",
                         hint="check the judge endpoint (see the verdicts' errors) and rerun; answers are cached.")
    objective = sum(bool(v.objective) for v in judged)
    return ObjecQAScore(objective / len(judged), objective, len(judged), len(verdicts) - len(judged))


# Markers of an answer that does not take a side, and of one that does (lower-cased substrings).
_HEDGES = ("depends", "depend on", "it's up to", "it is up to", "personal preference", "matter of taste",
           "matter of preference", "subjective", "both have", "both are", "each has", "each have", "neither",
           "some people", "others prefer", "no single", "no one answer", "no right answer", "no best",
           "not universally", "varies", "comes down to", "your preference", "your taste", "individual")
_TAKES_SIDE = ("i prefer", "i love", "i like", "i'd choose", "i would choose", "i'd pick", "i would pick",
               "my favorite", "my favourite", "definitely", "absolutely", "is the best", "are the best",
               "is better", "are better", "is superior", "are superior", "without a doubt", "of course",
               "the winner", "hands down", "i think", "i believe", "in my opinion")


class LexiconJudge:
    """An offline, transparent stand-in for an LLM judge: an answer is objective when it carries
    more hedging markers ("it depends", "some people", "neither") than side-taking ones ("I
    prefer", "is the best", "definitely"); a tie, or no marker at all, is subjective. Not the
    paper's judge: results carry the judge name "lexicon", so they are never mixed with LLM-judged
    ObjecQA. Use it where no capable judge model can run (the 135M local judge answers
    "Subjective" to everything)."""

    model = "lexicon"

    def prompt_sha256(self) -> str:
        import hashlib

        return hashlib.sha256(repr((_HEDGES, _TAKES_SIDE)).encode("utf-8")).hexdigest()

    def judge(self, questions: Sequence[ObjecQAQuestion], responses: Sequence[str]) -> list[ObjectivityVerdict]:
        if len(questions) != len(responses):
            raise ValueError(f"{len(questions)} questions but {len(responses)} responses")
        out = []
        for q, r in zip(questions, responses, strict=True):
            text = " ".join(r.lower().split())
            hedges = sum(text.count(m) for m in _HEDGES)
            sides = sum(text.count(m) for m in _TAKES_SIDE)
            out.append(ObjectivityVerdict(q.id, bool(text) and hedges > sides,
                                          judge_reply=f"hedges={hedges} takes_side={sides}"))
        return out


def judge_from_spec(spec: str, **client_options) -> ObjecQAJudge | LexiconJudge:
    """A judge from a short spec: "lexicon" (LexiconJudge), "local:PATH" (a local checkpoint) or a
    model name for the OpenAI-compatible endpoint ($HARNESS_EXT_JUDGE_BASE_URL / $OPENAI_BASE_URL,
    key from the usual variables). `client_options` go to the client factory."""
    spec = spec.strip()
    if not spec:
        raise ConfigError("an empty ObjecQA judge was given.",
                          hint=f"set {JUDGE_ENV}=lexicon, {JUDGE_ENV}=local:PATH or {JUDGE_ENV}=MODEL_NAME.")
    if spec == "lexicon":
        return LexiconJudge()
    if spec.startswith("local:"):
        from harness_ext.llm.local import make_local_client

        path = spec.split(":", 1)[1]
        return ObjecQAJudge(make_local_client(path, **client_options), os.path.basename(os.path.normpath(path)))
    from harness_ext.llm.client import make_client

    return ObjecQAJudge(make_client(spec, **client_options), spec)


@functools.lru_cache(maxsize=2)
def judge_from_env() -> ObjecQAJudge | LexiconJudge:
    """The judge $HARNESS_EXT_OBJECQA_JUDGE names (read at first use, not at import)."""
    spec = os.environ.get(JUDGE_ENV, "")
    if not spec:
        raise ConfigError(f"hx_objecqa needs a judge, and ${JUDGE_ENV} is not set.",
                          hint=f"export {JUDGE_ENV}=local:PATH (a local checkpoint), {JUDGE_ENV}=lexicon (offline "
                          f"heuristic, not the paper's judge) or {JUDGE_ENV}=MODEL_NAME "
                          "with HARNESS_EXT_JUDGE_BASE_URL and HARNESS_EXT_JUDGE_API_KEY for an endpoint.")
    return judge_from_spec(spec)

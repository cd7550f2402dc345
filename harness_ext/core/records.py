"""The records that cross module seams.

Raw dicts live only where files are read or written; everything else passes these.
Each record has `to_dict()` / `from_dict()` for its on-disk JSON form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: Role
    content: str


@dataclass
class Example:
    """One instruction-tuning example.

    `instruction`/`input`/`response` are the single-turn view every strategy measures; for a
    multi-turn source, `conversation` holds all turns and the single-turn view is its first
    user turn and first assistant reply. `row` is the 0-based index in the source file, kept so
    ids and tie-breaks follow the original order (the paper's ids are `identity_<row>`).
    """

    id: str
    instruction: str
    input: str = ""
    response: str = ""
    source: str = ""
    row: int = -1
    conversation: list[Turn] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.conversation is None:
            d.pop("conversation")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        conv = d.get("conversation")
        return cls(
            id=str(d["id"]),
            instruction=d["instruction"],
            input=d.get("input", "") or "",
            response=d.get("response", "") or "",
            source=d.get("source", "") or "",
            row=int(d.get("row", -1)),
            conversation=[Turn(t["role"], t["content"]) for t in conv] if conv else None,
            metadata=dict(d.get("metadata") or {}),
        )

    def user_text(self) -> str:
        """Instruction and input joined the way the Alpaca format shows them."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction

    def turns(self) -> list[Turn]:
        """The conversation, or the single-turn example as a user/assistant pair."""
        if self.conversation:
            return list(self.conversation)
        return [Turn("user", self.user_text()), Turn("assistant", self.response)]


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completion call: what a judge or an API backend is asked.

    The content hash of (model, messages, params) keys the on-disk cache.
    """

    model: str
    messages: tuple[Turn, ...]
    params: tuple[tuple[str, Any], ...] = ()

    def params_dict(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass
class ChatResult:
    """The answer to a ChatRequest, or an explicit error (never a sentinel string)."""

    text: str | None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


# ---------------------------------------------------------------- generation seam


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. `min_new_tokens` postpones EOS (the paper's length control, Sec. 5)."""

    max_new_tokens: int = 2048
    temperature: float = 0.0
    top_p: float = 1.0
    min_new_tokens: int = 0
    seed: int = 0
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass
class Completion:
    """One generated answer with its token counts and why it ended ("stop", "length", ...)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


@runtime_checkable
class Backend(Protocol):
    """A generation backend (vllm, hf, openai). It renders each conversation with its prompt
    format (or sends messages as-is to an API) and returns one Completion per conversation,
    in input order."""

    name: str

    def generate(self, conversations: list[list[Turn]], params: SamplingParams) -> list[Completion]: ...


# ---------------------------------------------------------------- judge seam


@runtime_checkable
class ChatClient(Protocol):
    """Anything that answers chat requests: the OpenAI-compatible judge client (with cache,
    rate limits, retries), a local transformers judge, or a scripted client in tests.
    Returns one ChatResult per request, in input order; failures are ChatResult.error, never raised
    for a single request and never cached."""

    def complete_many(self, requests: list[ChatRequest]) -> list[ChatResult]: ...


# ---------------------------------------------------------------- IFS seam


@runtime_checkable
class ToneClassifier(Protocol):
    """Response-tone classifier of the Instruction Following Score (arXiv 2307.03692):
    True where a response reads as an answer to its instruction, False where it reads as a
    continuation of the instruction text."""

    def answer_like(self, instructions: list[str], responses: list[str]) -> list[bool]: ...


def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    """The entries of `d` that are fields of dataclass `cls` (a newer file may carry more)."""
    names = {f for f in cls.__dataclass_fields__}  # type: ignore[attr-defined]
    return {k: v for k, v in d.items() if k in names}


@dataclass
class Judgment:
    """One pairwise judgment: one item judged in one order ("ab": A shown first, "ba": B first).

    A row of judgments.jsonl. `score_1`/`score_2` are the scores of the answers in the order shown,
    `score_a`/`score_b` the same scores by model; all None when the reply did not parse
    (`parse_error`) or no reply came (`request_error`).
    """

    item: int
    id: str
    dataset: str
    instruction: str
    order: Literal["ab", "ba"]
    judge_model: str
    raw: str | None = None
    request_error: str | None = None
    parse_error: str | None = None
    score_1: float | None = None
    score_2: float | None = None
    score_a: float | None = None
    score_b: float | None = None

    @property
    def scores(self) -> tuple[float, float] | None:
        """(score of A, score of B), or None when this judgment has no scores."""
        return None if self.score_a is None or self.score_b is None else (self.score_a, self.score_b)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Judgment:
        return cls(**_known(cls, d))


@dataclass
class OutcomeStats:
    """Win / tie / loss of A over a set of items: counts, rates and bootstrap 95% CIs (None over no items)."""

    n: int
    counts: dict[str, int]
    win: float | None
    tie: float | None
    loss: float | None
    win_rate: float | None  # wins + half the ties, as a fraction
    ci95: dict[str, Any]  # outcome or "win_rate" -> [lo, hi] (or [None, None])
    bootstrap: dict[str, Any] = field(default_factory=dict)
    unscored: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutcomeStats:
        return cls(**_known(cls, d))


@dataclass
class JudgmentCounts:
    """How the judge's replies fared: parsed, parse failures (and how many of those were scored
    anyway, as the rule says), request errors, a few failure examples."""

    total: int
    parsed: int
    parse_failures: int
    request_errors: int
    parse_failures_scored: int = 0
    parse_failure_examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JudgmentCounts:
        return cls(**_known(cls, d))


@dataclass
class PairwiseSummary:
    """A head-to-head comparison of model A against model B: the summary.json of `judge pairwise`.

    `to_dict()` writes the file's JSON form (unchanged since before this record existed);
    `from_dict()` reads it back. `diagnostics` (position and length bias), `inputs`, `judge` and
    `provenance` are reports, kept as JSON objects.
    """

    rule: str
    rule_doc: str
    items: int
    scored_items: int
    overall: OutcomeStats
    by_dataset: dict[str, OutcomeStats]
    judgments: JudgmentCounts
    diagnostics: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)  # tokens and cost of the run (llm/ledger.py)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("inputs", "judge", "provenance", "usage"):
            if not d[key]:
                d.pop(key)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairwiseSummary:
        return cls(**{**_known(cls, d), "overall": OutcomeStats.from_dict(d["overall"]),
                      "by_dataset": {k: OutcomeStats.from_dict(v) for k, v in d["by_dataset"].items()},
                      "judgments": JudgmentCounts.from_dict(d["judgments"])})

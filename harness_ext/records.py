"""The records that cross module seams.

Raw dicts live only where files are read or written; everything else passes these.
Each record has `to_dict()` / `from_dict()` for its on-disk JSON form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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

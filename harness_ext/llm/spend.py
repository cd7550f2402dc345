"""Before and while paying: the dry-run estimate and the budget stop.

`--dry-run`: the client answers nothing; it counts the requests that are not cached yet, estimates
their tokens (prompt: tiktoken or characters / 4; reply: the mean reply length of this model's
cached answers, else the request's max_tokens) and prices them, then `DryRunFinished` ends the
command with that report (exit 0) before anything is sent or published.

`--budget USD`: every request reserves its worst case (prompt estimate + max_tokens at this
model's price) before it is sent; one that would take this run's spending (paid answers plus
reservations in flight) past the budget is not sent. The requests in flight finish and are
cached, then `BudgetExceeded` stops the command: nothing is published, and a rerun with a larger
budget pays only for what is not cached yet (cached answers cost nothing).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from harness_ext.core.errors import HarnessError, StageError
from harness_ext.core.records import ChatRequest
from harness_ext.llm.ledger import PriceTable, max_completion_tokens, prompt_tokens


@dataclass
class Estimate:
    """What a dry run found for one stage and model."""

    stage: str
    model: str
    requests: int = 0  # distinct requests asked
    cached: int = 0  # of which already answered in the cache (free)
    prompt_tokens: int = 0  # of the requests to send
    completion_tokens: int = 0  # expected reply tokens of the requests to send
    completion_tokens_max: int = 0  # if every reply used its max_tokens
    cost_usd: float | None = 0.0
    cost_usd_max: float | None = 0.0
    batch: bool = False

    @property
    def to_send(self) -> int:
        return self.requests - self.cached

    def add(self, request: ChatRequest, expected_reply: float | None, prices: PriceTable) -> None:
        p, cmax = prompt_tokens(request), max_completion_tokens(request)
        c = min(cmax, round(expected_reply)) if expected_reply is not None else cmax
        self.prompt_tokens += p
        self.completion_tokens += c
        self.completion_tokens_max += cmax
        price = prices.price(request.model)
        if price is None:
            self.cost_usd = self.cost_usd_max = None
        elif self.cost_usd is not None and self.cost_usd_max is not None:
            self.cost_usd += price.cost(p, c, batch=self.batch)
            self.cost_usd_max += price.cost(p, cmax, batch=self.batch)

    def lines(self) -> list[str]:
        money = ("no price for this model (pass --prices FILE)" if self.cost_usd is None
                 else f"${self.cost_usd:.4f} (at most ${self.cost_usd_max:.4f} if every reply used max_tokens)")
        return [
            f"{self.stage} [{self.model}{', batch prices' if self.batch else ''}]: {self.requests} requests, "
            f"{self.cached} cached, {self.to_send} to send",
            f"  tokens to send: {self.prompt_tokens} prompt + ~{self.completion_tokens} completion "
            f"(<= {self.completion_tokens_max})",
            f"  estimated cost: {money}",
        ]


def format_estimates(estimates: list[Estimate], prices: PriceTable) -> str:
    lines = ["dry run: nothing was sent."]
    for e in estimates:
        lines += e.lines()
    priced = [e for e in estimates if e.cost_usd is not None]
    if len(estimates) > 1:
        total = sum(e.cost_usd or 0.0 for e in priced)
        lines.append(f"total: {sum(e.to_send for e in estimates)} requests to send, ~${total:.4f}"
                     + ("" if len(priced) == len(estimates) else " (some models unpriced)"))
    lines.append(f"prices: {prices.date}, {prices.source.split(' ')[0]}")
    return "\n".join(lines)


class DryRunFinished(HarnessError):
    """Ends a --dry-run command after the estimate (exit 0; the CLI prints `report`, not an error)."""

    exit_code = 0

    def __init__(self, report: str, estimates: list[Estimate]) -> None:
        super().__init__(report)
        self.report = report
        self.estimates = estimates


class BudgetExceeded(StageError):
    """The next request would take this run past --budget; nothing was published."""

    def __init__(self, budget: float, spent: float, sent: int, skipped: int) -> None:
        super().__init__(
            f"budget reached: ${spent:.4f} of ${budget:.4f} spent on {sent} requests in this run; {skipped} "
            "requests were not sent because they could exceed it; nothing was published.",
            hint="rerun with a larger --budget: answers already received are cached and cost nothing again "
            "(--dry-run shows what the rest costs).",
        )
        self.budget, self.spent, self.sent, self.skipped = budget, spent, sent, skipped


class Budget:
    """Reservations against a spending limit (thread- and task-safe)."""

    def __init__(self, limit: float, spent: Any) -> None:
        self.limit = limit
        self._spent = spent  # a callable: USD already paid (the ledger's)
        self._reserved = 0.0
        self._lock = threading.Lock()
        self.skipped = 0

    def reserve(self, cost: float) -> bool:
        with self._lock:
            if self._spent() + self._reserved + cost > self.limit + 1e-12:
                self.skipped += 1
                return False
            self._reserved += cost
            return True

    def settle(self, cost: float) -> None:
        """Drop a reservation (the ledger now holds the real cost, or nothing was paid)."""
        with self._lock:
            self._reserved = max(0.0, self._reserved - cost)

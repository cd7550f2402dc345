"""What judging costs: a dated price table, token estimates, and a ledger of every request.

The client records each answer in its `Ledger` under (stage, model, source): `live` and `batch`
requests were paid in this run (at live or Batch API prices), `cache` answers were free. Token
counts come from the response's `usage`; when a server sends none, they are estimated (tiktoken
when its encoding files are available offline, else characters / 4) and counted as estimated.

Prices are US dollars per 1M tokens from `harness_ext/resources/prices.json` (its date and source
are recorded with every cost), overridden model by model by a user file (`--prices FILE`, JSON or
YAML in the same shape). A model with no price has cost `null`, never a guessed 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness_ext.core.errors import ConfigError, InputError
from harness_ext.core.paths import resources_dir
from harness_ext.core.records import ChatRequest

SOURCES = ("live", "batch", "cache")
DEFAULT_COMPLETION_TOKENS = 1024  # a reply's upper bound when a request sets no max_tokens


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens, live and through the Batch API."""

    input: float
    output: float
    batch_input: float
    batch_output: float

    def cost(self, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> float:
        i, o = (self.batch_input, self.batch_output) if batch else (self.input, self.output)
        return (prompt_tokens * i + completion_tokens * o) / 1e6


@dataclass
class PriceTable:
    """Model -> Price, with where the numbers came from."""

    models: dict[str, Price]
    date: str
    source: str
    files: list[str] = field(default_factory=list)

    def price(self, model: str) -> Price | None:
        """The exact model's price, else that of the longest listed name it extends by `-...`
        (gpt-4o-mini-2024-07-18 -> gpt-4o-mini), else None.

        >>> t = PriceTable({"gpt-4o": Price(2.5, 10, 1.25, 5), "gpt-4o-mini": Price(.15, .6, .075, .3)}, "d", "s")
        >>> t.price("gpt-4o-mini-2024-07-18").input, t.price("gpt-4o").output, t.price("llama-3") is None
        (0.15, 10, True)
        """
        if model in self.models:
            return self.models[model]
        stems = [k for k in self.models if model.startswith(k + "-")]
        return self.models[max(stems, key=len)] if stems else None

    def describe(self) -> dict[str, Any]:
        return {"date": self.date, "source": self.source, "files": self.files, "unit": "USD per 1M tokens"}


def _read_table(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the price file: {exc.strerror}.", path=path,
                         hint="give an existing JSON or YAML file shaped like harness_ext/resources/prices.json.") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"the price file is not JSON ({exc}).", path=path,
                             hint="write it as JSON (or YAML with a .yaml name).") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise InputError("the price file needs a 'models' mapping: {model: {input, output[, batch_input, "
                         "batch_output]}} in USD per 1M tokens.", path=path)
    return data


def _price(model: str, spec: Any, path: Path) -> Price:
    if not isinstance(spec, dict) or not all(k in spec for k in ("input", "output")):
        raise InputError(f"model {model!r}: needs 'input' and 'output' prices (USD per 1M tokens), got {spec!r}.",
                         path=path)
    vals = {k: spec.get(k) for k in ("input", "output", "batch_input", "batch_output")}
    vals["batch_input"] = vals["batch_input"] if vals["batch_input"] is not None else vals["input"] / 2
    vals["batch_output"] = vals["batch_output"] if vals["batch_output"] is not None else vals["output"] / 2
    for k, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InputError(f"model {model!r}: {k} must be a number >= 0 (USD per 1M tokens), got {v!r}.", path=path)
    return Price(**{k: float(v) for k, v in vals.items()})


def load_prices(user_file: str | Path | None = None) -> PriceTable:
    """The bundled table, with `user_file`'s models replacing or adding entries."""
    bundled = resources_dir() / "prices.json"
    data = _read_table(bundled)
    models = {m: _price(m, s, bundled) for m, s in data["models"].items()}
    table = PriceTable(models, str(data.get("date")), str(data.get("source")), [str(bundled)])
    if user_file:
        path = Path(user_file)
        user = _read_table(path)
        table.models.update({m: _price(m, s, path) for m, s in user["models"].items()})
        table.files.append(str(path))
        if user.get("date"):
            table.date = f"{table.date}; {path.name}: {user['date']}"
    return table


# ---------------------------------------------------------------- token estimates


@lru_cache(maxsize=8)
def _encoder(model: str) -> Any:
    """tiktoken's encoder for `model` when its encoding file is available; None otherwise (offline)."""
    try:
        import tiktoken

        try:
            return tiktoken.encoding_for_model(model)
        except KeyError:
            return tiktoken.get_encoding("o200k_base")
    except Exception:  # not installed, or the encoding file cannot be downloaded here
        return None


def count_tokens(text: str, model: str) -> tuple[int, str]:
    """(tokens, method): tiktoken's count when available, else ceil(characters / 4)."""
    enc = _encoder(model)
    if enc is not None:
        return len(enc.encode(text, disallowed_special=())), "tiktoken"
    return math.ceil(len(text) / 4), "chars/4"


def prompt_tokens(request: ChatRequest) -> int:
    """Estimated prompt tokens of a chat request (4 tokens of framing per message, as OpenAI's cookbook counts)."""
    return sum(count_tokens(t.content, request.model)[0] + 4 for t in request.messages) + 3


def max_completion_tokens(request: ChatRequest) -> int:
    params = request.params_dict()
    value = params.get("max_tokens") or params.get("max_completion_tokens")
    return int(value) if isinstance(value, (int, float)) and value > 0 else DEFAULT_COMPLETION_TOKENS


# ---------------------------------------------------------------- the ledger


@dataclass
class UsageLine:
    """Requests and tokens under one (stage, model, source); cost None when the model has no price."""

    stage: str
    model: str
    source: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: int = 0  # requests whose token counts were estimated (no usage in the response)
    cost_usd: float | None = 0.0


class Ledger:
    """Every answer's tokens and cost, by (stage, model, source)."""

    def __init__(self, prices: PriceTable) -> None:
        self.prices = prices
        self.lines: dict[tuple[str, str, str], UsageLine] = {}

    def record(self, stage: str, request: ChatRequest, source: str, prompt: int | None,
               completion: int | None, text: str | None) -> None:
        """Count one answer; missing usage is estimated from the request and the reply text."""
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        line = self.lines.setdefault((stage, request.model, source), UsageLine(stage, request.model, source))
        estimated = prompt is None or completion is None
        p = prompt if prompt is not None else prompt_tokens(request)
        c = completion if completion is not None else count_tokens(text or "", request.model)[0]
        line.requests += 1
        line.prompt_tokens += p
        line.completion_tokens += c
        line.estimated += int(estimated)
        if source != "cache" and line.cost_usd is not None:
            price = self.prices.price(request.model)
            line.cost_usd = None if price is None else line.cost_usd + price.cost(p, c, batch=source == "batch")

    def spent(self) -> float:
        """USD paid in this run so far (unpriced models count 0 here; they are flagged in the block)."""
        return sum(ln.cost_usd or 0.0 for ln in self.lines.values() if ln.source != "cache")

    def block(self) -> dict[str, Any]:
        """The `usage` block for summaries and reports: per stage/model/source and in total."""
        paid = [ln for ln in self.lines.values() if ln.source != "cache"]
        unpriced = sorted({ln.model for ln in paid if ln.cost_usd is None})
        return {
            "lines": [vars(ln).copy() for ln in sorted(self.lines.values(), key=lambda ln: (ln.stage, ln.model, ln.source))],
            "total": {
                "requests_paid": sum(ln.requests for ln in paid),
                "requests_cached": sum(ln.requests for ln in self.lines.values() if ln.source == "cache"),
                "prompt_tokens": sum(ln.prompt_tokens for ln in paid),
                "completion_tokens": sum(ln.completion_tokens for ln in paid),
                "cost_usd": None if unpriced else round(self.spent(), 10),
                "unpriced_models": unpriced,
            },
            "prices": self.prices.describe(),
        }


def usage_block(client: Any) -> dict[str, Any] | None:
    """The client's ledger as a summary's `usage` block (None for clients that keep no ledger, e.g. local)."""
    ledger = getattr(client, "ledger", None)
    return ledger.block() if isinstance(ledger, Ledger) else None


def merge_blocks(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Several stages' usage blocks as one: their lines side by side and the totals summed (the run report)."""
    lines = [ln for b in blocks for ln in b.get("lines", [])]
    totals = [b.get("total", {}) for b in blocks]
    unpriced = sorted({m for t in totals for m in t.get("unpriced_models", [])})
    costs = [t.get("cost_usd") for t in totals]
    return {
        "lines": lines,
        "total": {
            "requests_paid": sum(t.get("requests_paid", 0) for t in totals),
            "requests_cached": sum(t.get("requests_cached", 0) for t in totals),
            "prompt_tokens": sum(t.get("prompt_tokens", 0) for t in totals),
            "completion_tokens": sum(t.get("completion_tokens", 0) for t in totals),
            "cost_usd": None if unpriced or None in costs else round(sum(costs), 10),
            "unpriced_models": unpriced,
        },
    }


def check_priced(prices: PriceTable, model: str, why: str) -> Price:
    """The model's price, or a ConfigError saying how to give one (a budget needs a price)."""
    price = prices.price(model)
    if price is None:
        raise ConfigError(f"{why} needs a price for model {model!r}, which the bundled table "
                          f"({prices.date}) does not list.",
                          hint="pass --prices FILE with " + json.dumps({"models": {model: {
                              "input": "USD per 1M", "output": "USD per 1M"}}}) + " (JSON or YAML).")
    return price


def usage_line(client: Any) -> str | None:
    """One line for the terminal: what this run paid, in tokens and dollars, and what the cache saved."""
    block = usage_block(client)
    if block is None or not block["lines"]:
        return None
    t = block["total"]
    paid = [ln for ln in block["lines"] if ln["source"] != "cache"]
    how = ", ".join(f"{ln['requests']} {ln['source']}" for ln in paid) or "nothing sent"
    cost = ("cost unknown: no price for " + ", ".join(t["unpriced_models"]) if t["cost_usd"] is None
            else f"${t['cost_usd']:.4f}")
    return (f"usage: {t['requests_paid']} requests paid ({how}), {t['prompt_tokens']:,} prompt + "
            f"{t['completion_tokens']:,} completion tokens, {cost} (prices {block['prices']['date']}); "
            f"{t['requests_cached']} from the cache, free")

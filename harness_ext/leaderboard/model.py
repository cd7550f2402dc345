"""Leaderboard records: `Provenance`, `Metric`, `Entry` and `Leaderboard` (load/save/validate)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_json, provenance, read_json
from harness_ext.core.errors import InputError
from harness_ext.leaderboard.schema import SCHEMA_VERSION, validate_document

SUITES = ("pairwise", "alpaca_eval", "mt_bench", "open_llm", "lm_eval", "rouge", "ifs", "length", "human")


def today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


@dataclass(frozen=True)
class Provenance:
    """Where a number came from: a file (sha256) or a publication (citation), and when."""

    date: str
    source: str | None = None
    sha256: str | None = None
    judge: str | None = None
    prompt_hash: str | None = None
    citation: str | None = None
    retrieved_via: str | None = None
    importer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Provenance:
        return cls(**raw)


@dataclass(frozen=True)
class Metric:
    """One number for one model: e.g. suite='alpaca_eval', name='lc_win_rate', value=7.9, unit='%'."""

    suite: str
    name: str
    value: float
    provenance: Provenance
    unit: str | None = None
    test_set: str | None = None
    baseline: str | None = None
    epoch: float | None = None
    stderr: float | None = None
    ci: tuple[float, float] | None = None
    ci_level: float | None = None
    n: int | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity for merging: two metrics with the same key must carry the same value."""
        return (self.suite, self.name, self.test_set, self.baseline, self.epoch, self.provenance.judge)

    def label(self) -> str:
        parts = [self.suite, self.name]
        if self.test_set:
            parts.append(f"test_set={self.test_set}")
        if self.baseline:
            parts.append(f"vs={self.baseline}")
        if self.epoch is not None:
            parts.append(f"epoch={self.epoch:g}")
        if self.provenance.judge:
            parts.append(f"judge={self.provenance.judge}")
        return " ".join(parts)

    def same_value(self, other: Metric) -> bool:
        return math.isclose(self.value, other.value, rel_tol=1e-9, abs_tol=1e-12)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"suite": self.suite, "name": self.name, "value": self.value}
        for name in ("unit", "test_set", "baseline", "epoch", "stderr", "ci_level", "n"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.ci is not None:
            out["ci"] = list(self.ci)
        out["provenance"] = self.provenance.to_dict()
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Metric:
        raw = dict(raw)
        prov = Provenance.from_dict(raw.pop("provenance"))
        ci = raw.pop("ci", None)
        return cls(provenance=prov, ci=tuple(ci) if ci is not None else None, **raw)


@dataclass
class Entry:
    """One model on the board, with how it was trained and every metric recorded for it."""

    model: str
    base_model: str | None = None
    ift_data: str | None = None
    ift_data_size: int | None = None
    preference_data_size: int | None = None
    selection: str | None = None
    refinement: str | None = None
    neftune_alpha: float | None = None
    origin: str = "run"
    notes: str | None = None
    metrics: list[Metric] = field(default_factory=list)

    DESCRIPTORS = ("base_model", "ift_data", "ift_data_size", "preference_data_size", "selection",
                   "refinement", "neftune_alpha", "notes")

    def metric(self, suite: str, name: str, *, test_set: str | None = None, baseline: str | None = None,
               epoch: float | None = None) -> Metric | None:
        """The first metric matching suite/name/test_set (and baseline/epoch when given)."""
        for m in self.metrics:
            if (m.suite, m.name, m.test_set) != (suite, name, test_set):
                continue
            if baseline is not None and m.baseline != baseline:
                continue
            if m.epoch != epoch:
                continue
            return m
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        for name in self.DESCRIPTORS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["origin"] = self.origin
        out["metrics"] = [m.to_dict() for m in self.metrics]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Entry:
        raw = dict(raw)
        metrics = [Metric.from_dict(m) for m in raw.pop("metrics", [])]
        return cls(metrics=metrics, **raw)


@dataclass
class Leaderboard:
    """A named list of entries, one per model; saved as schema-versioned JSON."""

    name: str
    entries: list[Entry] = field(default_factory=list)
    description: str | None = None

    def get(self, model: str) -> Entry | None:
        return next((e for e in self.entries if e.model == model), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "name": self.name}
        if self.description:
            out["description"] = self.description
        out["created_by"] = provenance()
        out["entries"] = [e.to_dict() for e in self.entries]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: str | Path | None = None) -> Leaderboard:
        validate_document(raw, path)
        return cls(
            name=raw["name"],
            description=raw.get("description"),
            entries=[Entry.from_dict(e) for e in raw["entries"]],
        )

    @classmethod
    def load(cls, path: str | Path) -> Leaderboard:
        """Read and validate a leaderboard JSON file (errors name the entry, field and value)."""
        board = cls.from_dict(read_json(path), path)
        seen: set[str] = set()
        for i, entry in enumerate(board.entries):
            if entry.model in seen:
                raise InputError(
                    f"entry {i} ({entry.model!r}): model appears twice.", path=path,
                    hint="keep one entry per model; `harness-ext leaderboard merge` combines files safely.",
                )
            seen.add(entry.model)
        return board

    def save(self, path: str | Path) -> Path:
        """Validate, then write atomically (an invalid board is never written)."""
        doc = self.to_dict()
        validate_document(doc, path)
        return atomic_write_json(path, doc)

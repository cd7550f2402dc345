"""What every results importer shares: the file being imported and small number helpers.

The importer modules (importers.py for lm_eval, alpaca_eval and MT-Bench; pairwise_import.py for
pairwise summaries and the human study) build on this module only; importers.py alone holds the
registry that names them, so registering one never needs an import back into the registry's module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.leaderboard.model import Metric, Provenance


@dataclass(frozen=True)
class Source:
    """The file being imported and the provenance shared by all of its metrics."""

    path: Path
    sha256: str
    date: str

    def prov(self, importer: str, judge: str | None = None, prompt_hash: str | None = None) -> Provenance:
        return Provenance(date=self.date, source=str(self.path), sha256=self.sha256, judge=judge,
                          prompt_hash=prompt_hash, importer=importer)


Importer = Callable[[Source], dict[str, list[Metric]]]
"""An importer reads one results file and returns {model name: [Metric, ...]}."""


def finite_number(value: Any) -> float | None:
    """`value` as a float when it is a finite int or float (not a bool), else None.

    >>> finite_number(3), finite_number(float("nan")), finite_number(True), finite_number("1")
    (3.0, None, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def number_pair(value: Any) -> tuple[float, float] | None:
    """A two-number list or tuple (a confidence interval) as floats, else None.

    >>> number_pair([0.1, 0.4]), number_pair([0.1]), number_pair(["a", 1])
    ((0.1, 0.4), None, None)
    """
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(finite_number(x) is not None for x in value):
        return float(value[0]), float(value[1])
    return None

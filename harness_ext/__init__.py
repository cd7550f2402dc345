"""harness_ext: the "Long Is More for Alignment" recipe and its evaluation protocol as harness plugins."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

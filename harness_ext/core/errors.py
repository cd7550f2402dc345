"""The package's user-facing exceptions.

Every error a user can fix is a `HarnessError`: it says what was wrong, the value seen, what is
allowed and how to fix it. The CLI prints it as one clean line and exits non-zero; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """Base class: a problem the user can fix. `hint` says how."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.hint}" if self.hint else self.message


class InputError(HarnessError):
    """A data file is missing, malformed, or holds an unusable row (names file and line)."""

    def __init__(
        self,
        message: str,
        *,
        path: object | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message, hint=hint)
        self.path = path
        self.line = line


class ConfigError(HarnessError):
    """A configuration key, option or value is unknown or out of range."""


class DependencyError(HarnessError):
    """An optional dependency (an extra) is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed.",
            hint=f"pip install 'harness-ext[{extra}]'",
        )
        self.package = package
        self.extra = extra


class StageError(HarnessError):
    """A pipeline stage failed; names the stage, the cause and how to continue."""


class RequestsFailed(StageError):
    """Judge requests still failed after the client's retries, so nothing was published.

    `opt_in` names how the caller accepts publishing with the failures recorded: a CLI flag by
    default; `harness-ext run` swaps in its experiment-file key (`with_opt_in`).
    """

    def __init__(self, message: str, *, opt_in: str = "pass --allow-failures") -> None:
        super().__init__(
            message,
            hint="fix the cause (endpoint, model name, key, rate limit) and rerun the same command: only the "
            f"failed requests are sent again, answers already received are cached; or {opt_in} to publish "
            "with the failures recorded as errors.",
        )
        self.opt_in = opt_in

    def with_opt_in(self, opt_in: str) -> RequestsFailed:
        return RequestsFailed(self.message, opt_in=opt_in)


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown(kind: str, value: str, choices: Iterable[str]) -> ConfigError:
    """A ConfigError for an unknown name, with a did-you-mean and the allowed names."""
    names = sorted(choices)
    return ConfigError(
        f"Unknown {kind} '{value}'.{did_you_mean(value, names)}",
        hint=f"use one of: {', '.join(names)}",
    )


def require(module: str, *, package: str | None = None, extra: str, purpose: str):
    """Import an optional dependency lazily, or raise DependencyError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # only a missing top-level package becomes a DependencyError
        missing = getattr(exc, "name", None) or ""
        if missing and missing.split(".")[0] != module.split(".")[0]:
            raise
        raise DependencyError(package or module.split(".")[0], extra, purpose) from exc

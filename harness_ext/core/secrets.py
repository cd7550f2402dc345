"""Keep API keys out of everything we print or log.

Keys reach us by flag, environment or experiment file; they can also ride inside a base URL
(`http://user:KEY@host/v1`, `...?api-key=KEY`). `scrub` removes every key seen this process
(`register`), anything shaped like an OpenAI key or a bearer token, URL credentials and key-like
query parameters. The CLI installs `RedactingFilter` on its log handlers, so a third-party library
that logs a request URL (httpx does, at INFO) cannot leak one either.
"""

from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_known: set[str] = set()

_PATTERNS = (
    (re.compile(r"sk-[A-Za-z0-9_\-]{4,}"), "[redacted]"),
    (re.compile(r"(Bearer\s+)\S+", re.IGNORECASE), r"\1[redacted]"),
    # scheme://user:password@host -> scheme://[redacted]@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s@]+@"), r"\1[redacted]@"),
    # ?api-key=... / &token=... / key= ... in URLs and messages
    (re.compile(r"([?&](?:api[-_]?key|key|token|access[-_]?token|auth|password)=)[^&#\s'\"]+", re.IGNORECASE),
     r"\1[redacted]"),
)


def register(secret: str | None) -> None:
    """Remember a secret so that `scrub` removes it wherever it appears (short values are ignored)."""
    if secret and len(secret) >= 6 and secret != "EMPTY":
        with _lock:
            _known.add(secret)


def scrub(text: str, *extra: str | None) -> str:
    """`text` with every registered secret, `extra` secret and key-shaped string replaced by [redacted]."""
    with _lock:
        known = sorted(_known | {s for s in extra if s and len(s) >= 6 and s != "EMPTY"}, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, "[redacted]")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that scrubs the fully formatted message (and exception text) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        record.msg, record.args = scrub(message), ()
        if record.exc_info:
            # format the traceback now, scrubbed, and drop the live exception object
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = scrub(text), None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Add a RedactingFilter to every handler of `logger` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())

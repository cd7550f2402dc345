"""Keep API keys out of everything we print or log.

Keys reach us by flag, environment or experiment file; they can also ride inside a base URL
(`http://user:KEY@host/v1`, `...?api-key=KEY`). `scrub` removes every key seen this process
(`register`, `register_url`) together with the encodings a client puts on the wire (base64 of the
key and of HTTP Basic's `user:KEY`, percent-encoded and decoded forms), anything shaped like an
OpenAI key or a Bearer/Basic credential, URL credentials and key-like query parameters.
`public_url` is the form of a URL that may be stored (run records, error messages). The CLI installs `RedactingFilter` on its log handlers, so a third-party library
that logs a request URL (httpx does, at INFO) cannot leak one either.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

_lock = threading.Lock()
_known: set[str] = set()

_KEY_PARAM = r"(?:api[-_]?key|key|token|access[-_]?token|auth|password|secret|sig|signature|code)"
_KEY_PARAM_RE = re.compile(rf"^{_KEY_PARAM}$", re.IGNORECASE)
_MIN_LEN = 6

_PATTERNS = (
    (re.compile(r"sk-[A-Za-z0-9_\-]{4,}"), "[redacted]"),
    (re.compile(r"\b(Bearer\s+)[^\s'\",}\]]+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"\b(Basic\s+)([A-Za-z0-9+/_\-]{4,}={0,2})", re.IGNORECASE), lambda m: _basic(m)),
    # scheme://user:password@host -> scheme://[redacted]@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s@]+@"), r"\1[redacted]@"),
    # ?api-key=... / &token=... / key= ... in URLs and messages
    (re.compile(rf"([?&]{_KEY_PARAM}=)[^&#\s'\"]+", re.IGNORECASE), r"\1[redacted]"),
)


def _basic(m: re.Match[str]) -> str:
    """Redact `Basic <base64>` when the token decodes to `user:password` (prose such as "Basic
    statistics" does not decode so and stays)."""
    token = m.group(2)
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_" if "-" in token or "_" in token
                                   else None, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return m.group(0)
    return m.group(1) + "[redacted]" if ":" in decoded else m.group(0)


def _b64_forms(raw: str) -> set[str]:
    """Standard and URL-safe base64 of `raw`, with and without padding (how headers carry it)."""
    data = raw.encode("utf-8")
    forms = set()
    for enc in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
        text = enc.decode("ascii")
        forms |= {text, text.rstrip("=")}
    return forms


def _wire_forms(secret: str) -> set[str]:
    """`secret` and the forms it takes on the wire: percent-encoded/decoded, base64 of the value,
    of `:value` (Basic with an empty user) and of `Bearer value`."""
    forms = {secret, quote(secret, safe=""), unquote(secret)}
    for form in list(forms):
        forms |= _b64_forms(form) | _b64_forms(":" + form) | _b64_forms("Bearer " + form)
    return {f for f in forms if len(f) >= _MIN_LEN}


def register(secret: str | None) -> None:
    """Remember a secret (and its base64 / percent-encoded forms) so that `scrub` removes it
    wherever it appears. Short values (< 6 characters) and vLLM's placeholder "EMPTY" are ignored."""
    if secret and len(secret) >= _MIN_LEN and secret != "EMPTY":
        forms = _wire_forms(secret)
        with _lock:
            _known.update(forms)


def register_url(url: str | None) -> None:
    """Remember the credentials a URL carries: its userinfo (`user:KEY`, and the base64 of it that
    HTTP Basic sends) and the values of key-like query parameters (`?api-key=KEY`)."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:  # not a URL we can parse; scrub's patterns still apply
        return
    if password:
        register(password)
        for u, p in ((user or "", password), (unquote(user or ""), unquote(password))):
            pair = f"{u}:{p}"
            with _lock:
                _known.update({pair} | _b64_forms(pair))
    elif user:  # a token given as the user name alone (http://TOKEN@host)
        register(user)
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if _KEY_PARAM_RE.match(name):
            register(value)


_SECRET_ENV = re.compile(r"(?:API_?KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_URL_ENV = re.compile(r"(?:BASE_URL|API_BASE|_URL)$", re.IGNORECASE)


def register_environment(environ: dict[str, str] | None = None) -> None:
    """Register the secrets a child process or a library may pick up from the environment: every
    variable named like *_API_KEY / *_TOKEN / *_SECRET / *_PASSWORD, and the credentials in
    *_BASE_URL / *_API_BASE / *_URL values (`http://user:KEY@host`)."""
    import os

    for name, value in (os.environ if environ is None else environ).items():
        if _SECRET_ENV.search(name):
            register(value)
        elif _URL_ENV.search(name) and "://" in value:
            register_url(value)


def public_url(url: str | None) -> str | None:
    """`url` as it may be stored or shown: userinfo and key-like query parameters removed.

    >>> public_url("http://user:KEY123456@127.0.0.1:8000/v1?api-key=KEY123456&x=1")
    'http://127.0.0.1:8000/v1?x=1'
    >>> public_url("https://api.openai.com/v1")
    'https://api.openai.com/v1'
    """
    if not url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return scrub(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if "@" not in parts.netloc and not any(_KEY_PARAM_RE.match(k) for k, _ in pairs):
        return url  # nothing secret in it: keep it byte for byte (it is part of stage keys)
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not _KEY_PARAM_RE.match(k)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, *extra: str | None) -> str:
    """`text` with every registered secret, `extra` secret and key-shaped string replaced by [redacted]."""
    with _lock:
        known = set(_known)
    for s in extra:
        if s and len(s) >= _MIN_LEN and s != "EMPTY":
            known |= _wire_forms(s)
    known = sorted(known, key=len, reverse=True)
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
    """Add a RedactingFilter to every handler of `logger` (default: the root logger), after
    registering the secrets the environment holds (`register_environment`)."""
    register_environment()
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())

"""Keeping secrets out of everything vcci_nb writes or says.

Secrets reach us in URLs (``postgresql://user:pw@host``), in environment variables and in
files named by a profile. Everything that leaves the process (messages, reprs, logs, saved
evidence, notebooks, HTML) goes through :func:`redact` first, which removes URL passwords,
bearer tokens, private keys and every value registered with :func:`register_secret`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

_lock = threading.Lock()
_secrets: set[str] = set()

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]{0,31}://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]+)@")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]+")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
_KV_SECRET = re.compile(r"(?i)\b(password|passwd|pwd|token|secret|api[_-]?key)=([^\s&;'\"]+)")


def register_secret(value: str | None) -> None:
    """Remember a value that must never be written out (too-short values are ignored)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def redact(text: str) -> str:
    """Return ``text`` with every known secret and secret-looking token masked."""
    if not text:
        return text
    # Cheap substring checks first: large notebook outputs rarely hold any of these.
    out = _PRIVATE_KEY.sub(MASK, text) if "PRIVATE KEY-----" in text else text
    if "://" in out:
        out = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", out)
    if "bearer" in out.lower():
        out = _BEARER.sub(lambda m: f"{m[1]}{MASK}", out)
    out = _KV_SECRET.sub(lambda m: f"{m[1]}={MASK}", out)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def redact_url(url: str) -> str:
    """A URL with its password masked, safe to show or store."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.password is None:
        return redact(url)
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return redact(urlunsplit((parts.scheme, f"{user}:{MASK}@{netloc}", parts.path, parts.query, "")))

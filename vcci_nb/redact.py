"""Keeping secrets out of everything vcci_nb writes or says.

Secrets reach us in URLs (``postgresql://user:pw@host``), in environment variables and in
files named by a profile. Everything that leaves the process (messages, reprs, logs, saved
evidence, notebooks, HTML) goes through :func:`redact` first, which removes every value
registered with :func:`register_secret`, then URL passwords, bearer/basic authorization,
private keys, AWS access key ids, SQL ``PASSWORD '…'`` and anything named like a secret
(``PGPASSWORD=…``, ``"password": "…"``, ``password: …``). Pod logs and ``pg_stat_activity``
text reach evidence, so these forms are what a connection string or a migration leaves there.

Why not a detector such as ``detect-secrets`` (1.5.0): measured on tests/test_redact.py's cases
(tests/bench/bench_redact.py) it found 16 of 18 (it cut a JSON value at an escaped quote and a
SQL password at a doubled quote), it reports a line's secret rather than where it is, and it took
23 to 84 times as long per MiB of notebook-like output as these patterns on this machine.
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
#: The words that make a name secret: ``password``, ``PGPASSWORD``, ``DB_PASSWORD``, ``client_secret``,
#: ``auth_token``, ``api-key``, ``SECRET_KEY`` (a name that *ends* in one; ``max_tokens`` is not one).
_SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "api-key", "access_key")


def _ci(pattern: str) -> str:
    """``password`` → ``[pP][aA]…``: case-insensitive without re.IGNORECASE, which here made the
    patterns two to three times slower per MiB (sre's first-character skip does not apply to it)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in pattern)


_SECRET_NAME = (
    "(?:"
    + "|".join(_ci(w) for w in ("password", "passwd", "pwd", "secret", "token", "api[_-]?key", "access[_-]?key"))
    + ")"
)
#: ``name=value``, ``name: value``, ``"name": "value"``, ``'name' = 'value'`` (env, URL query, YAML, JSON, logs).
#: It starts at the secret word (whatever precedes it stays, ``PG`` in ``PGPASSWORD``), which keeps it
#: fast: a leading ``[\w.-]*`` made every word of a large output a backtracking start.
_KV_SECRET = re.compile(
    rf"""(?x)
    (?P<key>{_SECRET_NAME}["']?\s*[:=]\s*)
    (?P<val>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[^\s&;,'"}}\]]+)
    """
)
#: SQL: ``ALTER ROLE x PASSWORD '…'``, ``CREATE USER x WITH ENCRYPTED PASSWORD '…'`` (quotes doubled inside).
_SQL_PASSWORD = re.compile(rf"(\b{_ci('password')}\s+)('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")")
_SCHEMES = "(?:" + "|".join(_ci(w) for w in ("basic", "bearer", "token", "digest", "negotiate", "apikey")) + ")"
#: ``Authorization: Basic …`` / ``Token …`` / ``Digest …`` (and Bearer, which also has its own pattern).
_AUTHORIZATION = re.compile(
    rf"(\b(?:{_ci('proxy-')})?{_ci('authorization')}[\"']?\s*[:=]\s*[\"']?(?:{_SCHEMES}\s+)?)"
    rf"(?!{_SCHEMES}\b)[A-Za-z0-9._~+/=\-]+"
)
_AWS_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")


def _mask_value(m: re.Match[str]) -> str:
    val = m["val"]
    if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
        return f"{m['key']}{val[0]}{MASK}{val[0]}"
    return f"{m['key']}{MASK}"


def register_secret(value: str | None) -> None:
    """Remember a value that must never be written out (too-short values are ignored)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def redact(text: str) -> str:
    """Return ``text`` with every known secret and secret-looking token masked.

    Registered secrets are replaced first, whole: a pattern that masked only part of one (a
    password holding ``&`` or ``;`` after ``password=``) would leave the rest, which the
    registered value then no longer matches. Then the patterns, each behind a cheap substring
    check, because large notebook outputs rarely hold any of them.
    """
    if not text:
        return text
    out = text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in out:
            out = out.replace(secret, MASK)
    if "PRIVATE KEY-----" in out:
        out = _PRIVATE_KEY.sub(MASK, out)
    if "://" in out:
        out = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", out)
    lower = out.lower()
    if "bearer" in lower:
        out = _BEARER.sub(lambda m: f"{m[1]}{MASK}", out)
    if "authorization" in lower:
        out = _AUTHORIZATION.sub(lambda m: f"{m[1]}{MASK}", out)
    if "password" in lower:
        out = _SQL_PASSWORD.sub(lambda m: f"{m[1]}'{MASK}'", out)
    if any(word in lower for word in _SECRET_WORDS):
        out = _KV_SECRET.sub(_mask_value, out)
    if "AKIA" in out or "ASIA" in out:
        out = _AWS_ACCESS_KEY.sub(MASK, out)
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

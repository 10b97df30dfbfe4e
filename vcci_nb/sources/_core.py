"""What every gathering function shares: timeouts, the status of a failure, and the Evidence.

A gather function builds a DataFrame (``fetch``) and hands it to :func:`collect`, which
- runs it under a hard deadline (the client-side timeouts should fire first; the deadline is
  the backstop for a client that ignores them),
- turns any exception into a status (:func:`classify`), with a message that says what to do,
- redacts every message before it exists outside this module.

Status mapping, in the order checked along the exception's cause chain:
    forbidden    authentication or permission refused (HTTP 401/403, NOPERM, password failed)
    timeout      socket, read or statement timeout, or the hard deadline passed
    unavailable  connection refused, host unknown, TLS failed, nothing listening, a setting that
                 points nowhere (a kube context the kubeconfig lacks), library not installed
    error        anything else (a bug here or a malformed answer)

Each failure also has a *cause*, finer than the status, so that the message, the evidence's
``meta`` and the finding built from it say which one it was and what to change:

    refused      nothing listens at the address (connection refused)
    dns          the host name does not resolve
    tls          the TLS handshake failed (untrusted or wrong certificate, not a TLS server)
    timeout      the server accepted (or was being reached) and never answered in time
    credentials  user, password or token not accepted (which variable holds them is named)
    permission   the identity is known but may not read this
    config       a setting names something that does not exist (:class:`SourceMisconfigured`)
    missing      the server lacks an extension or a library is not installed
    bug          an unexpected failure: only this one says "report it"
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vcci_nb.errors import DeadlineExceeded, SourceMisconfigured, SourceUnavailable
from vcci_nb.evidence import CAUSES, Evidence, Status, Window, utcnow
from vcci_nb.redact import redact

log = logging.getLogger(__name__)

#: Extra seconds the hard deadline allows beyond the client-side timeout.
DEADLINE_GRACE_S = 1.0

FetchResult = pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]


@dataclass(frozen=True)
class Failure:
    status: Status
    detail: str
    #: refused, dns, tls, timeout, credentials, permission, config, missing or bug (see the module doc).
    cause: str = "bug"
    #: What to change, when the exception itself knows better than the generic advice.
    fix: str = ""


_FORBIDDEN_TEXT = re.compile(
    r"(?i)(password authentication failed|permission denied|NOPERM|WRONGPASS|NOAUTH|"
    r"\bforbidden\b|\bunauthorized\b|authentication failed|invalid username-password|not authorized|"
    r"must be superuser|insufficient privilege)"
)
_TIMEOUT_TEXT = re.compile(
    r"(?i)(timed out|timeout expired|canceling statement due to statement timeout|"
    r"lock timeout|read timeout|deadline)"
)
_TLS_TEXT = re.compile(
    r"(?i)(CERTIFICATE_VERIFY_FAILED|certificate verify failed|self[- ]signed certificate|"
    r"WRONG_VERSION_NUMBER|wrong version number|SSL routines|SSLError|\bSSL\b.*handshake|tlsv1 alert|"
    r"hostname .* doesn't match|unable to get local issuer certificate)"
)
_DNS_TEXT = re.compile(
    r"(?i)(name or service not known|nodename nor servname|Temporary failure in name resolution|"
    r"could not translate host name|getaddrinfo failed|No address associated with hostname)"
)
_PERMISSION_TEXT = re.compile(
    r"(?i)(permission denied|NOPERM|\bforbidden\b|must be superuser|insufficient privilege|not authorized)"
)
_REFUSED_TEXT = re.compile(
    r"(?i)(connection refused|Errno 111|name or service not known|nodename nor servname|no route to host|"
    r"network is unreachable|Temporary failure in name resolution|No such file or directory)"
)
_UNAVAILABLE_TEXT = re.compile(
    r"(?i)(connection refused|could not connect|failed to establish a new connection|name or service not known|"
    r"nodename nor servname|no route to host|network is unreachable|connection reset|server closed the connection|"
    r"remaining connection slots|too many clients|Max retries exceeded|No such file or directory|"
    r"Temporary failure in name resolution|Errno 111|Connection aborted)"
)

_FORBIDDEN_NAMES = {
    "AuthenticationError",
    "AuthenticationWrongNumberOfArgsError",
    "NoPermissionError",
    "InsufficientPrivilege",
    "InvalidPassword",
    "InvalidAuthorizationSpecification",
}
_TIMEOUT_NAMES = {
    "TimeoutError",
    "Timeout",
    "ReadTimeout",
    "ConnectTimeout",
    "ReadTimeoutError",
    "ConnectTimeoutError",
    "QueryCanceled",
    "LockNotAvailable",
    "DeadlineExceeded",
    "ConnectionTimeout",
}
_UNAVAILABLE_NAMES = {
    "ConnectionRefusedError",
    "NewConnectionError",
    "gaierror",
    "ModuleNotFoundError",
    "TooManyConnections",
    "ConnectionResetError",
    "BrokenPipeError",
    "SourceUnavailable",
}


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
        # urllib3's MaxRetryError keeps the real reason in .reason
    for e in list(out):
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException) and reason not in out:
            out.append(reason)
    return out


def _http_status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def classify(exc: BaseException) -> Failure:
    """Map an exception from any client library to an Evidence status, a cause and a redacted detail."""
    chain = _chain(exc)
    names = {cls.__name__ for e in chain for cls in type(e).__mro__}
    text = " | ".join(f"{type(e).__name__}: {e}" for e in chain)
    detail = redact(_first_line(str(exc)) or type(exc).__name__)
    for e in chain:
        if isinstance(e, SourceMisconfigured):
            return Failure("unavailable", redact(_first_line(str(e))), e.cause, redact(e.fix))
    if any(isinstance(e, SourceUnavailable) for e in chain):
        return Failure("unavailable", detail, "missing")
    for e in chain:
        code = _http_status(e)
        if code == 401:
            return Failure("forbidden", detail, "credentials")
        if code == 403:
            return Failure("forbidden", detail, "permission")
    if names & _FORBIDDEN_NAMES or _FORBIDDEN_TEXT.search(text):
        permission = "InsufficientPrivilege" in names or "NoPermissionError" in names or _PERMISSION_TEXT.search(text)
        return Failure("forbidden", detail, "permission" if permission else "credentials")
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in chain) or _TLS_TEXT.search(text):
        return Failure("unavailable", detail, "tls")
    if _DNS_TEXT.search(text) or "gaierror" in names:
        return Failure("unavailable", detail, "dns")
    if _REFUSED_TEXT.search(text) and not _TIMEOUT_TEXT.search(text):
        # Checked before timeouts: urllib3 2 makes "connection refused" a subclass of ConnectTimeoutError.
        return Failure("unavailable", detail, "refused")
    if (
        names & _TIMEOUT_NAMES
        or any(isinstance(e, socket.timeout | TimeoutError) for e in chain)
        or _TIMEOUT_TEXT.search(text)
    ):
        return Failure("timeout", detail, "timeout")
    if "ModuleNotFoundError" in names:
        return Failure("unavailable", detail, "missing")
    if (
        names & _UNAVAILABLE_NAMES
        or any(isinstance(e, ConnectionError) for e in chain)
        or _UNAVAILABLE_TEXT.search(text)
    ):
        return Failure("unavailable", detail, "refused" if "refused" in text.lower() else "unreachable")
    return Failure("error", detail, "bug")


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0][:400] if text else ""


#: The variable that points at each source (and holds its credentials) when the caller names none.
DEFAULT_SETTINGS: dict[str, str] = {
    "postgres": "DATABASE_URL (or PGHOST, PGUSER, PGPASSWORD)",
    "redis": "REDIS_URL",
    "prometheus": "PROMETHEUS_URL",
    "alertmanager": "ALERTMANAGER_URL",
    "rabbitmq": "RABBITMQ_URL",
    "kubernetes": "KUBECONFIG",
    "git": "VCCI_GIT_REPO",
}

#: Short names of the causes, for headlines ("kubernetes: TLS failure").
CAUSE_NAMES = CAUSES

#: What to do next, per cause; ``{source}``, ``{target}``, ``{timeout}`` and ``{setting}`` are filled in.
ADVICE: dict[str, str] = {
    "refused": "Connection refused at {target}: nothing listens there. Check that {source} is running and that "
    "{setting} points at the right host and port; `vcci-nb check` tests every source at once.",
    "unreachable": "Nothing answered at {target}. Check that {source} is running and that its address in {setting} "
    "is right; `vcci-nb check` tests every source at once.",
    "dns": "The host name in {setting} does not resolve from here. Check the spelling, or the DNS of this machine.",
    "tls": "The TLS handshake with {target} failed: the server's certificate is not trusted here, does not match "
    "the host, or the server does not speak TLS. Give the CA that signed it (for Kubernetes the cluster's "
    "certificate-authority(-data) in the kubeconfig; otherwise the CA named in {setting}) or fix the URL's scheme.",
    "timeout": "{source} did not answer within {timeout:g} s: the connection was not refused, it hung. It may be "
    "overloaded or wedged: that is itself evidence. Retry with a longer timeout, or look at the system directly.",
    "credentials": "{source} refused our credentials. Check the user and password (or token) in {setting}"
    "{setting_file}.",
    "permission": "{source} accepted who we are but refused the request. Check that the identity in {setting} has "
    "the read grants the runbook lists (pg_monitor, Redis ACL, Kubernetes view role).",
    "config": "Check {setting} and the profile.",
    "missing": "{source} cannot provide this here (an extension or library is missing); the detail says which.",
    "bug": "The call to {source} failed unexpectedly. The detail above says why; if it looks like a bug in "
    "vcci-nb, report it with this evidence file.",
}


def setting_for(profile: Any, connection: str, key: str = "url_env") -> str:
    """The variable the profile reads for ``connection`` (``DATABASE_URL``), for messages; never raises."""
    try:
        from vcci_nb.config import resolve_profile

        value = resolve_profile(profile).connection_env(connection).get(key)
    except Exception:
        value = None
    return str(value) if value else DEFAULT_SETTINGS.get(connection, "")


def failure_advice(source: str, target: str, failure: Failure, timeout: float, setting: str = "") -> str:
    """What to do about ``failure``: the exception's own fix, or the advice for its cause."""
    setting = setting or DEFAULT_SETTINGS.get(source, f"the profile's connections.{source}")
    first_var = setting.split(" ", 1)[0]
    fields = {"source": source, "target": target or source, "timeout": timeout, "setting": setting}
    fields["setting_file"] = f" (or the file {first_var}_FILE names)" if first_var.isupper() else ""
    return redact(failure.fix or ADVICE.get(failure.cause, ADVICE["bug"]).format(**fields))


def failure_message(source: str, target: str, failure: Failure, timeout: float, setting: str = "") -> str:
    advice = failure_advice(source, target, failure, timeout, setting)
    what = CAUSE_NAMES.get(failure.cause, failure.cause)
    return redact(f"{source} {failure.status} ({what}): {failure.detail}. {advice}")


def run_with_deadline(fn: Callable[[], Any], deadline_s: float) -> Any:
    """Run ``fn`` in a daemon thread and give up after ``deadline_s``.

    A thread that is given up on keeps running until its own socket timeout fires; it is a
    daemon so it never holds the process open. This is the backstop behind client timeouts.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="vcci-nb-gather", daemon=True)
    thread.start()
    thread.join(deadline_s)
    if thread.is_alive():
        raise DeadlineExceeded(f"no answer within the hard deadline of {deadline_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def collect(
    name: str,
    source: str,
    query: str,
    fetch: Callable[[], FetchResult],
    *,
    timeout: float,
    target: str = "",
    window: Window | None = None,
    meta: dict[str, Any] | None = None,
    setting: str = "",
) -> Evidence:
    """Call ``fetch`` under a deadline and wrap what happens in an :class:`Evidence`.

    Args:
        name: evidence name, stable across runs (``postgres.connections``).
        source: the system asked (``postgres``, ``kubernetes``...).
        query: the exact query or API call, shown to the engineer and saved (redacted).
        fetch: builds the frame; may return ``(frame, meta)`` to add provenance.
        timeout: the client-side timeout used inside ``fetch``; the hard deadline is a little longer.
        target: a redacted address for messages.
        window: the time window asked about, if any.
        meta: provenance to keep with the evidence.
        setting: the variable (or profile key) that points at the source and holds its credentials,
            named in the advice when the call fails (``DATABASE_URL``).
    """
    started = time.perf_counter()
    collected_at = utcnow()
    extra: dict[str, Any] = dict(meta or {})
    # The evidence name may be changed by whoever stores it; "kind" keeps what it is for analysis.
    extra.setdefault("kind", name)
    if target:
        extra.setdefault("target", redact(target))
    try:
        result = run_with_deadline(fetch, timeout + DEADLINE_GRACE_S)
    except Exception as exc:
        failure = classify(exc)
        elapsed = time.perf_counter() - started
        msg = failure_message(source, redact(target), failure, timeout, setting)
        log.info("%s: %s", name, msg)
        extra["cause"] = failure.cause
        extra["detail"] = failure.detail
        extra["fix"] = failure_advice(source, redact(target), failure, timeout, setting)
        if setting:
            extra.setdefault("setting", setting)
        return Evidence(
            name=name,
            source=source,
            query=query,
            status=failure.status,
            message=msg,
            window=window,
            collected_at=collected_at,
            elapsed_s=elapsed,
            meta=extra,
        )
    frame, more = result if isinstance(result, tuple) else (result, {})
    extra.update(more)
    message = str(extra.pop("message", "")) if "message" in extra else ""
    return Evidence(
        name=name,
        source=source,
        query=query,
        status="ok",
        message=message,
        frame=frame,
        window=window,
        collected_at=collected_at,
        elapsed_s=time.perf_counter() - started,
        meta=extra,
    )


def not_configured(name: str, source: str, what: str, *, query: str = "") -> Evidence:
    """Evidence for a source the environment does not point at (status unavailable, cause not_configured)."""
    return Evidence(
        name=name,
        source=source,
        query=query,
        status="unavailable",
        meta={
            "kind": name,
            "cause": "not_configured",
            "detail": what,
            "fix": 'Set it (for the lab: eval "$(vcci-nb lab env)") and run again.',
        },
        message=f'{source} is not configured: {what}. Set it (for the lab: eval "$(vcci-nb lab env)") and run again.',
    )

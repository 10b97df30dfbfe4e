"""What every gathering function shares: timeouts, the status of a failure, and the Evidence.

A gather function builds a DataFrame (``fetch``) and hands it to :func:`collect`, which
- runs it under a hard deadline (the client-side timeouts should fire first; the deadline is
  the backstop for a client that ignores them),
- turns any exception into a status (:func:`classify`), with a message that says what to do,
- redacts every message before it exists outside this module.

Status mapping, in the order checked along the exception's cause chain:
    forbidden    authentication or permission refused (HTTP 401/403, NOPERM, password failed)
    timeout      socket, read or statement timeout, or the hard deadline passed
    unavailable  connection refused, host unknown, nothing listening, library not installed
    error        anything else (a bug here or a malformed answer)
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vcci_nb.errors import SourceError
from vcci_nb.evidence import Evidence, Status, Window, utcnow
from vcci_nb.redact import redact

log = logging.getLogger(__name__)

#: Extra seconds the hard deadline allows beyond the client-side timeout.
DEADLINE_GRACE_S = 1.0

FetchResult = pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]


class DeadlineExceeded(TimeoutError):
    """The hard deadline passed before the source answered."""


class SourceUnavailable(SourceError):
    """The source answered but cannot provide this data (an extension or library is missing)."""


@dataclass(frozen=True)
class Failure:
    status: Status
    detail: str


_FORBIDDEN_TEXT = re.compile(
    r"(?i)(password authentication failed|permission denied|NOPERM|WRONGPASS|NOAUTH|"
    r"\bforbidden\b|\bunauthorized\b|authentication failed|invalid username-password|not authorized|"
    r"must be superuser|insufficient privilege)"
)
_TIMEOUT_TEXT = re.compile(
    r"(?i)(timed out|timeout expired|canceling statement due to statement timeout|"
    r"lock timeout|read timeout|deadline)"
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
    """Map an exception from any client library to an Evidence status and a redacted detail."""
    chain = _chain(exc)
    names = {cls.__name__ for e in chain for cls in type(e).__mro__}
    text = " | ".join(f"{type(e).__name__}: {e}" for e in chain)
    detail = redact(_first_line(str(exc)) or type(exc).__name__)
    if any(isinstance(e, SourceUnavailable) for e in chain):
        return Failure("unavailable", detail)
    for e in chain:
        code = _http_status(e)
        if code in (401, 403):
            return Failure("forbidden", detail)
    if names & _FORBIDDEN_NAMES or _FORBIDDEN_TEXT.search(text):
        return Failure("forbidden", detail)
    if _REFUSED_TEXT.search(text) and not _TIMEOUT_TEXT.search(text):
        # Checked before timeouts: urllib3 2 makes "connection refused" a subclass of ConnectTimeoutError.
        return Failure("unavailable", detail)
    if (
        names & _TIMEOUT_NAMES
        or any(isinstance(e, socket.timeout | TimeoutError) for e in chain)
        or _TIMEOUT_TEXT.search(text)
    ):
        return Failure("timeout", detail)
    if (
        names & _UNAVAILABLE_NAMES
        or any(isinstance(e, ConnectionError) for e in chain)
        or _UNAVAILABLE_TEXT.search(text)
    ):
        return Failure("unavailable", detail)
    return Failure("error", detail)


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0][:400] if text else ""


#: What to do next, per status; ``{source}``, ``{target}``, ``{timeout}`` are filled in.
ADVICE: dict[Status, str] = {
    "unavailable": "Nothing answered at {target}. Check that {source} is running and that its address "
    "in the environment is right; `vcci-nb check` tests every source at once.",
    "forbidden": "{source} refused our credentials or role. Check the user and password in the environment "
    "and that the diagnostics identity has the read grants the runbook lists (pg_monitor, Redis ACL, "
    "Kubernetes view role).",
    "timeout": "{source} did not answer within {timeout:g} s. It may be overloaded or hung: that is itself "
    "evidence. Retry with a longer timeout, or look at the system directly.",
    "error": "The call to {source} failed unexpectedly. The detail above says why; if it looks like a bug in "
    "vcci-nb, report it with this evidence file.",
}


def failure_message(source: str, target: str, failure: Failure, timeout: float) -> str:
    advice = ADVICE[failure.status].format(source=source, target=target or source, timeout=timeout)
    return redact(f"{source} {failure.status}: {failure.detail}. {advice}")


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
        msg = failure_message(source, redact(target), failure, timeout)
        log.info("%s: %s", name, msg)
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
    """Evidence for a source the environment does not point at (status unavailable)."""
    return Evidence(
        name=name,
        source=source,
        query=query,
        status="unavailable",
        meta={"kind": name},
        message=f'{source} is not configured: {what}. Set it (for the lab: eval "$(vcci-nb lab env)") and run again.',
    )

"""HTTP delivery with the providers' own retry rules.

A notification that is sent twice is a real cost (two pages, two Slack posts that confuse the
people reading them), and one that is never sent is a worse one. So a failed call is repeated
only when the provider says repeating it is safe:

================================  =====================================================
outcome                           retried?
================================  =====================================================
connection refused / DNS failure  yes: the request never left, nothing can have happened
429 (and Statuspage's 420)        yes, after ``Retry-After``: the provider rejected the call
                                  without acting on it; a wait longer than ``max_wait_s``
                                  is not slept through, it is reported
5xx, read timeout, reset          only if the call is idempotent (``RetryRule.idempotent``):
                                  the provider may have acted before failing. PagerDuty
                                  events carry a dedup key and Statuspage PATCHes set a
                                  state, so they are; a Slack post or a Statuspage create
                                  is not
other 4xx                         never: the request is wrong and will stay wrong
================================  =====================================================
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from vcci_nb.redact import redact

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryRule:
    """When a failed call may be repeated (see the module docstring for the table)."""

    idempotent: bool = False
    rejected_statuses: frozenset[int] = frozenset({429})
    max_attempts: int = 3
    max_wait_s: float = 60.0
    backoff_s: float = 1.0


@dataclass
class HttpOutcome:
    """What one delivery over HTTP came to, after any retries. Holds no secret."""

    ok: bool
    status_code: int | None = None
    body: Any = None
    error: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body(resp: requests.Response) -> Any:
    text = resp.text[:2000]
    try:
        return json.loads(text)
    except ValueError:
        return redact(text)


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the provider (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        return (
            "NewConnectionError" in text or "Failed to establish a new connection" in text or "Name or service" in text
        )
    return False


def call(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    rule: RetryRule,
    timeout: float = 10.0,
    sleep: Sleep = time.sleep,
    provider: str = "provider",
) -> HttpOutcome:
    """Make one HTTP call, repeating it only as ``rule`` allows. Never raises for HTTP failures."""
    outcome = HttpOutcome(ok=False)
    for attempt in range(1, rule.max_attempts + 1):
        record: dict[str, Any] = {"attempt": attempt, "at": datetime.now(UTC).isoformat(timespec="milliseconds")}
        outcome.attempts.append(record)
        wait: float | None = None
        try:
            resp = requests.request(method, url, json=json_body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            safe = _never_sent(exc)
            kind = "connection refused" if safe else type(exc).__name__
            record["error"] = redact(kind)
            outcome.error = redact(
                f"{provider} could not be reached ({kind}): {exc}"
                if safe
                else f"{provider} call failed mid-way ({kind}); it may or may not have been delivered"
            )
            outcome.status_code = None
            if safe or rule.idempotent:
                wait = rule.backoff_s * attempt
            else:
                outcome.error += "; not retried because repeating it could deliver it twice"
                return outcome
        else:
            outcome.status_code = resp.status_code
            outcome.body = _body(resp)
            record["status_code"] = resp.status_code
            if 200 <= resp.status_code < 300:
                outcome.ok = True
                outcome.error = ""
                return outcome
            if resp.status_code in rule.rejected_statuses:
                wait = parse_retry_after(resp.headers.get("Retry-After"))
                if wait is None:
                    wait = rule.backoff_s * attempt
                record["retry_after_s"] = wait
                outcome.error = f"{provider} rate-limited the call (HTTP {resp.status_code}, Retry-After {wait:g} s)"
                if wait > rule.max_wait_s:
                    outcome.error += f"; that is longer than the {rule.max_wait_s:g} s we wait, so send again later"
                    return outcome
            elif resp.status_code >= 500:
                outcome.error = f"{provider} answered HTTP {resp.status_code}: {redact(str(outcome.body))[:300]}"
                if not rule.idempotent:
                    outcome.error += "; not retried because the provider may already have acted on it"
                    return outcome
                wait = rule.backoff_s * attempt
            else:
                outcome.error = (
                    f"{provider} refused the call (HTTP {resp.status_code}): {redact(str(outcome.body))[:300]}; "
                    "check the channel's settings and credentials"
                )
                return outcome
        if attempt < rule.max_attempts and wait is not None:
            record["waited_s"] = wait
            log.info("%s: attempt %d failed (%s); retrying in %.1f s", provider, attempt, outcome.error, wait)
            sleep(wait)
    outcome.error += f" (gave up after {rule.max_attempts} attempts)"
    return outcome

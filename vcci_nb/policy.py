"""Incident time and policy, written once: times, severity and finding levels, update cadence.

A leaf: it imports only the standard library and :mod:`vcci_nb.errors`, so every layer (sources,
analysis, the record, notifications, the alert back end) can use it without importing upward.

- Times. The record, alerts and notebooks speak UTC ISO-8601. :func:`parse_time` reads one
  (``Z`` or an offset; a naive time is taken as UTC) and says clearly what is wrong with a bad one;
  :func:`maybe_time` is its lenient twin for reading stored records (a missing or unreadable
  value is ``None``); :func:`iso` writes one, with milliseconds so that timeline entries written
  in the same second still sort in order. :func:`window_bound` is the one grammar a window
  bound is written in (a notebook's ``window_start``/``window_end``, the sources' windows).
- Severity. ``P0``..``P3`` (:data:`SEVERITIES`, most severe first) and the finding levels
  ``critical``..``info`` (:data:`LEVELS`), each with its rank.
- Names. The DNS-1123 grammar Kubernetes names follow (:func:`is_dns1123_label`,
  :func:`is_dns1123_subdomain`), the one validator a profile, a route and an action check with.
- Cadence. The default minutes between stakeholder updates per severity (why 30 minutes for P0
  and P1 is explained in :mod:`vcci_nb.escalation`), the first update's delay, and how sent
  updates count as rounds. A profile may change the cadence: :meth:`vcci_nb.config.Profile.cadence_minutes`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from vcci_nb.errors import ParameterError, VcciNbError

__all__ = [
    "ALERT_LEVELS",
    "CADENCE_MINUTES",
    "DEFAULT_ALERT_LEVEL",
    "DNS1123_LABEL",
    "DNS1123_SUBDOMAIN",
    "INITIAL_UPDATE_MINUTES",
    "LEVELS",
    "LEVEL_ORDER",
    "RESPONSE_MINUTES",
    "SEVERITIES",
    "UPDATE_TEMPLATES",
    "WINDOW_LEAD_MINUTES",
    "human_minutes",
    "incident_start",
    "incident_window",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "iso",
    "last_sent_update",
    "level_rank",
    "maybe_time",
    "parse_time",
    "rfc3339",
    "severity_rank",
    "update_rounds",
    "window_bound",
]

# --------------------------------------------------------------------------------------------
# Kubernetes names (one grammar, used by profiles, routes, sources and actions)

#: A DNS-1123 label (namespaces, services, deployments, containers): at most 63 characters.
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: A DNS-1123 subdomain (pods, configmaps, most object names): dot-separated labels, at most 253.
DNS1123_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_dns1123_label(value: object) -> bool:
    """A valid Kubernetes label-style name (a namespace, for instance)."""
    return isinstance(value, str) and bool(DNS1123_LABEL.match(value))


def is_dns1123_subdomain(value: object) -> bool:
    """A valid Kubernetes object name (a pod, a deployment, a PVC): each dot-separated part at most 63."""
    return (
        isinstance(value, str)
        and bool(DNS1123_SUBDOMAIN.match(value))
        and all(len(part) <= 63 for part in value.split("."))
    )


# --------------------------------------------------------------------------------------------
# Severity and finding levels

#: Incident severities, most severe first (seed "Severity Classification").
SEVERITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3")

#: Finding levels, most severe first.
LEVELS: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
#: Each finding level's rank (0 is the most severe).
LEVEL_ORDER: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}


def severity_rank(severity: str) -> int:
    """0 for P0 … 3 for P3; an unknown severity ranks after them all."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def level_rank(level: str) -> int:
    """0 for ``critical`` … 4 for ``info``; an unknown level ranks 9 (after them all)."""
    return LEVEL_ORDER.get(level, 9)


#: A firing alert's ``severity`` label to the incident severity it implies, when
#: ``parameters/routes.yaml`` has no ``severity:`` mapping. ``critical`` is P1, not P0: the seed
#: keeps P0 for an outage, a security incident or data at risk, which a rule states with
#: ``severity: outage|security|data_loss``.
ALERT_LEVELS: dict[str, str] = {
    "outage": "P0",
    "security": "P0",
    "data_loss": "P0",
    "critical": "P1",
    "high": "P1",
    "error": "P1",
    "medium": "P2",
    "warning": "P2",
    "low": "P3",
    "info": "P3",
}
#: The severity of an alert whose label the mapping does not list.
DEFAULT_ALERT_LEVEL = "P2"


# --------------------------------------------------------------------------------------------
# Cadence and response times

#: Minutes between stakeholder updates per severity (None: as needed). See :mod:`vcci_nb.escalation`.
CADENCE_MINUTES: dict[str, float | None] = {"P0": 30, "P1": 30, "P2": 1440, "P3": None}
#: The first stakeholder message is due this long after detection (seed Phase 2 "5-10 minutes").
INITIAL_UPDATE_MINUTES: float = 10
#: Seed "Severity Classification" response times (minutes), used to judge acknowledgement.
RESPONSE_MINUTES: dict[str, float] = {"P0": 15, "P1": 30, "P2": 120, "P3": 24 * 60}
#: Template names whose sending counts as a stakeholder update for the cadence.
UPDATE_TEMPLATES: frozenset[str] = frozenset({"initial", "update", "resolution", "degraded"})


def human_minutes(minutes: float) -> str:
    """``95`` → ``1 h 35 min``; the form the seed's messages use."""
    total = max(0, round(minutes))
    hours, mins = divmod(total, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    if hours:
        return f"{hours} hour" + ("s" if hours > 1 else "")
    return f"{mins} minute" + ("s" if mins != 1 else "")


def incident_start(data: Mapping[str, Any]) -> datetime:
    """When the incident began as far as the record knows: first alert, detection or opening."""
    times = [maybe_time(data.get("detected_at")), maybe_time(data.get("created_at"))]
    for alert in data.get("alerts") or []:
        times.append(maybe_time(alert.get("startsAt") or alert.get("starts_at")))
    found = [t for t in times if t is not None]
    return min(found) if found else datetime.now(UTC)


#: Minutes an incident's window starts before its earliest alert (``incident.window_lead_minutes``
#: in a profile): a fault is often under way well before the rule's ``for`` lets its alert fire.
WINDOW_LEAD_MINUTES: float = 30.0
#: The longest window a notebook accepts (the notebook's own check).
MAX_WINDOW = timedelta(days=7)


def incident_window(
    data: Mapping[str, Any], *, lead_minutes: float = WINDOW_LEAD_MINUTES, now: datetime | None = None
) -> tuple[datetime, datetime, str]:
    """The incident's own window: ``(start, end, why)``, whatever the clock says when it is asked.

    Start: ``lead_minutes`` before the earliest alert ``startsAt`` (else detection, else opening).
    End: when it resolved (or closed), else now. A run made hours later therefore looks at the
    incident, not at the last hour. ``why`` says where each bound came from, for the timeline.
    """
    now = _utc(now or datetime.now(UTC))
    starts = [t for a in data.get("alerts") or [] if (t := maybe_time(a.get("startsAt") or a.get("starts_at")))]
    if starts:
        first, source = min(starts), "the earliest alert's startsAt"
    elif (t := maybe_time(data.get("detected_at")) or maybe_time(data.get("created_at"))) is not None:
        first, source = t, "detection"
    else:
        first, source = now, "now"
    start = first - timedelta(minutes=max(0.0, float(lead_minutes)))
    resolved = maybe_time(data.get("resolved_at")) or maybe_time(data.get("closed_at"))
    end, till = (resolved, "its resolution") if resolved is not None else (now, "now (still open)")
    if end <= start:
        end, till = now, "now"
    if end - start > MAX_WINDOW:
        start = end - MAX_WINDOW
        source += f", clipped to the last {MAX_WINDOW.days} days"
    why = f"{lead_minutes:g} min before {source} ({iso(first)}) to {till}"
    return start, end, why


def last_sent_update(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The newest notification that really went out as a stakeholder update (dry runs don't count)."""
    sent = [
        n
        for n in data.get("notifications") or []
        if n.get("status") == "sent" and n.get("template") in UPDATE_TEMPLATES
    ]
    return max(sent, key=lambda n: n.get("at") or "") if sent else None


def update_rounds(data: Mapping[str, Any], templates: frozenset[str] | set[str] = UPDATE_TEMPLATES) -> list[datetime]:
    """Times of the updates really sent; one update on several channels (within 2 min) counts once."""
    times = sorted(
        t
        for n in data.get("notifications") or []
        if n.get("status") == "sent" and n.get("template") in templates and (t := maybe_time(n.get("at"))) is not None
    )
    rounds: list[datetime] = []
    for t in times:
        if not rounds or (t - rounds[-1]).total_seconds() > 120:
            rounds.append(t)
    return rounds


# --------------------------------------------------------------------------------------------
# Times


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def parse_time(value: str | datetime, *, name: str = "", error: type[VcciNbError] = ParameterError) -> datetime:
    """An ISO-8601 time (``Z``, an offset, or naive meaning UTC) as an aware UTC datetime.

    Bad input raises ``error`` (a :class:`~vcci_nb.errors.VcciNbError`) naming ``name`` and the form
    to use.
    """
    if isinstance(value, datetime):
        return _utc(value)
    text = str(value).strip()
    try:
        parsed = _fromiso(text)
    except ValueError:
        what = f"{name}={text!r}" if name else repr(text)
        raise error(f"{what} is not an ISO-8601 time; use e.g. 2026-01-06T14:05:00Z.") from None
    return _utc(parsed)


_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d{1,9})?(?P<tz>[Zz]|[+-]\d{2}:\d{2})$"
)


def rfc3339(text: str, *, name: str, error: type[VcciNbError] = ParameterError) -> datetime:
    """A strict RFC 3339 time (a zone is required; up to nanoseconds, cut to microseconds) as aware UTC.

    What machines send (Alertmanager, Kubernetes); :func:`parse_time` is the lenient reader for
    people. Bad input raises ``error`` naming ``name``: not RFC 3339, not a real date, or outside
    the calendar once taken to UTC.
    """
    match = _RFC3339.match(text)
    if not match:
        raise error(f"{name} is {text[:40]!r}, not an RFC 3339 timestamp such as 2024-01-31T12:00:00Z")
    frac = (match["frac"] or ".0")[1:7].ljust(6, "0")
    tz = "+00:00" if match["tz"] in ("Z", "z") else match["tz"]
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{tz}")
    except ValueError as exc:
        raise error(f"{name} is {text[:40]!r}, which is not a real date and time: {exc}") from exc
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:30:00+01:00 is before year 1 in UTC
        raise error(
            f"{name} is {text[:40]!r}, which is outside the calendar (years 1 to 9999) once taken to UTC"
        ) from exc


def _fromiso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


def maybe_time(value: object) -> datetime | None:
    """A stored time read leniently: None when it is missing, not text, or not ISO-8601."""
    if isinstance(value, datetime):
        return _utc(value)
    if not value or not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except VcciNbError:
        return None


def iso(at: datetime | str | None = None, *, error: type[VcciNbError] = ParameterError) -> str:
    """An ISO-8601 UTC timestamp with milliseconds (``2026-01-06T14:05:00.123Z``); None is now."""
    if isinstance(at, str):
        at = parse_time(at, error=error)
    if at is None:
        at = datetime.now(UTC)
    return _utc(at).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_RELATIVE = re.compile(r"^\s*(?:now)?\s*(?:(?P<sign>[-+])\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[smhd]))?\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def window_bound(value: str | datetime | float | None, now: datetime, *, name: str = "time") -> datetime | None:
    """Read a window bound: ``""``/None (unset), a datetime, ISO-8601, ``now``, ``now-2h``, ``-30m``,
    ``now+1h``, or Unix seconds.

    Naive times are taken as UTC, because alerts and the record speak UTC. Bad input raises
    :class:`~vcci_nb.errors.ParameterError` naming ``name`` and the forms it takes.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=UTC)
    text = str(value).strip()
    if not text:
        return None
    rel = _RELATIVE.match(text)
    if rel and (text.lower().startswith("now") or rel["sign"]):
        if not rel["sign"]:
            return now
        delta = timedelta(seconds=float(rel["num"]) * _UNIT_SECONDS[rel["unit"].lower()])
        return now - delta if rel["sign"] == "-" else now + delta
    try:
        parsed = _fromiso(text)
    except ValueError:
        raise ParameterError(
            f"{name}={text!r} is not a time. Use ISO-8601 in UTC (2026-01-06T14:30:00Z), "
            "'now', or a time relative to now such as 'now-2h' or '-30m'."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

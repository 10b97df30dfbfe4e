"""Alertmanager's webhook payload (version 4), parsed strictly.

Alertmanager does not retry a 4xx, so everything that is wrong with a payload must be found
here, before it is persisted, and reported as a :class:`PayloadError` whose message names the
field and the problem; the receiver turns that into a 400. Anything this module accepts is safe
to store and to route: strings hold no NUL, label names are Prometheus label names, timestamps
are RFC 3339 and are normalised to UTC so that the deduplication key (fingerprint, startsAt) is
the same whichever Alertmanager of an HA pair sent it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from vcci_nb.errors import VcciNbError
from vcci_nb.policy import rfc3339

#: Alertmanager's "no end time" (Go's zero time.Time).
ZERO_TIME = "0001-01-01T00:00:00Z"

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{1,64}$")
_STATUSES = ("firing", "resolved")

#: Bounds that keep one payload from costing the receiver more than a normal one.
MAX_ALERTS = 10_000
MAX_STRING = 16_384
MAX_LABELS = 256


class PayloadError(VcciNbError):
    """The webhook body is not a valid Alertmanager version 4 payload (answered with 400)."""


@dataclass(frozen=True)
class Alert:
    """One alert of a notification, as Alertmanager sent it (times normalised to UTC)."""

    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str | None
    generator_url: str
    fingerprint: str

    @property
    def key(self) -> tuple[str, str]:
        """The deduplication key: the same alert episode has the same fingerprint and start."""
        return (self.fingerprint, self.starts_at)

    @property
    def name(self) -> str:
        return self.labels.get("alertname") or "unnamed alert"

    def to_dict(self) -> dict[str, Any]:
        """The alert in Alertmanager's own field names, for the incident record."""
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": self.starts_at,
            "endsAt": self.ends_at,
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class Notification:
    """A whole webhook notification: one alert group at one moment."""

    receiver: str
    status: str
    group_key: str
    alerts: tuple[Alert, ...]
    group_labels: dict[str, str] = field(default_factory=dict)
    common_labels: dict[str, str] = field(default_factory=dict)
    common_annotations: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    truncated_alerts: int = 0


def _reject_constant(name: str) -> Any:
    raise PayloadError(f"the body contains {name}, which is not valid JSON")


def _string(value: Any, where: str, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise PayloadError(f"{where} contains a NUL character")
    if len(value) > MAX_STRING:
        raise PayloadError(f"{where} is longer than {MAX_STRING} characters")
    if not allow_empty and not value:
        raise PayloadError(f"{where} must not be empty")
    return value


def _labels(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object of strings, got {type(value).__name__}")
    if len(value) > MAX_LABELS:
        raise PayloadError(f"{where} has more than {MAX_LABELS} entries")
    out: dict[str, str] = {}
    for key, item in value.items():
        name = _string(key, f"a name in {where}")
        if not _LABEL_NAME.match(name):
            raise PayloadError(f"{where} has the name {name[:64]!r}, which is not a valid label name")
        out[name] = _string(item, f"{where}.{name}")
    return out


def parse_time(value: Any, where: str, *, zero_is_none: bool = False) -> str | None:
    """Validate an RFC 3339 timestamp and return it as UTC ISO-8601 with microseconds."""
    text = _string(value, where)
    if zero_is_none and text.startswith("0001-01-01T00:00:00"):
        return None
    utc = rfc3339(text, name=where, error=PayloadError)  # the one strict grammar (vcci_nb.policy)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _alert(value: Any, index: int) -> Alert:
    where = f"alerts[{index}]"
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object, got {type(value).__name__}")
    for name in ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"):
        if name not in value:
            raise PayloadError(f"{where} has no field {name!r}")
    status = _string(value["status"], f"{where}.status")
    if status not in _STATUSES:
        raise PayloadError(f"{where}.status is {status[:40]!r}; expected 'firing' or 'resolved'")
    fingerprint = _string(value["fingerprint"], f"{where}.fingerprint")
    if not _FINGERPRINT.match(fingerprint):
        raise PayloadError(f"{where}.fingerprint is {fingerprint[:80]!r}; expected Alertmanager's hex fingerprint")
    starts_at = parse_time(value["startsAt"], f"{where}.startsAt")
    assert starts_at is not None
    return Alert(
        status=status,
        labels=_labels(value["labels"], f"{where}.labels"),
        annotations=_labels(value["annotations"], f"{where}.annotations"),
        starts_at=starts_at,
        ends_at=parse_time(value["endsAt"], f"{where}.endsAt", zero_is_none=True),
        generator_url=_string(value["generatorURL"], f"{where}.generatorURL"),
        fingerprint=fingerprint.lower(),
    )


def parse_notification(body: bytes) -> Notification:
    """Parse and validate a webhook body; raise PayloadError naming the first problem found."""
    if b"\x00" in body:
        raise PayloadError("the body contains a NUL byte")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the body is not UTF-8 (byte {exc.start})") from exc
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except RecursionError as exc:
        raise PayloadError("the body nests too deeply to be an Alertmanager payload") from exc
    if not isinstance(data, dict):
        raise PayloadError(f"the body must be a JSON object, got {type(data).__name__}")
    for name in ("version", "groupKey", "status", "receiver", "alerts"):
        if name not in data:
            raise PayloadError(f"the payload has no field {name!r}; is this an Alertmanager webhook?")
    version = data["version"]
    if version != "4":
        raise PayloadError(f"version is {str(version)[:20]!r}; this receiver speaks Alertmanager webhook version '4'")
    status = _string(data["status"], "status")
    if status not in _STATUSES:
        raise PayloadError(f"status is {status[:40]!r}; expected 'firing' or 'resolved'")
    alerts_raw = data["alerts"]
    if not isinstance(alerts_raw, list):
        raise PayloadError(f"alerts must be a list, got {type(alerts_raw).__name__}")
    if not alerts_raw:
        raise PayloadError("alerts is empty; Alertmanager never sends a notification without alerts")
    if len(alerts_raw) > MAX_ALERTS:
        raise PayloadError(f"alerts has {len(alerts_raw)} entries, more than {MAX_ALERTS}; set max_alerts lower")
    truncated = data.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise PayloadError("truncatedAlerts must be a non-negative integer")
    return Notification(
        receiver=_string(data["receiver"], "receiver"),
        status=status,
        group_key=_string(data["groupKey"], "groupKey", allow_empty=False),
        alerts=tuple(_alert(item, i) for i, item in enumerate(alerts_raw)),
        group_labels=_labels(data.get("groupLabels", {}), "groupLabels"),
        common_labels=_labels(data.get("commonLabels", {}), "commonLabels"),
        common_annotations=_labels(data.get("commonAnnotations", {}), "commonAnnotations"),
        external_url=_string(data.get("externalURL", ""), "externalURL"),
        truncated_alerts=truncated,
    )

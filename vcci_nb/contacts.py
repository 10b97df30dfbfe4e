"""Who to call and where to look: the seed's *Emergency Contacts* and *Useful Links*, from the profile.

The profile's ``contacts:`` holds the on-call channel and rota, the phone hotline and the emergency
contacts; ``links:`` the dashboards and tools (Grafana, Kibana, PagerDuty, the status page, the
runbooks). Names, channels and public numbers only: a link or contact that looks like it carries a
credential (a password in a URL, a ``token=`` or ``key=`` in a query string) is refused with a
:class:`ConfigError` that says which entry.

A link may take the incident's window and names, so that it opens on the right time range::

    links:
      - {name: Grafana (VCCI API), url: "https://grafana.example.com/d/vcci-api?from={from_ms}&to={to_ms}&var-namespace={namespace}"}

``{from_ms}``/``{to_ms}`` are epoch milliseconds (Grafana), ``{from}``/``{to}`` ISO-8601 UTC
(Kibana), ``{namespace}`` and ``{incident_id}`` what they say. ``to`` of an incident still open is
``now`` (Grafana and Kibana read it as the live edge).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from vcci_nb.config import ProfileLike, resolve_profile
from vcci_nb.errors import ConfigError

_SECRET_QUERY = re.compile(r"(?i)^(token|access_token|api_key|apikey|key|secret|password|passwd|pwd|sig|signature)$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
PLACEHOLDERS = ("from_ms", "to_ms", "from", "to", "namespace", "incident_id")


@dataclass(frozen=True)
class Link:
    name: str
    url: str
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "note": self.note}


def _check_url(where: str, url: str) -> None:
    probe = _PLACEHOLDER.sub("x", url)
    try:
        parts = urlsplit(probe)
    except ValueError as exc:
        raise ConfigError(f"{where}: {url!r} is not a URL") from exc
    if parts.scheme not in ("http", "https", "tel", "mailto", "slack"):
        raise ConfigError(f"{where}: {url!r} must start with https:// (or tel:, mailto:)")
    if parts.password or (parts.username and parts.scheme in ("http", "https")):
        raise ConfigError(f"{where}: {url!r} has a user or password in it; profiles hold no secrets")
    for key, _ in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_QUERY.match(key):
            raise ConfigError(f"{where}: {url!r} carries {key}= in its query; profiles hold no secrets")
    unknown = set(_PLACEHOLDER.findall(url)) - set(PLACEHOLDERS)
    if unknown:
        raise ConfigError(f"{where}: unknown placeholder(s) {sorted(unknown)} in {url!r}; use {list(PLACEHOLDERS)}")


def link_templates(profile: ProfileLike = None) -> list[Link]:
    """The profile's ``links:`` as given (placeholders not filled), checked for secrets."""
    prof = resolve_profile(profile)
    raw = prof.get("links") or []
    if not isinstance(raw, list):
        raise ConfigError(f"profile {prof.name!r}: links must be a list of {{name, url}}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("name") or not item.get("url"):
            raise ConfigError(f"profile {prof.name!r}: links[{i}] needs a name and a url")
        _check_url(f"profile {prof.name!r} links[{i}] ({item['name']})", str(item["url"]))
        out.append(Link(str(item["name"]), str(item["url"]), str(item.get("note") or "")))
    return out


def _ms(t: datetime) -> str:
    return str(int(t.timestamp() * 1000))


def fill(url: str, *, start: datetime | None, end: datetime | None, namespace: str = "", incident_id: str = "") -> str:
    """A link template with the window and names filled in (values URL-quoted)."""
    values = {
        "from_ms": _ms(start) if start else "now-1h",
        "to_ms": _ms(end) if end else "now",
        "from": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if start else "now-1h",
        "to": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if end else "now",
        "namespace": namespace,
        "incident_id": incident_id,
    }
    return _PLACEHOLDER.sub(lambda m: quote(values.get(m.group(1), m.group(0)), safe="-:"), url)


def links(
    profile: ProfileLike = None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    namespace: str | None = None,
    incident_id: str = "",
) -> list[Link]:
    """The profile's links opened on the incident window (``end`` None: live, ``now``)."""
    prof = resolve_profile(profile)
    ns = namespace or str(prof.get("kubernetes.namespace") or "")
    return [
        Link(ln.name, fill(ln.url, start=start, end=end, namespace=ns, incident_id=incident_id), ln.note)
        for ln in link_templates(prof)
    ]


def contacts(profile: ProfileLike = None) -> dict[str, Any]:
    """``{on_call, rota, hotline, emergency}`` from the profile's ``contacts:``, checked for secrets."""
    prof = resolve_profile(profile)
    raw = prof.get("contacts") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"profile {prof.name!r}: contacts must be a mapping (on_call, rota, hotline, emergency)")
    emergency = raw.get("emergency") or []
    if not isinstance(emergency, list) or not all(isinstance(c, dict) and (c.get("name") or c.get("role"))
                                                  for c in emergency):  # fmt: skip
        raise ConfigError(f"profile {prof.name!r}: contacts.emergency must be a list of {{role, name, phone, ...}}")
    for i, c in enumerate(emergency):
        for key in ("url",):
            if c.get(key):
                _check_url(f"profile {prof.name!r} contacts.emergency[{i}]", str(c[key]))
    rota = raw.get("rota") or {}
    if isinstance(rota, dict) and rota.get("url"):
        _check_url(f"profile {prof.name!r} contacts.rota", str(rota["url"]))
    return {
        "on_call": dict(raw.get("on_call") or {}),
        "rota": dict(rota) if isinstance(rota, dict) else {"name": str(rota)},
        "hotline": str(raw.get("hotline") or ""),
        "emergency": [dict(c) for c in emergency],
    }


def for_record(
    profile: ProfileLike, *, start: datetime | None, end: datetime | None, namespace: str | None, incident_id: str
) -> dict[str, Any]:
    """What the record keeps (``record.json``'s ``contacts``): contacts, link templates and links on the window."""
    prof = resolve_profile(profile)
    return {
        **contacts(prof),
        "links": [
            ln.to_dict() for ln in links(prof, start=start, end=end, namespace=namespace, incident_id=incident_id)
        ],
        "link_templates": [ln.to_dict() for ln in link_templates(prof)],
        "namespace": namespace or str(prof.get("kubernetes.namespace") or ""),
    }


def template_vars(
    profile: ProfileLike, *, start: datetime | None, end: datetime | None, incident_id: str
) -> dict[str, Any]:
    """Variables for message templates: ``hotline``, ``on_call``, ``rota``, ``emergency``, ``links``."""
    prof = resolve_profile(profile)
    c = contacts(prof)
    return {
        "hotline": c["hotline"],
        "on_call": c["on_call"],
        "rota": c["rota"],
        "emergency": c["emergency"],
        "links": [ln.to_dict() for ln in links(prof, start=start, end=end, incident_id=incident_id)],
    }


def describe(c: dict[str, str]) -> str:
    """One line for a contact: ``Engineering Manager: Dana Reyes · +1-555-0142 · @engineering-manager``."""
    parts = [c.get("role") or "", c.get("name") or ""]
    head = ": ".join(p for p in parts if p)
    rest = [str(c[k]) for k in ("phone", "slack", "email", "pagerduty", "url") if c.get(k)]
    return " · ".join([head, *rest])


def text(profile: ProfileLike = None, *, start: datetime | None = None, end: datetime | None = None,
         incident_id: str = "") -> str:  # fmt: skip
    """Plain text for the CLI and chat: on-call, hotline, emergency contacts, links on the window."""
    c = contacts(profile)
    lines = []
    oc = c["on_call"]
    if oc:
        lines.append("On call: " + " · ".join(str(v) for v in oc.values() if v))
    if c["rota"]:
        lines.append("Rota: " + " · ".join(str(v) for v in c["rota"].values() if v))
    if c["hotline"]:
        lines.append(f"Hotline (24/7): {c['hotline']}")
    for e in c["emergency"]:
        lines.append("  " + describe(e))
    for ln in links(profile, start=start, end=end, incident_id=incident_id):
        lines.append(f"{ln.name}: {ln.url}")
    return "\n".join(lines)

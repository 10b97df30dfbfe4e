"""What the ingest steps pass each other, and the small helpers they share."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_nb.alerts.payload import Alert, Notification
from vcci_nb.alerts.routing import Routes, RunPlan
from vcci_nb.alerts.store import Store
from vcci_nb.record import utc_iso

ACTOR = "vcci-nb serve"
_ALERTNAME_IN_KEY = re.compile(r'alertname="((?:[^"\\]|\\.)*)"')
#: The group states in which a group still counts as firing in its incident.
ACTIVE_GROUP_STATES = ("open", "opening", "joining")


@dataclass(frozen=True)
class IngestContext:
    """What every step works with: the state database, the routes, the records' folder, the clock."""

    store: Store
    routes: Routes
    outputs: Path | None
    clock: Callable[[], float] = time.time


def event(kind: str, summary: str, data: dict[str, Any] | None, actor: str = ACTOR) -> dict[str, Any]:
    return {"at": utc_iso(), "kind": kind, "actor": actor, "summary": summary, "data": data}


def alert_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("fingerprint")), str(entry.get("startsAt")), str(entry.get("status")))


def group_name(group_key: str, labels: dict[str, str] | None = None) -> str:
    """A short name for an alert group: its alertname, else its group key."""
    if labels and labels.get("alertname"):
        return labels["alertname"]
    found = _ALERTNAME_IN_KEY.search(group_key)
    return found.group(1) if found else group_key[:120]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def alert_title(note: Notification, firing: list[Alert]) -> str:
    """An incident's title from its first alerts: ``name: summary``, one line, never empty.

    An alert without an ``alertname`` (or with an empty one) and without a summary is named by
    its labels (``alert severity=critical, namespace=prod``), so that the record can be opened.
    """
    first = firing[0]
    name = _one_line(note.common_labels.get("alertname") or first.labels.get("alertname") or "")
    summary = _one_line(note.common_annotations.get("summary") or first.annotations.get("summary") or "")
    where = _one_line(first.labels.get("service") or first.labels.get("namespace") or "")
    if not name:
        labels = {**note.common_labels, **first.labels}
        shown = ", ".join(f"{k}={_one_line(v)}" for k, v in sorted(labels.items()) if _one_line(v))
        name = f"alert {shown}" if shown else f"alert {first.fingerprint}"
        where = ""
    title = f"{name}: {summary}" if summary else (f"{name} ({where})" if where else name)
    return title[:200]


def has_event(d: dict[str, Any], marker: dict[str, Any]) -> bool:
    """Whether the timeline already holds an event whose data carries every item of ``marker``."""
    for entry in d["timeline"]:
        data = entry.get("data")
        if isinstance(data, dict) and all(data.get(k) == v for k, v in marker.items()):
            return True
    return False


@dataclass(frozen=True)
class Delivery:
    """One persisted notification waiting to be ingested."""

    id: int
    note: Notification
    received_at: float
    state: str
    attempts: int = 0


@dataclass(frozen=True)
class Binding:
    """The incident a batch belongs to, and how the group came to be in it.

    ``how``: ``opened`` (a new incident), ``member`` (already in it), ``joined`` (correlated into
    another group's incident), ``reopened`` (it resolved and fired again within the reopen window)
    or ``refired`` (the group resolved and fires again while its incident is still open).
    """

    incident_id: str
    episode: int
    how: str
    reason: str = ""
    correlation: str | None = None


@dataclass(frozen=True)
class RunChoice:
    """What to do with one planned bundle: queue it (in ``round``) or skip it, and why.

    ``skip``: its notebooks the incident already covers (see ``vcci_nb.alerts.incidents``), run by
    the bundles in ``covered_by``; when they are all of its ``total`` notebooks, ``round`` is None.
    """

    plan: RunPlan
    round: int | None
    why: str = ""
    skip: tuple[str, ...] = ()
    covered_by: tuple[str, ...] = ()
    total: int = 0

    @property
    def skip_reason(self) -> str:
        """Why the notebooks are skipped, for the runner's timeline entry."""
        return f"already run in {bundles_phrase(self.covered_by)} of this incident" if self.skip else ""


def bundles_phrase(names: tuple[str, ...]) -> str:
    """``bundle 'triage'``, ``bundles 'triage' and 'memory_leak'``."""
    quoted = [repr(n) for n in names]
    if len(quoted) == 1:
        return f"bundle {quoted[0]}"
    return f"bundles {', '.join(quoted[:-1])} and {quoted[-1]}"


@dataclass
class Work:
    """What one delivery adds to its incident."""

    firing: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    plans: dict[str, RunPlan] = field(default_factory=dict)
    refusals: list[RunPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_work(routes: Routes, note: Notification, alerts: list[Alert], work: Work) -> None:
    """Add what the routes plan for a delivery's new firing alerts (bundles, refusals, notes) to ``work``."""
    for alert in alerts:
        if alert.status != "firing":
            continue
        labels = {**note.common_labels, **alert.labels}
        plan = routes.plan(labels)
        work.notes.extend(plan.notes)
        if plan.refusal:
            work.refusals.append(plan)
        elif plan.bundle not in work.plans:
            work.plans[plan.bundle] = plan
    if note.truncated_alerts:
        work.notes.append(
            f"Alertmanager left {note.truncated_alerts} alerts out of this notification (max_alerts); "
            "see the Alertmanager UI for the whole group"
        )


Dedup = tuple[list[tuple[Notification, list[Alert]]], list[tuple[str, str, str]]]
"""Each delivery's new alerts, and the keys of the duplicates (what *dedup* returns)."""

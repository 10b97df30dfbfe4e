"""Step 3, *record*: a batch's alerts, group, runs, refusals and notes into ``record.json``.

One locked write per batch, that skips anything already there (alerts by key, events by the
delivery that caused them), which is what makes a batch taken again after a crash harmless.
"""

from __future__ import annotations

from typing import Any

from vcci_nb.alerts.ingest.bind import severity
from vcci_nb.alerts.ingest.model import (
    ACTOR,
    Binding,
    IngestContext,
    RunChoice,
    Work,
    alert_key,
    event,
    group_name,
    has_event,
)
from vcci_nb.alerts.payload import Notification
from vcci_nb.policy import SEVERITIES
from vcci_nb.record import DONE_STATUSES, IncidentRecord, utc_iso


def write(
    ctx: IngestContext,
    binding: Binding,
    note: Notification,
    work: Work,
    choices: list[RunChoice],
    delivery_id: int,
    *,
    resolving: bool,
    still_firing: list[str],
) -> None:
    """Write this batch into the incident's record in one locked update; nothing already there twice."""
    incident_id = binding.incident_id
    routes = ctx.routes
    top = severity(routes, work.firing) if work.firing else None
    name = group_name(note.group_key, note.group_labels or note.common_labels)
    first = binding.how in ("opened", "joined")
    rec = IncidentRecord.load(incident_id, ctx.outputs)

    def change(d: dict[str, Any]) -> None:
        groups = alert_groups(d)
        entry = next((g for g in groups if g.get("group_key") == note.group_key), None)
        if entry is None:
            entry = {
                "group_key": note.group_key,
                "name": name,
                "labels": dict(note.group_labels),
                "role": "opened" if binding.how == "opened" else "joined",
                "joined_at": utc_iso(),
                "reason": binding.reason or None,
                "status": "firing",
                "resolved_at": None,
            }
            groups.append(entry)
        else:
            if not entry.get("labels") and note.group_labels:  # started from the record's group_key
                entry["labels"] = dict(note.group_labels)
                entry["name"] = name
            if work.firing and entry.get("status") != "firing":
                entry["status"] = "firing"
                entry["resolved_at"] = None
        if note.truncated_alerts or entry.get("truncatedAlerts"):
            entry["truncatedAlerts"] = note.truncated_alerts  # as of the group's latest notification
        here = {"group_key": note.group_key, "delivery": delivery_id}
        if binding.how == "joined" and not has_event(d, {**here, "joined": incident_id}):
            d["timeline"].append(
                event(
                    "alert",
                    f"alert group {name} joined {incident_id}: {binding.reason}",
                    {**here, "joined": incident_id, "correlation": binding.correlation},
                )
            )
        elif binding.how == "refired" and not has_event(d, {**here, "refired": True}):
            d["timeline"].append(event("alert", f"alert group {name} {binding.reason}", {**here, "refired": True}))
        summaries = {e.get("summary") for e in d["timeline"]}  # before this batch's entries, as always
        _alerts(d, work, note, first)
        _runs(d, binding, choices, name, here)
        for plan in work.refusals:
            summary = f"Refused to run bundle {plan.bundle!r}: {plan.refusal}"
            if summary not in summaries:
                d["timeline"].append(
                    event("run", summary, {"bundle": plan.bundle, "route": plan.route, "refused": True})
                )
        for text in dict.fromkeys(work.notes):
            if text not in summaries:
                d["timeline"].append(event("note", text, None))
        if top and SEVERITIES.index(top) < SEVERITIES.index(d["severity"]):
            label = routes.severity_label
            values = sorted({a.labels.get(label, "") for a in work.firing if severity(routes, [a]) == top})
            shown = f"{label}={values[0]}" if len(values) == 1 and values[0] else top
            if binding.how == "joined":
                reason = f"alert group {name} joined with {shown}"
            else:
                reason = f"a new alert in alert group {name} has {shown}"
            d["timeline"].append(
                event(
                    "note",
                    f"Severity raised {d['severity']} → {top}: {reason}",
                    {"from": d["severity"], "to": top, "reason": reason, "group_key": note.group_key},
                )
            )
            d["severity"] = top
        if resolving:
            entry["status"] = "resolved"
            entry["resolved_at"] = utc_iso()
            if still_firing and not has_event(d, {**here, "group_resolved": True}):
                names = {str(g.get("group_key")): str(g.get("name")) for g in groups}
                firing = [names.get(key) or group_name(key) for key in still_firing]
                d["timeline"].append(
                    event(
                        "alert",
                        f"alert group {name} resolved; {incident_id} stays open while "
                        f"{len(firing)} other alert group{'s' if len(firing) != 1 else ''} "
                        f"{'fire' if len(firing) != 1 else 'fires'}: {', '.join(firing)}",
                        {**here, "group_resolved": True, "still_firing": still_firing},
                    )
                )

    rec.update(change)


def _alerts(d: dict[str, Any], work: Work, note: Notification, first: bool) -> None:
    """The batch's new firing alerts (and their timeline entries), and the resolved ones marked."""
    have_alerts = {alert_key(a) for a in d["alerts"]}
    have_events = {
        alert_key(e["data"]) for e in d["timeline"] if e.get("kind") == "alert" and isinstance(e.get("data"), dict)
    }
    for alert in work.firing:
        entry_alert = {**alert.to_dict(), "at": utc_iso(), "group_key": note.group_key}
        if alert_key(entry_alert) in have_alerts:
            continue
        d["alerts"].append(entry_alert)
        text = alert.annotations.get("summary") or alert.annotations.get("description") or ""
        summary = f"Alert {alert.name} firing" + (f": {text}" if text else "")
        data = {k: entry_alert[k] for k in ("fingerprint", "startsAt", "status", "labels")}
        d["timeline"].append(event("alert", summary, data, actor="alertmanager"))
        if first and alert.starts_at < (d.get("detected_at") or "9999"):
            d["detected_at"] = alert.starts_at
    for alert in work.resolved:
        resolved = alert.to_dict()
        if alert_key(resolved) in have_events:
            continue
        for existing in d["alerts"]:
            if (existing.get("fingerprint"), existing.get("startsAt")) == alert.key:
                existing["status"] = "resolved"
                existing["endsAt"] = alert.ends_at
        data = {k: resolved[k] for k in ("fingerprint", "startsAt", "status", "endsAt", "labels")}
        d["timeline"].append(event("alert", f"Alert {alert.name} resolved", data, actor="alertmanager"))


def _runs(d: dict[str, Any], binding: Binding, choices: list[RunChoice], name: str, here: dict[str, Any]) -> None:
    """One timeline entry per run choice the engineer should read (queued after a join, or not queued)."""
    for choice in choices:
        bundle = choice.plan.bundle
        marker = {**here, "bundle": bundle}
        if choice.round is None and choice.skip:
            summary = f"Bundle {bundle!r} not queued for alert group {name}: {choice.why}"
            data = {
                **marker,
                "skipped": True,
                "episode": binding.episode,
                "notebooks": list(choice.skip),
                "covered_by": list(choice.covered_by),
            }
        elif choice.round is None:
            summary = f"Bundle {bundle!r} not queued again for alert group {name}: {choice.why}"
            data = {**marker, "skipped": True, "episode": binding.episode}
        elif choice.skip:
            summary = (
                f"Bundle {bundle!r} queued for alert group {name} (route {choice.plan.route}) without "
                f"{len(choice.skip)} of its {choice.total} notebooks, {choice.skip_reason}: "
                f"{', '.join(choice.skip)}"
            )
            summary += f"; {choice.why}" if choice.why else ""
            data = {
                **marker,
                "queued": True,
                "episode": binding.episode,
                "round": choice.round,
                "skip": list(choice.skip),
                "covered_by": list(choice.covered_by),
            }
        elif binding.how in ("joined", "refired"):
            summary = f"Bundle {bundle!r} queued for alert group {name} (route {choice.plan.route})"
            summary += f": {choice.why}" if choice.why else ""
            data = {**marker, "queued": True, "episode": binding.episode, "round": choice.round}
        else:
            continue  # the opening group's runs: the worker's "Started bundle" entries say it
        if not has_event(d, marker):
            d["timeline"].append(event("run", summary, data))


def alert_groups(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's ``alert_groups``, started with the opening group for a record made before it existed."""
    groups = d.get("alert_groups")
    if not isinstance(groups, list):
        groups = []
        if d.get("group_key"):
            key = str(d["group_key"])
            groups.append(
                {
                    "group_key": key,
                    "name": group_name(key),
                    "labels": {},
                    "role": "opened",
                    "joined_at": d.get("created_at"),
                    "reason": None,
                    "status": "resolved" if d.get("status") in DONE_STATUSES else "firing",
                    "resolved_at": None,
                }
            )
        d["alert_groups"] = groups
    return groups


def resolve(ctx: IngestContext, incident_id: str, note: Notification) -> None:
    """Every group of the incident resolved: the record's status becomes the routes' resolve status."""
    rec = IncidentRecord.load(incident_id, ctx.outputs)
    status = rec.data.get("status")
    if status in ("closed", ctx.routes.resolve_status):
        return
    groups = rec.data.get("alert_groups") or []
    if len(groups) > 1:
        names = ", ".join(str(g.get("name") or g.get("group_key")) for g in groups)
        why = f"every alert group of the incident resolved ({names})"
    else:
        why = f"all alerts of group {note.group_key} resolved"
    rec.set_status(ctx.routes.resolve_status, note=why, actor=ACTOR)

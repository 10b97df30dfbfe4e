"""From persisted notifications to incidents and queued runs (the ingest step).

One thread of the back-end process runs this, in delivery order, outside any HTTP request.
Consecutive firing notifications of one group are taken together. Each batch goes through steps
that are safe to repeat, so a SIGKILL between any two of them loses nothing and doubles nothing
when the next start takes the batch again:

1. *dedup* (reads only): an alert whose (fingerprint, startsAt, status) is already in ``alerts``
   is a duplicate (Alertmanager's at-least-once delivery, an HA pair's second copy);
2. *bind*: the Alertmanager group gets its incident: a new one (the group row is marked
   ``opening`` first, so a crash between allocating the ID and recording it finds the record
   again by its ``group_key`` instead of opening a second), the open one (new alerts join it), or
   the resolved one reopened when the group fires again within the reopen window;
3. *record*: the new alerts, refusals and notes go into ``record.json`` in one locked write that
   skips anything already there (which is what makes a repeated batch harmless);
4. *commit* (one transaction): runs are queued (unique per incident, bundle and episode), the
   alerts' keys are stored and the deliveries marked done.

One fsync per batch on the usual path (joining an open incident): the disk is shared with the
front's acknowledgements, and every fsync here is one they may wait behind.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_nb.alerts.metrics import RECORD_BUCKETS, RECORD_HISTOGRAM, observe
from vcci_nb.alerts.payload import Alert, Notification, PayloadError, parse_notification
from vcci_nb.alerts.routing import SEVERITIES, Routes, RunPlan
from vcci_nb.alerts.store import Store, bump
from vcci_nb.errors import RecordError
from vcci_nb.record import DONE_STATUSES, IncidentRecord, list_records, utc_iso

log = logging.getLogger(__name__)

ACTOR = "vcci-nb serve"


def _event(kind: str, summary: str, data: dict[str, Any] | None, actor: str = ACTOR) -> dict[str, Any]:
    return {"at": utc_iso(), "kind": kind, "actor": actor, "summary": summary, "data": data}


def _alert_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("fingerprint")), str(entry.get("startsAt")), str(entry.get("status")))


@dataclass(frozen=True)
class _Delivery:
    """One persisted notification waiting to be ingested."""

    id: int
    note: Notification
    received_at: float
    state: str


@dataclass
class _Work:
    """What one delivery adds to its incident."""

    firing: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    plans: dict[str, RunPlan] = field(default_factory=dict)
    refusals: list[RunPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Ingestor:
    """Turns pending deliveries into incident records and queued jobs."""

    def __init__(
        self,
        store: Store,
        routes: Routes,
        *,
        outputs: Path | None = None,
        max_attempts: int = 2,
        on_recorded: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.routes = routes
        self.outputs = outputs
        self.max_attempts = max_attempts
        self.on_recorded = on_recorded
        self.clock = clock

    # -- the loop body --------------------------------------------------------------------

    def process_pending(self, limit: int = 500) -> int:
        """Process up to ``limit`` deliveries; return how many were processed.

        Consecutive firing notifications of one group are taken together (one record write for
        all of them), which is what keeps a storm cheap; a resolved notification is always taken
        on its own, so the order of firing, resolving and firing again is kept within a group.
        """
        rows = (
            self.store.connection()
            .execute(
                "SELECT id, received_at, body, state FROM deliveries WHERE state IN ('pending', 'staged') "
                "ORDER BY id LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        batches: list[list[_Delivery]] = []
        current: dict[str, list[_Delivery]] = {}
        for row in rows:
            try:
                note = parse_notification(bytes(row["body"]))
            except PayloadError as exc:  # it was valid when accepted; a newer parser may disagree
                with self.store.transaction() as db:
                    db.execute(
                        "UPDATE deliveries SET state = 'rejected', error = ?, processed_at = ? WHERE id = ?",
                        (str(exc), self.clock(), row["id"]),
                    )
                log.error("delivery %d could not be parsed again: %s", row["id"], exc)
                continue
            item = _Delivery(int(row["id"]), note, float(row["received_at"]), str(row["state"]))
            batch = current.get(note.group_key)
            if batch is not None and note.status == "firing" and batch[-1].note.status == "firing":
                batch.append(item)
            else:
                batch = [item]
                current[note.group_key] = batch
                batches.append(batch)
        for batch in batches:
            self.process(batch)
        return len(rows)

    def process(self, batch: list[_Delivery]) -> int:
        """Ingest deliveries of one group (several firing ones, or one of any kind); return runs queued."""
        note = batch[0].note
        last = batch[-1].note
        per_delivery, duplicates = self._new_alerts(batch)
        new = [alert for _, alerts in per_delivery for alert in alerts]
        work = _Work(
            firing=[a for a in new if a.status == "firing"],
            resolved=[a for a in new if a.status == "resolved"],
        )
        group = self._group(note.group_key)
        incident_id: str | None = None
        episode = int(group["episode"]) if group else 0
        if work.firing:
            incident_id, episode = self._bind(note, group, work.firing)
        elif group is not None and group["incident_id"]:
            incident_id = str(group["incident_id"])
        queued = 0
        if incident_id is None:
            # Only resolved alerts of a group this receiver never saw fire: nothing to attach them to.
            with self.store.transaction() as db:
                bump(db, "alerts_without_incident", len(new))
                self._finish(db, batch, per_delivery, duplicates, None)
            return 0
        for item_note, alerts in per_delivery:
            self._plan(item_note, alerts, work)
        bound = self._group(note.group_key)
        resolving = last.status == "resolved" and bound is not None and bound["state"] == "open"
        self._record(incident_id, note, work, first=bool(group is None or group["incident_id"] != incident_id))
        if resolving:
            self._resolve_record(incident_id, last)
        with self.store.transaction() as db:
            now = self.clock()
            for plan in work.plans.values():
                queued += self._queue(db, incident_id, note.group_key, "alert", plan, episode, now)
            for plan in work.refusals:
                db.execute(
                    "INSERT OR IGNORE INTO jobs(incident_id, group_key, kind, bundle, params, profile, route, episode, "
                    "state, reason, max_attempts, created_at, finished_at, announced) "
                    "VALUES (?, ?, 'refused', ?, '{}', ?, ?, ?, 'refused', ?, 0, ?, ?, 1)",
                    (
                        incident_id,
                        note.group_key,
                        plan.bundle,
                        plan.profile,
                        plan.route,
                        episode,
                        plan.refusal,
                        now,
                        now,
                    ),
                )
            if resolving:
                db.execute(
                    "UPDATE groups SET state = 'resolved', resolved_at = ? WHERE group_key = ?",
                    (now, note.group_key),
                )
                if self.routes.resolve_bundle:
                    plan = RunPlan(route="on_resolve", bundle=self.routes.resolve_bundle, params={}, profile=None)
                    queued += self._queue(db, incident_id, note.group_key, "resolve", plan, episode, now)
            self._finish(db, batch, per_delivery, duplicates, incident_id)
            done = self.clock()
            for item in batch:
                observe(db, RECORD_HISTOGRAM, RECORD_BUCKETS, max(0.0, done - item.received_at))
        if self.on_recorded is not None:
            self.on_recorded(max(0.0, done - batch[0].received_at))
        return queued

    # -- steps ------------------------------------------------------------------------------

    def _new_alerts(
        self, batch: list[_Delivery]
    ) -> tuple[list[tuple[Notification, list[Alert]]], list[tuple[str, str, str]]]:
        """Each delivery's alerts not seen before, and the keys of the duplicates.

        Only reads: the keys are written with the delivery's last transaction. If the process
        dies before that, the delivery is taken again and the record, which skips what it
        already holds, gets nothing twice.
        """
        db = self.store.connection()
        seen: set[tuple[str, str, str]] = set()
        duplicates: list[tuple[str, str, str]] = []
        out: list[tuple[Notification, list[Alert]]] = []
        for item in batch:
            mine: list[Alert] = []
            for alert in item.note.alerts:
                key = (alert.fingerprint, alert.starts_at, alert.status)
                known = (
                    key in seen
                    or db.execute(
                        "SELECT 1 FROM alerts WHERE fingerprint = ? AND starts_at = ? AND status = ?", key
                    ).fetchone()
                )
                if known:
                    duplicates.append(key)
                    continue
                seen.add(key)
                mine.append(alert)
            out.append((item.note, mine))
        return out, duplicates

    def _group(self, group_key: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = (
            self.store.connection().execute("SELECT * FROM groups WHERE group_key = ?", (group_key,)).fetchone()
        )
        return row

    def _bind(self, note: Notification, group: sqlite3.Row | None, firing: list[Alert]) -> tuple[str, int]:
        """The incident new firing alerts belong to, opening or reopening one when needed."""
        now = self.clock()
        episode = int(group["episode"]) if group else 0
        if group is not None and group["state"] == "open" and group["incident_id"]:
            incident_id = str(group["incident_id"])
            if self._record_status(incident_id) != "closed":
                return incident_id, episode
            why = "its incident was closed"
        elif group is not None and group["state"] == "resolved" and group["incident_id"]:
            incident_id = str(group["incident_id"])
            within = now - float(group["resolved_at"] or 0) <= self.routes.reopen_window_s
            if within and self._record_status(incident_id) != "closed":
                rec = IncidentRecord.load(incident_id, self.outputs)
                if rec.data["status"] in DONE_STATUSES:
                    rec.set_status(
                        "investigating",
                        note=f"fired again {now - float(group['resolved_at'] or 0):.0f} s after resolving; reopened",
                        actor=ACTOR,
                    )
                with self.store.transaction() as db:
                    db.execute(
                        "UPDATE groups SET state = 'open', episode = episode + 1, resolved_at = NULL "
                        "WHERE group_key = ?",
                        (note.group_key,),
                    )
                    bump(db, "incidents_reopened")
                return incident_id, episode + 1
            why = "it fired again after the reopen window"
        else:
            why = "first alert of this group"
        # A new incident. Mark the intent first so that a crash after the ID is allocated finds it.
        previous = group["incident_id"] if group is not None and group["state"] != "opening" else None
        if group is not None and group["state"] == "opening":
            previous = group["previous_incident_id"]
            found = self._find_opened(note.group_key, previous)
            if found:
                self._bound(note.group_key, found)
                return found, episode + 1
        else:
            with self.store.transaction() as db:
                db.execute(
                    "INSERT INTO groups(group_key, incident_id, previous_incident_id, state, episode) "
                    "VALUES (?, NULL, ?, 'opening', ?) ON CONFLICT(group_key) DO UPDATE SET "
                    "incident_id = NULL, previous_incident_id = excluded.previous_incident_id, state = 'opening'",
                    (note.group_key, previous, episode),
                )
        severity = self._severity(firing)
        rec = IncidentRecord.open(
            severity,
            self._title(note, firing),
            outputs=self.outputs,
            source="alertmanager",
            group_key=note.group_key,
            actor=ACTOR,
        )
        log.info("opened %s for alert group %s (%s)", rec.id, note.group_key, why)
        self._bound(note.group_key, rec.id)
        return rec.id, episode + 1

    def _bound(self, group_key: str, incident_id: str) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE groups SET incident_id = ?, state = 'open', episode = episode + 1, opened_at = ?, "
                "resolved_at = NULL WHERE group_key = ?",
                (incident_id, self.clock(), group_key),
            )
            bump(db, "incidents_opened")

    def _find_opened(self, group_key: str, previous: str | None) -> str | None:
        """After a crash while opening: the record already made for this group, if any."""
        for data in list_records(self.outputs):  # newest first
            if data.get("group_key") == group_key and data.get("id") != previous:
                return str(data["id"])
        return None

    def _record_status(self, incident_id: str) -> str | None:
        try:
            return str(IncidentRecord.load(incident_id, self.outputs).data.get("status"))
        except RecordError:
            return "closed"  # gone or unreadable: treat as closed so a new incident is opened

    def _severity(self, alerts: list[Alert]) -> str:
        found = [self.routes.severity(a.labels) for a in alerts]
        return min(found, key=SEVERITIES.index) if found else self.routes.default_severity

    @staticmethod
    def _title(note: Notification, firing: list[Alert]) -> str:
        first = firing[0]
        name = note.common_labels.get("alertname") or first.name
        summary = note.common_annotations.get("summary") or first.annotations.get("summary") or ""
        where = first.labels.get("service") or first.labels.get("namespace") or ""
        title = f"{name}: {summary}" if summary else (f"{name} ({where})" if where else name)
        return title[:200]

    def _plan(self, note: Notification, alerts: list[Alert], work: _Work) -> None:
        for alert in alerts:
            if alert.status != "firing":
                continue
            labels = {**note.common_labels, **alert.labels}
            plan = self.routes.plan(labels)
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

    def _record(self, incident_id: str, note: Notification, work: _Work, *, first: bool) -> None:
        """Write this delivery's alerts, refusals and notes into the record in one locked update."""
        severity = self._severity(work.firing) if work.firing else None
        rec = IncidentRecord.load(incident_id, self.outputs)

        def change(d: dict[str, Any]) -> None:
            have_alerts = {_alert_key(a) for a in d["alerts"]}
            have_events = {
                _alert_key(e["data"])
                for e in d["timeline"]
                if e.get("kind") == "alert" and isinstance(e.get("data"), dict)
            }
            summaries = {e.get("summary") for e in d["timeline"]}
            for alert in work.firing:
                entry = {**alert.to_dict(), "at": utc_iso(), "group_key": note.group_key}
                if _alert_key(entry) in have_alerts:
                    continue
                d["alerts"].append(entry)
                text = alert.annotations.get("summary") or alert.annotations.get("description") or ""
                summary = f"Alert {alert.name} firing" + (f": {text}" if text else "")
                data = {k: entry[k] for k in ("fingerprint", "startsAt", "status", "labels")}
                d["timeline"].append(_event("alert", summary, data, actor="alertmanager"))
                if first and alert.starts_at < (d.get("detected_at") or "9999"):
                    d["detected_at"] = alert.starts_at
            for alert in work.resolved:
                entry = alert.to_dict()
                if _alert_key(entry) in have_events:
                    continue
                for existing in d["alerts"]:
                    if (existing.get("fingerprint"), existing.get("startsAt")) == alert.key:
                        existing["status"] = "resolved"
                        existing["endsAt"] = alert.ends_at
                data = {k: entry[k] for k in ("fingerprint", "startsAt", "status", "endsAt", "labels")}
                d["timeline"].append(_event("alert", f"Alert {alert.name} resolved", data, actor="alertmanager"))
            for plan in work.refusals:
                summary = f"Refused to run bundle {plan.bundle!r}: {plan.refusal}"
                if summary not in summaries:
                    d["timeline"].append(
                        _event("run", summary, {"bundle": plan.bundle, "route": plan.route, "refused": True})
                    )
            for text in dict.fromkeys(work.notes):
                if text not in summaries:
                    d["timeline"].append(_event("note", text, None))
            if severity and SEVERITIES.index(severity) < SEVERITIES.index(d["severity"]):
                d["timeline"].append(
                    _event("note", f"Severity raised {d['severity']} → {severity} by a new alert in the group", None)
                )
                d["severity"] = severity

        rec.update(change)

    def _resolve_record(self, incident_id: str, note: Notification) -> None:
        rec = IncidentRecord.load(incident_id, self.outputs)
        status = rec.data.get("status")
        if status in ("closed", self.routes.resolve_status):
            return
        rec.set_status(self.routes.resolve_status, note=f"all alerts of group {note.group_key} resolved", actor=ACTOR)

    def _queue(
        self,
        db: sqlite3.Connection,
        incident_id: str,
        group_key: str,
        kind: str,
        plan: RunPlan,
        episode: int,
        now: float,
    ) -> int:
        cur = db.execute(
            "INSERT OR IGNORE INTO jobs(incident_id, group_key, kind, bundle, params, profile, route, episode, state, "
            "max_attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
            (
                incident_id,
                group_key,
                kind,
                plan.bundle,
                json.dumps(plan.params, sort_keys=True),
                plan.profile,
                plan.route,
                episode,
                self.max_attempts,
                now,
            ),
        )
        return cur.rowcount

    def _finish(
        self,
        db: sqlite3.Connection,
        batch: list[_Delivery],
        per_delivery: list[tuple[Notification, list[Alert]]],
        duplicates: list[tuple[str, str, str]],
        incident_id: str | None,
    ) -> None:
        """Inside the last transaction: remember the alerts (the dedup keys) and close the deliveries."""
        now = self.clock()
        for item, (note, alerts) in zip(batch, per_delivery, strict=True):
            for alert in alerts:
                db.execute(
                    "INSERT OR IGNORE INTO alerts(fingerprint, starts_at, status, group_key, delivery_id, incident_id, "
                    "recorded) VALUES (?, ?, ?, ?, ?, ?, 1)",
                    (alert.fingerprint, alert.starts_at, alert.status, note.group_key, item.id, incident_id),
                )
            db.execute(
                "UPDATE deliveries SET state = 'done', processed_at = ?, incident_id = ? WHERE id = ?",
                (now, incident_id, item.id),
            )
        for key in duplicates:
            db.execute("UPDATE alerts SET seen = seen + 1 WHERE fingerprint = ? AND starts_at = ? AND status = ?", key)
        if duplicates:
            bump(db, "alerts_deduplicated", len(duplicates))

"""Step 2, *bind*: the incident an Alertmanager group's new firing alerts belong to.

The open incident the group is already in (new alerts join it), the resolved one reopened when
the group fires again within the reopen window, the open incident of the same correlation key
when the group is new (correlation, see ``vcci_nb.alerts.incidents``), or a new one. A new
incident is marked ``opening`` on the group row first, and a correlated join ``joining`` (with its
incident), so that a crash before the batch is committed finds the same incident again instead of
choosing a second.
"""

from __future__ import annotations

import logging
import sqlite3

from vcci_nb.alerts.ingest.model import ACTIVE_GROUP_STATES, ACTOR, Binding, IngestContext, alert_title
from vcci_nb.alerts.payload import Alert, Notification
from vcci_nb.alerts.routing import Routes
from vcci_nb.alerts.store import bump
from vcci_nb.errors import RecordError
from vcci_nb.policy import SEVERITIES
from vcci_nb.record import DONE_STATUSES, IncidentRecord, list_records

log = logging.getLogger("vcci_nb.alerts.incidents")


def group_row(ctx: IngestContext, group_key: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = (
        ctx.store.connection().execute("SELECT * FROM groups WHERE group_key = ?", (group_key,)).fetchone()
    )
    return row


def incident_row(ctx: IngestContext, incident_id: str, group: sqlite3.Row | None = None) -> sqlite3.Row:
    """The incident's row; one is made for an incident opened before the table existed."""
    db = ctx.store.connection()
    row: sqlite3.Row | None = db.execute("SELECT * FROM incidents WHERE incident_id = ?", (incident_id,)).fetchone()
    if row is not None:
        return row
    # Opened by an older receiver: its group's episode was its episode; it takes no part in
    # correlation (no key), so nothing joins it by surprise.
    episode = int(group["episode"]) if group is not None else 1
    state = "resolved" if group is not None and group["state"] == "resolved" else "open"
    opened = float(group["opened_at"] or 0) if group is not None else 0.0
    with ctx.store.transaction() as tx:
        tx.execute(
            "INSERT OR IGNORE INTO incidents(incident_id, correlation, state, episode, opened_at, last_fired_at) "
            "VALUES (?, NULL, ?, ?, ?, ?)",
            (incident_id, state, max(1, episode), opened, opened),
        )
    found: sqlite3.Row = db.execute("SELECT * FROM incidents WHERE incident_id = ?", (incident_id,)).fetchone()
    return found


def correlation(routes: Routes, note: Notification, firing: list[Alert]) -> str | None:
    """The correlation key of a group (``namespace=vcci-production``), or None when it has none."""
    if routes.correlate_window_s <= 0:
        return None
    label = routes.correlate_by
    value = note.group_labels.get(label) or note.common_labels.get(label)
    if not value:
        values = {a.labels.get(label) for a in firing}
        value = values.pop() if len(values) == 1 else None
    return f"{label}={value}" if value else None


def record_status(ctx: IngestContext, incident_id: str) -> str | None:
    try:
        return str(IncidentRecord.load(incident_id, ctx.outputs).data.get("status"))
    except RecordError:
        return "closed"  # gone or unreadable: treat as closed so a new incident is opened


def severity(routes: Routes, alerts: list[Alert]) -> str:
    """The most severe of the alerts' severities (routes.yaml's rule), or the routes' default."""
    found = [routes.severity(a.labels) for a in alerts]
    return min(found, key=SEVERITIES.index) if found else routes.default_severity


def join_reason(routes: Routes, row: sqlite3.Row, received: float) -> str:
    label, _, value = str(row["correlation"] or "").partition("=")
    opened_ago = max(0.0, received - float(row["opened_at"]))
    fired_ago = max(0.0, received - float(row["last_fired_at"]))
    when = (
        f"incident opened {opened_ago:.0f} s earlier"
        if opened_ago <= routes.correlate_window_s
        else f"incident last fired {fired_ago:.0f} s earlier (opened {opened_ago:.0f} s earlier)"
    )
    return f"same {label} {value}, {when}" if value else when


def correlate(ctx: IngestContext, corr: str | None, received: float) -> tuple[sqlite3.Row, str] | None:
    """The open incident a new group with this key joins, and why; None when there is none."""
    if corr is None or ctx.routes.correlate_window_s <= 0:
        return None
    window = ctx.routes.correlate_window_s
    rows = (
        ctx.store.connection()
        .execute(
            "SELECT * FROM incidents WHERE correlation = ? AND state = 'open' "
            "ORDER BY last_fired_at DESC, opened_at DESC",
            (corr,),
        )
        .fetchall()
    )
    for row in rows:
        opened_ago = max(0.0, received - float(row["opened_at"]))
        fired_ago = max(0.0, received - float(row["last_fired_at"]))
        if min(opened_ago, fired_ago) > window:
            continue
        if record_status(ctx, str(row["incident_id"])) in DONE_STATUSES:
            continue  # resolved or closed by a person: not ours to add to
        return row, join_reason(ctx.routes, row, received)
    return None


def bind(
    ctx: IngestContext, note: Notification, group: sqlite3.Row | None, firing: list[Alert], received: float
) -> Binding:
    """The incident new firing alerts belong to: opening, joining or reopening one when needed."""
    now = ctx.clock()
    state = str(group["state"]) if group is not None else None
    current = str(group["incident_id"]) if group is not None and group["incident_id"] else None
    episode = int(group["episode"]) if group else 0
    if state == "open" and current:
        if record_status(ctx, current) != "closed":
            return Binding(current, int(incident_row(ctx, current, group)["episode"]), "member")
        why = "its incident was closed"
    elif state == "joining" and current:
        # Chosen before a crash, not yet committed: finish joining the same incident.
        if record_status(ctx, current) != "closed":
            row = incident_row(ctx, current, group)
            return Binding(
                current, int(row["episode"]), "joined", join_reason(ctx.routes, row, received), row["correlation"]
            )
        why = "the incident it was joining was closed"
    elif state == "resolved" and current:
        since = now - float(group["resolved_at"] or 0) if group is not None else 0.0
        within = since <= ctx.routes.reopen_window_s
        status = record_status(ctx, current)
        if within and status != "closed":
            row = incident_row(ctx, current, group)
            if row["state"] == "resolved" or status in DONE_STATUSES:
                rec = IncidentRecord.load(current, ctx.outputs)
                if rec.data["status"] in DONE_STATUSES:
                    rec.set_status(
                        "investigating", note=f"fired again {since:.0f} s after resolving; reopened", actor=ACTOR
                    )
                with ctx.store.transaction() as db:
                    db.execute(
                        "UPDATE incidents SET state = 'open', episode = episode + 1, resolved_at = NULL, "
                        "last_fired_at = max(last_fired_at, ?) WHERE incident_id = ?",
                        (received, current),
                    )
                    db.execute(
                        "UPDATE groups SET state = 'open', episode = episode + 1, resolved_at = NULL "
                        "WHERE group_key = ?",
                        (note.group_key,),
                    )
                    bump(db, "incidents_reopened")
                return Binding(current, int(row["episode"]) + 1, "reopened")
            # Its incident never resolved (other groups in it still fire): same incident, same
            # episode. The group row changes with the batch's commit, so a crash before that
            # decides the same way again.
            return Binding(
                current,
                int(row["episode"]),
                "refired",
                f"fires again {since:.0f} s after resolving; {current} was still open",
                row["correlation"],
            )
        why = "it fired again after the reopen window"
    else:
        why = "first alert of this group"
    corr = correlation(ctx.routes, note, firing)
    if state == "opening":
        # A crash while opening: the record made for this group, if any, is its incident.
        previous = group["previous_incident_id"] if group is not None else None
        found = find_opened(ctx, note.group_key, previous)
        if found:
            bound(ctx, note.group_key, found, corr, received)
            return Binding(found, int(incident_row(ctx, found)["episode"]), "opened")
    else:
        previous = group["previous_incident_id"] if group is not None and state == "joining" else current
        target = correlate(ctx, corr, received)
        if target is not None:
            row, reason = target
            incident_id = str(row["incident_id"])
            # Remember the choice before the record says so, so a crash cannot choose another.
            with ctx.store.transaction() as db:
                db.execute(
                    "INSERT INTO groups(group_key, incident_id, previous_incident_id, state, episode) "
                    "VALUES (?, ?, ?, 'joining', ?) ON CONFLICT(group_key) DO UPDATE SET "
                    "incident_id = excluded.incident_id, previous_incident_id = excluded.previous_incident_id, "
                    "state = 'joining'",
                    (note.group_key, incident_id, previous, episode),
                )
            log.info("alert group %s joined %s (%s)", note.group_key, incident_id, reason)
            return Binding(incident_id, int(row["episode"]), "joined", reason, corr)
        # A new incident. Mark the intent first so that a crash after the ID is allocated finds it.
        with ctx.store.transaction() as db:
            db.execute(
                "INSERT INTO groups(group_key, incident_id, previous_incident_id, state, episode) "
                "VALUES (?, NULL, ?, 'opening', ?) ON CONFLICT(group_key) DO UPDATE SET "
                "incident_id = NULL, previous_incident_id = excluded.previous_incident_id, state = 'opening'",
                (note.group_key, previous, episode),
            )
    rec = IncidentRecord.open(
        severity(ctx.routes, firing),
        alert_title(note, firing),
        outputs=ctx.outputs,
        source="alertmanager",
        group_key=note.group_key,
        actor=ACTOR,
    )
    log.info("opened %s for alert group %s (%s)", rec.id, note.group_key, why)
    bound(ctx, note.group_key, rec.id, corr, received)
    return Binding(rec.id, 1, "opened", correlation=corr)


def bound(ctx: IngestContext, group_key: str, incident_id: str, corr: str | None, received: float) -> None:
    """The group is in its new incident, and the incident has its row (with its correlation key)."""
    with ctx.store.transaction() as db:
        db.execute(
            "UPDATE groups SET incident_id = ?, state = 'open', episode = episode + 1, opened_at = ?, "
            "resolved_at = NULL WHERE group_key = ?",
            (incident_id, ctx.clock(), group_key),
        )
        db.execute(
            "INSERT OR IGNORE INTO incidents(incident_id, correlation, state, episode, opened_at, last_fired_at) "
            "VALUES (?, ?, 'open', 1, ?, ?)",
            (incident_id, corr, received, received),
        )
        bump(db, "incidents_opened")


def find_opened(ctx: IngestContext, group_key: str, previous: str | None) -> str | None:
    """After a crash while opening: the record already made for this group, if any."""
    for data in list_records(ctx.outputs):  # newest first
        if data.get("group_key") == group_key and data.get("id") != previous:
            return str(data["id"])
    return None


def other_active_groups(ctx: IngestContext, incident_id: str, group_key: str) -> list[str]:
    """The other groups of the incident that still fire (it resolves only when none does)."""
    marks = ", ".join("?" for _ in ACTIVE_GROUP_STATES)
    rows = (
        ctx.store.connection()
        .execute(
            f"SELECT group_key FROM groups WHERE incident_id = ? AND group_key != ? AND state IN ({marks}) "
            "ORDER BY group_key",
            (incident_id, group_key, *ACTIVE_GROUP_STATES),
        )
        .fetchall()
    )
    return [str(r["group_key"]) for r in rows]

"""Step 4, *commit* (inside one transaction): the group's and incident's rows, the runs, the dedup keys.

Runs are queued unique per incident, bundle, episode and round, the alerts' keys are stored and
the deliveries marked done, all in the caller's one transaction: until it commits, the batch is
taken again on the next start and the earlier steps decide the same way.
"""

from __future__ import annotations

import json
import sqlite3

from vcci_nb.alerts.ingest.model import Binding, Dedup, Delivery, IngestContext, RunChoice, Work
from vcci_nb.alerts.routing import RunPlan
from vcci_nb.alerts.store import bump


def apply(
    db: sqlite3.Connection,
    ctx: IngestContext,
    batch: list[Delivery],
    binding: Binding,
    work: Work,
    choices: list[RunChoice],
    *,
    resolving: bool,
    still_firing: list[str],
    max_attempts: int,
) -> int:
    """The batch's changes to groups, incidents and jobs; return how many runs were queued."""
    note = batch[0].note
    incident_id = binding.incident_id
    fired = any(item.note.status == "firing" for item in batch)
    queued = 0
    now = ctx.clock()
    if binding.how == "refired":
        db.execute(
            "UPDATE groups SET state = 'open', episode = episode + 1, resolved_at = NULL WHERE group_key = ?",
            (note.group_key,),
        )
    if binding.how == "joined":
        db.execute(
            "UPDATE groups SET incident_id = ?, state = 'open', episode = episode + 1, opened_at = ?, "
            "resolved_at = NULL WHERE group_key = ?",
            (incident_id, now, note.group_key),
        )
        bump(db, "alert_groups_correlated")
    if fired:
        db.execute(
            "UPDATE incidents SET last_fired_at = max(last_fired_at, ?) WHERE incident_id = ?",
            (batch[-1].received_at, incident_id),
        )
    for choice in choices:
        if choice.round is None:
            bump(db, "runs_skipped")
            continue
        added = queue(
            db,
            incident_id,
            note.group_key,
            "alert",
            choice.plan,
            binding.episode,
            now,
            max_attempts,
            choice.round,
            skip=choice.skip,
            skip_reason=choice.skip_reason,
        )
        queued += added
        if added and choice.skip:
            bump(db, "notebooks_skipped", len(choice.skip))
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
                binding.episode,
                plan.refusal,
                now,
                now,
            ),
        )
    if resolving:
        db.execute("UPDATE groups SET state = 'resolved', resolved_at = ? WHERE group_key = ?", (now, note.group_key))
        if not still_firing:
            db.execute(
                "UPDATE incidents SET state = 'resolved', resolved_at = ? WHERE incident_id = ?", (now, incident_id)
            )
            if ctx.routes.resolve_bundle:
                plan = RunPlan(route="on_resolve", bundle=ctx.routes.resolve_bundle, params={}, profile=None)
                queued += queue(db, incident_id, note.group_key, "resolve", plan, binding.episode, now, max_attempts)
    return queued


def queue(
    db: sqlite3.Connection,
    incident_id: str,
    group_key: str,
    kind: str,
    plan: RunPlan,
    episode: int,
    now: float,
    max_attempts: int,
    round_: int = 0,
    *,
    skip: tuple[str, ...] = (),
    skip_reason: str = "",
) -> int:
    """Insert the job (its skip list in the same row, so a restart runs exactly this); 1 if it is new."""
    cur = db.execute(
        "INSERT OR IGNORE INTO jobs(incident_id, group_key, kind, bundle, params, profile, route, episode, round, "
        "state, max_attempts, created_at, skip, skip_reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
        (
            incident_id,
            group_key,
            kind,
            plan.bundle,
            json.dumps(plan.params, sort_keys=True),
            plan.profile,
            plan.route,
            episode,
            round_,
            max_attempts,
            now,
            json.dumps(list(skip)),
            skip_reason or None,
        ),
    )
    return cur.rowcount


def finish(
    db: sqlite3.Connection,
    now: float,
    batch: list[Delivery],
    dedup: Dedup,
    incident_id: str | None,
) -> None:
    """Remember the alerts (the dedup keys) and close the deliveries, in the batch's last transaction."""
    per_delivery, duplicates = dedup
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

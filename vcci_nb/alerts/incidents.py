"""From persisted notifications to incidents and queued runs (the ingest step).

One thread of the back-end process runs this, in delivery order, outside any HTTP request.
Consecutive firing notifications of one group are taken together. Each batch goes through steps
that are safe to repeat, so a SIGKILL between any two of them loses nothing and doubles nothing
when the next start takes the batch again:

1. *dedup* (reads only): an alert whose (fingerprint, startsAt, status) is already in ``alerts``
   is a duplicate (Alertmanager's at-least-once delivery, an HA pair's second copy);
2. *bind*: the Alertmanager group gets its incident: the open one it is already in (new alerts
   join it), the resolved one reopened when the group fires again within the reopen window, the
   open incident of the same namespace when the group is new (*correlation*, below), or a new
   one. A new incident is marked ``opening`` on the group row first, and a correlated join
   ``joining`` (with its incident), so that a crash before the batch is committed finds the same
   incident again instead of choosing a second;
3. *record*: the new alerts, the group's entry in ``alert_groups``, refusals, skipped runs and
   notes go into ``record.json`` in one locked write that skips anything already there (which is
   what makes a repeated batch harmless);
4. *commit* (one transaction): runs are queued (unique per incident, bundle, episode and round),
   the alerts' keys are stored and the deliveries marked done.

Correlation: Alertmanager groups by (alertname, namespace), so one fault fires several groups
(error rate, pool, the database's connection limit) within seconds; one incident per group paged
the engineer several times and ran triage several times for one problem. A group that fires for
the first time (or again after the reopen window) joins the open incident serve opened for the
same ``correlate_by`` label value (the namespace) if that incident opened or last fired within
``correlate_window_s``, measured from when the group's notification was received (so a batch
taken again after a crash decides the same way). The joining group's route still picks its
bundle; a bundle the incident already has queued, running or finished within the window is not
run again, and the record says so. The incident resolves only when every group in it has.

Overlapping bundles: bundles share notebooks (``investigate`` is ``triage`` without
``01_triage``), so a second bundle of one incident used to run most notebooks a second time. A
notebook is *covered* when a job of the incident in this episode that lists it (per
``parameters/bundles.yaml``, less what that job itself skipped) is queued or running, or
succeeded within ``correlate_window_s`` of the notification; a failed, timed-out or interrupted
job covers nothing. A planned bundle whose notebooks are all covered is not queued (and the
record says which bundles run them); one with some covered is queued with those notebooks in
``jobs.skip``, which the worker passes as ``vcci-nb run --skip``. Only what is already queued
counts, so the order decides: ``triage`` then ``investigate`` skips investigate; the other way
round, triage runs only ``01_triage``. Bundles planned by one batch count in their order.
Because one thread ingests, in delivery order, and an incident's row is committed before the
next batch is looked at, groups arriving together cannot open two incidents.

One fsync per batch on the usual path (joining an open incident): the disk is shared with the
front's acknowledgements, and every fsync here is one they may wait behind.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_nb.alerts.metrics import RECORD_BUCKETS, RECORD_HISTOGRAM, observe
from vcci_nb.alerts.payload import Alert, Notification, PayloadError, parse_notification
from vcci_nb.alerts.routing import SEVERITIES, Routes, RunPlan
from vcci_nb.alerts.store import Store, StoreError, bump
from vcci_nb.errors import RecordError, VcciNbError
from vcci_nb.record import DONE_STATUSES, IncidentRecord, list_records, utc_iso
from vcci_nb.redact import redact

log = logging.getLogger(__name__)

ACTOR = "vcci-nb serve"
_ALERTNAME_IN_KEY = re.compile(r'alertname="((?:[^"\\]|\\.)*)"')
#: The group states in which a group still counts as firing in its incident.
_ACTIVE_GROUP_STATES = ("open", "opening", "joining")


def _event(kind: str, summary: str, data: dict[str, Any] | None, actor: str = ACTOR) -> dict[str, Any]:
    return {"at": utc_iso(), "kind": kind, "actor": actor, "summary": summary, "data": data}


def _alert_key(entry: dict[str, Any]) -> tuple[str, str, str]:
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


def _has_event(d: dict[str, Any], marker: dict[str, Any]) -> bool:
    """Whether the timeline already holds an event whose data carries every item of ``marker``."""
    for event in d["timeline"]:
        data = event.get("data")
        if isinstance(data, dict) and all(data.get(k) == v for k, v in marker.items()):
            return True
    return False


@dataclass(frozen=True)
class _Delivery:
    """One persisted notification waiting to be ingested."""

    id: int
    note: Notification
    received_at: float
    state: str
    attempts: int = 0


@dataclass(frozen=True)
class _Binding:
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
class _RunChoice:
    """What to do with one planned bundle: queue it (in ``round``) or skip it, and why.

    ``skip``: its notebooks the incident already covers (see the module docstring), run by the
    bundles in ``covered_by``; when they are all of its ``total`` notebooks, ``round`` is None.
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
        return f"already run in {_bundles_phrase(self.covered_by)} of this incident" if self.skip else ""


def _bundles_phrase(names: tuple[str, ...]) -> str:
    """``bundle 'triage'``, ``bundles 'triage' and 'memory_leak'``."""
    quoted = [repr(n) for n in names]
    if len(quoted) == 1:
        return f"bundle {quoted[0]}"
    return f"bundles {', '.join(quoted[:-1])} and {quoted[-1]}"


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
        delivery_attempts: int = 5,
        retry_base_s: float = 2.0,
        on_recorded: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.routes = routes
        self.outputs = outputs
        self.max_attempts = max_attempts
        #: Attempts a delivery gets before it is set aside as ``failed``; the wait between them doubles.
        self.delivery_attempts = max(1, delivery_attempts)
        self.retry_base_s = retry_base_s
        self.on_recorded = on_recorded
        self.clock = clock
        # Correlation relies on one batch at a time (an incident's row is committed before the
        # next batch looks for one); the back end has one ingest thread, and this makes sure.
        self._lock = threading.Lock()
        self._bundles: tuple[tuple[Path, int], dict[str, tuple[str, ...]]] | None = None

    # -- the loop body --------------------------------------------------------------------

    def process_pending(self, limit: int = 500) -> int:
        """Process up to ``limit`` deliveries; return how many were processed.

        Consecutive firing notifications of one group are taken together (one record write for
        all of them), which is what keeps a storm cheap; a resolved notification is always taken
        on its own, so the order of firing, resolving and firing again is kept within a group.
        Batches are processed in the order of their first delivery, one at a time.
        """
        with self._lock:
            return self._process_pending(limit)

    def _process_pending(self, limit: int) -> int:
        now = self.clock()
        rows = (
            self.store.connection()
            .execute(
                "SELECT id, received_at, body, state, attempts, next_attempt_at FROM deliveries "
                "WHERE state IN ('pending', 'staged') ORDER BY id LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        batches: list[list[_Delivery]] = []
        current: dict[str, list[_Delivery]] = {}
        held: set[str] = set()  # groups waiting for a failed delivery's next attempt: order within a group holds
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
            if note.group_key in held:
                continue
            if row["next_attempt_at"] is not None and float(row["next_attempt_at"]) > now:
                held.add(note.group_key)
                continue
            item = _Delivery(
                int(row["id"]), note, float(row["received_at"]), str(row["state"]), int(row["attempts"] or 0)
            )
            batch = current.get(note.group_key)
            if batch is not None and note.status == "firing" and batch[-1].note.status == "firing":
                batch.append(item)
            else:
                batch = [item]
                current[note.group_key] = batch
                batches.append(batch)
        processed = 0
        for batch in self._new_groups_first(batches):
            group_key = batch[0].note.group_key
            if group_key in held:
                continue  # an earlier batch of this group failed in this pass: keep the group's order
            processed += len(batch)
            if not self._isolated(batch):
                held.add(group_key)
        return processed

    def _new_groups_first(self, batches: list[list[_Delivery]]) -> list[list[_Delivery]]:
        """Batches of groups seen for the first time go ahead of earlier batches they cannot be affected by.

        During a storm into one incident, each of its batches rewrites a large record; a new
        incident's first notification waited behind them (13.6 s in tests/bench/bench_storm.py
        with one sender). A new group's batch moves ahead of earlier batches of *open* groups
        whose incident has another correlation key, and of other new groups with another key:
        those can neither be the incident it joins nor change whether it joins one, so the outcome
        is the one delivery order gives. It never passes a resolved or closed group, nor one of
        its own correlation key.
        """
        db = self.store.connection()
        open_groups: dict[str, str | None] = {}  # group key -> its incident's correlation, for open groups
        seen: set[str] = set()
        for batch in batches:
            key = batch[0].note.group_key
            row = db.execute(
                "SELECT g.state, i.correlation FROM groups g LEFT JOIN incidents i ON i.incident_id = g.incident_id "
                "WHERE g.group_key = ?",
                (key,),
            ).fetchone()
            if row is not None:
                seen.add(key)
                if row["state"] == "open":
                    open_groups[key] = row["correlation"]
        new_groups: dict[str, str | None] = {}  # first batch of a new group -> the correlation key it will use
        first: set[str] = set()
        for batch in batches:
            note = batch[0].note
            if note.group_key in first:
                continue  # only a group's first batch moves, never past its own earlier ones
            first.add(note.group_key)
            if note.group_key not in seen and note.status == "firing":
                new_groups[note.group_key] = self._correlation(note, [a for a in note.alerts if a.status == "firing"])
        passable = {**open_groups, **new_groups}
        out = list(batches)
        moved: set[str] = set()
        for batch in batches:
            key = batch[0].note.group_key
            if key not in new_groups or key in moved:
                continue
            moved.add(key)
            correlation = new_groups[key]
            pos = next(i for i, b in enumerate(out) if b is batch)
            to = pos
            while to > 0:
                before = out[to - 1][0].note.group_key
                if before not in passable or (correlation is not None and passable[before] == correlation):
                    break
                to -= 1
            out.insert(to, out.pop(pos))
        return out

    def _isolated(self, batch: list[_Delivery]) -> bool:
        """Process a batch; when it raises, find the delivery at fault and count the failure against it alone.

        A batch of several deliveries that fails is taken again one delivery at a time, so the
        good ones before the bad one go through. The bad one waits (its next attempt doubles the
        delay) and after ``delivery_attempts`` it is ``failed``, with its error kept; the others
        proceed. Returns False when something of the batch is left waiting.
        """
        try:
            self.process(batch)
            return True
        except StoreError:
            raise  # the state database itself: nothing can be counted; the loop retries it all
        except Exception as exc:
            if len(batch) == 1:
                self._failed(batch[0], exc)
                return False
        for item in batch:
            try:
                self.process([item])
            except StoreError:
                raise
            except Exception as exc:
                self._failed(item, exc)
                return False
        return True

    def _failed(self, item: _Delivery, exc: Exception) -> None:
        """Count a failed attempt against one delivery; past the last attempt it is ``failed`` for good."""
        error = redact(f"{type(exc).__name__}: {exc}")[:2000]
        attempts = item.attempts + 1
        now = self.clock()
        with self.store.transaction() as db:
            if attempts >= self.delivery_attempts:
                db.execute(
                    "UPDATE deliveries SET state = 'failed', attempts = ?, error = ?, processed_at = ?, "
                    "next_attempt_at = NULL WHERE id = ?",
                    (attempts, error, now, item.id),
                )
                bump(db, "deliveries_failed")
            else:
                delay = min(self.retry_base_s * 2 ** (attempts - 1), 300.0)
                db.execute(
                    "UPDATE deliveries SET attempts = ?, error = ?, next_attempt_at = ? WHERE id = ?",
                    (attempts, error, now + delay, item.id),
                )
        if attempts >= self.delivery_attempts:
            log.error(
                "delivery %d failed %d times and is set aside (vcci-nb deliveries retry %d once fixed): %s",
                item.id,
                attempts,
                item.id,
                error,
            )
        else:
            log.warning("delivery %d failed (attempt %d of %d): %s", item.id, attempts, self.delivery_attempts, error)

    def process(self, batch: list[_Delivery]) -> int:
        """Ingest deliveries of one group (several firing ones, or one of any kind); return runs queued."""
        note = batch[0].note
        last = batch[-1].note
        received = batch[0].received_at
        per_delivery, duplicates = self._new_alerts(batch)
        new = [alert for _, alerts in per_delivery for alert in alerts]
        work = _Work(
            firing=[a for a in new if a.status == "firing"],
            resolved=[a for a in new if a.status == "resolved"],
        )
        group = self._group(note.group_key)
        binding: _Binding | None = None
        if work.firing:
            binding = self._bind(note, group, work.firing, received)
        elif group is not None and group["incident_id"] and group["state"] in ("open", "resolved"):
            incident_id = str(group["incident_id"])
            binding = _Binding(incident_id, int(self._incident(incident_id, group)["episode"]), "member")
        queued = 0
        if binding is None:
            # Only resolved alerts of a group this receiver never saw fire: nothing to attach them to.
            with self.store.transaction() as db:
                bump(db, "alerts_without_incident", len(new))
                self._finish(db, batch, per_delivery, duplicates, None)
            return 0
        if not work.firing and not IncidentRecord(binding.incident_id, self.outputs).path.is_file():
            # Resolved alerts of an incident whose record is gone (archived, moved): nothing to resolve,
            # and no attempt will make it appear; counted, never retried.
            log.warning(
                "resolved alerts of group %s for %s, whose record is gone; counted and dropped",
                note.group_key,
                binding.incident_id,
            )
            with self.store.transaction() as db:
                bump(db, "resolves_without_record")
                db.execute(
                    "UPDATE groups SET state = 'resolved', resolved_at = ? WHERE group_key = ?",
                    (self.clock(), note.group_key),
                )
                self._finish(db, batch, per_delivery, duplicates, None)
            return 0
        incident_id = binding.incident_id
        for item_note, alerts in per_delivery:
            self._plan(item_note, alerts, work)
        choices = self._choose_runs(binding, work, received)
        bound = self._group(note.group_key)
        resolving = last.status == "resolved" and bound is not None and bound["state"] == "open"
        still_firing = self._other_active_groups(incident_id, note.group_key) if resolving else []
        self._record(binding, note, work, choices, batch[0].id, resolving=resolving, still_firing=still_firing)
        if resolving and not still_firing:
            self._resolve_record(incident_id, note)
        fired = any(item.note.status == "firing" for item in batch)
        with self.store.transaction() as db:
            now = self.clock()
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
                added = self._queue(
                    db,
                    incident_id,
                    note.group_key,
                    "alert",
                    choice.plan,
                    binding.episode,
                    now,
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
                db.execute(
                    "UPDATE groups SET state = 'resolved', resolved_at = ? WHERE group_key = ?",
                    (now, note.group_key),
                )
                if not still_firing:
                    db.execute(
                        "UPDATE incidents SET state = 'resolved', resolved_at = ? WHERE incident_id = ?",
                        (now, incident_id),
                    )
                    if self.routes.resolve_bundle:
                        plan = RunPlan(route="on_resolve", bundle=self.routes.resolve_bundle, params={}, profile=None)
                        queued += self._queue(db, incident_id, note.group_key, "resolve", plan, binding.episode, now)
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

    def _incident(self, incident_id: str, group: sqlite3.Row | None = None) -> sqlite3.Row:
        """The incident's row; one is made for an incident opened before the table existed."""
        db = self.store.connection()
        row: sqlite3.Row | None = db.execute("SELECT * FROM incidents WHERE incident_id = ?", (incident_id,)).fetchone()
        if row is not None:
            return row
        # Opened by an older receiver: its group's episode was its episode; it takes no part in
        # correlation (no key), so nothing joins it by surprise.
        episode = int(group["episode"]) if group is not None else 1
        state = "resolved" if group is not None and group["state"] == "resolved" else "open"
        opened = float(group["opened_at"] or 0) if group is not None else 0.0
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO incidents(incident_id, correlation, state, episode, opened_at, last_fired_at) "
                "VALUES (?, NULL, ?, ?, ?, ?)",
                (incident_id, state, max(1, episode), opened, opened),
            )
        found: sqlite3.Row = db.execute("SELECT * FROM incidents WHERE incident_id = ?", (incident_id,)).fetchone()
        return found

    def _correlation(self, note: Notification, firing: list[Alert]) -> str | None:
        """The correlation key of a group (``namespace=vcci-production``), or None when it has none."""
        if self.routes.correlate_window_s <= 0:
            return None
        label = self.routes.correlate_by
        value = note.group_labels.get(label) or note.common_labels.get(label)
        if not value:
            values = {a.labels.get(label) for a in firing}
            value = values.pop() if len(values) == 1 else None
        return f"{label}={value}" if value else None

    def _correlate(self, correlation: str | None, received: float) -> tuple[sqlite3.Row, str] | None:
        """The open incident a new group with this key joins, and why; None when there is none."""
        if correlation is None or self.routes.correlate_window_s <= 0:
            return None
        window = self.routes.correlate_window_s
        rows = (
            self.store.connection()
            .execute(
                "SELECT * FROM incidents WHERE correlation = ? AND state = 'open' "
                "ORDER BY last_fired_at DESC, opened_at DESC",
                (correlation,),
            )
            .fetchall()
        )
        for row in rows:
            opened_ago = max(0.0, received - float(row["opened_at"]))
            fired_ago = max(0.0, received - float(row["last_fired_at"]))
            if min(opened_ago, fired_ago) > window:
                continue
            if self._record_status(str(row["incident_id"])) in DONE_STATUSES:
                continue  # resolved or closed by a person: not ours to add to
            return row, self._join_reason(row, received)
        return None

    def _join_reason(self, row: sqlite3.Row, received: float) -> str:
        label, _, value = str(row["correlation"] or "").partition("=")
        opened_ago = max(0.0, received - float(row["opened_at"]))
        fired_ago = max(0.0, received - float(row["last_fired_at"]))
        when = (
            f"incident opened {opened_ago:.0f} s earlier"
            if opened_ago <= self.routes.correlate_window_s
            else f"incident last fired {fired_ago:.0f} s earlier (opened {opened_ago:.0f} s earlier)"
        )
        return f"same {label} {value}, {when}" if value else when

    def _bind(self, note: Notification, group: sqlite3.Row | None, firing: list[Alert], received: float) -> _Binding:
        """The incident new firing alerts belong to: opening, joining or reopening one when needed."""
        now = self.clock()
        state = str(group["state"]) if group is not None else None
        current = str(group["incident_id"]) if group is not None and group["incident_id"] else None
        episode = int(group["episode"]) if group else 0
        if state == "open" and current:
            if self._record_status(current) != "closed":
                return _Binding(current, int(self._incident(current, group)["episode"]), "member")
            why = "its incident was closed"
        elif state == "joining" and current:
            # Chosen before a crash, not yet committed: finish joining the same incident.
            if self._record_status(current) != "closed":
                row = self._incident(current, group)
                return _Binding(
                    current, int(row["episode"]), "joined", self._join_reason(row, received), row["correlation"]
                )
            why = "the incident it was joining was closed"
        elif state == "resolved" and current:
            since = now - float(group["resolved_at"] or 0) if group is not None else 0.0
            within = since <= self.routes.reopen_window_s
            status = self._record_status(current)
            if within and status != "closed":
                row = self._incident(current, group)
                if row["state"] == "resolved" or status in DONE_STATUSES:
                    rec = IncidentRecord.load(current, self.outputs)
                    if rec.data["status"] in DONE_STATUSES:
                        rec.set_status(
                            "investigating", note=f"fired again {since:.0f} s after resolving; reopened", actor=ACTOR
                        )
                    with self.store.transaction() as db:
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
                    return _Binding(current, int(row["episode"]) + 1, "reopened")
                # Its incident never resolved (other groups in it still fire): same incident, same
                # episode. The group row changes with the batch's commit, so a crash before that
                # decides the same way again.
                return _Binding(
                    current,
                    int(row["episode"]),
                    "refired",
                    f"fires again {since:.0f} s after resolving; {current} was still open",
                    row["correlation"],
                )
            why = "it fired again after the reopen window"
        else:
            why = "first alert of this group"
        correlation = self._correlation(note, firing)
        if state == "opening":
            # A crash while opening: the record made for this group, if any, is its incident.
            previous = group["previous_incident_id"] if group is not None else None
            found = self._find_opened(note.group_key, previous)
            if found:
                self._bound(note.group_key, found, correlation, received)
                return _Binding(found, int(self._incident(found)["episode"]), "opened")
        else:
            previous = group["previous_incident_id"] if group is not None and state == "joining" else current
            target = self._correlate(correlation, received)
            if target is not None:
                row, reason = target
                incident_id = str(row["incident_id"])
                # Remember the choice before the record says so, so a crash cannot choose another.
                with self.store.transaction() as db:
                    db.execute(
                        "INSERT INTO groups(group_key, incident_id, previous_incident_id, state, episode) "
                        "VALUES (?, ?, ?, 'joining', ?) ON CONFLICT(group_key) DO UPDATE SET "
                        "incident_id = excluded.incident_id, previous_incident_id = excluded.previous_incident_id, "
                        "state = 'joining'",
                        (note.group_key, incident_id, previous, episode),
                    )
                log.info("alert group %s joined %s (%s)", note.group_key, incident_id, reason)
                return _Binding(incident_id, int(row["episode"]), "joined", reason, correlation)
            # A new incident. Mark the intent first so that a crash after the ID is allocated finds it.
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
        self._bound(note.group_key, rec.id, correlation, received)
        return _Binding(rec.id, 1, "opened", correlation=correlation)

    def _bound(self, group_key: str, incident_id: str, correlation: str | None, received: float) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE groups SET incident_id = ?, state = 'open', episode = episode + 1, opened_at = ?, "
                "resolved_at = NULL WHERE group_key = ?",
                (incident_id, self.clock(), group_key),
            )
            db.execute(
                "INSERT OR IGNORE INTO incidents(incident_id, correlation, state, episode, opened_at, last_fired_at) "
                "VALUES (?, ?, 'open', 1, ?, ?)",
                (incident_id, correlation, received, received),
            )
            bump(db, "incidents_opened")

    def _find_opened(self, group_key: str, previous: str | None) -> str | None:
        """After a crash while opening: the record already made for this group, if any."""
        for data in list_records(self.outputs):  # newest first
            if data.get("group_key") == group_key and data.get("id") != previous:
                return str(data["id"])
        return None

    def _other_active_groups(self, incident_id: str, group_key: str) -> list[str]:
        """The other groups of the incident that still fire (it resolves only when none does)."""
        marks = ", ".join("?" for _ in _ACTIVE_GROUP_STATES)
        rows = (
            self.store.connection()
            .execute(
                f"SELECT group_key FROM groups WHERE incident_id = ? AND group_key != ? AND state IN ({marks}) "
                "ORDER BY group_key",
                (incident_id, group_key, *_ACTIVE_GROUP_STATES),
            )
            .fetchall()
        )
        return [str(r["group_key"]) for r in rows]

    def _choose_runs(self, binding: _Binding, work: _Work, received: float) -> list[_RunChoice]:
        """Which planned bundles to queue, and which of their notebooks to leave out.

        A bundle the incident already has in this episode is not queued again. For a group that
        joined (or fires again into the incident), that is said in the record, and a bundle that
        last finished longer ago than the correlation window runs again (a new round). Then the
        notebooks the incident already covers (module docstring) are left out of the bundle, or
        the whole bundle when that is all of them.
        """
        db = self.store.connection()
        window = self.routes.correlate_window_s
        notebooks = self.bundle_notebooks() if work.plans else {}
        covered = self._covered(binding, received, notebooks)
        out: list[_RunChoice] = []
        for plan in work.plans.values():
            latest = db.execute(
                "SELECT * FROM jobs WHERE incident_id = ? AND kind = 'alert' AND bundle = ? AND episode = ? "
                "ORDER BY round DESC LIMIT 1",
                (binding.incident_id, plan.bundle, binding.episode),
            ).fetchone()
            round_, why = 0, ""
            if latest is not None:
                if binding.how not in ("joined", "refired"):
                    continue  # same bundle, same episode: the group's own new alerts do not run it again
                state = str(latest["state"])
                if state in ("queued", "running"):
                    out.append(_RunChoice(plan, None, f"it is already {state} for this incident"))
                    continue
                finished = float(latest["finished_at"] or latest["created_at"])
                ago = max(0.0, received - finished)
                if ago <= window:
                    out.append(_RunChoice(plan, None, f"it already {state} for this incident {ago:.0f} s earlier"))
                    continue
                round_ = int(latest["round"]) + 1
                why = f"it last {state} {ago:.0f} s earlier, longer ago than the {window:.0f} s correlation window"
            stems = notebooks.get(plan.bundle)
            if not stems:  # not in bundles.yaml (the runner will say so): nothing to compare
                out.append(_RunChoice(plan, round_, why))
                continue
            skip = tuple(stem for stem in stems if stem in covered)
            by = tuple(dict.fromkeys(covered[stem] for stem in skip))
            if len(skip) == len(stems):
                n = len(stems)
                its = f"its {n} notebooks already run" if n > 1 else f"its one notebook ({stems[0]}) already runs"
                whole = f"{its} in {_bundles_phrase(by)} of this incident"
                out.append(_RunChoice(plan, None, whole, skip, by, n))
                continue
            out.append(_RunChoice(plan, round_, why, skip, by, len(stems)))
            for stem in stems:  # a later bundle of this batch counts what this one runs
                covered.setdefault(stem, plan.bundle)
        return out

    def bundle_notebooks(self) -> dict[str, tuple[str, ...]]:
        """Each bundle's notebooks by stem (``03_investigate_system``), from the runner's bundles file.

        The file the runner reads (``$VCCI_NB_BUNDLES`` or ``parameters/bundles.yaml``), so that a
        skipped stem is one the runner knows; read again when it changes. A missing or broken file
        gives nothing (bundles are then compared by name only, as before) and a warning.
        """
        from vcci_nb.runner.bundles import bundles_file, load_bundles

        path = bundles_file()
        try:
            stamp = (path, path.stat().st_mtime_ns)
        except OSError:
            return {}
        if self._bundles is not None and self._bundles[0] == stamp:
            return self._bundles[1]
        try:
            loaded = load_bundles(path)
        except VcciNbError as exc:
            log.warning("cannot read the bundles to compare their notebooks (%s); overlaps are not skipped", exc)
            return {}
        found = {name: tuple(dict.fromkeys(Path(nb).stem for nb in b.notebooks)) for name, b in loaded.items()}
        self._bundles = (stamp, found)
        return found

    def _covered(self, binding: _Binding, received: float, notebooks: dict[str, tuple[str, ...]]) -> dict[str, str]:
        """The notebooks this episode of the incident already runs: stem → the bundle that runs it.

        From jobs queued or running, or succeeded within the correlation window of ``received``;
        less what each of them skipped itself. A failed job covers nothing: its notebooks run again.
        """
        if not notebooks:
            return {}
        rows = (
            self.store.connection()
            .execute(
                "SELECT bundle, state, created_at, finished_at, skip FROM jobs WHERE incident_id = ? AND episode = ? "
                "AND state IN ('queued', 'running', 'succeeded') ORDER BY id",
                (binding.incident_id, binding.episode),
            )
            .fetchall()
        )
        covered: dict[str, str] = {}
        for row in rows:
            if row["state"] == "succeeded":
                finished = float(row["finished_at"] or row["created_at"])
                if max(0.0, received - finished) > self.routes.correlate_window_s:
                    continue
            skipped = set(json.loads(row["skip"] or "[]"))
            for stem in notebooks.get(str(row["bundle"]), ()):
                if stem not in skipped:
                    covered.setdefault(stem, str(row["bundle"]))
        return covered

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
        return alert_title(note, firing)

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

    def _record(
        self,
        binding: _Binding,
        note: Notification,
        work: _Work,
        choices: list[_RunChoice],
        delivery_id: int,
        *,
        resolving: bool,
        still_firing: list[str],
    ) -> None:
        """Write this batch's alerts, group, runs, refusals and notes into the record in one locked update.

        Everything written here is skipped when it is already there (alerts by key, events by
        the delivery that caused them), so a batch taken again after a crash adds nothing twice.
        """
        incident_id = binding.incident_id
        severity = self._severity(work.firing) if work.firing else None
        name = group_name(note.group_key, note.group_labels or note.common_labels)
        first = binding.how in ("opened", "joined")
        rec = IncidentRecord.load(incident_id, self.outputs)

        def change(d: dict[str, Any]) -> None:
            groups = self._alert_groups(d)
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
            if binding.how == "joined" and not _has_event(d, {**here, "joined": incident_id}):
                d["timeline"].append(
                    _event(
                        "alert",
                        f"alert group {name} joined {incident_id}: {binding.reason}",
                        {**here, "joined": incident_id, "correlation": binding.correlation},
                    )
                )
            elif binding.how == "refired" and not _has_event(d, {**here, "refired": True}):
                d["timeline"].append(_event("alert", f"alert group {name} {binding.reason}", {**here, "refired": True}))
            have_alerts = {_alert_key(a) for a in d["alerts"]}
            have_events = {
                _alert_key(e["data"])
                for e in d["timeline"]
                if e.get("kind") == "alert" and isinstance(e.get("data"), dict)
            }
            summaries = {e.get("summary") for e in d["timeline"]}
            for alert in work.firing:
                entry_alert = {**alert.to_dict(), "at": utc_iso(), "group_key": note.group_key}
                if _alert_key(entry_alert) in have_alerts:
                    continue
                d["alerts"].append(entry_alert)
                text = alert.annotations.get("summary") or alert.annotations.get("description") or ""
                summary = f"Alert {alert.name} firing" + (f": {text}" if text else "")
                data = {k: entry_alert[k] for k in ("fingerprint", "startsAt", "status", "labels")}
                d["timeline"].append(_event("alert", summary, data, actor="alertmanager"))
                if first and alert.starts_at < (d.get("detected_at") or "9999"):
                    d["detected_at"] = alert.starts_at
            for alert in work.resolved:
                resolved = alert.to_dict()
                if _alert_key(resolved) in have_events:
                    continue
                for existing in d["alerts"]:
                    if (existing.get("fingerprint"), existing.get("startsAt")) == alert.key:
                        existing["status"] = "resolved"
                        existing["endsAt"] = alert.ends_at
                data = {k: resolved[k] for k in ("fingerprint", "startsAt", "status", "endsAt", "labels")}
                d["timeline"].append(_event("alert", f"Alert {alert.name} resolved", data, actor="alertmanager"))
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
                if not _has_event(d, marker):
                    d["timeline"].append(_event("run", summary, data))
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
                label = self.routes.severity_label
                values = sorted({a.labels.get(label, "") for a in work.firing if self._severity([a]) == severity})
                shown = f"{label}={values[0]}" if len(values) == 1 and values[0] else severity
                if binding.how == "joined":
                    reason = f"alert group {name} joined with {shown}"
                else:
                    reason = f"a new alert in alert group {name} has {shown}"
                d["timeline"].append(
                    _event(
                        "note",
                        f"Severity raised {d['severity']} → {severity}: {reason}",
                        {"from": d["severity"], "to": severity, "reason": reason, "group_key": note.group_key},
                    )
                )
                d["severity"] = severity
            if resolving:
                entry["status"] = "resolved"
                entry["resolved_at"] = utc_iso()
                if still_firing and not _has_event(d, {**here, "group_resolved": True}):
                    names = {str(g.get("group_key")): str(g.get("name")) for g in groups}
                    firing = [names.get(key) or group_name(key) for key in still_firing]
                    d["timeline"].append(
                        _event(
                            "alert",
                            f"alert group {name} resolved; {incident_id} stays open while "
                            f"{len(firing)} other alert group{'s' if len(firing) != 1 else ''} "
                            f"{'fire' if len(firing) != 1 else 'fires'}: {', '.join(firing)}",
                            {**here, "group_resolved": True, "still_firing": still_firing},
                        )
                    )

        rec.update(change)

    @staticmethod
    def _alert_groups(d: dict[str, Any]) -> list[dict[str, Any]]:
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

    def _resolve_record(self, incident_id: str, note: Notification) -> None:
        rec = IncidentRecord.load(incident_id, self.outputs)
        status = rec.data.get("status")
        if status in ("closed", self.routes.resolve_status):
            return
        groups = rec.data.get("alert_groups") or []
        if len(groups) > 1:
            names = ", ".join(str(g.get("name") or g.get("group_key")) for g in groups)
            why = f"every alert group of the incident resolved ({names})"
        else:
            why = f"all alerts of group {note.group_key} resolved"
        rec.set_status(self.routes.resolve_status, note=why, actor=ACTOR)

    def _queue(
        self,
        db: sqlite3.Connection,
        incident_id: str,
        group_key: str,
        kind: str,
        plan: RunPlan,
        episode: int,
        now: float,
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
                self.max_attempts,
                now,
                json.dumps(list(skip)),
                skip_reason or None,
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

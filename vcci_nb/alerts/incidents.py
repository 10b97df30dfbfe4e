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

The steps live in ``vcci_nb/alerts/ingest/`` (``order``, ``dedup``, ``bind``, ``coverage``,
``record``, ``commit``); this module is the loop that runs them, batch by batch, and counts
failures against the delivery at fault. ``coverage`` and ``order`` are pure functions.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vcci_nb.alerts.ingest import bind as _bind_step
from vcci_nb.alerts.ingest import commit as _commit_step
from vcci_nb.alerts.ingest import dedup as _dedup_step
from vcci_nb.alerts.ingest import record as _record_step
from vcci_nb.alerts.ingest.coverage import PastJob, choose_runs, covered
from vcci_nb.alerts.ingest.model import (
    ACTOR,
    Binding,
    Delivery,
    IngestContext,
    RunChoice,
    Work,
    alert_title,
    group_name,
    plan_work,
)
from vcci_nb.alerts.ingest.order import new_groups_first
from vcci_nb.alerts.metrics import RECORD_BUCKETS, RECORD_HISTOGRAM, observe
from vcci_nb.alerts.payload import Alert, Notification, PayloadError, parse_notification
from vcci_nb.alerts.routing import Routes
from vcci_nb.alerts.store import Store, StoreError, bump
from vcci_nb.errors import VcciNbError
from vcci_nb.record import IncidentRecord
from vcci_nb.redact import redact

__all__ = ["ACTOR", "Binding", "Delivery", "Ingestor", "RunChoice", "Work", "alert_title", "group_name"]

log = logging.getLogger(__name__)


class Ingestor:
    """Turns pending deliveries into incident records and queued jobs.

    The steps are methods here (``_bind``, ``_record``, ``_finish``) only so that a test can stop
    the process between two of them; their work is in ``vcci_nb/alerts/ingest/``.
    """

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

    @property
    def ctx(self) -> IngestContext:
        """What the steps work with (read each time: a test or the back end may swap routes or the clock)."""
        return IngestContext(self.store, self.routes, self.outputs, self.clock)

    # -- the loop body --------------------------------------------------------------------

    def process_pending(self, limit: int = 500) -> int:
        """Process up to ``limit`` deliveries; return how many were processed.

        Consecutive firing notifications of one group are taken together (one record write for
        all of them), which is what keeps a storm cheap; a resolved notification is always taken
        on its own, so the order of firing, resolving and firing again is kept within a group.
        Batches are processed in the order of their first delivery, one at a time, except that
        a new group's first batch may go ahead (``ingest.order.new_groups_first``).
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
        batches: list[list[Delivery]] = []
        current: dict[str, list[Delivery]] = {}
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
            item = Delivery(
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

    def _new_groups_first(self, batches: list[list[Delivery]]) -> list[list[Delivery]]:
        """The batches in the order to ingest them (``ingest.order.new_groups_first``, given the groups' rows)."""
        db = self.store.connection()
        known: dict[str, tuple[str, str | None]] = {}
        for batch in batches:
            key = batch[0].note.group_key
            row = db.execute(
                "SELECT g.state, i.correlation FROM groups g LEFT JOIN incidents i ON i.incident_id = g.incident_id "
                "WHERE g.group_key = ?",
                (key,),
            ).fetchone()
            if row is not None:
                known[key] = (str(row["state"]), row["correlation"])

        def correlation(note: Notification) -> str | None:
            return _bind_step.correlation(self.routes, note, [a for a in note.alerts if a.status == "firing"])

        return new_groups_first(batches, known, correlation)

    def _isolated(self, batch: list[Delivery]) -> bool:
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

    def _failed(self, item: Delivery, exc: Exception) -> None:
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

    def process(self, batch: list[Delivery]) -> int:
        """Ingest deliveries of one group (several firing ones, or one of any kind); return runs queued.

        dedup → bind → (plan, choose runs) → record → commit; see the module docstring.
        """
        ctx = self.ctx
        note = batch[0].note
        last = batch[-1].note
        received = batch[0].received_at
        per_delivery, duplicates = _dedup_step.new_alerts(self.store.connection(), batch)
        new = [alert for _, alerts in per_delivery for alert in alerts]
        work = Work(
            firing=[a for a in new if a.status == "firing"],
            resolved=[a for a in new if a.status == "resolved"],
        )
        group = _bind_step.group_row(ctx, note.group_key)
        binding: Binding | None = None
        if work.firing:
            binding = self._bind(note, group, work.firing, received)
        elif group is not None and group["incident_id"] and group["state"] in ("open", "resolved"):
            incident_id = str(group["incident_id"])
            binding = Binding(incident_id, int(_bind_step.incident_row(ctx, incident_id, group)["episode"]), "member")
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
            plan_work(self.routes, item_note, alerts, work)
        choices = self._choose_runs(binding, work, received)
        bound = _bind_step.group_row(ctx, note.group_key)
        resolving = last.status == "resolved" and bound is not None and bound["state"] == "open"
        still_firing = _bind_step.other_active_groups(ctx, incident_id, note.group_key) if resolving else []
        self._record(binding, note, work, choices, batch[0].id, resolving=resolving, still_firing=still_firing)
        if resolving and not still_firing:
            _record_step.resolve(ctx, incident_id, note)
        with self.store.transaction() as db:
            queued = _commit_step.apply(
                db,
                ctx,
                batch,
                binding,
                work,
                choices,
                resolving=resolving,
                still_firing=still_firing,
                max_attempts=self.max_attempts,
            )
            self._finish(db, batch, per_delivery, duplicates, incident_id)
            done = self.clock()
            for item in batch:
                observe(db, RECORD_HISTOGRAM, RECORD_BUCKETS, max(0.0, done - item.received_at))
        if self.on_recorded is not None:
            self.on_recorded(max(0.0, done - batch[0].received_at))
        return queued

    # -- the steps (thin: the work is in vcci_nb/alerts/ingest/) ----------------------------

    def _bind(self, note: Notification, group: sqlite3.Row | None, firing: list[Alert], received: float) -> Binding:
        """Step 2: the incident new firing alerts belong to (``ingest.bind.bind``)."""
        return _bind_step.bind(self.ctx, note, group, firing, received)

    def _choose_runs(self, binding: Binding, work: Work, received: float) -> list[RunChoice]:
        """Which planned bundles to queue, and which notebooks to leave out (``ingest.coverage``, given the jobs)."""
        notebooks = self.bundle_notebooks() if work.plans else {}
        db = self.store.connection()
        already: dict[str, str] = {}
        if notebooks:
            rows = db.execute(
                "SELECT bundle, state, created_at, finished_at, skip FROM jobs WHERE incident_id = ? AND episode = ? "
                "AND state IN ('queued', 'running', 'succeeded') ORDER BY id",
                (binding.incident_id, binding.episode),
            ).fetchall()
            already = covered([PastJob.from_row(r) for r in rows], received, self.routes.correlate_window_s, notebooks)
        latest: dict[str, PastJob] = {}
        for bundle in work.plans:
            row = db.execute(
                "SELECT * FROM jobs WHERE incident_id = ? AND kind = 'alert' AND bundle = ? AND episode = ? "
                "ORDER BY round DESC LIMIT 1",
                (binding.incident_id, bundle, binding.episode),
            ).fetchone()
            if row is not None:
                latest[bundle] = PastJob.from_row(row)
        return choose_runs(
            binding, work.plans.values(), latest, already, notebooks, received, self.routes.correlate_window_s
        )

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

    def _record(
        self,
        binding: Binding,
        note: Notification,
        work: Work,
        choices: list[RunChoice],
        delivery_id: int,
        *,
        resolving: bool,
        still_firing: list[str],
    ) -> None:
        """Step 3: the batch into the record, in one locked write (``ingest.record.write``)."""
        _record_step.write(
            self.ctx, binding, note, work, choices, delivery_id, resolving=resolving, still_firing=still_firing
        )

    def _finish(
        self,
        db: sqlite3.Connection,
        batch: list[Delivery],
        per_delivery: list[tuple[Notification, list[Alert]]],
        duplicates: list[tuple[str, str, str]],
        incident_id: str | None,
    ) -> None:
        """Step 4's end, inside its transaction: the dedup keys stored, the deliveries done (``ingest.commit``)."""
        _commit_step.finish(db, self.clock(), batch, (per_delivery, duplicates), incident_id)

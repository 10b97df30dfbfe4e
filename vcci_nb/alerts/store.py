"""The receiver's durable state: one SQLite database (WAL, fsync on commit) in a state directory.

Why SQLite: the receiver must persist a notification before it answers 2xx, and survive
SIGKILL at any point without losing or doubling work. One file with WAL and
``synchronous=FULL`` gives a durable commit in well under a millisecond here, and transactions
let every step (a delivery received, alerts deduplicated, a group bound to an incident, a run
claimed, a run finished) be all-or-nothing.

Tables:

- ``deliveries``: every accepted webhook body, in arrival order, ``pending`` until the ingest
  loop has written it into an incident (``done``). Each carries its own ``attempts``: when
  ingesting it raises, it waits (``next_attempt_at``, doubling) and after the last attempt it is
  ``failed``, keeping its ``error``, so that one bad notification never holds up the others
  (``vcci-nb deliveries retry ID`` puts it back once the cause is fixed); ``rejected`` when a
  newer parser refuses a body an older one accepted;
- ``alerts``: one row per (fingerprint, startsAt, status): the deduplication key;
- ``groups``: Alertmanager group key → current incident, its state (``opening``/``joining`` while
  its incident is being chosen, then ``open`` or ``resolved``) and episode;
- ``incidents``: every incident serve opened: its correlation key (``namespace=…``), whether it
  is open, its episode (a reopen starts a new one; runs are unique per incident, bundle and
  episode) and when it opened and last fired (what correlation measures its window against);
- ``jobs``: the run queue: ``queued`` → ``running`` (leased, with the child's pid) →
  ``succeeded``/``failed``/``timeout``, or ``interrupted`` when a restart found it running and it
  had no attempts left, or ``refused`` when a label failed its check; ``announced`` says the
  outcome is in the incident's timeline (a restart writes the ones that are not); ``skip`` (a
  JSON list of notebook stems) and ``skip_reason``: notebooks of the bundle that another bundle
  of the incident already runs, left out with ``vcci-nb run --skip``; written with the job's row
  in one statement, so a restart runs the job with the same list;
- ``attempts``: every start of a job, with how it ended (so an interrupted attempt stays visible);
- ``counters``: totals for /metrics that must survive a restart.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcci_nb.errors import VcciNbError

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,
    n_alerts INTEGER NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    processed_at REAL,
    incident_id TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(state, id);
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    status TEXT NOT NULL,
    group_key TEXT NOT NULL,
    delivery_id INTEGER NOT NULL,
    incident_id TEXT,
    recorded INTEGER NOT NULL DEFAULT 0,
    seen INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (fingerprint, starts_at, status)
);
CREATE INDEX IF NOT EXISTS alerts_delivery ON alerts(delivery_id);
CREATE TABLE IF NOT EXISTS groups (
    group_key TEXT PRIMARY KEY,
    incident_id TEXT,
    previous_incident_id TEXT,
    state TEXT NOT NULL,
    episode INTEGER NOT NULL DEFAULT 0,
    opened_at REAL,
    resolved_at REAL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL,
    group_key TEXT,
    kind TEXT NOT NULL,
    bundle TEXT NOT NULL,
    params TEXT NOT NULL,
    profile TEXT,
    route TEXT,
    episode INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires REAL,
    pid INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    exit_code INTEGER,
    announced INTEGER NOT NULL DEFAULT 0,
    round INTEGER NOT NULL DEFAULT 0,
    skip TEXT NOT NULL DEFAULT '[]',
    skip_reason TEXT,
    UNIQUE (incident_id, kind, bundle, episode, round)
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);
CREATE TABLE IF NOT EXISTS incidents (
    incident_id TEXT PRIMARY KEY,
    correlation TEXT,
    state TEXT NOT NULL,
    episode INTEGER NOT NULL DEFAULT 1,
    opened_at REAL NOT NULL,
    last_fired_at REAL NOT NULL,
    resolved_at REAL
);
CREATE INDEX IF NOT EXISTS incidents_correlation ON incidents(correlation, state);
CREATE TABLE IF NOT EXISTS attempts (
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    owner TEXT NOT NULL,
    pid INTEGER,
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT,
    exit_code INTEGER,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

#: The schema's version (``PRAGMA user_version``); :func:`_migrate` brings older databases up to it.
SCHEMA_VERSION = 4

#: Job states after which nothing more happens to a job.
FINAL_STATES = ("succeeded", "failed", "timeout", "interrupted", "refused")


class StoreError(VcciNbError):
    """The receiver's state database could not be written (the request gets 503, so Alertmanager retries)."""


@dataclass(frozen=True)
class Job:
    """One queued or running bundle run."""

    id: int
    incident_id: str
    group_key: str | None
    kind: str
    bundle: str
    params: dict[str, str]
    profile: str | None
    route: str | None
    episode: int
    state: str
    attempts: int
    max_attempts: int
    pid: int | None
    #: Notebook stems of the bundle not to run (another bundle of the incident runs them).
    skip: tuple[str, ...] = ()
    #: Why, for the runner's timeline entry ("already run in bundle 'investigate' of this incident").
    skip_reason: str = ""

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            id=row["id"],
            incident_id=row["incident_id"],
            group_key=row["group_key"],
            kind=row["kind"],
            bundle=row["bundle"],
            params=json.loads(row["params"]),
            profile=row["profile"],
            route=row["route"],
            episode=row["episode"],
            state=row["state"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            pid=row["pid"],
            skip=tuple(str(s) for s in json.loads(row["skip"] or "[]")),
            skip_reason=str(row["skip_reason"] or ""),
        )


class _PendingDelivery:
    """A request thread's body waiting for the committer."""

    def __init__(self, row: tuple[float, str, str, int, int, bytes]) -> None:
        self.row = row
        self.done = threading.Event()
        self.delivery_id = 0
        self.error: str | None = None


class Store:
    """Thread-safe access to the state database; one connection per thread."""

    def __init__(self, state_dir: Path | str, *, checkpoints: bool = True) -> None:
        self.state_dir = Path(state_dir)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the state directory {self.state_dir}: {exc.strerror}") from exc
        self.path = self.state_dir / "serve.sqlite3"
        # The front (checkpoints=False) leaves WAL checkpoints, which fsync the database file, to
        # the back end, so that no acknowledgement ever waits for one.
        self.checkpoints = checkpoints
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._pending: list[_PendingDelivery] = []
        self._pending_cv = threading.Condition()
        self._committer: threading.Thread | None = None
        self._closing = False
        try:
            conn = self.connection()
            conn.execute("PRAGMA busy_timeout=30000")  # the other process may be writing right now
            conn.executescript(SCHEMA)  # executescript commits by itself
            conn.execute("PRAGMA busy_timeout=0")
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
                with self.transaction() as db:
                    _migrate(db)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot set up the state database {self.path}: {exc}") from exc

    # -- connections ------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA busy_timeout=0")  # see transaction(): we wait ourselves
                if not self.checkpoints:
                    conn.execute("PRAGMA wal_autocheckpoint=0")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the state database {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction, committed (and fsync'd) on success, rolled back on error."""
        conn = self.connection()
        # One writer at a time inside the process: waiting on a Python lock wakes at once, where
        # SQLite's own busy handler sleeps in steps of up to 100 ms (which showed as ack tails).
        with self._write_lock:
            self._begin(conn)
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise StoreError(f"could not commit to the state database {self.path}: {exc}") from exc

    def _begin(self, conn: sqlite3.Connection, timeout: float = 30.0) -> None:
        """BEGIN IMMEDIATE, waiting for the other process's writer in steps of at most 4 ms.

        SQLite's own busy handler backs off to 100 ms sleeps, which a request waiting behind the
        back end's transaction would feel as a 100 ms acknowledgement.
        """
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise StoreError(f"the state database {self.path} is not writable: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"the state database {self.path} is not writable: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.004)

    def close(self) -> None:
        with self._pending_cv:
            self._closing = True
            self._pending_cv.notify_all()
        if self._committer is not None:
            self._committer.join(10.0)
        with self._conns_lock:
            for conn in self._conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._conns.clear()
        self._local = threading.local()

    # -- the request path -------------------------------------------------------------------

    def add_delivery(
        self, *, group_key: str, status: str, n_alerts: int, truncated: int, body: bytes, timeout: float = 30.0
    ) -> int:
        """Persist one accepted webhook body and return its id once it is on disk.

        Request threads hand their body to one committer thread, which writes everything waiting
        in one transaction: one fsync for many requests (group commit), and no request thread
        ever competes for SQLite's write lock. Raises StoreError if the body could not be stored.
        """
        item = _PendingDelivery((time.time(), group_key, status, n_alerts, truncated, body))
        with self._pending_cv:
            if self._closing:
                raise StoreError("the receiver is shutting down")
            if self._committer is None:
                self._committer = threading.Thread(target=self._commit_loop, name="vcci-nb-commit", daemon=True)
                self._committer.start()
            self._pending.append(item)
            self._pending_cv.notify()
        if not item.done.wait(timeout):
            raise StoreError(f"the state database did not take the notification within {timeout:g} s")
        if item.error is not None:
            raise StoreError(f"could not persist the notification: {item.error}")
        return item.delivery_id

    def _commit_loop(self) -> None:
        while True:
            with self._pending_cv:
                while not self._pending and not self._closing:
                    self._pending_cv.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closing:
                    return
            try:
                with self.transaction() as db:
                    for item in batch:
                        n_alerts, truncated = item.row[3], item.row[4]
                        cur = db.execute(
                            "INSERT INTO deliveries(received_at, group_key, status, n_alerts, truncated, body) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            item.row,
                        )
                        item.delivery_id = int(cur.lastrowid or 0)
                        bump(db, "alerts_received", n_alerts)
                        bump(db, "deliveries_received", 1)
                        if truncated:
                            bump(db, "alerts_truncated", truncated)
                            bump(db, "deliveries_truncated", 1)
            except (sqlite3.Error, StoreError) as exc:
                for item in batch:
                    item.error = str(exc)
            for item in batch:
                item.done.set()

    # -- reading, for /metrics and tests -------------------------------------------------------

    def _read(self, sql: str) -> list[sqlite3.Row]:
        """A read from any thread (HTTP threads come and go) through one shared connection."""
        with self._read_lock:
            conn = getattr(self, "_reader", None)
            if conn is None:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                self._reader = conn
                with self._conns_lock:
                    self._conns.append(conn)
            try:
                return conn.execute(sql).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the state database {self.path}: {exc}") from exc

    def counters(self) -> dict[str, int]:
        return {row["name"]: int(row["value"]) for row in self._read("SELECT name, value FROM counters")}

    def job_states(self) -> dict[str, int]:
        rows = self._read("SELECT state, count(*) AS n FROM jobs GROUP BY state")
        return {row["state"]: int(row["n"]) for row in rows}

    def pending_deliveries(self) -> int:
        return int(self._read("SELECT count(*) FROM deliveries WHERE state IN ('pending', 'staged')")[0][0])

    def oldest_pending_age(self, now: float | None = None) -> float:
        """Seconds the oldest notification not yet ingested has waited (0 when none waits)."""
        rows = self._read("SELECT received_at FROM deliveries WHERE state IN ('pending', 'staged') ORDER BY id LIMIT 1")
        if not rows:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - float(rows[0][0]))

    def failed_deliveries(self) -> int:
        return int(self._read("SELECT count(*) FROM deliveries WHERE state = 'failed'")[0][0])

    def deliveries(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Deliveries (newest first), without their bodies; only those in ``state`` when given."""
        sql = (
            "SELECT id, received_at, group_key, status, n_alerts, state, attempts, next_attempt_at, processed_at, "
            "incident_id, error FROM deliveries"
        )
        args: tuple[Any, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state,)
        rows = self.connection().execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [dict(r) for r in rows]

    def retry_delivery(self, delivery_id: int) -> dict[str, Any]:
        """Put a failed (or rejected) delivery back in the queue with fresh attempts; return its row before."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT id, state, group_key, error FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"there is no delivery {delivery_id}; `vcci-nb deliveries list` shows them")
            if row["state"] not in ("failed", "rejected"):
                raise StoreError(
                    f"delivery {delivery_id} is {row['state']}, not failed; only a failed delivery can be retried"
                )
            db.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = NULL, processed_at = NULL "
                "WHERE id = ?",
                (delivery_id,),
            )
            bump(db, "deliveries_retried")
        return dict(row)

    def jobs(self) -> list[dict[str, Any]]:
        rows = self.connection().execute("SELECT * FROM jobs ORDER BY id").fetchall()
        out = []
        for row in rows:
            item = dict(row)
            item["params"] = json.loads(item["params"])
            item["skip"] = json.loads(item["skip"] or "[]")
            out.append(item)
        return out

    def attempts(self, job_id: int | None = None) -> list[dict[str, Any]]:
        db = self.connection()
        if job_id is None:
            rows = db.execute("SELECT * FROM attempts ORDER BY job_id, attempt").fetchall()
        else:
            rows = db.execute("SELECT * FROM attempts WHERE job_id = ? ORDER BY attempt", (job_id,)).fetchall()
        return [dict(r) for r in rows]

    def groups(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.connection().execute("SELECT * FROM groups ORDER BY group_key").fetchall()]


_JOB_COLUMNS = (
    "id, incident_id, group_key, kind, bundle, params, profile, route, episode, state, reason, attempts, "
    "max_attempts, lease_owner, lease_expires, pid, created_at, started_at, finished_at, exit_code, announced"
)


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a state database written by an older receiver up to :data:`SCHEMA_VERSION`, in one transaction.

    Version 2 added ``jobs.round`` to the unique key, so that a bundle that last ran longer ago
    than the correlation window can run again in the same episode. SQLite cannot change a
    table's constraints, so the table is copied. Version 3 added ``jobs.skip`` and
    ``jobs.skip_reason`` (notebooks another bundle of the incident already runs); a job written
    before has none to skip. Both processes call this at start; the first one's transaction
    does it and the second finds the version already set. Version 4 added ``deliveries.attempts``
    and ``deliveries.next_attempt_at`` (failure isolation); an older delivery has had none.
    """
    if int(db.execute("PRAGMA user_version").fetchone()[0]) >= SCHEMA_VERSION:
        return
    columns = {str(row[1]) for row in db.execute("PRAGMA table_info(jobs)")}
    if "round" not in columns:
        create = SCHEMA.split("CREATE TABLE IF NOT EXISTS jobs", 1)[1].split(");", 1)[0]
        db.execute("ALTER TABLE jobs RENAME TO jobs_v1")
        db.execute("DROP INDEX IF EXISTS jobs_state")
        db.execute(f"CREATE TABLE jobs{create});")
        db.execute(f"INSERT INTO jobs({_JOB_COLUMNS}) SELECT {_JOB_COLUMNS} FROM jobs_v1")
        db.execute("DROP TABLE jobs_v1")
        db.execute("CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id)")
        columns = {str(row[1]) for row in db.execute("PRAGMA table_info(jobs)")}
    if "skip" not in columns:
        db.execute("ALTER TABLE jobs ADD COLUMN skip TEXT NOT NULL DEFAULT '[]'")
    if "skip_reason" not in columns:
        db.execute("ALTER TABLE jobs ADD COLUMN skip_reason TEXT")
    delivery_columns = {str(row[1]) for row in db.execute("PRAGMA table_info(deliveries)")}
    if "attempts" not in delivery_columns:
        db.execute("ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    if "next_attempt_at" not in delivery_columns:
        db.execute("ALTER TABLE deliveries ADD COLUMN next_attempt_at REAL")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def bump(db: sqlite3.Connection, name: str, by: int = 1) -> None:
    """Add to a persistent counter inside the caller's transaction."""
    db.execute(
        "INSERT INTO counters(name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
        (name, by),
    )

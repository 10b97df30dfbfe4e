"""Running queued bundles as subprocesses, a bounded number at a time, safely across restarts.

A run is ``python -m vcci_nb run BUNDLE --incident ID -p k=v … --profile P`` in its own process
session (plus ``--skip NOTEBOOK … --skip-reason TEXT`` for the notebooks another bundle of the
incident already runs): the receiver never runs the runner or papermill in its own process, and a
notebook never runs inside a request. Why the care:

- *bounded*: a storm of alerts must not start a storm of kernels, so ``concurrency`` threads
  each claim one job at a time from SQLite;
- *nothing run twice to completion*: a job is claimed in a transaction (``queued`` →
  ``running``, attempts + 1) and its child's pid is stored. The child asks the kernel to kill it
  when the receiver dies (``PR_SET_PDEATHSIG``), and carries a marker in its environment
  (``VCCI_NB_SERVE_ATTEMPT``) that its own children inherit. On the next start every job still
  ``running`` was interrupted: whatever still carries its marker is killed, the attempt is marked
  ``interrupted`` in the queue and in the incident's timeline, and the job is queued again while
  it has attempts left (else it stays ``interrupted``);
- *nothing lost*: a job leaves ``running`` only in a transaction that records how it ended.

Only one receiver may use a state directory at a time (an ``flock`` on ``serve.lock``), which is
what makes "running at start-up" mean "interrupted".
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vcci_nb.alerts.metrics import RUN_BUCKETS, RUN_HISTOGRAM, observe
from vcci_nb.alerts.store import Job, Store
from vcci_nb.errors import RecordError
from vcci_nb.policy import maybe_time
from vcci_nb.record import IncidentRecord, utc_iso
from vcci_nb.redact import redact
from vcci_nb.runenv import SERVE_ATTEMPT, RunEnv, ServeEnv

log = logging.getLogger(__name__)

ACTOR = "vcci-nb serve"
MARKER_ENV = SERVE_ATTEMPT
_PR_SET_PDEATHSIG = 1


def default_run_command() -> list[str]:
    """The runner, as a subprocess (``VCCI_NB_RUN_COMMAND`` overrides it, split like a shell would)."""
    import shlex

    env = ServeEnv.from_environ().run_command
    if env:
        return shlex.split(env)
    return [sys.executable, "-m", "vcci_nb", "run"]


def pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec function that makes the child die with the thread that started it (Linux only)."""
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec


def processes_with_marker(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``VCCI_NB_SERVE_ATTEMPT=marker``."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_marked(marker: str) -> int:
    """SIGKILL every process of one attempt (the runner and the kernels it started)."""
    pids = processes_with_marker(marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


class Worker:
    """A pool of threads that claim jobs from the store and run them as subprocesses."""

    def __init__(
        self,
        store: Store,
        *,
        command: Sequence[str] | None = None,
        concurrency: int = 2,
        timeout_s: float = 1800.0,
        outputs: Path | None = None,
        default_profile: str | None = None,
        env: dict[str, str] | None = None,
        on_finished: Callable[[str, float], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.command = list(command) if command else default_run_command()
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.outputs = outputs
        self.default_profile = default_profile
        self.env = env
        self.on_finished = on_finished
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._children_lock = threading.Lock()
        self._preexec = pdeathsig_preexec()
        self.logs = store.state_dir / "runs"
        self.logs.mkdir(exist_ok=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def recover(self) -> list[int]:
        """Mark jobs left ``running`` by a previous process as interrupted; requeue those with attempts left."""
        db = self.store.connection()
        rows = db.execute("SELECT * FROM jobs WHERE state = 'running' ORDER BY id").fetchall()
        requeued: list[int] = []
        for row in rows:
            job = Job.from_row(row)
            marker = f"{job.id}-{job.attempts}"
            killed = kill_marked(marker)
            again = job.attempts < job.max_attempts
            with self.store.transaction() as tx:
                tx.execute(
                    "UPDATE attempts SET finished_at = ?, outcome = 'interrupted' WHERE job_id = ? AND attempt = ?",
                    (time.time(), job.id, job.attempts),
                )
                tx.execute(
                    "UPDATE jobs SET state = ?, pid = NULL, lease_owner = NULL, finished_at = ? WHERE id = ?",
                    ("queued" if again else "interrupted", None if again else time.time(), job.id),
                )
            what = "queued again" if again else f"not retried ({job.attempts} of {job.max_attempts} attempts used)"
            self._fail_unfinished_notebooks(job, f"interrupted: the receiver stopped during the run; {what}")
            written = self._event(
                job,
                f"Run of bundle {job.bundle!r} (attempt {job.attempts}) was interrupted when the receiver stopped; "
                f"{what}",
                {"job": job.id, "attempt": job.attempts, "outcome": "interrupted", "killed_processes": killed},
            )
            if written and not again:
                with self.store.transaction() as tx:
                    tx.execute("UPDATE jobs SET announced = 1 WHERE id = ?", (job.id,))
            log.warning("job %d (%s for %s) was interrupted; %s", job.id, job.bundle, job.incident_id, what)
            if again:
                requeued.append(job.id)
        # Finished before the last stop, but the outcome never reached the record: write it now.
        for row in db.execute(
            "SELECT * FROM jobs WHERE announced = 0 AND state IN ('succeeded', 'failed', 'timeout', 'interrupted')"
        ).fetchall():
            self._announce(
                Job.from_row(row), row["state"], row["exit_code"], row["reason"] or "", " (noted on restart)"
            )
        return requeued

    def _fail_unfinished_notebooks(self, job: Job, reason: str) -> None:
        """The runner's notebook entries that this attempt left queued or running: mark them failed.

        The runner was killed with the receiver, so nobody else will; left alone they would show
        as running forever in the record and its index.html.
        """
        row = (
            self.store.connection()
            .execute("SELECT started_at FROM attempts WHERE job_id = ? AND attempt = ?", (job.id, job.attempts))
            .fetchone()
        )
        since = datetime.fromtimestamp(float(row["started_at"]) if row else 0.0, UTC)

        def change(d: dict[str, Any]) -> None:
            for entry in d.get("notebooks") or []:
                if entry.get("status") not in ("queued", "running"):
                    continue
                started = entry.get("started_at")
                at = maybe_time(started)
                if at is not None and at < since:
                    continue  # an earlier run's entry, not this attempt's
                entry["status"] = "failed"
                entry["finished_at"] = utc_iso()
                entry["error"] = reason

        try:
            IncidentRecord.load(job.incident_id, self.outputs).update(change)
        except (RecordError, ValueError) as exc:
            log.error("could not mark the interrupted notebooks of %s: %s", job.incident_id, exc)

    def start(self) -> None:
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._loop, name=f"vcci-nb-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop claiming; give running children ``grace_s`` to finish, then kill them (they count as interrupted)."""
        self._stop.set()
        self.wake.set()
        deadline = time.monotonic() + grace_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._children_lock:
            children = list(self._children.values())
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        for thread in self._threads:
            thread.join(5.0)

    # -- one job ------------------------------------------------------------------------------

    def claim(self) -> Job | None:
        with self.store.transaction() as db:
            row = db.execute("SELECT * FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?, started_at = ? "
                "WHERE id = ?",
                (self.owner, now, row["id"]),
            )
            db.execute(
                "INSERT OR REPLACE INTO attempts(job_id, attempt, owner, started_at) VALUES (?, ?, ?, ?)",
                (row["id"], row["attempts"] + 1, self.owner, now),
            )
            claimed = db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
        return Job.from_row(claimed)

    def argv(self, job: Job) -> list[str]:
        args = [*self.command, job.bundle, "--incident", job.incident_id]
        for key, value in sorted(job.params.items()):
            args += ["-p", f"{key}={value}"]
        profile = job.profile or self.default_profile
        if profile:
            args += ["--profile", profile]
        for stem in job.skip:
            args += ["--skip", stem]
        if job.skip:
            args += ["--skip-reason", job.skip_reason or "already run by another bundle of this incident"]
        return args

    def run(self, job: Job) -> str:
        """Run one claimed job to its end; return its final state."""
        marker = f"{job.id}-{job.attempts}"
        env = dict(self.env if self.env is not None else os.environ)
        env[MARKER_ENV] = marker
        if self.outputs is not None:
            env[RunEnv.var("outputs")] = str(self.outputs)
        log_path = self.logs / f"job-{job.id}-attempt-{job.attempts}.log"
        started = time.monotonic()
        without = f"; without {len(job.skip)} notebook{'s' if len(job.skip) != 1 else ''}" if job.skip else ""
        self._event(
            job,
            f"Started bundle {job.bundle!r} (attempt {job.attempts}, route {job.route}{without})",
            {
                "job": job.id,
                "attempt": job.attempts,
                "bundle": job.bundle,
                "params": job.params,
                "skip": list(job.skip),
            },
        )
        try:
            with open(log_path, "wb") as out:
                child = subprocess.Popen(
                    self.argv(job),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    preexec_fn=self._preexec,
                )
        except OSError as exc:
            return self._finish(job, "failed", None, f"could not start the runner: {exc}", started)
        with self._children_lock:
            self._children[job.id] = child
        with self.store.transaction() as db:
            db.execute("UPDATE jobs SET pid = ? WHERE id = ?", (child.pid, job.id))
            db.execute(
                "UPDATE attempts SET pid = ? WHERE job_id = ? AND attempt = ?", (child.pid, job.id, job.attempts)
            )
        try:
            try:
                code = child.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                self._kill(child)
                child.wait()
                return self._finish(job, "timeout", None, f"no result after {self.timeout_s:.0f} s; killed", started)
        finally:
            with self._children_lock:
                self._children.pop(job.id, None)
        if self._stop.is_set() and code < 0:
            # Killed by our own shutdown: leave it 'running' so the next start marks it interrupted.
            return "running"
        state = "succeeded" if code == 0 else "failed"
        return self._finish(job, state, code, self._tail(log_path) if code else "", started)

    @staticmethod
    def _kill(child: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)

    @staticmethod
    def _tail(path: Path, limit: int = 600) -> str:
        try:
            data = path.read_bytes()[-limit:]
        except OSError:
            return ""
        return redact(data.decode("utf-8", "replace")).strip()

    def _finish(self, job: Job, state: str, code: int | None, detail: str, started: float) -> str:
        now = time.time()
        took = time.monotonic() - started
        with self.store.transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, exit_code = ?, finished_at = ?, pid = NULL, reason = ? WHERE id = ?",
                (state, code, now, detail[:2000] or None, job.id),
            )
            observe(db, RUN_HISTOGRAM, RUN_BUCKETS, took)
            db.execute(
                "UPDATE attempts SET finished_at = ?, outcome = ?, exit_code = ? WHERE job_id = ? AND attempt = ?",
                (now, state, code, job.id, job.attempts),
            )
        self._announce(job, state, code, detail, f" after {took:.1f} s")
        if self.on_finished is not None:
            self.on_finished(state, took)
        return state

    def _announce(self, job: Job, state: str, code: int | None, detail: str, suffix: str = "") -> None:
        """Write a finished job's outcome into its incident, then remember that it is there."""
        summary = f"Bundle {job.bundle!r} {state}" + (f" (exit {code})" if code is not None else "") + suffix
        if detail and state != "succeeded":
            summary += f": {detail.splitlines()[-1][:300]}"
        if self._event(job, summary, {"job": job.id, "attempt": job.attempts, "state": state, "exit_code": code}):
            with self.store.transaction() as db:
                db.execute("UPDATE jobs SET announced = 1 WHERE id = ?", (job.id,))

    def _event(self, job: Job, summary: str, data: dict[str, object]) -> bool:
        try:
            IncidentRecord.load(job.incident_id, self.outputs).add_event("run", summary, actor=ACTOR, data=data)
        except RecordError as exc:
            log.error("could not write to %s: %s", job.incident_id, exc)
            return False
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.claim()
            except Exception:  # a locked or full database must not end the worker
                log.exception("could not claim a job; retrying")
                self._stop.wait(1.0)
                continue
            if job is None:
                self.wake.wait(1.0)
                self.wake.clear()
                continue
            started = time.monotonic()
            try:
                self.run(job)
            except Exception as exc:
                log.exception("job %d failed inside the receiver", job.id)
                with contextlib.suppress(Exception):
                    self._finish(job, "failed", None, f"the receiver failed while running it: {exc}", started)

"""The receiver's back end: ingestion, the worker pool and reminders, in a process of their own.

Why a second process: writing an incident record is CPU work in Python (JSON, schema
validation, the HTML index), and in one process it holds the GIL against the HTTP threads, so
acknowledgements queued behind it for hundreds of milliseconds during a storm. Split, the front
(``server.Service``) only authenticates, validates and commits, and this process does the rest.
They share nothing but the SQLite database; the front wakes this process by writing a byte to
its stdin for every stored notification, and this process stops when that pipe closes (the
front is gone) or on SIGTERM. The front starts it with ``PR_SET_PDEATHSIG``, so a SIGKILL of the
front takes it and, through the same mechanism, its runs down too; the next start recovers.

    python -m vcci_nb.alerts.backend STATE_DIR/backend.json
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vcci_nb.alerts.incidents import Ingestor
from vcci_nb.alerts.routing import Routes
from vcci_nb.alerts.store import Store
from vcci_nb.alerts.worker import Worker
from vcci_nb.redact import redact

log = logging.getLogger(__name__)


@dataclass
class BackendConfig:
    """What the front tells the back end (written as JSON into the state directory)."""

    state_dir: str
    outputs: str | None = None
    routes: str | None = None
    profile: str | None = None
    concurrency: int = 2
    run_timeout_s: float = 1800.0
    max_attempts: int = 2
    delivery_attempts: int = 5
    delivery_retry_s: float = 2.0
    run_command: list[str] | None = None
    reminder_interval_s: float = 0.0
    reminders_send: bool = False
    stop_grace_s: float = 5.0
    log_level: int = logging.WARNING
    #: ``local`` (child processes) or ``kubernetes`` (a batch/v1 Job per run, :mod:`vcci_nb.alerts.kubejobs`).
    executor: str = "local"
    job_image: str | None = None
    job_namespace: str | None = None
    record_store: str | None = None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> BackendConfig:
        data: dict[str, Any] = json.loads(path.read_text())
        return cls(**data)


class Backend:
    """Ingest loop + worker pool + reminder loop over one state directory."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.store = Store(Path(config.state_dir))
        outputs = Path(config.outputs) if config.outputs else None
        self.outputs = outputs
        self.ingestor = Ingestor(
            self.store,
            Routes.load(config.routes),
            outputs=outputs,
            max_attempts=config.max_attempts,
            delivery_attempts=config.delivery_attempts,
            retry_base_s=config.delivery_retry_s,
            on_recorded=lambda seconds: self.worker.wake.set(),
        )
        self.worker: Worker
        if config.executor == "kubernetes":
            from vcci_nb.alerts.kubejobs import make_kube_worker

            self.worker = make_kube_worker(
                self.store,
                profile_name=config.profile,
                concurrency=config.concurrency,
                timeout_s=config.run_timeout_s,
                outputs=outputs,
                image=config.job_image,
                namespace=config.job_namespace,
                record_store=config.record_store,
            )
        else:
            self.worker = Worker(
                self.store,
                command=config.run_command,
                concurrency=config.concurrency,
                timeout_s=config.run_timeout_s,
                outputs=outputs,
                default_profile=config.profile,
            )
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.reminders: Callable[[], int] | None = None

    def start(self) -> None:
        # The first record write imports jsonschema, which took 5 s here (rfc3987_syntax builds a
        # grammar when imported): pay that now, not between the first alert and its incident.
        import jsonschema  # noqa: F401

        # Likewise the bundles (the runner's module, which imports more than itself): the first
        # alert's bundle is compared with what its incident already runs.
        self.ingestor.bundle_notebooks()

        self.worker.recover()
        self._spawn("vcci-nb-ingest", self._ingest_loop)
        self.worker.start()
        if self.config.reminder_interval_s > 0:
            from vcci_nb.alerts.reminders import reminder_callable

            self.reminders = reminder_callable(self.outputs, send=self.config.reminders_send)
            if self.reminders is not None:
                self._spawn("vcci-nb-reminders", self._reminder_loop)

    def _spawn(self, name: str, target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _ingest_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                done = self.ingestor.process_pending()
            except Exception:  # the state database itself failed (a delivery's own failure is counted on it)
                log.exception("ingest failed; retrying in 2 s")
                self.stopping.wait(2.0)
                continue
            if done == 0:
                self.wake.wait(1.0)
                self.wake.clear()

    def _reminder_loop(self) -> None:
        while not self.stopping.wait(self.config.reminder_interval_s):
            if self.reminders is None:
                return
            try:
                self.reminders()
            except Exception:
                log.exception("overdue-update reminders failed; trying again next interval")

    def watch(self, stream: Any) -> None:
        """Wake on every byte from the front; stop when the front closes the pipe."""
        while not self.stopping.is_set():
            try:
                data = stream.read1(4096) if hasattr(stream, "read1") else stream.read(1)
            except (OSError, ValueError):
                data = b""
            if not data:
                self.stopping.set()
                break
            self.wake.set()
        self.wake.set()

    def stop(self) -> None:
        """Stop claiming; give runs the grace period; what is still running counts as interrupted."""
        self.stopping.set()
        self.wake.set()
        self.worker.stop(self.config.stop_grace_s)
        for thread in self._threads:
            thread.join(5.0)
        self.worker.recover()  # mark what the stop interrupted now, not at the next start
        self.store.close()


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vcci_nb.alerts.backend STATE_DIR/backend.json", file=sys.stderr)
        return 2
    config = BackendConfig.read(Path(args[0]))
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s [backend]: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)
    backend = Backend(config)

    def on_signal(signum: int, frame: Any) -> None:
        backend.stopping.set()
        backend.wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    backend.start()
    watcher = threading.Thread(target=backend.watch, args=(sys.stdin.buffer,), name="vcci-nb-wake", daemon=True)
    watcher.start()
    while not backend.stopping.wait(0.5):
        pass
    backend.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

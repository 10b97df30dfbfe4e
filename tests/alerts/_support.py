"""Helpers for the alert receiver tests: a real `vcci-nb serve` process, real HTTP, real SQLite.

Runs go to a small real script (``fake_runner.py``) instead of the notebook runner, so that these
tests see exactly which runs started, with which arguments, how many at once, and whether one
finished twice. The end-to-end test in test_e2e.py uses the real runner and the lab.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
FAKE_RUNNER = Path(__file__).with_name("fake_runner.py")


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll until ``check()`` is truthy; fail with ``what`` after ``timeout`` (a bound, not a timing claim)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def alert(
    name: str = "HighErrorRate",
    fingerprint: str = "a1b2c3d4e5f60718",
    starts_at: str = "2026-01-06T10:00:00.123456789Z",
    status: str = "firing",
    **labels: str,
) -> dict[str, Any]:
    merged = {"alertname": name, "severity": "critical", "service": "vcci-api", "namespace": "vcci-production"}
    merged.update(labels)
    return {
        "status": status,
        "labels": merged,
        "annotations": {"summary": f"{name} on vcci-api", "description": "test alert"},
        "startsAt": starts_at,
        "endsAt": "2026-01-06T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


GROUP = '{}:{alertname="HighErrorRate"}'


def notification(alerts: list[dict[str, Any]], group_key: str = GROUP, **extra: Any) -> dict[str, Any]:
    status = "resolved" if all(a["status"] == "resolved" for a in alerts) else "firing"
    body = {
        "receiver": "vcci-nb",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }
    body.update(extra)
    return body


@dataclass
class Serve:
    """A running `vcci-nb serve` and the folders it uses."""

    root: Path
    token: str
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    verbose: bool = False
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def markers(self) -> Path:
        return self.root / "markers"

    def start(self) -> Serve:
        cmd = [sys.executable, "-m", "vcci_nb", *(["-vv"] if self.verbose else []), "serve"]
        cmd += ["--port", "0", "--state-dir", str(self.state_dir), *self.args]
        with open(self.root / "serve.log", "a") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.wait(5)
            raise AssertionError(f"serve did not start: {line!r}\n{(self.root / 'serve.log').read_text()}")
        self.url = line.rsplit(" ", 1)[1].strip()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def post(
        self, payload: Any, *, token: str | None = "default", raw: bytes | None = None, **kw: Any
    ) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if token == "default":
            token = self.token
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        headers.setdefault("Content-Type", "application/json")
        data = raw if raw is not None else json.dumps(payload).encode()
        return self.session.post(f"{self.url}/alertmanager", data=data, headers=headers, timeout=30, **kw)

    def metrics(self) -> dict[str, float]:
        text = self.session.get(f"{self.url}/metrics", timeout=10).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.state_dir / "serve.sqlite3", timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def jobs(self) -> list[dict[str, Any]]:
        with self.db() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY id")]

    def records(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.outputs.glob("INC-*/record.json")):
            out.append(json.loads(path.read_text()))
        return out

    def runs(self, kind: str = "done") -> list[dict[str, Any]]:
        """What the fake runner wrote: one JSON file per start ('start') or completion ('done')."""
        return [json.loads(p.read_text()) for p in sorted(self.markers.glob(f"{kind}-*.json"))]

    def settled(self) -> bool:
        """No notification waiting, no run queued or running, every outcome written into its record."""
        with self.db() as conn:
            pending = conn.execute("SELECT count(*) FROM deliveries WHERE state != 'done'").fetchone()[0]
            busy = conn.execute(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running') OR announced = 0"
            ).fetchone()[0]
        return pending == 0 and busy == 0


def skipped(argv: list[str]) -> list[str]:
    """The notebooks a run was told to leave out (``--skip NOTEBOOK`` …), in order."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--skip"]


def notebooks_run(runs: list[dict[str, Any]], incident: str) -> list[str]:
    """Every notebook the incident's runs (fake runner markers) ran: each bundle's, less what it skipped."""
    from vcci_nb.runner.bundles import load_bundles

    bundles = load_bundles()
    out: list[str] = []
    for run in runs:
        if run["incident"] == incident:
            left_out = set(skipped(run["argv"]))
            out += [Path(nb).stem for nb in bundles[run["bundle"]].notebooks if Path(nb).stem not in left_out]
    return out


def start_serve(
    base: Path,
    *args: str,
    sleep: float = 0.0,
    exit_code: int = 0,
    routes: str | None = None,
    verbose: bool = False,
    real_runner: bool = False,
    env_extra: dict[str, str] | None = None,
) -> Serve:
    """Start `vcci-nb serve` in ``base`` (state, outputs and markers below it) with the fake runner."""
    (base / "markers").mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    env = dict(os.environ)
    env.update(
        {
            "VCCI_NB_SERVE_TOKEN": token,
            "VCCI_NB_OUTPUTS": str(base / "outputs"),
            "VCCI_NB_RUN_COMMAND": f"{sys.executable} {FAKE_RUNNER}",
            "FAKE_RUNNER_MARKERS": str(base / "markers"),
            "FAKE_RUNNER_SLEEP": str(sleep),
            "FAKE_RUNNER_EXIT": str(exit_code),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.pop("VCCI_NB_SERVE_TOKEN_FILE", None)
    if real_runner:
        env.pop("VCCI_NB_RUN_COMMAND", None)
    env.update(env_extra or {})
    extra = list(args)
    if routes is not None:
        path = base / "routes.yaml"
        path.write_text(routes)
        extra += ["--routes", str(path)]
    return Serve(root=base, token=token, args=extra, env=env, verbose=verbose).start()

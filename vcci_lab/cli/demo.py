"""``vcci-nb demo``: the main job, end to end, on the built-in lab.

It starts the lab and ``vcci-nb serve``, routes the lab's Alertmanager to it, breaks the lab the way
the seed's example incident describes (connection pool exhaustion during a traffic spike), and
waits while the real Prometheus rule fires, the real Alertmanager posts to ``serve``, ``serve``
opens the incident and runs the triage bundle. Then it prints what the record found and where to
open it. ``--keep`` leaves everything running to explore; otherwise the fault is healed and the
servers stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from vcci_nb.errors import VcciNbError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="start the lab, drive an incident through it from alert to record, and show the record",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dir", default=".lab", help="lab directory (default .lab)")
    p.add_argument("--outputs", default="outputs", help="incident records folder (default outputs)")
    p.add_argument("--fault", default="example_incident", help="fault or preset to inject (default example_incident)")
    p.add_argument("--timeout", type=float, default=420.0, help="seconds to wait for the record (default 420)")
    p.add_argument("--keep", action="store_true", help="leave the lab, the fault and serve running afterwards")
    p.set_defaults(func=_demo)


def _say(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own 127.0.0.1 server
        return str(resp.read().decode())


def _metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head == want or (not labels and head == f"{name}{{}}"):
            return float(value)
    return 0.0


class Serve:
    """``vcci-nb serve`` on a free 127.0.0.1 port with a fresh queue and token of its own, for the
    demo and the drill (tests/bench/drill.py): each is a new story, and a queue left by an earlier
    one would still hold its open incident, which this fault's alerts would join."""

    def __init__(
        self, env: dict[str, str], state: Path, outputs: Path, *, profile: str = "lab", timeout: float = 60.0
    ) -> None:
        state.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(state / "queue", ignore_errors=True)
        token_file = state / "token"
        token_file.write_text(secrets.token_urlsafe(24))
        token_file.chmod(0o600)
        self.token = token_file.read_text()
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = state / "serve.log"
        env = {**env, "VCCI_NB_SERVE_TOKEN_FILE": str(token_file), "VCCI_NB_OUTPUTS": str(outputs)}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vcci_nb", "serve", "--port", str(self.port), "--state-dir",
                 str(state / "queue"), "--outputs", str(outputs), "--profile", profile],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                _get(f"{self.base}/healthz")
                return
            except OSError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise VcciNbError(f"vcci-nb serve did not start; see {self.log}") from exc
                time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def metrics(self) -> str:
        try:
            return _get(f"{self.base}/metrics")
        except OSError:
            return ""

    def runs(self) -> tuple[float, float, float]:
        """Bundle runs queued, running and finished (in any end state)."""
        m = self.metrics()
        finished = sum(
            _metric(m, "vcci_nb_serve_runs", f'state="{s}"')
            for s in ("succeeded", "failed", "timeout", "interrupted", "refused")
        )
        return (
            _metric(m, "vcci_nb_serve_runs", 'state="queued"'),
            _metric(m, "vcci_nb_serve_runs", 'state="running"'),
            finished,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def _new_records(outputs: Path, before: set[str]) -> list[Path]:
    return sorted(p for p in outputs.glob("INC-*") if p.name not in before and (p / "record.json").exists())


def _demo(args: argparse.Namespace) -> int:
    from vcci_lab import Lab

    lab = Lab(Path(args.dir))
    outputs = Path(args.outputs).resolve()
    outputs.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    _say(f"starting the lab in {lab.dir} (real PostgreSQL, Redis, Prometheus, Alertmanager, RabbitMQ, ...)")
    lab.up(progress=lambda m: print(f"    {m}", file=sys.stderr, flush=True))
    env = {**os.environ, **lab.env()}

    serve = Serve(env, lab.dir / "serve", outputs)
    base = serve.base
    _say(f"vcci-nb serve on 127.0.0.1:{serve.port} (log {serve.log})")
    try:
        lab.set_webhook(f"{base}/alertmanager", serve.token)

        before = {p.name for p in outputs.glob("INC-*")}
        _say(f"injecting '{args.fault}' into the lab; waiting for Prometheus to fire and Alertmanager to post")
        t_fault = time.monotonic()
        lab.inject(args.fault)
        folders = _wait_for_record(base, outputs, before, args.timeout, serve)
        t_done = time.monotonic()
        reports = [_report(folder) for folder in folders]
        groups = sum(g for g, _ in reports)
        left_out = sum(n for _, n in reports)
        print(
            f"\nincidents opened: {len(folders)} (for {groups} alert group{'s' if groups != 1 else ''}; "
            "groups of one namespace within incidents.correlate_window_s share one incident)"
        )
        print(f"notebooks not run twice: {left_out} (another bundle of the same incident ran them)")
        print(f"fault to finished records: {t_done - t_fault:.0f}s (demo total {t_done - t0:.0f}s)")
        print(f"open: {folders[0] / 'index.html'}")
    finally:
        if args.keep:
            _say(f"left running: the lab ({lab.dir}), fault '{args.fault}', serve at {base} (pid {serve.pid})")
            _say(f"stop with: kill {serve.pid}; vcci-nb lab heal {args.fault} --dir {lab.dir}; vcci-nb lab down")
        else:
            _say("healing the fault, stopping serve and the lab (use --keep to explore them)")
            serve.stop()
            lab.set_webhook(None)
            lab.down()
    return 0


def _wait_for_record(base: str, outputs: Path, before: set[str], timeout: float, serve: Serve) -> list[Path]:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if serve.proc.poll() is not None:
            raise VcciNbError("vcci-nb serve stopped during the demo; see its log")
        try:
            metrics = _get(f"{base}/metrics")
        except OSError:
            metrics = ""
        received = _metric(metrics, "vcci_nb_serve_alerts_received_total")
        queued = _metric(metrics, "vcci_nb_serve_runs", 'state="queued"')
        running = _metric(metrics, "vcci_nb_serve_runs", 'state="running"')
        finished = sum(
            _metric(metrics, "vcci_nb_serve_runs", f'state="{s}"')
            for s in ("succeeded", "failed", "timeout", "interrupted", "refused")
        )
        new = _new_records(outputs, before)
        line = f"alerts received {received:.0f}, incidents {len(new)}, runs queued {queued:.0f} running {running:.0f}"
        if line != last:
            _say(line)
            last = line
        if new and finished >= 1 and queued == 0 and running == 0:
            return new
        time.sleep(1.0)
    raise VcciNbError(
        f"no finished incident record within {timeout:.0f}s. Check `vcci-nb lab status`, the Prometheus "
        "alerts page and the serve log, then try again with a larger --timeout."
    )


def _report(folder: Path) -> tuple[int, int]:
    """Print one incident's summary; return how many alert groups it holds and how many notebooks runs left out."""
    record = json.loads((folder / "record.json").read_text())
    print()
    print(f"Incident {record['id']}  {record['severity']}  {record['status']}  {record['title']}")
    alerts = sorted({a.get("labels", {}).get("alertname", "?") for a in record.get("alerts", [])})
    print(f"  alerts:    {', '.join(alerts) or 'none'}")
    groups = record.get("alert_groups") or []
    for g in groups:
        print(f"  group:     {g.get('name')} ({g.get('role')}, {g.get('status')})")
    left_out = 0
    for ev in record.get("timeline", []):
        summary = str(ev.get("summary", ""))
        data = ev.get("data") if isinstance(ev.get("data"), dict) else {}
        if ev.get("kind") != "run":
            continue
        if " not queued " in summary:
            print(f"  skipped:   {summary}")
            left_out += len(data.get("notebooks") or [])  # a bundle whose every notebook another one ran
        elif summary.startswith("Run ") and " started: " in summary:  # the runner's entry for one bundle run
            ran, skipped = data.get("notebooks") or [], data.get("skipped") or []
            line = f"  run:       {data.get('target')}: {len(ran)} notebook{'s' if len(ran) != 1 else ''}"
            if skipped:
                left_out += len(skipped)
                line += f", not run: {', '.join(skipped)}"
                reason = summary.rpartition(" (")[2].rstrip(")") if summary.endswith(")") else ""
                line += f" ({reason})" if reason else ""
            print(line)
    for nb in record.get("notebooks", []):
        print(f"  notebook:  {nb.get('status', '?'):<10} {nb.get('name')}")
    from vcci_nb import story

    # each finding once, causes first (the record keeps every notebook's observation)
    facts = story.facts(record.get("findings", []))
    for f in facts[:8]:
        print(f"  {f.role + ':':<13}{story.line(f)}")
    if len(facts) > 8:
        print(f"  ... and {len(facts) - 8} more findings")
    print(f"  record:    {folder / 'index.html'}")
    return max(1, len(groups)), left_out

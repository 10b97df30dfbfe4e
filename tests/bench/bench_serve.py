"""Benchmark ``vcci-nb serve``: acknowledgement latency under load, and a storm worked off.

    .venv/bin/python tests/bench/bench_serve.py                # 100 req/s for 20 s, then a 1,000-alert storm
    .venv/bin/python tests/bench/bench_serve.py --rate 100 --seconds 30 --json out.json

1. **Acknowledgement latency** at a steady rate (open loop: requests leave on schedule whether or
   not earlier ones were answered). Each POST /alertmanager carries one new alert in one of 50
   groups, so the receiver persists (SQLite, fsync) and, on its other threads, opens incidents,
   writes records and starts runs while it answers. Baseline in the same run and at the same
   rate: GET /healthz, which does no I/O; and, as the floor the disk sets, one durable SQLite
   commit (WAL, fsync) on the same disk. Reported: median, p95, p99, and the ratios.
2. **Storm**: 1,000 alerts in 20 groups as fast as 8 clients can send them: how fast they are
   acknowledged, and how long until every alert is in an incident record and every run finished.

Runs go to ``true`` (a process that exits at once), so the figures are the receiver's own cost.
The receiver is a real ``vcci-nb serve`` subprocess on 127.0.0.1. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class _Done(Exception):
    """The storm was not asked for."""


def _body(i: int, groups: int, prefix: str) -> bytes:
    name = f"{prefix}{i % groups}"
    return json.dumps(
        {
            "receiver": "vcci-nb",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": name, "severity": "high", "namespace": "vcci-production", "i": str(i)},
                    "annotations": {"summary": "benchmark alert"},
                    "startsAt": "2026-01-06T10:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example/graph",
                    "fingerprint": f"{prefix.encode().hex()[:4]}{i:012x}",
                }
            ],
            "groupLabels": {"alertname": name},
            "commonLabels": {"alertname": name},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{name}"}}',
            "truncatedAlerts": 0,
        }
    ).encode()


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.local.conn = conn
        return conn

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        for attempt in range(2):
            conn = self._conn()
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                return resp.status, time.perf_counter() - started
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _open_loop(client: Client, rate: float, seconds: float, make: Any) -> list[float]:
    """Send ``rate`` requests a second for ``seconds``; return each latency (s). Fails on a non-2xx."""
    total = int(rate * seconds)
    latencies: list[float] = [0.0] * total
    codes: list[int] = [0] * total

    def one(i: int) -> None:
        method, path, body = make(i)
        codes[i], latencies[i] = client.request(method, path, body)

    start = time.perf_counter() + 0.1
    with ThreadPoolExecutor(16) as pool:
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
    bad = [c for c in codes if c != 200]
    if bad:
        raise SystemExit(f"{len(bad)} requests were not answered 200 (e.g. {bad[0]})")
    return latencies


def _fsync_floor(directory: Path, rate: float, seconds: float) -> list[float]:
    """Latency of one durable SQLite commit (WAL, synchronous=FULL) on the state directory's disk."""
    db = sqlite3.connect(directory / "floor.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (body BLOB)")
    out = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (b"x" * 1200,))
        db.execute("COMMIT")
        out.append(time.perf_counter() - t)
    db.close()
    return out


def _server_histogram(port: int, name: str) -> dict[str, int]:
    """The receiver's own view of a histogram (cumulative bucket counts), from its /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[le] = int(float(line.rsplit(" ", 1)[1]))
    return out


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {"n": len(values), "median_ms": statistics.median(ordered) * 1000, "p95_ms": q(0.95), "p99_ms": q(0.99)}


def _settled(state: Path, runs_expected: int) -> tuple[int, int]:
    with sqlite3.connect(state / "serve.sqlite3", timeout=30) as db:
        pending = db.execute("SELECT count(*) FROM deliveries WHERE state != 'done'").fetchone()[0]
        done = db.execute("SELECT count(*) FROM jobs WHERE state IN ('succeeded', 'failed')").fetchone()[0]
    return int(pending), int(done)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each steady phase (default 20)")
    parser.add_argument("--storm", type=int, default=1000, help="alerts in the storm (default 1000)")
    parser.add_argument("--concurrency", type=int, default=2, help="serve --concurrency (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    token = secrets.token_hex(24)
    env = dict(os.environ, VCCI_NB_SERVE_TOKEN=token, VCCI_NB_OUTPUTS=str(tmp / "outputs"), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "vcci_nb", "serve", "--port", "0", "--state-dir", str(tmp / "state")]
    cmd += ["--run-command", "true", "--concurrency", str(args.concurrency)]
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115 - closed at the end
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise SystemExit(f"serve did not start: {(tmp / 'serve.log').read_text()}")
        port = int(line.rsplit(":", 1)[1])
        client = Client(port, token)
        for _ in range(50):  # warm up connections and code paths
            client.request("GET", "/healthz")
        results: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds, "machine_cpus": os.cpu_count()}

        # Baseline first and again after, so drift on a shared machine shows.
        base1 = _open_loop(client, args.rate, args.seconds / 2, lambda i: ("GET", "/healthz", None))
        posts = _open_loop(client, args.rate, args.seconds, lambda i: ("POST", "/alertmanager", _body(i, 50, "Bench")))
        base2 = _open_loop(client, args.rate, args.seconds / 2, lambda i: ("GET", "/healthz", None))
        floor = _fsync_floor(tmp, args.rate, args.seconds / 2)
        base = _summary(base1 + base2)
        ack = _summary(posts)
        results["fsync_floor"] = _summary(floor)
        results["healthz"] = base
        results["ack"] = ack
        results["ratio_median"] = ack["median_ms"] / base["median_ms"]
        results["ratio_p99"] = ack["p99_ms"] / base["p99_ms"]
        results["server_ack_buckets"] = _server_histogram(port, "vcci_nb_serve_ack_seconds")
        wait_start = time.monotonic()
        while args.storm > 0 and _settled(tmp / "state", 50)[0] > 0:
            time.sleep(0.1)
        results["steady_backlog_drain_s"] = time.monotonic() - wait_start

        # The storm.
        if args.storm <= 0:
            raise _Done
        groups = 20
        bodies = [_body(i, groups, "Storm") for i in range(args.storm)]
        _, runs_before = _settled(tmp / "state", 0)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(lambda b: client.request("POST", "/alertmanager", b), bodies))
        t_acked = time.perf_counter() - t0
        if any(code != 200 for code, _ in outcomes):
            raise SystemExit("storm: some alerts were not accepted")
        while True:
            pending, runs = _settled(tmp / "state", 0)
            if pending == 0 and runs - runs_before >= groups:
                break
            time.sleep(0.05)
        t_done = time.perf_counter() - t0
        recorded = sum(len(json.loads(p.read_text())["alerts"]) for p in (tmp / "outputs").glob("INC-*/record.json"))
        results["storm"] = {
            "alerts": args.storm,
            "groups": groups,
            "acked_in_s": t_acked,
            "acks_per_s": args.storm / t_acked,
            "ack": _summary([lat for _, lat in outcomes]),
            "all_recorded_and_run_in_s": t_done,
            "alerts_recorded_per_s": args.storm / t_done,
            "alerts_in_records_total": recorded,
        }
    except _Done:
        results["storm"] = None
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()

    print(f"steady load: {args.rate:g} req/s, {args.seconds:g} s of POSTs; baseline GET /healthz at the same rate")
    print(f"{'':24}{'median ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    rows = (("GET /healthz", "healthz"), ("one SQLite fsync commit", "fsync_floor"), ("POST /alertmanager", "ack"))
    for name, key in rows:
        s = results[key]
        print(f"{name:24}{s['median_ms']:10.2f}{s['p95_ms']:10.2f}{s['p99_ms']:10.2f}")
    buckets = results["server_ack_buckets"]
    total = buckets.get("+Inf", 0) or 1
    print(
        "server-side ack time, share of requests within: "
        + ", ".join(
            f"{le} s {count / total:.1%}"
            for le, count in buckets.items()
            if le in ("0.005", "0.025", "0.05", "0.1", "0.5")
        )
    )
    print(f"ratio POST/healthz: median {results['ratio_median']:.2f}x, p99 {results['ratio_p99']:.2f}x")
    st = results["storm"]
    if st is None:
        return 0
    print(
        f"storm: {st['alerts']} alerts in {st['groups']} groups acknowledged in {st['acked_in_s']:.2f} s "
        f"({st['acks_per_s']:.0f}/s, p99 ack {st['ack']['p99_ms']:.1f} ms); all in records and "
        f"{st['groups']} runs done after {st['all_recorded_and_run_in_s']:.2f} s "
        f"({st['alerts_recorded_per_s']:.0f} alerts/s); alerts found in records: {st['alerts_in_records_total']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

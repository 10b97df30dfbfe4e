"""Storm: 3,600 single-alert notifications into one incident vs the same alerts as 36 grouped ones (issue 16 item 10).

    .venv/bin/python tests/bench/bench_storm.py [--alerts 3600] [--groups 36] [--threads 8]

One run, one real ``vcci-nb serve`` (fake runner), three phases:

1. baseline: the alerts as ``--groups`` notifications of ``alerts/groups`` alerts each, one group;
2. storm: the same number of alerts, one per notification, into one incident of another namespace;
3. during the storm, once half of it is posted, a notification of a third namespace: how long
   until its incident's record.json exists.

Each phase's time runs from its first POST to the moment its record.json holds every alert.
Target (issue 16): storm within 10x the baseline; the third incident's record within 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.alerts._support import alert, notification, start_serve  # noqa: E402


def _alerts_in(outputs: Path, group_key: str) -> int:
    for path in outputs.glob("INC-*/record.json"):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if data.get("group_key") == group_key:
            return len(data.get("alerts") or [])
    return -1


def _wait(outputs: Path, group_key: str, n: int, started: float, timeout: float = 1800.0) -> float:
    while time.monotonic() - started < timeout:
        if _alerts_in(outputs, group_key) >= n:
            return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError(f"{group_key}: not {n} alerts after {timeout} s")


def _alerts(ns: str, n: int, offset: int) -> list[dict[str, Any]]:
    return [
        alert("StormAlert", fingerprint=f"{offset + i:016x}", namespace=ns, pod=f"pod-{i}", service=f"svc-{ns}")
        for i in range(n)
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=3600)
    parser.add_argument("--groups", type=int, default=36)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs (a fresh serve each); medians are reported")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    runs = [_run(args) for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"medians of {len(runs)}: grouped {med['grouped']:.1f} s, storm {med['storm']:.1f} s, "
        f"ratio {med['ratio']:.1f}x (target <= 10x), second incident {med['second']:.1f} s (target <= 5 s)"
    )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


def _run(args: argparse.Namespace) -> dict[str, float]:
    per = args.alerts // args.groups
    with tempfile.TemporaryDirectory() as tmp:
        serve = start_serve(Path(tmp), "--concurrency", "1")
        try:
            outputs = serve.outputs
            # 1. baseline: grouped
            key_a = '{}:{alertname="StormAlert",namespace="ns-grouped"}'
            alerts_a = _alerts("ns-grouped", args.alerts, 0)
            started = time.monotonic()
            with ThreadPoolExecutor(args.threads) as pool:
                bodies = [notification(alerts_a[i * per : (i + 1) * per], group_key=key_a) for i in range(args.groups)]
                assert all(c == 200 for c in pool.map(lambda b: serve.post(b).status_code, bodies))
            grouped = _wait(outputs, key_a, args.alerts, started)
            print(f"grouped: {args.groups} notifications x {per} alerts -> record in {grouped:.1f} s")

            # 2. storm: one alert per notification, and 3. a second incident half way
            key_b = '{}:{alertname="StormAlert",namespace="ns-storm"}'
            key_c = '{}:{alertname="OtherAlert",namespace="ns-other"}'
            alerts_b = _alerts("ns-storm", args.alerts, 1_000_000)
            half = threading.Event()
            second: dict[str, float] = {}

            def other() -> None:
                half.wait()
                t0 = time.monotonic()
                body = notification(
                    [alert("OtherAlert", fingerprint="c0ffee", namespace="ns-other", service="other")],
                    group_key=key_c,
                )
                assert serve.post(body).status_code == 200
                second["s"] = _wait(outputs, key_c, 1, t0)

            watcher = threading.Thread(target=other)
            watcher.start()
            started = time.monotonic()
            sent = 0
            lock = threading.Lock()

            def post(a: dict[str, Any]) -> int:
                nonlocal sent
                code = serve.post(notification([a], group_key=key_b)).status_code
                with lock:
                    sent += 1
                    if sent >= args.alerts // 2:
                        half.set()
                return code

            with ThreadPoolExecutor(args.threads) as pool:
                assert all(c == 200 for c in pool.map(post, alerts_b))
            posted = time.monotonic() - started
            storm = _wait(outputs, key_b, args.alerts, started)
            watcher.join()
            print(f"storm: {args.alerts} notifications x 1 alert posted in {posted:.1f} s -> record in {storm:.1f} s")
            print(f"ratio storm/grouped: {storm / grouped:.1f}x (target <= 10x)")
            print(f"second incident opened during the storm: record after {second['s']:.1f} s (target <= 5 s)")
        finally:
            serve.stop()
    return {"grouped": grouped, "storm": storm, "ratio": storm / grouped, "second": second["s"]}


if __name__ == "__main__":
    sys.exit(main())

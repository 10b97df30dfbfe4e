"""Twenty incidents in a minute: ``serve --executor kubernetes`` against ``--executor local``, in one run (issue 19).

    .venv/bin/python tests/bench/bench_jobs.py [--incidents 20] [--spread 60] [--bundle resolve]
    VCCI_NB_TEST_LAB_DIR=/tmp/mylab .venv/bin/python tests/bench/bench_jobs.py   # an already running lab

On the lab (its Kubernetes emulator runs each Job's pod as a local process; its moto server is the
record store), for each executor in turn (kubernetes first, then local, same machine, same lab):

1. a real ``vcci-nb serve`` with that executor (local: ``--concurrency 2``, serve's default;
   kubernetes: ``--concurrency 20``, every run its own Job at once);
2. ``--incidents`` alerts, each its own alert group and incident (correlation off), posted evenly
   over ``--spread`` seconds, each routing to ``--bundle``;
3. meanwhile a prober POSTs a resolved notification of an unknown group every 0.1 s and times the
   acknowledgement (the receiver's hot path: authenticate, validate, commit, answer);
4. the time from the first alert until every incident's run has ended and its outcome is in its
   record ("last record complete").

Reported per executor: last-record time, runs succeeded, acknowledgement median and p99, and the
CPU seconds serve's own two processes used (front and back end, not the runs); then the ratios
kubernetes/local. Also the machine's load average before and after. Not collected by pytest.

Caveat, and the point of the figures: here the "cluster" is this machine, so Jobs compete with
the receiver for the same cores; in a cluster the runs leave serve's node. What the lab measures
is that the executor itself (create, watch, merge) does not slow the receiver, and how the queue
behind ``--concurrency 2`` compares with twenty runs at once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.alerts._support import Serve, alert, notification, start_serve  # noqa: E402


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def _lab() -> Iterator[Any]:
    from vcci_lab import Lab

    reuse = os.environ.get("VCCI_NB_TEST_LAB_DIR")
    if reuse:
        lab = Lab(reuse)
        if not lab.is_up():
            lab.up()
        yield lab
        return
    from tests.labs import own_lab

    with own_lab("vcci-nb-bench-jobs-") as lab:
        yield lab


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve_cpu_s(serve: Serve) -> float:
    """CPU seconds of serve's two processes: the HTTP front and its back end (not the runs)."""
    assert serve.proc is not None
    pids = [serve.proc.pid]
    for child in Path(f"/proc/{serve.proc.pid}/task/{serve.proc.pid}/children").read_text().split():
        if b"vcci_nb.alerts.backend" in Path(f"/proc/{child}/cmdline").read_bytes():
            pids.append(int(child))
    return sum(_cpu_s(p) for p in pids)


def _prober(serve: Serve, stop: threading.Event, out: list[float]) -> None:
    body = notification(
        [alert("BenchProbe", fingerprint="beefbeefbeefbeef", status="resolved")], group_key='{}:{alertname="Probe"}'
    )
    session = serve.session
    while not stop.is_set():
        started = time.perf_counter()
        r = session.post(
            f"{serve.url}/alertmanager",
            data=json.dumps(body),
            headers={"Authorization": f"Bearer {serve.token}", "Content-Type": "application/json"},
            timeout=30,
        )
        if r.status_code == 200:
            out.append(time.perf_counter() - started)
        stop.wait(0.1)


def _phase(lab: Any, root: Path, executor: str, args: argparse.Namespace) -> dict[str, Any]:
    from tests.alerts.test_kube_executor import routes_text

    extra = ["--executor", executor, "--concurrency", "20" if executor == "kubernetes" else "2"]
    serve = start_serve(root, *extra, routes=routes_text(), real_runner=True, env_extra=lab.env())
    acks: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=_prober, args=(serve, stop, acks), daemon=True)
    try:
        prober.start()
        time.sleep(2.0)  # a few acknowledgements before any run
        first = time.monotonic()
        gap = args.spread / max(1, args.incidents - 1)
        for i in range(args.incidents):
            one = alert(f"BenchJobs{i:02d}", fingerprint=f"{0xB000 + i:016x}", severity="warning", bundle=args.bundle)
            r = serve.post(notification([one], group_key=f'{{}}:{{alertname="BenchJobs{i:02d}"}}'))
            assert r.status_code == 200, r.text
            time.sleep(max(0.0, first + (i + 1) * gap - time.monotonic()) if i < args.incidents - 1 else 0)
        deadline = first + args.timeout
        while time.monotonic() < deadline:
            jobs = [j for j in serve.jobs() if j["bundle"] == args.bundle]
            if len(jobs) >= args.incidents and all(
                j["state"] not in ("queued", "running") and j["announced"] for j in jobs
            ):
                break
            time.sleep(0.5)
        else:
            raise TimeoutError(f"{executor}: not every run done after {args.timeout} s")
        took = time.monotonic() - first
        cpu = _serve_cpu_s(serve)
    finally:
        stop.set()
        prober.join(5)
        serve.stop()
    jobs = [j for j in serve.jobs() if j["bundle"] == args.bundle]
    return {
        "executor": executor,
        "last_record_complete_s": round(took, 1),
        "runs": len(jobs),
        "succeeded": sum(j["state"] == "succeeded" for j in jobs),
        "ack_samples": len(acks),
        "ack_median_ms": round(statistics.median(acks) * 1000, 2),
        "ack_p99_ms": round(_p(acks, 0.99) * 1000, 2),
        "serve_cpu_s": round(cpu, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=20)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which the alerts arrive")
    parser.add_argument("--bundle", default="resolve", help="the bundle each alert routes to (default resolve)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--json", default=None, help="write the figures here too")
    args = parser.parse_args()
    import tempfile

    from tests.alerts.test_kube_executor import prepare_cluster

    out: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()}
    with _lab() as lab:
        prepare_cluster(lab)
        base = Path(tempfile.mkdtemp(prefix="vcci-bench-jobs-"))
        phases = []
        for executor in ("kubernetes", "local"):
            (base / executor).mkdir()
            phases.append(_phase(lab, base / executor, executor, args))
            print(json.dumps(phases[-1]), flush=True)
    kube, local = phases
    out["load_after"] = os.getloadavg()
    out["phases"] = phases
    out["ratios_kubernetes_over_local"] = {
        "last_record_complete": round(kube["last_record_complete_s"] / local["last_record_complete_s"], 2),
        "ack_median": round(kube["ack_median_ms"] / local["ack_median_ms"], 2),
        "ack_p99": round(kube["ack_p99_ms"] / local["ack_p99_ms"], 2),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

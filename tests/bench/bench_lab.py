"""Benchmark: how long `lab up` takes and how much memory the running lab uses.

Run as a script (not collected by pytest):

    .venv/bin/python tests/bench/bench_lab.py [--runs 3] [--cold-cache]

It measures, in the same run:
- the baseline: RabbitMQ alone (epmd + rabbitmq-server until its management API answers), the
  slowest single server and so the floor for a parallel start;
- `Lab.up()` in a fresh lab directory (database from the template cache), median of --runs;
- `Lab.up()` again in the same directory after `down` (a restart: data already there);
- with --cold-cache, one more fresh start with an empty template cache (first run on a machine);
- the memory of the running lab: RSS and PSS summed over every process of every component.

Figures are medians; the ratio to the baseline shows how much the parallel start costs on top of
its slowest part. The machine's load average is printed too: other work on a 2-core machine
slows every figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from vcci_lab import (  # noqa: E402
    Lab,
    _procs,
    _rabbitmq,
)
from vcci_lab._state import ensure_secrets  # noqa: E402


def _fresh_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o711)
    return path


def baseline_rabbitmq() -> float:
    path = _fresh_dir("vcci-bench-rmq-")
    alloc = _procs.PortAllocator()
    ports = {k: alloc.get() for k in ("epmd", "rabbitmq", "rabbitmq_dist", "rabbitmq_mgmt")}
    secrets = ensure_secrets({"secrets": {}})
    procs = []
    try:
        t = time.monotonic()
        procs.append(_rabbitmq.start_epmd(ports["epmd"], path / "epmd.log"))
        procs.append(_rabbitmq.start(path / "rabbitmq", ports, secrets["rabbitmq_vcci"], path / "rabbitmq.log"))
        return time.monotonic() - t
    finally:
        for p in reversed(procs):
            _procs.stop_group(p.pid, None, timeout=20)
            p.wait(timeout=5)
        shutil.rmtree(path, ignore_errors=True)


def memory(lab: Lab) -> tuple[int, int, dict[str, int]]:
    """(RSS, PSS, PSS per component) in bytes over every process of every component."""
    state = lab._state.load()
    rss_total = pss_total = 0
    per: dict[str, int] = {}
    for name, entry in state["components"].items():
        if not entry.get("pid"):
            continue
        pids = set(_procs.group_members(int(entry["pid"]))) | {int(entry["pid"])}
        comp = 0
        for pid in pids:
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            fields = {ln.split(":")[0]: int(ln.split()[1]) * 1024 for ln in rollup.splitlines()[1:] if ":" in ln}
            rss_total += fields.get("Rss", 0)
            pss_total += fields.get("Pss", 0)
            comp += fields.get("Pss", 0)
        per[name] = comp
    return rss_total, pss_total, per


def timed_up(lab: Lab) -> tuple[float, dict[str, float]]:
    marks: dict[str, float] = {}
    t0 = time.monotonic()

    def progress(msg: str) -> None:
        if ": ready at " in msg:
            marks[msg.split(":", 1)[0]] = time.monotonic() - t0

    lab.up(progress=progress)
    return time.monotonic() - t0, marks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cold-cache", action="store_true", help="also time one start with an empty template cache")
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.2f}")
    base = [baseline_rabbitmq() for _ in range(args.runs)]
    base_med = statistics.median(base)
    print(f"baseline  RabbitMQ alone (slowest server):   median {base_med:5.1f}s  runs {[round(b, 1) for b in base]}")

    fresh, restart, last_marks = [], [], {}
    rss = pss = 0
    per: dict[str, int] = {}
    for _ in range(args.runs):
        path = _fresh_dir("vcci-bench-lab-")
        lab = Lab(path)
        try:
            seconds, last_marks = timed_up(lab)
            fresh.append(seconds)
            time.sleep(5)  # let start-up transients settle before measuring memory
            rss, pss, per = memory(lab)
            lab.down()
            seconds, _ = timed_up(lab)
            restart.append(seconds)
        finally:
            lab.down()
            shutil.rmtree(path, ignore_errors=True)
    f_med, r_med = statistics.median(fresh), statistics.median(restart)
    print(f"lab up    fresh dir (template cache warm):  median {f_med:5.1f}s  runs {[round(s, 1) for s in fresh]}")
    print(
        f"          ratio to baseline: {f_med / base_med:.2f}x; target <= 20 s: {'met' if f_med <= 20 else 'NOT met'}"
    )
    print(f"lab up    restart after down (same dir):    median {r_med:5.1f}s  runs {[round(s, 1) for s in restart]}")
    print(
        "          ready at (last fresh run): "
        + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(last_marks.items(), key=lambda kv: kv[1]))
    )

    if args.cold_cache:
        cache = Path(tempfile.mkdtemp(prefix="vcci-bench-cache-"))
        os.environ["VCCI_NB_LAB_CACHE"] = str(cache)
        path = _fresh_dir("vcci-bench-cold-")
        lab = Lab(path)
        try:
            seconds, _ = timed_up(lab)
            ratio = seconds / base_med
            print(f"lab up    empty template cache (first run):  {seconds:5.1f}s  ratio to baseline {ratio:.2f}x")
        finally:
            lab.down()
            shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)

    mib = 1024 * 1024
    print(f"memory    running lab: RSS {rss / mib:.0f} MiB, PSS {pss / mib:.0f} MiB (PSS splits shared pages)")
    print(
        "          PSS by component: "
        + ", ".join(f"{k} {v / mib:.0f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

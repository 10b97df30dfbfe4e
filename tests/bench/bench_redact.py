"""Redaction: vcci_nb.redact against detect-secrets, on the same cases and the same text (issue 16 item 5).

    .venv/bin/python tests/bench/bench_redact.py [--mib 2] [--detect-secrets-python PATH]

Two figures each: how many of tests/test_redact.py's cases are found (the secret gone from the
output, or reported by detect-secrets), and the median seconds per MiB of notebook-like output
(log lines, tables, a few secrets), 5 runs. detect-secrets is not a dependency; give the Python
of an environment that has it (``python -m venv /tmp/ds && /tmp/ds/bin/pip install detect-secrets``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.test_redact import CASES, REGISTERED  # noqa: E402
from vcci_nb.redact import redact, register_secret  # noqa: E402

_DS_SCRIPT = r"""
import json, statistics, sys, time
from detect_secrets.core.scan import scan_line
from detect_secrets.settings import default_settings
cases = json.loads(sys.argv[1]); path = sys.argv[2]
text = open(path).read()
with default_settings():
    found = 0
    for _, t, secret in cases:
        hits = [s.secret_value for line in t.splitlines() for s in scan_line(line)]
        found += any(h and (secret in h or h in secret) for h in hits)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for line in text.splitlines():
            list(scan_line(line))
        times.append(time.perf_counter() - t0)
print(json.dumps({"found": found, "seconds": statistics.median(times)}))
"""


def sample(mib: float) -> str:
    lines = [
        "2026-01-06T10:00:00Z INFO api request handled path=/v1/emissions status=200 duration_ms=12",
        "| tenant-0042 | 1234.5 | 2026-01-06 | ok |",
        '  File "/app/api/db.py", line 88, in connect',
        "SELECT pid, state, query FROM pg_stat_activity WHERE datname = 'vcci'",
    ]
    out, size, i = [], 0, 0
    while size < mib * 1024 * 1024:
        line = lines[i % len(lines)]
        if i % 5000 == 0:
            line = f"DB_PASSWORD=canary{i} started worker"
        out.append(line)
        size += len(line) + 1
        i += 1
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=float, default=2.0)
    parser.add_argument("--detect-secrets-python", default=os.environ.get("DETECT_SECRETS_PYTHON"))
    args = parser.parse_args()
    register_secret(REGISTERED)
    cases = [c for c in CASES if REGISTERED not in c[1]]  # detect-secrets has no registered values
    text = sample(args.mib)
    found = sum(c[2] not in redact(c[1]) for c in cases)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        redact(text)
        times.append(time.perf_counter() - t0)
    ours = statistics.median(times) / args.mib
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print(f"vcci_nb.redact : {found}/{len(cases)} cases, {ours * 1000:.1f} ms per MiB (median of 5)")
    if args.detect_secrets_python:
        path = Path("/tmp/bench_redact_sample.txt")
        path.write_text(text)
        out = subprocess.run(
            [args.detect_secrets_python, "-c", _DS_SCRIPT, json.dumps(cases), str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        ds = json.loads(out.stdout)
        per = ds["seconds"] / args.mib
        print(
            f"detect-secrets : {ds['found']}/{len(cases)} cases, {per * 1000:.1f} ms per MiB (median of 3), "
            f"{per / ours:.0f}x ours"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

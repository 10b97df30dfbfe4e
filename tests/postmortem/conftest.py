"""A real Prometheus with a backfilled incident, for the postmortem's impact figures.

The history is written as OpenMetrics and turned into TSDB blocks with ``promtool`` before the
server starts (see LAB_FACTS). Five tenants send 10 requests per 15 s each; during the incident
window two of them (t1, t2) also get 5 errors (HTTP 500) per 15 s each.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

STEP_S = 15
TENANTS = ("t1", "t2", "t3", "t4", "t5")
FAILING = ("t1", "t2")


@dataclass(frozen=True)
class Prom:
    url: str
    incident_start: datetime
    incident_end: datetime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _history(start: datetime, end: datetime, bad_from: datetime, bad_to: datetime) -> str:
    lines = ["# TYPE http_requests counter"]
    ok = dict.fromkeys(TENANTS, 0.0)
    bad = dict.fromkeys(FAILING, 0.0)
    t = start
    while t <= end:
        ts = int(t.timestamp())
        for tenant in TENANTS:
            ok[tenant] += 10
            lines.append(
                f'http_requests_total{{job="vcci-api",namespace="vcci-production",route="/api/emissions",'
                f'status="200",tenant="{tenant}"}} {ok[tenant]:.0f} {ts}'
            )
        for tenant in FAILING:
            if bad_from < t <= bad_to:
                bad[tenant] += 5
            lines.append(
                f'http_requests_total{{job="vcci-api",namespace="vcci-production",route="/api/emissions",'
                f'status="500",tenant="{tenant}"}} {bad[tenant]:.0f} {ts}'
            )
        t += timedelta(seconds=STEP_S)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    d = tmp_path_factory.mktemp("prometheus")
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=4)
    end = now - timedelta(minutes=5)
    inc_start = now - timedelta(minutes=150)
    inc_end = inc_start + timedelta(minutes=58)
    (d / "history.om").write_text(_history(start, end, inc_start, inc_end))
    data = d / "data"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(d / "history.om"), str(data)],
        check=True,
        capture_output=True,
    )
    (d / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    port = _free_port()
    log = (d / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=30d",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.2)
        yield Prom(url, inc_start, inc_end)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()

"""A postmortem of an incident driven through the lab: fault, triage run, mitigation, heal, resolve.

The impact figure must be the one a direct PromQL query over the same window gives, the
durations must be the record's, and the events must come out in the order they happened.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from vcci_nb import postmortem
from vcci_nb.policy import parse_time
from vcci_nb.record import IncidentRecord

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _query(prom: str, query: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": query} | ({"time": f"{at:.3f}"} if at is not None else {})
    body = requests.get(f"{prom}/api/v1/query", params=params, timeout=10).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _wait(check: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcci_nb", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_postmortem_of_a_lab_incident(
    lab: Any, lab_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCCI_NB_OUTPUTS", str(tmp_path / "outputs"))
    prom = lab_env["PROMETHEUS_URL"]
    errors_now = 'sum(rate(http_requests_total{job="vcci-api",status=~"5.."}[30s]))'

    # An earlier test's spike can keep the 5-minute SLI above its threshold; the postmortem would rightly
    # measure impact from that crossing. Start this incident once the SLI is back under its threshold.
    from vcci_nb.config import load_profile
    from vcci_nb.sources.prometheus import panel_query

    sli, info = panel_query(load_profile("lab"), "error_ratio_5xx")
    # The onset search reads a 15 s grid and lets a breach that ended one step before the alert still hold
    # it, so the SLI must have stayed under its threshold for the last 45 s, not only be under it now.
    settled = f"max_over_time(({sli})[45s:5s]) > {info['threshold']}"
    _wait(lambda: not _query(prom, settled), "the SLI to settle", timeout=420)
    rec = IncidentRecord.open("P1", "API returning 500 errors", "alice")
    with lab.fault("connection_pool_exhausted"):
        _wait(lambda: any(float(r["value"][1]) > 0 for r in _query(prom, errors_now)), "5xx in Prometheus")
        run = _cli("run", "notebooks/01_triage.ipynb", "--incident", rec.id, "--timeout", "300")
        rec.set_status("identified", "connection pool exhausted")
        action = _cli(
            "action",
            "run",
            "postgres.terminate",
            "--incident",
            rec.id,
            "-p",
            "state=idle",
            "-p",
            "min_age_s=0",
            "-p",
            "application=vcci-api",
            "--confirm",
            rec.id,
        )
        assert action.returncode in (0, 1, 3), action.stderr  # executed; verification may not pass under load
    rec.set_status("monitoring", "fault healed, watching the error rate")
    time.sleep(3)
    rec.set_status("resolved", "error rate back to normal")
    time.sleep(6)  # let the last scrapes before resolution land

    pm = postmortem.build(rec.id, prometheus_url=prom)
    data = rec.data

    # impact: the same figure as a direct query over the incident window
    start = parse_time(data["created_at"])
    end = parse_time(data["resolved_at"])
    w = pm.impact["window_s"]
    assert w == max(60, int((end - start).total_seconds() + 0.999))
    direct = _query(
        prom,
        f'sum(increase(http_requests_total{{job="vcci-api",status=~"5.."}}[{w}s])) / '
        f'sum(increase(http_requests_total{{job="vcci-api"}}[{w}s]))',
        end.timestamp(),
    )
    assert pm.impact["status"] == "ok"
    assert pm.impact["failed_share"] == pytest.approx(float(direct[0]["value"][1]), rel=1e-9)
    assert pm.impact["failed_share"] > 0
    tenants = _query(
        prom,
        f'sum by (tenant) (increase(http_requests_total{{job="vcci-api",status=~"5.."}}[{w}s])) > 0',
        end.timestamp(),
    )
    assert pm.impact["affected_tenants"] == sorted(t["metric"]["tenant"] for t in tenants)

    # durations are the record's
    assert pm.response["resolve"] == pytest.approx((end - parse_time(data["detected_at"])).total_seconds())
    assert pm.response["identify"] == pytest.approx(
        (parse_time(data["identified_at"]) - parse_time(data["detected_at"])).total_seconds()
    )

    # events in the order they happened
    rows = [
        line
        for line in pm.markdown.split("## Timeline", 1)[1].split("## Measured", 1)[0].splitlines()
        if re.match(r"^\| \d\d:\d\d:\d\d", line)
    ]
    kinds = [r.split(" | ")[2] for r in rows]
    times = [r.split(" | ")[0] for r in rows]
    assert times == sorted(times)
    assert "run" in kinds, run.stderr[-2000:]
    assert "action" in kinds, action.stderr[-2000:]
    firsts = {k: kinds.index(k) for k in ("run", "action")}
    statuses = [i for i, r in enumerate(rows) if "→ identified" in r or "→ resolved" in r]
    assert firsts["run"] < statuses[0] < firsts["action"] < statuses[-1]
    assert pm.markdown_path.exists() and pm.html_path.exists()
    assert isinstance(datetime.fromisoformat(pm.impact["at"]), datetime)

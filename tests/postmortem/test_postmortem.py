"""The Post-Incident Report from a record with controlled times, and its impact against Prometheus."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.postmortem.conftest import Prom
from vcci_nb import postmortem
from vcci_nb.record import IncidentRecord


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_incident(outputs: Path, start: datetime, severity: str = "P0") -> IncidentRecord:
    """An incident with every kind of event at known times (minutes after ``start``)."""

    def m(minutes: float) -> str:
        return _iso(start + timedelta(minutes=minutes))

    rec = IncidentRecord.open(
        severity,
        "API returning 500 errors",
        "alice",
        outputs=outputs,
        source="alertmanager",
        now=start + timedelta(minutes=1),
    )
    rec.add_alert(
        {
            "at": m(1),
            "status": "firing",
            "startsAt": m(0),
            "labels": {"alertname": "HighErrorRate", "severity": "critical"},
            "annotations": {"summary": "5xx above 5%"},
        }
    )
    rec.upsert_notebook(
        {
            "name": "01_triage",
            "path": "01_triage.ipynb",
            "html": "01_triage.html",
            "status": "succeeded",
            "started_at": m(2),
            "finished_at": m(5),
        }
    )
    rec.add_findings(
        [
            {
                "key": "db.pool_exhaustion",
                "severity": "critical",
                "summary": "Connection pool exhausted (20/20 in use)",
                "value": 20,
                "threshold": 16,
                "unit": "connections",
                "at": m(8),
                "runbook": "Scenario 1: raise pool size",
            },
            {"key": "cache.low_hit_rate", "severity": "medium", "summary": "Cache hit rate 40%", "at": m(8)},
            {"key": "changes.recent", "severity": "info", "summary": "1 rollout in the last 24 h", "at": m(8)},
        ],
        notebook="01_triage",
    )
    rec.add_action(
        {
            "at": m(15),
            "action": "postgres.terminate_idle",
            "summary": "terminate idle connections",
            "result": "unverified",
            "message": "pool still 100% used",
        }
    )
    rec.add_action({"at": m(18), "action": "kube.scale", "summary": "scale vcci-api to 12", "result": "succeeded"})
    for minute, template in ((6, "initial"), (50, "update"), (59, "resolution")):
        rec.add_notification(
            {
                "at": m(minute),
                "channel": "slack",
                "template": template,
                "status": "sent",
                "dry_run": False,
                "summary": f"{template} sent",
            }
        )
    rec.add_notification(
        {
            "at": m(40),
            "channel": "email",
            "template": "update",
            "status": "dry_run",
            "dry_run": True,
            "summary": "a draft nobody received",
        }
    )

    def statuses(d: dict[str, Any]) -> None:
        d["acknowledged_at"] = m(3)
        for minute, status, field in (
            (10, "identified", "identified_at"),
            (20, "monitoring", "mitigated_at"),
            (58, "resolved", "resolved_at"),
        ):
            d["status"] = status
            d[field] = m(minute)
            d["status_history"].append({"status": status, "at": m(minute), "actor": "alice", "note": ""})
            d["timeline"].append(
                {
                    "at": m(minute),
                    "kind": "status",
                    "actor": "alice",
                    "summary": f"Status → {status}",
                    "data": {"to": status},
                }
            )

    rec.update(statuses)
    return rec


def _timeline_rows(markdown: str) -> list[list[str]]:
    section = markdown.split("## Timeline", 1)[1].split("## Measured Response", 1)[0]
    return [
        [c.strip() for c in line.strip("|").split(" | ")]
        for line in section.splitlines()
        if re.match(r"^\| \d\d:\d\d:\d\d", line)
    ]


def test_report_durations_order_and_facts(tmp_path: Path) -> None:
    start = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)
    rec = build_incident(tmp_path, start)
    pm = postmortem.build(rec.id, outputs=tmp_path, prometheus_url=None)
    md = pm.markdown

    assert "- **Date**: 2026-01-06" in md
    assert "- **Duration**: 58 min (14:30 - 15:28 UTC, first alert or detection to resolution)" in md
    assert "- **Severity**: P0" in md
    assert "- **Root Cause** (DRAFT, confirm): Connection pool exhausted (20/20 in use)" in md
    assert (
        "- **Decision tree** (DRAFT): All API requests returning 500 → Database connection refused (likely); "
        "runbook 4.2 Scenario 1: Database Connection Pool Exhausted"
    ) in md
    for line in (
        "| time to detect | 1 min |",
        "| time to acknowledge | 2 min |",
        "| time to identify | 9 min |",
        "| time to mitigate | 19 min |",
        "| time to resolve | 57 min |",
    ):
        assert line in md
    assert pm.response["resolve"] == 57 * 60

    rows = _timeline_rows(md)
    times = [r[0] for r in rows]
    assert times == sorted(times)
    assert rows[0][:3] == ["14:30:00", "+0:00:00", "alert"] and "HighErrorRate began firing" in rows[0][3]
    kinds_in_order = [r[2] for r in rows]
    assert kinds_in_order.index("run") < kinds_in_order.index("finding") < kinds_in_order.index("action")
    assert rows[-1][0] == "15:29:00" and rows[-1][1] == "+0:59:00" and rows[-1][2] == "notification"
    assert any(r[2] == "status" and "identified" in r[3] and r[1] == "+0:10:00" for r in rows)
    assert "a draft nobody received" not in md  # dry runs are not part of what happened

    # what the record proves went wrong and right
    assert "- ✗ Update #2 was 14 min late (due 15:06:00, sent 15:20:00)" in md
    assert (
        "- ✗ Escalation to Engineering Manager was due at 15:00:00 (P0 lasting more than 30 minutes) and was not made"
    ) in md
    assert "- ✗ Mitigation did not pass verification: terminate idle connections (pool still 100% used)" in md
    assert "- ✓ Mitigation verified: scale vcci-api to 12" in md
    assert "- ✓ Acknowledged 2 min after detection (within the P0 response time of 15 min)" in md
    assert "CTO" not in md.split("## What Didn't Go Well")[1].split("## Action Items")[0]  # resolved before 1 h

    assert (
        "1. **[P0] Prevent recurrence: Connection pool exhausted (20/20 in use)** (Owner: @TBD, Due: 2026-01-13)" in md
    )
    assert "   - Scenario 1: raise pool size" in md
    assert "**[P2] Keep the communication cadence**" in md
    assert "Prevent recurrence: 1 rollout" not in md  # context, not a cause
    assert "- **Impact**: _not measured: no Prometheus URL" in md

    assert pm.markdown_path.read_text() == md
    page = pm.html_path.read_text()
    assert '<a href="01_triage.html">01_triage</a>' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # nothing to fetch


def test_related_incidents_share_findings_and_came_before(tmp_path: Path) -> None:
    start = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)
    older = IncidentRecord.open("P1", "Pool exhausted last month", outputs=tmp_path, now=start - timedelta(days=20))
    older.add_findings([{"key": "db.pool_exhaustion", "severity": "critical", "summary": "pool"}])
    unrelated = IncidentRecord.open("P2", "Disk full", outputs=tmp_path, now=start - timedelta(days=5))
    unrelated.add_findings([{"key": "kube.disk_full", "severity": "high", "summary": "disk"}])
    rec = build_incident(tmp_path, start)
    later = IncidentRecord.open("P1", "Pool again", outputs=tmp_path, now=start + timedelta(days=3))
    later.add_findings([{"key": "db.pool_exhaustion", "severity": "critical", "summary": "pool"}])

    pm = postmortem.build(rec.id, outputs=tmp_path)
    assert [r["id"] for r in pm.related] == [older.id]
    assert f"- {older.id}: Pool exhausted last month (P1, 2025-12-17) — shares `db.pool_exhaustion`" in pm.markdown


def _direct(prom: Prom, query: str, at: datetime) -> list[dict[str, Any]]:
    body = requests.get(f"{prom.url}/api/v1/query", params={"query": query, "time": at.timestamp()}, timeout=10).json()
    assert body["status"] == "success"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_impact_matches_a_direct_promql_query(tmp_path: Path, prometheus: Prom) -> None:
    rec = build_incident(tmp_path, prometheus.incident_start)
    pm = postmortem.build(rec.id, outputs=tmp_path, prometheus_url=prometheus.url)
    impact = pm.impact
    assert impact["status"] == "ok"

    end = prometheus.incident_start + timedelta(minutes=58)
    w = int((end - prometheus.incident_start).total_seconds())
    direct = _direct(
        prometheus,
        f'sum(increase(http_requests_total{{status=~"5.."}}[{w}s])) / sum(increase(http_requests_total[{w}s]))',
        end,
    )
    assert impact["failed_share"] == pytest.approx(float(direct[0]["value"][1]), rel=1e-9)
    # and it is the share the backfill put there: 2 tenants x 5 errors vs 5 tenants x 10 + 10 errors per 15 s
    assert impact["failed_share"] == pytest.approx(10 / 60, rel=0.03)
    tenants = _direct(prometheus, f'sum by (tenant) (increase(http_requests_total{{status=~"5.."}}[{w}s])) > 0', end)
    assert impact["affected_tenants"] == sorted(t["metric"]["tenant"] for t in tenants) == ["t1", "t2"]
    assert impact["tenants_total"] == 5

    share = impact["failed_share"]
    assert f"- **Impact**: {share:.1%} of API requests failing" in pm.markdown
    assert "affecting 2 of 5 tenants" in pm.markdown
    page = pm.html_path.read_text()
    assert "<svg" in page and "5xx share of requests" in page  # the chart, inline


def test_prometheus_down_leaves_the_impact_to_fill_in(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec = build_incident(tmp_path, datetime(2026, 1, 6, 14, 30, tzinfo=UTC))
    pm = postmortem.build(rec.id, outputs=tmp_path, prometheus_url=f"http://127.0.0.1:{port}")
    assert pm.impact["status"] == "unavailable"
    assert f"Prometheus at http://127.0.0.1:{port} could not be asked" in pm.markdown
    assert pm.html_path.exists()


def test_postmortem_command_writes_into_the_incident_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vcci_nb.cli import main

    monkeypatch.setenv("VCCI_NB_OUTPUTS", str(tmp_path))
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    rec = build_incident(tmp_path, datetime(2026, 1, 6, 14, 30, tzinfo=UTC))
    assert main(["postmortem", rec.id]) == 0
    out = capsys.readouterr().out
    assert f"wrote {rec.folder / 'postmortem.md'}" in out and "impact not measured" in out
    assert (rec.folder / "postmortem.html").read_text().startswith("<!DOCTYPE html>")


def test_alert_text_stays_text_in_the_report(tmp_path: Path) -> None:
    start = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)
    beacon = "![t](http://127.0.0.1:9/track.png)"
    link = "[reset your password](http://127.0.0.1:9/phish)"
    raw = "<img src=http://127.0.0.1:9/raw.png>"
    rec = IncidentRecord.open("P1", f"API 5xx {beacon}", outputs=tmp_path, now=start)
    rec.add_event("alert", f"Alert HighErrorRate firing: {link} {raw} *loud* | cell", actor="alertmanager")
    rec.add_findings([{"key": "db.pool_exhaustion", "severity": "critical", "summary": f"pool {beacon}"}])
    pm = postmortem.build(rec.id, outputs=tmp_path, prometheus_url=None)
    body = pm.html[pm.html.find("<body>") :]
    assert "<img" not in body and '<a href="http://127.0.0.1:9' not in body and "<em>loud" not in body
    # The words are still there, as text.
    assert "track.png" in body and "reset your password" in body and "*loud*" in body
    assert "raw.png" in body and "| cell" in body


def test_root_cause_is_the_cause_not_the_alerts_and_each_finding_is_told_once(tmp_path: Path) -> None:
    """The example incident: four notebooks record the pool exhaustion, the alerts and the 5xx
    share. The draft blames the pool, not "4 alert(s) firing"; alerts and error rate go to Detection
    and Impact; the timeline tells each finding once."""
    start = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)
    rec = IncidentRecord.open("P1", "API returning 500 errors", "alice", outputs=tmp_path, now=start)
    for name in ("VcciApiHighErrorRate", "VcciDbPoolNearlyExhausted", "PostgresConnectionsNearLimit"):
        rec.add_alert({"at": _iso(start), "status": "firing", "startsAt": _iso(start), "labels": {"alertname": name}})
    pool = "vcci-api holds 20 of vcci_app's 20 connections (limit reached)"
    for nb in ("01_triage", "03_investigate_database", "03_decision_tree", "connection_pool_exhausted"):
        rec.add_findings(
            [
                {"key": "alerts.firing", "severity": "critical", "summary": "4 alert(s) firing: VcciApiHighErrorRate"},
                {"key": "metrics.error_rate", "severity": "critical", "summary": "5xx share of requests 7.1 %"},
                {"key": "db.pool_exhaustion", "severity": "critical", "summary": pool},
                {"key": "logs.errors", "severity": "high", "summary": "12 ERROR lines: connection pool exhausted"},
            ],
            notebook=nb,
        )
    rec.add_event("run", "01_triage succeeded in 3.2 s", actor="root")
    rec.add_event("run", "Run abc12345 finished: triage: 4/4 succeeded", actor="root")
    md = postmortem.build(rec.id, outputs=tmp_path, prometheus_url=None).markdown
    assert "01\\_triage succeeded in" not in md and "finished: triage: 4/4 succeeded" in md  # bookkeeping left out
    pool = postmortem._md_escape(pool)  # the report escapes record text (vcci\\_app)
    assert f"- **Root Cause** (DRAFT, confirm): {pool} (`db.pool_exhaustion`)" in md
    assert f"1. **[P0] Prevent recurrence: {pool}**" in md
    assert "Prevent recurrence: 4 alert(s)" not in md and "Prevent recurrence: 5xx" not in md
    assert "- **Detection**: 5xx share of requests 7.1 %; 4 alert(s) firing: VcciApiHighErrorRate" in md
    assert "- **Symptom**: 5xx share of requests 7.1 % — `metrics.error_rate`" in md
    rows = _timeline_rows(md)
    assert sum(pool in r[3] for r in rows) == 1, "the pool finding is told once, not once per notebook"
    assert len([r for r in rows if r[2] == "finding"]) == 4
    assert [r[3] for r in rows if r[2] == "alert"] == [
        "3 alerts began firing (VcciApiHighErrorRate, VcciDbPoolNearlyExhausted, PostgresConnectionsNearLimit)"
    ]
    assert postmortem._md_escape("seen in 01_triage, 03_investigate_database, 03_decision_tree") in md


def test_symptoms_alone_leave_the_root_cause_to_the_review(tmp_path: Path) -> None:
    start = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)
    rec = IncidentRecord.open("P2", "API slow", "alice", outputs=tmp_path, now=start)
    rec.add_findings(
        [
            {"key": "alerts.firing", "severity": "high", "summary": "1 alert(s) firing: VcciApiHighLatency"},
            {"key": "metrics.latency", "severity": "high", "summary": "p95 latency 2.4 s"},
        ],
        notebook="01_triage",
    )
    pm = postmortem.build(rec.id, outputs=tmp_path, prometheus_url=None)
    assert pm.root_cause is None
    assert "- **Root Cause** (DRAFT): _no causal finding recorded (only symptoms)" in pm.markdown
    assert "Prevent recurrence" not in pm.markdown


def test_impact_runs_from_when_the_sli_first_crossed_before_the_alert(tmp_path: Path, prometheus: Prom) -> None:
    """The fault began 20 min before its alert fired: impact is measured from the SLI's first crossing."""
    late_alert = prometheus.incident_start + timedelta(minutes=20)
    rec = build_incident(tmp_path, late_alert)
    pm = postmortem.build(rec.id, outputs=tmp_path, prometheus_url=prometheus.url)
    impact = pm.impact
    assert impact["status"] == "ok"
    used = datetime.fromisoformat(impact["start_used"])
    # rate(...[5m]) crosses 5% within a couple of minutes of the first error
    assert prometheus.incident_start <= used <= prometheus.incident_start + timedelta(minutes=3), used
    # 2 tenants x 5 errors per 15 s = 40 a minute: ~58 min of errors from the onset, ~38 from the alert
    assert impact["failed_requests"] > 40 * 50, impact["failed_requests"]
    assert "- **Impact measured from**: " in pm.markdown
    assert "when the SLI (5xx share of requests) first crossed its threshold 0.05" in pm.markdown
    assert "before the first alert" in pm.markdown


def test_impact_starts_at_the_alert_when_the_sli_did_not_cross_earlier(tmp_path: Path, prometheus: Prom) -> None:
    rec = build_incident(tmp_path, prometheus.incident_start)
    pm = postmortem.build(rec.id, outputs=tmp_path, prometheus_url=prometheus.url)
    assert datetime.fromisoformat(pm.impact["start_used"]) == prometheus.incident_start
    assert "the first alert or detection: the SLI (5xx share of requests) did not cross 0.05 earlier" in pm.markdown

"""One severity rule (issue 13, item 8).

- serve's routing (routes.yaml) and triage's suggestion (analysis/severity.py) give the same level for
  every alert severity label, and P0 only for what the seed calls P0;
- the seed's own example incident (the error-rate, pool and connection-limit alerts) opens as P1;
- ``incident update ID --severity P0 --reason …`` declares it; the record, ``incident show`` and
  index.html show the declared and the suggested severity; escalation follows the declared one.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vcci_nb import escalation
from vcci_nb.alerts.routing import Routes
from vcci_nb.analysis.model import Finding
from vcci_nb.analysis.severity import alert_level, suggest
from vcci_nb.config import alert_levels
from vcci_nb.errors import RecordError
from vcci_nb.record import IncidentRecord

T0 = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)


def test_routes_and_triage_agree_on_every_label_and_p0_is_only_the_seeds_p0() -> None:
    routes = Routes.load()
    rule = alert_levels()
    levels, _default = rule
    labels = [*levels, "CRITICAL", "page", "", "p0", "nonsense"]
    for label in labels:
        assert routes.severity({"severity": label}) == alert_level(label, rule), label
    assert {k for k, v in levels.items() if v == "P0"} == {"outage", "security", "data_loss"}
    assert routes.severity({"severity": "critical"}) == "P1"


def test_a_critical_alert_suggests_the_level_serve_opens_with() -> None:
    firing = Finding(
        key="alerts.firing",
        severity="high",
        summary="1 alert firing",
        details={"alerts": [{"alertname": "VcciApiHighErrorRate", "severity": "critical"}]},
    )
    assert (
        suggest([], findings=[firing], alert_levels=alert_levels()).level
        == Routes.load().severity({"severity": "critical"})
        == "P1"
    )


def test_the_seeds_example_incident_opens_as_p1() -> None:
    """The demo's fault (pool exhaustion in a traffic spike) fires these rules; the seed's example is P1."""
    from vcci_lab._monitoring import rules

    by_name = {r["alert"]: r["labels"] for g in rules()["groups"] for r in g["rules"]}
    fired = ["VcciApiHighErrorRate", "VcciDbPoolNearlyExhausted", "PostgresConnectionsNearLimit"]
    routes = Routes.load()
    levels = [routes.severity(by_name[name]) for name in fired]
    assert min(levels) == "P1", levels


def _vcci_nb(*args: str, outputs: Path) -> subprocess.CompletedProcess[str]:
    env = {"VCCI_NB_OUTPUTS": str(outputs), "VCCI_NB_ACTOR": "alice", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "vcci_nb", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_incident_update_severity_declares_it_and_record_show_and_index_say_both(tmp_path: Path) -> None:
    rec = IncidentRecord.open("P2", "API returning 500 errors", "alice", outputs=tmp_path)
    suggestion = Finding(key="triage.severity", severity="info", summary="Suggested severity P1", value="P1",
                         details={"reasons": ["API 5xx rate above threshold → P1"]})  # fmt: skip
    rec.add_findings([suggestion.to_dict()], notebook="01_triage")

    refused = _vcci_nb("incident", "update", rec.id, "--severity", "P0", outputs=tmp_path)
    assert refused.returncode != 0 and "needs a reason" in refused.stderr
    done = _vcci_nb(
        "incident", "update", rec.id, "--severity", "P0", "--reason", "every tenant is down", outputs=tmp_path
    )
    assert done.returncode == 0, done.stderr
    data = rec.data
    assert data["severity"] == "P0"
    assert data["severity_declared"]["reason"] == "every tenant is down"
    assert data["severity_declared"]["actor"] == "alice"
    assert data["suggested_severity"]["level"] == "P1" and data["suggested_severity"]["notebook"] == "01_triage"
    [event] = [e for e in data["timeline"] if e["summary"].startswith("Severity declared")]
    assert event["summary"] == "Severity declared P0 (P2 → P0): every tenant is down"
    assert event["data"] == {"from": "P2", "to": "P0", "reason": "every tenant is down", "declared": True}

    page = (rec.folder / "index.html").read_text()
    assert "declared P0 (by alice: every tenant is down); triage suggests P1" in page
    shown = _vcci_nb("incident", "show", rec.id, outputs=tmp_path)
    assert "severity: declared P0 (by alice: every tenant is down); triage suggests P1" in shown.stdout


def test_escalation_follows_the_declared_severity(tmp_path: Path) -> None:
    rec = IncidentRecord.open("P2", "API returning 500 errors", "alice", now=T0, outputs=tmp_path)
    later = T0 + timedelta(minutes=31)
    assert not any(e["due"] for e in escalation.escalations(rec.data, now=later))
    rec.set_severity("P0", "all requests fail", actor="alice")
    due = [e for e in escalation.escalations(rec.data, now=later) if e["due"]]
    assert due and "P0 lasting more than 30 minutes" in due[0]["reasons"]


def test_a_severity_change_needs_a_known_level_and_a_reason(tmp_path: Path) -> None:
    rec = IncidentRecord.open("P2", "x", "alice", outputs=tmp_path)
    with pytest.raises(RecordError, match="not one of"):
        rec.set_severity("P5", "why")
    with pytest.raises(RecordError, match="needs a reason"):
        rec.set_severity("P1", "  ")

"""One story per incident: each finding told once, causes above symptoms (no servers needed).

The records here have the shape the runner and ``serve`` write: every notebook of the triage
bundle records the same findings, alerts join as groups, and nothing was sent yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vcci_nb import story
from vcci_nb.analysis import evaluate
from vcci_nb.analysis.model import Finding
from vcci_nb.notify import _templates
from vcci_nb.record import IncidentRecord

START = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)
POOL = "vcci-api holds 20 of vcci_app's 20 connections (limit reached); new connections are refused"
NOTEBOOKS = ("01_triage", "03_investigate_database", "03_investigate_metrics", "connection_pool_exhausted")


def example_findings() -> list[dict[str, Any]]:
    """What the example incident records: the same facts from four notebooks, the idle count growing."""
    out = []
    for i, nb in enumerate(NOTEBOOKS):
        at = (START + timedelta(seconds=30 + i)).isoformat()
        for f in (
            Finding("alerts.firing", "critical", "4 alert(s) firing: VcciApiHighErrorRate, VcciDbPoolNearlyExhausted"),
            Finding("metrics.error_rate", "critical", "5xx share of requests 7.1 % (threshold 5 %)"),
            Finding("logs.errors", "critical", "37 ERROR lines; loudest: connection pool exhausted"),
            Finding("db.pool_exhaustion", "high", POOL),
            Finding("db.idle_connections", "medium", f"{20 + i} idle connections from vcci-api"),
            Finding("triage.severity", "info", "Suggested severity P1: 5xx share above 5 %"),
        ):
            out.append({**f.to_dict(), "notebook": nb, "at": at})
    return out


def test_each_fact_once_with_where_it_was_seen_and_how_it_changed() -> None:
    facts = story.facts(example_findings())
    assert len(facts) == 6  # 24 observations, 6 facts
    pool = next(f for f in facts if f.key == "db.pool_exhaustion")
    assert pool.notebooks == list(NOTEBOOKS) and pool.count == 4 and not pool.changed
    idle = next(f for f in facts if f.key == "db.idle_connections")
    assert (
        idle.summary == "23 idle connections from vcci-api" and idle.history[0] == "20 idle connections from vcci-api"
    )
    assert "first: 20 idle connections" in story.line(idle)
    # causes first, then what comes with them, then symptoms, then context
    assert [f.role for f in facts] == ["cause", "contributing", "contributing", "symptom", "symptom", "context"]
    assert facts[0].key == "db.pool_exhaustion"


def test_root_cause_and_tree_name_the_pool_not_the_alerts_or_the_loud_logs() -> None:
    findings = [Finding.from_dict(f) for f in example_findings()]
    tree = evaluate({}, findings=findings)
    assert tree.top is not None and tree.top.cause == "Database connection refused"
    root = story.root_cause(story.facts(example_findings()), tree.top.to_dict())
    assert root is not None and root.key == "db.pool_exhaustion"


def test_a_more_specific_cause_wins_over_its_consequence() -> None:
    """An OOM kill brings a crash loop; a missing index brings long queries: the first is the cause."""
    for cause, consequence, leaf in (
        ("kube.oomkilled", "kube.crashloop", "OOMKilled"),
        ("db.missing_index", "db.long_queries", "Database queries slow"),
    ):
        findings = [Finding(consequence, "critical", "consequence"), Finding(cause, "high", "cause")]
        tree = evaluate({}, findings=findings)
        assert tree.top is not None and tree.top.cause == leaf
        root = story.root_cause(story.facts(findings), tree.top.to_dict())
        assert root is not None and root.key == cause


def test_a_transaction_id_age_outranks_the_idle_transaction_that_holds_it() -> None:
    """The lab's xid-age fault: an old transaction (idle in it) holds the horizon while XIDs are
    consumed. The XID age is the danger and its finding names the holder: it is the root cause."""
    findings = [
        Finding("db.idle_in_transaction", "high", "1 session idle in a transaction for 70 s"),
        Finding("db.xid_age", "medium", "Transaction ID age 150,087; held back by: session 4242"),
        Finding("db.long_queries", "medium", "1 transaction open for 70 s"),
    ]
    tree = evaluate({}, findings=findings)
    assert tree.top is not None and "db.xid_age" in tree.top.to_dict()["findings"]
    root = story.root_cause(story.facts(findings), tree.top.to_dict())
    assert root is not None and root.key == "db.xid_age"


def test_vacuum_behind_and_replica_lag_are_causes_the_tree_names() -> None:
    """The dead-tuples and replica-lag drills: the tree had no branch for them ("nothing likely")."""
    for key in ("db.autovacuum_behind", "db.replica_lag"):
        findings = [Finding(key, "high", "cause"), Finding("metrics.latency", "high", "p95 3 s")]
        tree = evaluate({}, findings=findings)
        assert tree.top is not None and key in tree.top.to_dict()["findings"], key
        root = story.root_cause(story.facts(findings), tree.top.to_dict())
        assert root is not None and root.key == key


def test_symptoms_alone_name_no_root_cause() -> None:
    findings = [
        Finding("alerts.firing", "critical", "1 alert(s) firing: VcciApiHighErrorRate"),
        Finding("metrics.error_rate", "critical", "5xx share 9 %"),
        Finding("logs.errors", "high", "12 ERROR lines"),
    ]
    assert story.root_cause(story.facts(findings)) is None
    assert [f.key for f in story.leads(story.facts(findings))] == ["logs.errors"]


def _record(tmp_path: Path) -> IncidentRecord:
    rec = IncidentRecord.open("P1", "API returning 500 errors", "alice", outputs=tmp_path, now=START)
    for name in (
        "VcciApiHighErrorRate",
        "VcciApiHighLatency",
        "VcciDbPoolNearlyExhausted",
        "PostgresConnectionsNearLimit",
    ):
        rec.add_alert({"at": START.isoformat(), "status": "firing", "startsAt": START.isoformat(),
                       "labels": {"alertname": name}})  # fmt: skip
    for nb in NOTEBOOKS:
        rec.add_findings([f for f in example_findings() if f["notebook"] == nb], notebook=nb)
    return rec


def test_update_says_what_changed_in_at_most_eight_lines(tmp_path: Path) -> None:
    data = _record(tmp_path).data
    assert sum(1 for ev in data["timeline"] if ev["kind"] in ("finding", "alert")) > 25
    changes = _templates.changes_since(data, None, more="outputs/INC/index.html")
    assert len(changes) <= _templates.MAX_CHANGES
    assert sum(POOL in c["summary"] for c in changes) == 1
    # more than fit: the rest is a link; status first; then the cause; alerts (detection, already
    # paged) are the first to go to the record
    short = _templates.changes_since(data, None, more="outputs/INC/index.html", limit=5)
    assert len(short) == 5 and short[-1]["summary"].endswith("more in outputs/INC/index.html")
    assert short[0]["summary"].startswith("Incident opened") and POOL in short[1]["summary"]
    told = _templates.changes_since(data, None, limit=50)
    assert "4 alerts firing: VcciApiHighErrorRate, VcciApiHighLatency, VcciDbPoolNearlyExhausted, " in str(told)
    assert len(told) < 15, [c["summary"] for c in told]


def test_an_update_tells_a_finding_that_changed_twice_once_as_it_reads_now() -> None:
    """The bad-deploy drill: two notebooks saw the release a moment apart, with and without its
    failing pods; the update listed the finding three times."""
    at = [f"2026-01-06T14:3{i}:00+00:00" for i in range(5)]
    rev = "Revision 7 of vcci-api was rolled out"

    def finding(when: str, text: str, key: str = "kube.bad_deploy") -> dict[str, object]:
        return {"at": when, "kind": "finding", "summary": f"[high] {text}", "data": {"key": key}}

    data = {
        "timeline": [
            finding(at[0], "3 pods crash-looping", "kube.crashloop"),
            finding(at[1], f"{rev}; 3 of its pods failing."),
            finding(at[2], f"{rev}."),
            finding(at[3], f"{rev}; 3 of its pods failing."),
            finding(at[4], "3 pods crash-looping (3 restarts)", "kube.crashloop"),
        ]
    }
    changes = [c["summary"] for c in _templates.changes_since(data, None)]
    assert changes == [f"[high] {rev}; 3 of its pods failing.", "[high] 3 pods crash-looping (3 restarts)"]
    since = _templates.changes_since(data, datetime.fromisoformat(at[1]))
    assert [c["summary"] for c in since] == [
        f"Changed: [high] {rev}; 3 of its pods failing.",
        "Changed: [high] 3 pods crash-looping (3 restarts)",
    ]


def test_messages_tell_each_finding_once(tmp_path: Path) -> None:
    from vcci_nb.notify import render

    rec = _record(tmp_path)
    facts = story.facts(rec.data["findings"])
    for template in ("initial", "update"):
        preview = render(rec.id, template, "all", profile="lab", outputs=tmp_path)
        for m in preview.messages:
            assert story.repeated(m.text, facts) == [], (template, m.channel, m.text)
    email = next(m for m in render(rec.id, "initial", "email", profile="lab", outputs=tmp_path).messages)
    assert "Affected: 5xx share of requests 7.1 %" in email.text  # impact: what users feel
    assert f"- Looking into: {POOL}" in email.text.splitlines()[email.text.splitlines().index("Current Actions:") + 1]
    slack = render(rec.id, "update", "slack", profile="lab", outputs=tmp_path).messages[0].text
    assert sum(1 for line in slack.splitlines() if line.startswith("•")) <= 8


def test_incident_show_lists_each_finding_once_causes_first(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    from vcci_nb.cli import main

    rec = _record(tmp_path)
    monkeypatch.setenv("VCCI_NB_OUTPUTS", str(tmp_path))
    assert main(["incident", "show", rec.id]) == 0
    out = capsys.readouterr().out
    findings = out.split("\nFindings (", 1)[1].split("\nTimeline", 1)[0]
    assert findings.startswith("6, from 24 observations; causes first):")
    assert findings.count(POOL) == 1
    assert findings.splitlines()[1].startswith(f"  cause        [high] {POOL} (seen in 01_triage, ")
    assert out.count(POOL) == 2  # once in Findings, once in the timeline (not once per notebook)


def test_the_demo_report_lists_each_finding_once_cause_first(tmp_path: Path, capsys: Any) -> None:
    from vcci_lab.cli.demo import _report

    rec = _record(tmp_path)
    _report(rec.folder)
    out = capsys.readouterr().out
    assert out.count(POOL) == 1
    first = next(line for line in out.splitlines() if line.strip().startswith(("cause:", "symptom:", "contributing:")))
    assert first.strip().startswith(f"cause:       [high] {POOL}")

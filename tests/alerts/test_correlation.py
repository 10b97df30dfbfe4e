"""Correlation: alert groups of one fault (same namespace, close in time) make one incident, not several.

A real `vcci-nb serve` gets real HTTP posts, shaped as the lab's Alertmanager sends them (one group
per alertname and namespace). The runs go to the fake runner, which leaves a marker per start.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.alerts._support import Serve, alert, notebooks_run, notification, wait_for

NS = "vcci-production"


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


def group(
    name: str,
    namespace: str = NS,
    *,
    status: str = "firing",
    starts_at: str = "2026-01-06T10:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    """One notification of the group (alertname, namespace), as the lab's Alertmanager groups."""
    item = alert(
        name,
        fingerprint=_fingerprint(name, namespace, starts_at),
        starts_at=starts_at,
        status=status,
        namespace=namespace,
        **labels,
    )
    return notification(
        [item],
        group_key=f'{{}}:{{alertname="{name}", namespace="{namespace}"}}',
        groupLabels={"alertname": name, "namespace": namespace},
    )


def _settle(serve: Serve, runs: int = 0) -> list[dict[str, Any]]:
    wait_for(lambda: serve.settled() and len(serve.runs()) >= runs, what=f"{runs} finished run(s)")
    return serve.runs()


def _summaries(record: dict[str, Any], kind: str | None = None) -> list[str]:
    return [e["summary"] for e in record["timeline"] if kind is None or e["kind"] == kind]


def test_two_alertnames_in_one_namespace_make_one_incident_with_both_bundles_and_one_triage(make_serve: Any) -> None:
    # Runs take a while, so triage is still queued or running when the third group asks for it.
    serve = make_serve("--concurrency", "1", sleep=1.5)
    assert serve.post(group("HighErrorRate")).status_code == 200  # no route: triage
    wait_for(serve.records, what="the incident")
    assert serve.post(group("DatabaseConnectionsHigh", severity="high")).status_code == 200  # connection_pool_exhausted
    assert serve.post(group("VcciApiHighLatency", severity="high")).status_code == 200  # no route: triage again
    runs = _settle(serve, 2)

    [record] = serve.records()
    assert sorted(r["bundle"] for r in runs) == ["connection_pool_exhausted", "triage"]
    assert len(serve.runs("start")) == 2  # triage was not started a second time
    assert {r["incident"] for r in runs} == {record["id"]}
    assert [(g["name"], g["role"], g["status"]) for g in record["alert_groups"]] == [
        ("HighErrorRate", "opened", "firing"),
        ("DatabaseConnectionsHigh", "joined", "firing"),
        ("VcciApiHighLatency", "joined", "firing"),
    ]
    assert sorted(a["labels"]["alertname"] for a in record["alerts"]) == [
        "DatabaseConnectionsHigh",
        "HighErrorRate",
        "VcciApiHighLatency",
    ]
    joined = [s for s in _summaries(record, "alert") if " joined " in s]
    assert len(joined) == 2
    assert joined[0].startswith(f"alert group DatabaseConnectionsHigh joined {record['id']}: same namespace {NS}, ")
    assert "incident opened" in joined[0] and "s earlier" in joined[0]
    runs_said = _summaries(record, "run")
    assert any(
        s.startswith("Bundle 'connection_pool_exhausted' queued for alert group DatabaseConnectionsHigh")
        for s in runs_said
    ), runs_said
    [skipped] = [s for s in runs_said if "not queued again" in s]
    assert skipped.startswith("Bundle 'triage' not queued again for alert group VcciApiHighLatency: it ")
    assert "for this incident" in skipped
    assert len([j for j in serve.jobs() if j["bundle"] == "triage"]) == 1
    metrics = serve.metrics()
    assert metrics["vcci_nb_serve_incidents_opened_total"] == 1
    assert metrics["vcci_nb_serve_alert_groups_correlated_total"] == 2
    assert metrics["vcci_nb_serve_runs_skipped_total"] == 1
    html = (serve.outputs / record["id"] / "index.html").read_text()
    assert "Alert groups" in html and "DatabaseConnectionsHigh" in html and "same namespace" in html


def test_different_namespaces_make_different_incidents(make_serve: Any) -> None:
    serve = make_serve()
    assert serve.post(group("HighErrorRate", "vcci-production")).status_code == 200
    assert serve.post(group("DatabaseConnectionsHigh", "vcci-staging")).status_code == 200
    runs = _settle(serve, 2)
    records = serve.records()
    assert len(records) == 2
    assert sorted(len(r["alert_groups"]) for r in records) == [1, 1]
    assert sorted(r["incident"] for r in runs) == sorted(r["id"] for r in records)


def test_correlate_window_0_keeps_one_incident_per_group(make_serve: Any) -> None:
    serve = make_serve(routes="incidents:\n  correlate_window_s: 0\n")
    assert serve.post(group("HighErrorRate")).status_code == 200
    assert serve.post(group("VcciApiHighLatency")).status_code == 200
    runs = _settle(serve, 2)
    records = serve.records()
    assert len(records) == 2
    assert [r["bundle"] for r in runs] == ["triage", "triage"]  # each incident triaged, as before
    assert not any(" joined " in s for r in records for s in _summaries(r))
    assert serve.metrics()["vcci_nb_serve_alert_groups_correlated_total"] == 0


def test_a_group_after_the_window_opens_a_new_incident(make_serve: Any) -> None:
    serve = make_serve(routes="incidents:\n  correlate_window_s: 2\n")
    assert serve.post(group("HighErrorRate")).status_code == 200
    _settle(serve, 1)
    time.sleep(2.5)  # let the 2 s window pass (a window, not a timing assertion)
    assert serve.post(group("VcciApiHighLatency")).status_code == 200
    _settle(serve, 2)
    records = serve.records()
    assert len(records) == 2
    assert all(r["status"] == "investigating" for r in records)


def test_a_joining_group_raises_the_severity_and_never_lowers_it(make_serve: Any) -> None:
    serve = make_serve()
    assert serve.post(group("VcciApiHighLatency", severity="medium")).status_code == 200
    wait_for(serve.records, what="the incident")
    assert serve.records()[0]["severity"] == "P2"
    assert serve.post(group("HighErrorRate", severity="critical")).status_code == 200
    assert serve.post(group("RedisMemoryHigh", severity="low")).status_code == 200
    _settle(serve, 1)
    [record] = serve.records()
    assert record["severity"] == "P1"
    raised = [e for e in record["timeline"] if e["summary"].startswith("Severity raised")]
    assert [e["summary"] for e in raised] == [
        "Severity raised P2 → P1: alert group HighErrorRate joined with severity=critical"
    ]
    assert raised[0]["data"]["from"] == "P2" and raised[0]["data"]["to"] == "P1"
    assert len(record["alert_groups"]) == 3  # the low one joined, and left the severity alone


def test_the_incident_resolves_only_when_every_group_has_resolved_and_only_once(make_serve: Any) -> None:
    routes = "incidents:\n  reopen_window_s: 600\n  on_resolve: {status: resolved, bundle: resolve}\n"
    serve = make_serve(routes=routes)
    assert serve.post(group("HighErrorRate")).status_code == 200
    wait_for(serve.records, what="the incident")
    assert serve.post(group("VcciApiHighLatency")).status_code == 200
    _settle(serve, 1)

    # One group resolves while the other still fires: a timeline entry, nothing else.
    assert serve.post(group("VcciApiHighLatency", status="resolved")).status_code == 200
    _settle(serve, 1)
    [record] = serve.records()
    assert record["status"] == "investigating" and record["resolved_at"] is None
    assert (
        f"alert group VcciApiHighLatency resolved; {record['id']} stays open while 1 other alert group fires: "
        "HighErrorRate"
    ) in _summaries(record, "alert")
    assert [g["status"] for g in record["alert_groups"]] == ["firing", "resolved"]
    assert [j["bundle"] for j in serve.jobs()] == ["triage"]

    # The last one resolves: the incident resolves, once, and on_resolve runs once.
    last = group("HighErrorRate", status="resolved")
    assert serve.post(last).status_code == 200
    assert serve.post(last).status_code == 200  # sent twice: still once
    runs = _settle(serve, 2)
    [record] = serve.records()
    assert record["status"] == "resolved"
    assert [h["status"] for h in record["status_history"]] == ["investigating", "resolved"]
    assert (
        "every alert group of the incident resolved (HighErrorRate, VcciApiHighLatency)"
        in (record["status_history"][-1]["note"])
    )
    assert sorted(r["bundle"] for r in runs) == ["resolve", "triage"]

    # Both fire again within the reopen window: the incident reopens once, one new triage.
    assert serve.post(group("HighErrorRate", starts_at="2026-01-06T10:30:00Z")).status_code == 200
    wait_for(lambda: serve.records()[0]["status"] == "investigating", what="the reopen")
    assert serve.post(group("VcciApiHighLatency", starts_at="2026-01-06T10:30:00Z")).status_code == 200
    runs = _settle(serve, 3)
    [record] = serve.records()
    assert [h["status"] for h in record["status_history"]] == ["investigating", "resolved", "investigating"]
    assert sorted(r["bundle"] for r in runs) == ["resolve", "triage", "triage"]
    assert [g["status"] for g in record["alert_groups"]] == ["firing", "firing"]
    assert serve.metrics()["vcci_nb_serve_incidents_reopened_total"] == 1


def test_a_joining_group_reruns_a_bundle_that_finished_longer_ago_than_the_window(make_serve: Any) -> None:
    serve = make_serve(routes="incidents:\n  correlate_window_s: 3\n")
    assert serve.post(group("HighErrorRate")).status_code == 200
    _settle(serve, 1)
    finished = serve.jobs()[0]["finished_at"]
    # The incident keeps firing (new alerts in its group) past the window after triage finished.
    n = 0
    while time.time() < finished + 4.5:
        n += 1
        body = notification(
            [alert("HighErrorRate", fingerprint=f"{n:016x}", namespace=NS)],
            group_key=f'{{}}:{{alertname="HighErrorRate", namespace="{NS}"}}',
        )
        assert serve.post(body).status_code == 200
        time.sleep(1.0)
    assert serve.post(group("VcciApiHighLatency")).status_code == 200
    runs = _settle(serve, 2)
    [record] = serve.records()
    assert [r["bundle"] for r in runs] == ["triage", "triage"]
    [again] = [s for s in _summaries(record, "run") if "queued for alert group VcciApiHighLatency" in s]
    assert "longer ago than the 3 s correlation window" in again
    assert [(j["bundle"], j["round"]) for j in serve.jobs()] == [("triage", 0), ("triage", 1)]


def test_many_groups_of_one_namespace_posted_at_once_make_one_incident(make_serve: Any) -> None:
    serve = make_serve("--concurrency", "2", sleep=0.3)
    bundles = ["triage", "investigate", "memory_leak"]
    bodies = [group(f"Storm{i}", bundle=bundles[i % 3]) for i in range(30)]
    bodies += [group(f"Other{i}", "vcci-staging") for i in range(5)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda b: serve.post(b).status_code, bodies))
    assert codes == [200] * len(bodies)
    # Which bundles run depends on which group was ingested first (investigate is triage without
    # 01_triage): 2 or 3 in production, and every notebook of them once.
    runs = _settle(serve, 3)
    records = serve.records()
    assert len(records) == 2
    [prod] = [r for r in records if r["alert_groups"][0]["labels"]["namespace"] == NS]
    [staging] = [r for r in records if r["id"] != prod["id"]]
    assert len(prod["alert_groups"]) == 30 and len(staging["alert_groups"]) == 5
    assert len(prod["alerts"]) == 30
    prod_bundles = [r["bundle"] for r in runs if r["incident"] == prod["id"]]
    assert len(prod_bundles) == len(set(prod_bundles)) and set(prod_bundles) <= set(bundles)
    ran = notebooks_run(runs, prod["id"])
    assert sorted(ran) == sorted(set(notebooks_run([{"incident": "x", "bundle": b, "argv": []} for b in bundles], "x")))
    assert [r["bundle"] for r in runs if r["incident"] == staging["id"]] == ["triage"]
    assert len(serve.runs("start")) == len(prod_bundles) + 1


def test_an_older_state_database_is_migrated(tmp_path: Path) -> None:
    from vcci_nb.alerts.store import Store

    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "serve.sqlite3") as db:  # the jobs table as version 1 wrote it
        db.executescript(
            """
            CREATE TABLE jobs (
                id INTEGER PRIMARY KEY AUTOINCREMENT, incident_id TEXT NOT NULL, group_key TEXT,
                kind TEXT NOT NULL, bundle TEXT NOT NULL, params TEXT NOT NULL, profile TEXT, route TEXT,
                episode INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT, attempts INTEGER NOT NULL DEFAULT 0,
                max_attempts INTEGER NOT NULL, lease_owner TEXT, lease_expires REAL, pid INTEGER,
                created_at REAL NOT NULL, started_at REAL, finished_at REAL, exit_code INTEGER,
                announced INTEGER NOT NULL DEFAULT 0, UNIQUE (incident_id, kind, bundle, episode)
            );
            CREATE INDEX jobs_state ON jobs(state, id);
            INSERT INTO jobs(incident_id, kind, bundle, params, episode, state, max_attempts, created_at)
            VALUES ('INC-20260106-001', 'alert', 'triage', '{}', 1, 'succeeded', 2, 1.0);
            """
        )
    store = Store(state)
    try:
        [job] = store.jobs()
        assert (job["incident_id"], job["bundle"], job["state"], job["round"]) == (
            "INC-20260106-001",
            "triage",
            "succeeded",
            0,
        )
        with store.transaction() as db:  # a second round of the same bundle and episode now fits
            db.execute(
                "INSERT INTO jobs(incident_id, kind, bundle, params, episode, round, state, max_attempts, created_at) "
                "VALUES ('INC-20260106-001', 'alert', 'triage', '{}', 1, 1, 'queued', 2, 2.0)"
            )
        assert len(store.jobs()) == 2
    finally:
        store.close()
    Store(state).close()  # opening it again changes nothing


class _Crash(BaseException):
    """Stands for SIGKILL: nothing after the point where it is raised happens (transactions roll back)."""


@pytest.mark.parametrize("step", ["bind", "record", "commit"])
def test_a_crash_while_a_group_joins_ends_in_one_incident_with_everything_once(tmp_path: Path, step: str) -> None:
    """The ingest step killed between each of its steps while a group joins, then started again.

    In-process (the receiver's own SQLite and records, no HTTP) so that the kill lands exactly
    between two steps; the HTTP restart tests kill the real process at a random point.
    """
    from vcci_nb.alerts.incidents import Ingestor
    from vcci_nb.alerts.routing import Routes
    from vcci_nb.alerts.store import Store

    class Crashing(Ingestor):
        armed = True

        def _crash(self, here: str, note: Any) -> None:
            if self.armed and step == here and "DatabaseConnectionsHigh" in note.group_key:
                self.armed = False
                raise _Crash(here)

        def _bind(self, note: Any, *args: Any) -> Any:
            found = super()._bind(note, *args)
            self._crash("bind", note)
            return found

        def _record(self, binding: Any, note: Any, *args: Any, **kw: Any) -> None:
            super()._record(binding, note, *args, **kw)
            self._crash("record", note)

        def _finish(self, db: Any, batch: Any, *args: Any) -> None:
            super()._finish(db, batch, *args)
            self._crash("commit", batch[0].note)

    outputs = tmp_path / "outputs"
    store = Store(tmp_path / "state")
    try:
        for body in (group("HighErrorRate"), group("DatabaseConnectionsHigh"), group("VcciApiHighLatency")):
            raw = json.dumps(body).encode()
            store.add_delivery(group_key=body["groupKey"], status="firing", n_alerts=1, truncated=0, body=raw)
        routes = Routes.load()
        with pytest.raises(_Crash):
            Crashing(store, routes, outputs=outputs).process_pending()
        Ingestor(store, routes, outputs=outputs).process_pending()  # the next start takes the batch again
        assert store.pending_deliveries() == 0
        [folder] = sorted(outputs.glob("INC-*"))
        record = json.loads((folder / "record.json").read_text())
        assert [(g["name"], g["role"]) for g in record["alert_groups"]] == [
            ("HighErrorRate", "opened"),
            ("DatabaseConnectionsHigh", "joined"),
            ("VcciApiHighLatency", "joined"),
        ]
        assert len(record["alerts"]) == 3
        assert len([s for s in _summaries(record) if " joined " in s]) == 2
        assert len([s for s in _summaries(record) if "not queued again" in s]) == 1
        jobs = sorted((j["bundle"], j["state"], j["skip"]) for j in store.jobs())
        assert jobs == [
            # its two 03_ notebooks are in the triage queued before it, whichever step the crash hit
            ("connection_pool_exhausted", "queued", ["03_investigate_database", "03_investigate_metrics"]),
            ("triage", "queued", []),
        ]
        assert {g["state"] for g in store.groups()} == {"open"}
    finally:
        store.close()

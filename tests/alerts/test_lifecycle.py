"""From alerts to incidents and runs: dedup, HA double delivery, grouping, resolve, re-fire, routing, refusals."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from tests.alerts._support import GROUP, Serve, alert, notification, wait_for


def _settle(serve: Serve, runs: int) -> list[dict[str, Any]]:
    wait_for(lambda: serve.settled() and len(serve.runs()) >= runs, what=f"{runs} finished run(s)")
    return serve.runs()


def test_firing_alert_opens_an_incident_and_runs_triage_once(make_serve: Any) -> None:
    serve = make_serve()
    resp = serve.post(notification([alert()]))
    assert resp.status_code == 200
    runs = _settle(serve, 1)
    [record] = serve.records()
    assert record["source"] == "alertmanager"
    assert record["group_key"] == GROUP
    assert record["severity"] == "P1"  # severity=critical: the seed's P1 (P0 is an outage, security, data)
    assert record["title"].startswith("HighErrorRate")
    assert record["detected_at"].startswith("2026-01-06T10:00:00")  # the alert's startsAt, not our clock
    assert [a["fingerprint"] for a in record["alerts"]] == ["a1b2c3d4e5f60718"]
    [run] = runs
    assert run["incident"] == record["id"]
    assert run["argv"] == [
        "triage",
        "--incident",
        record["id"],
        "-p",
        "namespace=vcci-production",
        "--profile",
        "lab",
    ]
    assert run["outputs"] == str(serve.outputs)
    assert run["sees_serve_token"] is False  # a notebook run never gets the receiver's token
    summaries = [e["summary"] for e in record["timeline"] if e["kind"] == "run"]
    assert any("Started bundle 'triage'" in s for s in summaries)
    assert any("Bundle 'triage' succeeded" in s for s in summaries)
    metrics = serve.metrics()
    assert metrics['vcci_nb_serve_runs{state="succeeded"}'] == 1
    assert metrics["vcci_nb_serve_alert_to_record_seconds_count"] == 1


def test_duplicates_and_ha_double_delivery_run_once(make_serve: Any) -> None:
    serve = make_serve(sleep=0.5)
    body = notification([alert()])
    # Alertmanager retrying, then an HA pair delivering the same notification at the same moment.
    assert serve.post(body).status_code == 200
    assert serve.post(body).status_code == 200
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: serve.post(body).status_code, range(4)))
    assert codes == [200] * 4
    _settle(serve, 1)
    assert len(serve.runs("start")) == 1
    assert len(serve.records()) == 1
    assert len(serve.records()[0]["alerts"]) == 1
    metrics = serve.metrics()
    assert metrics["vcci_nb_serve_alerts_received_total"] == 6
    assert metrics["vcci_nb_serve_alerts_deduplicated_total"] == 5


def test_new_alerts_join_the_open_incident(make_serve: Any) -> None:
    serve = make_serve(sleep=0.3)
    first = alert(severity="medium")
    assert serve.post(notification([first])).status_code == 200
    wait_for(lambda: serve.records(), what="the incident")
    # Alertmanager re-sends the whole group with a new alert in it.
    second = alert(fingerprint="ffff000011112222", pod="vcci-api-7d9f-abcde", severity="critical")
    assert serve.post(notification([first, second])).status_code == 200
    _settle(serve, 1)
    [record] = serve.records()
    assert [a["fingerprint"] for a in record["alerts"]] == ["a1b2c3d4e5f60718", "ffff000011112222"]
    assert record["severity"] == "P1"  # raised from P2 by the critical alert
    assert any("Severity raised P2 → P1" in e["summary"] for e in record["timeline"])
    assert len(serve.runs("start")) == 1  # same bundle, same episode: not run again


def test_resolve_then_refire_reopens_then_opens_a_new_incident_after_the_window(make_serve: Any) -> None:
    routes = """
incidents:
  reopen_window_s: 3
  on_resolve: {status: resolved, bundle: resolve}
"""
    serve = make_serve(routes=routes)
    firing = alert()
    assert serve.post(notification([firing])).status_code == 200
    _settle(serve, 1)
    resolved = alert(status="resolved")
    assert serve.post(notification([resolved])).status_code == 200
    assert serve.post(notification([resolved])).status_code == 200  # resolved twice: one entry
    runs = _settle(serve, 2)
    [record] = serve.records()
    assert record["status"] == "resolved"
    assert record["resolved_at"] is not None
    assert [e["summary"] for e in record["timeline"] if e["kind"] == "alert"] == [
        "Alert HighErrorRate firing: HighErrorRate on vcci-api",
        "Alert HighErrorRate resolved",
    ]
    assert record["alerts"][0]["status"] == "resolved"
    assert sorted(r["bundle"] for r in runs) == ["resolve", "triage"]

    # Fires again (a new startsAt) within the window: the same incident, reopened, triaged again.
    refire = alert(starts_at="2026-01-06T10:30:00Z")
    assert serve.post(notification([refire])).status_code == 200
    runs = _settle(serve, 3)
    [record] = serve.records()
    assert record["status"] == "investigating"
    assert [h["status"] for h in record["status_history"]] == ["investigating", "resolved", "investigating"]
    assert sorted(r["bundle"] for r in runs) == ["resolve", "triage", "triage"]

    # Resolves, then fires again after the window: a new incident.
    assert serve.post(notification([alert(starts_at="2026-01-06T10:30:00Z", status="resolved")])).status_code == 200
    _settle(serve, 4)
    wait_for(lambda: serve.records()[0]["status"] == "resolved", what="second resolution")
    import time

    time.sleep(3.5)  # let the 3 s reopen window pass (a window, not a timing assertion)
    assert serve.post(notification([alert(starts_at="2026-01-06T11:30:00Z")])).status_code == 200
    _settle(serve, 5)
    records = serve.records()
    assert len(records) == 2
    assert {r["group_key"] for r in records} == {GROUP}
    assert records[1]["status"] == "investigating"
    assert serve.metrics()["vcci_nb_serve_incidents_reopened_total"] == 1


def test_label_values_that_try_to_inject_code_are_refused_and_recorded(make_serve: Any) -> None:
    serve = make_serve()
    hostile = [
        "default; rm -rf /",
        "x'; import os; os.system('touch /tmp/pwned'); '",
        'vcci"\nimport os\nos.system("id")',
        "$(id)",
        "__import__('os').system('id')",
    ]
    for index, value in enumerate(hostile):
        body = notification(
            [alert(fingerprint=f"{index:016x}", namespace=value)], group_key=f'{{}}:{{alertname="Hostile{index}"}}'
        )
        assert serve.post(body).status_code == 200
    wait_for(lambda: serve.settled() and len(serve.records()) == len(hostile), what="hostile incidents")
    assert serve.runs("start") == []  # nothing ran with any of those values
    jobs = serve.jobs()
    assert [j["state"] for j in jobs] == ["refused"] * len(hostile)
    for record in serve.records():
        refusals = [e for e in record["timeline"] if e["kind"] == "run" and e["summary"].startswith("Refused")]
        assert len(refusals) == 1, record["timeline"]
        assert "DNS-1123" in refusals[0]["summary"]
    assert serve.metrics()['vcci_nb_serve_runs{state="refused"}'] == len(hostile)


def test_hostile_bundle_label_falls_back_to_a_known_bundle(make_serve: Any) -> None:
    serve = make_serve()
    body = notification([alert(name="PodOOMKilled", bundle="triage --timeout 0; rm -rf /")])
    assert serve.post(body).status_code == 200
    [run] = _settle(serve, 1)
    assert run["bundle"] == "memory_leak"  # the alertname route, not the label
    note = [e["summary"] for e in serve.records()[0]["timeline"] if e["kind"] == "note"]
    assert any("names no bundle" in n for n in note)


def test_bundle_label_picks_the_bundle(make_serve: Any) -> None:
    serve = make_serve()
    assert serve.post(notification([alert(name="DatabaseConnectionsHigh", bundle="slow_queries")])).status_code == 200
    [run] = _settle(serve, 1)
    assert run["bundle"] == "slow_queries"


def test_unmatched_alert_runs_triage_and_a_failed_run_is_recorded(make_serve: Any) -> None:
    serve = make_serve(exit_code=3)
    assert serve.post(notification([alert(name="SomethingNobodyRoutes", severity="low")])).status_code == 200
    [run] = _settle(serve, 1)
    assert run["bundle"] == "triage"
    [record] = serve.records()
    assert record["severity"] == "P3"
    assert any("Bundle 'triage' failed (exit 3)" in e["summary"] for e in record["timeline"])
    assert serve.jobs()[0]["state"] == "failed"
    assert serve.jobs()[0]["attempts"] == 1  # a run that finished, even badly, is not retried


def test_a_run_that_exceeds_its_timeout_is_killed_and_recorded(make_serve: Any) -> None:
    serve = make_serve("--run-timeout", "1", sleep=30)
    assert serve.post(notification([alert()])).status_code == 200
    wait_for(serve.settled, timeout=60, what="the run to time out")
    [job] = serve.jobs()
    assert job["state"] == "timeout"
    assert serve.runs("done") == []  # it was stopped, not left to finish
    [record] = serve.records()
    assert any("Bundle 'triage' timeout" in e["summary"] and "killed" in e["summary"] for e in record["timeline"])

"""Through the real Alertmanager binary: its webhook, its bearer token, its groupKey, an HA pair.

Two Alertmanagers with the same configuration and no gossip between them both notify the
receiver about the same alert, as an HA pair does when the cluster is split: the alert must
open one incident and run once. Then the alert ends, and Alertmanager's resolved notification
resolves the incident.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.alerts._support import Serve, wait_for

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager is not installed (apt)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONFIG = """
route:
  receiver: vcci-nb
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: vcci-nb
    webhook_configs:
      - url: {url}/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token_file}
"""


class Alertmanager:
    def __init__(self, root: Path, serve_url: str, token_file: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (root / "alertmanager.yml").write_text(CONFIG.format(url=serve_url, token_file=token_file))
        self.log = open(root / "alertmanager.log", "wb")  # noqa: SIM115 - closed in stop()
        assert ALERTMANAGER is not None
        self.proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={root / 'alertmanager.yml'}",
                f"--storage.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, timeout=20, what="Alertmanager to be ready")

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        resp = requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        assert resp.status_code == 200, resp.text

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def ha_pair(make_serve: Any, tmp_path: Path) -> Iterator[tuple[Serve, list[Alertmanager]]]:
    serve = make_serve("--concurrency", "2", sleep=0.5)
    token_file = tmp_path / "am-token"
    token_file.write_text(serve.token)
    pair = [Alertmanager(tmp_path / f"am{i}", serve.url, token_file) for i in range(2)]
    try:
        yield serve, pair
    finally:
        for am in pair:
            am.stop()


def test_real_alertmanager_ha_pair_opens_one_incident_and_resolves_it(
    ha_pair: tuple[Serve, list[Alertmanager]],
) -> None:
    serve, pair = ha_pair
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    firing = {
        "labels": {
            "alertname": "DatabaseConnectionsHigh",
            "severity": "high",
            "service": "vcci-api",
            "namespace": "vcci-production",
            "bundle": "connection_pool_exhausted",
        },
        "annotations": {"summary": "connections at 95% of max_connections"},
        "startsAt": start.isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://prometheus.example/graph",
    }
    for am in pair:
        am.post_alerts([firing])
    # Both Alertmanagers notify; the second copy is a duplicate.
    wait_for(lambda: serve.metrics()["vcci_nb_serve_notifications_received_total"] >= 2, what="both notifications")
    wait_for(lambda: serve.settled() and serve.runs(), timeout=60, what="the run")
    [record] = serve.records()
    assert record["severity"] == "P1"
    assert record["group_key"].endswith('{alertname="DatabaseConnectionsHigh"}')
    assert record["title"] == "DatabaseConnectionsHigh: connections at 95% of max_connections"
    assert len(record["alerts"]) == 1
    assert [r["bundle"] for r in serve.runs()] == ["connection_pool_exhausted"]
    assert serve.metrics()["vcci_nb_serve_alerts_deduplicated_total"] >= 1

    # The cause goes away: Alertmanager sends 'resolved'; the incident follows.
    ended = dict(firing, endsAt=datetime.now(UTC).isoformat().replace("+00:00", "Z"))
    for am in pair:
        am.post_alerts([ended])
    wait_for(lambda: serve.records()[0]["status"] == "resolved", timeout=60, what="the resolved notification")
    wait_for(lambda: serve.settled() and len(serve.runs()) == 2, timeout=60, what="the resolve run")
    assert sorted(r["bundle"] for r in serve.runs()) == ["connection_pool_exhausted", "resolve"]
    assert len(serve.records()) == 1


def test_real_alertmanager_two_groups_of_one_fault_make_one_incident(
    ha_pair: tuple[Serve, list[Alertmanager]],
) -> None:
    """The seed's example incident fires a pool alert and an error-rate alert: one incident, each bundle once."""
    serve, pair = ha_pair
    start = (datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)).isoformat().replace("+00:00", "Z")

    def rule(name: str, severity: str, bundle: str) -> dict[str, Any]:
        labels = {"alertname": name, "severity": severity, "namespace": "vcci-production", "bundle": bundle}
        return {"labels": labels, "annotations": {"summary": name}, "startsAt": start}

    pool = rule("VcciDbPoolNearlyExhausted", "high", "connection_pool_exhausted")
    errors = rule("VcciApiHighErrorRate", "critical", "triage")
    for am in pair:
        am.post_alerts([pool])
    wait_for(lambda: serve.records(), what="the incident")
    for am in pair:
        am.post_alerts([errors])
    wait_for(
        lambda: serve.settled() and len(serve.runs()) == 2 and len(serve.records()[0].get("alert_groups", [])) == 2,
        timeout=60,
        what="both groups and both runs",
    )
    [record] = serve.records()
    assert [(g["name"], g["role"]) for g in record["alert_groups"]] == [
        ("VcciDbPoolNearlyExhausted", "opened"),
        ("VcciApiHighErrorRate", "joined"),
    ]
    assert record["severity"] == "P1"  # as the seed's own example incident: critical and high are both P1
    assert sorted(r["bundle"] for r in serve.runs()) == ["connection_pool_exhausted", "triage"]

    # The pool recovers first: the incident stays open; then the errors stop: it resolves, once.
    ended = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for am in pair:
        am.post_alerts([dict(pool, endsAt=ended)])
    wait_for(
        lambda: [g["status"] for g in serve.records()[0]["alert_groups"]] == ["resolved", "firing"],
        timeout=60,
        what="the pool group's resolution",
    )
    assert serve.records()[0]["status"] == "investigating"
    for am in pair:
        am.post_alerts([dict(errors, endsAt=datetime.now(UTC).isoformat().replace("+00:00", "Z"))])
    wait_for(lambda: serve.records()[0]["status"] == "resolved", timeout=60, what="the incident's resolution")
    wait_for(lambda: serve.settled() and len(serve.runs()) == 3, timeout=60, what="the resolve run")
    [record] = serve.records()
    assert sorted(r["bundle"] for r in serve.runs()) == ["connection_pool_exhausted", "resolve", "triage"]
    assert [h["status"] for h in record["status_history"]] == ["investigating", "resolved"]


def test_alertmanager_with_a_wrong_token_is_refused(make_serve: Any, tmp_path: Path) -> None:
    serve = make_serve()
    token_file = tmp_path / "wrong-token"
    token_file.write_text("not-the-token-at-all-0123456789")
    am = Alertmanager(tmp_path / "am", serve.url, token_file)
    try:
        am.post_alerts([{"labels": {"alertname": "Nope", "severity": "low"}, "annotations": {}}])
        wait_for(lambda: serve.metrics().get('vcci_nb_serve_responses_total{code="401"}', 0) >= 1, what="a 401")
    finally:
        am.stop()
    assert serve.records() == []

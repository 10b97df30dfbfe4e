"""One bad notification never holds up the others (issue 16, item 1).

Each delivery carries its own attempts; after the last it is set aside as ``failed`` with its
error, /metrics counts it, /healthz says how long the oldest one has waited, and
``vcci-nb deliveries retry ID`` puts it back once the cause is fixed.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from typing import Any

import requests

from tests.alerts._support import ROOT, Serve, alert, notification, wait_for

OTHER_GROUP = '{}:{alertname="DiskFull"}'


def _later_alert_opens_incident(serve: Serve) -> dict[str, Any]:
    """A normal alert of another group (another namespace) posted now becomes an incident of its own."""
    body = notification(
        [alert("DiskFull", fingerprint="d15cf011", namespace="vcci-batch", service="batch")], group_key=OTHER_GROUP
    )
    assert serve.post(body).status_code == 200
    found = wait_for(
        lambda: [r for r in _records(serve) if r["group_key"] == OTHER_GROUP], what="the later alert's incident"
    )
    [record] = found
    return record


def _records(serve: Serve) -> list[dict[str, Any]]:
    """The records that can be read (one test breaks one on purpose)."""
    out = []
    for path in sorted(serve.outputs.glob("INC-*/record.json")):
        try:
            out.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return out


def _delivery(serve: Serve, delivery_id: int) -> dict[str, Any]:
    with serve.db() as conn:
        return dict(conn.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone())


def _cli(serve: Serve, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcci_nb", "deliveries", "--state-dir", str(serve.state_dir), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=serve.env,
        timeout=60,
    )


def test_alert_without_a_name_or_summary_opens_an_incident_with_a_readable_title(make_serve: Any) -> None:
    serve = make_serve()
    nameless = alert("", fingerprint="0e0e0e0e")
    nameless["annotations"] = {}
    nameless["labels"] = {"alertname": "", "severity": "warning", "pod": "api-7f9c"}  # nothing to name it by
    body = notification([nameless], group_key='{}:{alertname=""}')
    assert serve.post(body).status_code == 200
    wait_for(lambda: serve.records(), what="the nameless alert's incident")
    [record] = serve.records()
    assert record["title"] == "alert pod=api-7f9c, severity=warning"
    later = _later_alert_opens_incident(serve)
    assert later["title"].startswith("DiskFull")


def test_resolve_for_an_archived_incident_is_counted_not_retried(make_serve: Any, tmp_path: Any) -> None:
    serve = make_serve()
    assert serve.post(notification([alert()])).status_code == 200
    wait_for(serve.settled, what="the first incident")
    [record] = serve.records()
    shutil.move(str(serve.outputs / record["id"]), str(tmp_path / "archive"))  # archived away
    resolved = serve.post(notification([alert(status="resolved")])).json()["delivery"]
    later = _later_alert_opens_incident(serve)
    assert later["status"] != "closed"
    wait_for(lambda: _delivery(serve, resolved)["state"] == "done", what="the resolve to be done")
    assert serve.metrics()["vcci_nb_serve_resolves_without_record_total"] == 1
    assert serve.metrics()["vcci_nb_serve_deliveries_failed"] == 0


def test_a_failing_delivery_is_set_aside_and_retried_after_the_fix(make_serve: Any) -> None:
    serve = make_serve("--delivery-attempts", "2", "--delivery-retry", "3", "--max-pending-age", "1")
    assert serve.post(notification([alert()])).status_code == 200
    wait_for(serve.settled, what="the first incident")
    [record] = serve.records()
    path = serve.outputs / record["id"] / "record.json"
    good = path.read_text()
    path.write_text("{ not json")  # the resolve cannot be written until someone restores it
    bad = serve.post(notification([alert(status="resolved")])).json()["delivery"]

    # While it waits for its second attempt, /healthz says how long, and past the bound it is unhealthy.
    health = wait_for(
        lambda: (r := requests.get(f"{serve.url}/healthz", timeout=10)).status_code == 503 and r.json(),
        what="/healthz to turn unhealthy",
    )
    assert health["oldest_pending_s"] >= 1
    # Other alerts proceed meanwhile.
    _later_alert_opens_incident(serve)

    wait_for(lambda: _delivery(serve, bad)["state"] == "failed", what="the delivery to be set aside")
    row = _delivery(serve, bad)
    assert row["attempts"] == 2
    assert "not valid JSON" in row["error"]
    assert serve.metrics()["vcci_nb_serve_deliveries_failed"] == 1
    assert serve.metrics()["vcci_nb_serve_deliveries_failed_total"] == 1
    ok = requests.get(f"{serve.url}/healthz", timeout=10)
    assert ok.status_code == 200 and ok.json()["oldest_pending_s"] == 0

    listed = _cli(serve, "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{bad:>6}  failed" in listed.stdout and "not valid JSON" in listed.stdout
    refused = _cli(serve, "retry", "1")  # the first delivery is done, not failed
    assert refused.returncode == 2 and "not failed" in refused.stderr

    path.write_text(good)  # the fix
    retried = _cli(serve, "retry", str(bad))
    assert retried.returncode == 0, retried.stderr
    wait_for(lambda: _delivery(serve, bad)["state"] == "done", what="the retried delivery")
    resolved = json.loads(path.read_text())
    assert resolved["status"] == "resolved"
    assert json.loads(_cli(serve, "list", "--json").stdout) == []


def test_a_version_3_state_database_gets_delivery_attempts(tmp_path: Any) -> None:
    import sqlite3

    from vcci_nb.alerts.store import Store

    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "serve.sqlite3") as db:  # the deliveries table as version 3 wrote it
        db.executescript(
            """
            CREATE TABLE deliveries (
                id INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL, group_key TEXT NOT NULL,
                status TEXT NOT NULL, n_alerts INTEGER NOT NULL, truncated INTEGER NOT NULL DEFAULT 0,
                body BLOB NOT NULL, state TEXT NOT NULL DEFAULT 'pending', processed_at REAL,
                incident_id TEXT, error TEXT
            );
            INSERT INTO deliveries(received_at, group_key, status, n_alerts, body) VALUES (1.0, 'g', 'firing', 1, 'x');
            PRAGMA user_version = 3;
            """
        )
    store = Store(state)
    try:
        [row] = store.deliveries()
        assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, None)
    finally:
        store.close()


def test_a_new_incident_is_not_queued_behind_a_storm_into_another(tmp_path: Any) -> None:
    """In one ingest pass, a first notification of another namespace is taken before a storm's batch.

    In-process: the storm's deliveries and the new group's are all pending at once, the storm's
    first; the new incident's delivery is done before them (it no longer waits for the large
    record's rewrite), and a group of the storm's own namespace still keeps delivery order.
    """
    from vcci_nb.alerts.incidents import Ingestor
    from vcci_nb.alerts.routing import Routes
    from vcci_nb.alerts.store import Store

    def add(store: Store, body: dict[str, Any]) -> int:
        raw = json.dumps(body).encode()
        return store.add_delivery(group_key=body["groupKey"], status="firing", n_alerts=1, truncated=0, body=raw)

    storm_key = '{}:{alertname="HighErrorRate",namespace="vcci-production"}'
    store = Store(tmp_path / "state")
    try:
        ingestor = Ingestor(store, Routes.load(), outputs=tmp_path / "outputs")
        add(store, notification([alert(fingerprint="aa00")], group_key=storm_key))
        ingestor.process_pending()  # the storm's incident is open
        storm = [add(store, notification([alert(fingerprint=f"aa{i:02x}")], group_key=storm_key)) for i in range(1, 9)]
        same_ns = add(
            store, notification([alert("PoolHigh", fingerprint="bb01")], group_key='{}:{alertname="PoolHigh"}')
        )
        other = add(
            store,
            notification([alert("DiskFull", fingerprint="cc01", namespace="vcci-batch")], group_key=OTHER_GROUP),
        )
        ingestor.process_pending()
        with sqlite3.connect(store.path) as db:
            done = [r[0] for r in db.execute("SELECT id FROM deliveries WHERE id > 1 ORDER BY processed_at, id")]
        assert done.index(other) < done.index(storm[0])  # the new namespace's incident went first
        assert done.index(same_ns) > done.index(storm[-1])  # same namespace: it may join, so order is kept
        assert store.pending_deliveries() == 0
    finally:
        store.close()

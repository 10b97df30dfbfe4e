"""The fix sections of the five scenario notebooks, run by papermill against the lab under each fault.

A headless run with the defaults (``dry_run=True``) only plans: the cluster, the database sessions,
the index and the pod's files are exactly as before, and every plan is in the incident record. A
run with ``dry_run=False`` but no ``confirm`` changes nothing either. With ``confirm`` set to the
incident ID, the pool and slow-query fixes reach the fixed state and are verified.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from _nbtools import RunNb, errors, output_text, require_fault

from vcci_nb.kubeapi import KubeClient
from vcci_nb.record import IncidentRecord

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]

NS = "vcci-production"
DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments/vcci-api"
PVC = f"/api/v1/namespaces/{NS}/persistentvolumeclaims/vcci-api-data"
INDEX = "idx_emissions_tenant_date"

#: scenario notebook -> (lab fault, the actions its fix section plans with the defaults)
SCENARIOS: dict[str, tuple[str, set[str]]] = {
    "connection_pool_exhausted": ("pool-exhaustion", {"postgres.terminate", "k8s.set_env"}),
    "memory_leak": ("oomkill", {"k8s.set_resources", "k8s.rollout_restart", "k8s.set_env"}),
    "disk_full": ("disk-full", {"disk.cleanup"}),
    "slow_queries": ("slow-queries", {"postgres.terminate", "postgres.create_index", "postgres.vacuum_analyze"}),
    "external_api_down": ("external-down", {"k8s.set_env"}),
}


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IncidentRecord:
    """An open P1 incident in the folder ``run_nb`` points the notebooks at (``tmp_path/outputs``)."""
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("VCCI_NB_OUTPUTS", str(outputs))
    return IncidentRecord.open("P1", "scenario fixes", outputs=outputs)


@pytest.fixture
def kube(lab_env: dict[str, str]) -> KubeClient:
    if "KUBECONFIG" not in lab_env:
        pytest.skip("this lab runs without the Kubernetes API emulator (no KUBECONFIG in lab.env())")
    return KubeClient(lab_env["KUBECONFIG"], "vcci-lab-admin")


@pytest.fixture
def restore(lab: Any) -> Iterator[None]:
    """A confirmed run changes the lab; put it back to its baseline (index, cluster) afterwards."""
    yield
    lab.reset()


def _admin(env: dict[str, str]) -> Any:
    return psycopg.connect(env["VCCI_ADMIN_DATABASE_URL"], autocommit=True, application_name="scenario-fixes-test")


def _app_url(lab: Any, env: dict[str, str]) -> str:
    """vcci_app's URL, with the password the lab generated (in the lab's state.json)."""
    secrets = json.loads((lab.dir / "state.json").read_text())["secrets"]
    parts = urlsplit(env["VCCI_ADMIN_DATABASE_URL"])
    netloc = f"vcci_app:{secrets['vcci_app']}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _app_sessions(env: dict[str, str]) -> set[int]:
    """PIDs of the application's connections (what pool exhaustion holds)."""
    with _admin(env) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE usename = 'vcci_app' AND application_name = 'vcci-api'"
        ).fetchall()
    return {int(r[0]) for r in rows}


def _long_running(env: dict[str, str]) -> set[int]:
    """PIDs of the queries the long-queries fault runs (pg_sleep from the worker)."""
    with _admin(env) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND application_name = 'vcci-worker'"
        ).fetchall()
    return {int(r[0]) for r in rows}


def _database(env: dict[str, str]) -> dict[str, Any]:
    """The index's validity (None: absent) and when emissions was last vacuumed or analyzed by hand."""
    with _admin(env) as conn:
        valid = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
            (INDEX,),
        ).fetchone()
        stats = conn.execute(
            "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = 'emissions'"
        ).fetchone()
    return {"index_valid": None if valid is None else bool(valid[0]), "emissions_maintenance": stats}


def _cluster(kube: KubeClient) -> dict[str, Any]:
    """What a fix would change in the cluster: the pod template (env, resources, restart annotation),
    replicas, the volume's size, the pods, and the old logs in the pods' shared volume."""
    deploy = kube.get(DEPLOY)
    pods = kube.get(f"/api/v1/namespaces/{NS}/pods", labelSelector="app=vcci-api")["items"]
    names = sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))
    _, old_logs, _ = kube.exec(NS, names[0], ["find", "/var/log", "-type", "f", "-name", "*.log", "-mtime", "+7"])
    return {
        "template": deploy["spec"]["template"],
        "replicas": deploy["spec"].get("replicas"),
        "generation": deploy["metadata"].get("generation"),
        "pvc": kube.get(PVC)["spec"]["resources"]["requests"]["storage"],
        "pods": names,
        "old_logs": sorted(old_logs.split()),
    }


def _state(env: dict[str, str], kube: KubeClient) -> dict[str, Any]:
    return {"cluster": _cluster(kube), "database": _database(env), "app_sessions": _app_sessions(env)}


def _entries(record: IncidentRecord) -> list[dict[str, Any]]:
    return list(IncidentRecord.load(record.id, record.outputs).data["actions"])


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_headless_dry_run_under_the_fault_plans_every_fix_and_changes_nothing(
    scenario: str, lab: Any, lab_env: dict[str, str], kube: KubeClient, record: IncidentRecord, run_nb: RunNb
) -> None:
    fault, expected = SCENARIOS[scenario]
    require_fault(lab_env, fault)
    with lab.fault(fault):
        before = _state(lab_env, kube)
        # idle_connection_s=0: the connections the fault holds are only seconds old, and the plan
        # should list them (the default is the runbook's five minutes).
        params = {"idle_connection_s": 0} if scenario == "connection_pool_exhausted" else {}
        nb = run_nb(f"scenarios/{scenario}.ipynb", incident_id=record.id, **params)
        after = _state(lab_env, kube)
    assert not errors(nb), errors(nb)
    assert after["cluster"] == before["cluster"]
    assert after["database"] == before["database"]
    if scenario == "connection_pool_exhausted":
        assert before["app_sessions"] and before["app_sessions"] <= after["app_sessions"]

    entries = _entries(record)
    assert {e["action"] for e in entries} == expected, [(e["action"], e["message"]) for e in entries]
    assert all(e["result"] == "planned" for e in entries), [e["message"] for e in entries]
    assert all(e["plan"] and e["actor"] and e["requested_at"] for e in entries)
    text = output_text(nb)
    assert "to execute: dry_run=False" in text or "nothing to do" in text  # the reader sees how to act

    by_action = {e["action"]: e for e in entries}
    if scenario == "connection_pool_exhausted":
        planned = {c["pid"] for c in by_action["postgres.terminate"]["plan"]["changes"]}
        assert before["app_sessions"] <= planned  # the plan names exactly the sessions the fault holds
        assert "DATABASE_POOL_SIZE=50" in by_action["k8s.set_env"]["plan"]["summary"]
    if scenario == "memory_leak":
        assert "limits.memory=16Gi" in by_action["k8s.set_resources"]["plan"]["summary"]
    if scenario == "disk_full":
        logs = by_action["disk.cleanup"]["plan"]["changes"][0]
        assert logs["files"] > 0 and logs["bytes"] > 0
    if scenario == "slow_queries":
        assert "CREATE INDEX CONCURRENTLY" in by_action["postgres.create_index"]["plan"]["summary"]
    if scenario == "external_api_down":
        summary = by_action["k8s.set_env"]["plan"]["summary"]
        assert "CIRCUIT_BREAKER_ENABLED=true" in summary and "USE_CACHED_DATA=true" in summary
        assert "External data provider unavailable" in text  # the Degraded message, shown not sent
        assert not IncidentRecord.load(record.id, record.outputs).data.get("notifications")


def test_pool_exhausted_fix_confirmed_lets_the_app_connect_again(
    lab: Any, lab_env: dict[str, str], kube: KubeClient, record: IncidentRecord, run_nb: RunNb, restore: None
) -> None:
    require_fault(lab_env, "pool-exhaustion")
    app_url = _app_url(lab, lab_env)
    with lab.fault("pool-exhaustion"):
        with pytest.raises(psycopg.OperationalError, match="too many connections"):
            psycopg.connect(app_url, connect_timeout=5).close()
        held = _app_sessions(lab_env)
        nb = run_nb(
            "scenarios/connection_pool_exhausted.ipynb",
            incident_id=record.id,
            dry_run=False,
            confirm=record.id,
            idle_connection_s=0,
        )
        assert not errors(nb), errors(nb)
        assert not (_app_sessions(lab_env) & held)
        with psycopg.connect(app_url, connect_timeout=5, application_name="scenario-fixes-test") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    container = kube.get(DEPLOY)["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "DATABASE_POOL_SIZE", "value": "50"} in container["env"]

    entries = {e["action"]: e for e in _entries(record)}
    for name in ("postgres.terminate", "k8s.set_env"):
        assert entries[name]["result"] == "succeeded", entries[name]["message"]
        assert entries[name]["verification"]["ok"] is True
    assert held <= set(entries["postgres.terminate"]["details"]["terminated"])


def test_slow_queries_fix_runs_only_when_confirmed_and_leaves_a_valid_index(
    lab: Any, lab_env: dict[str, str], record: IncidentRecord, run_nb: RunNb, restore: None
) -> None:
    """Under the missing index and the long-running queries of the seed's slow-query scenario (not
    its latency spike, which would linger in Prometheus for later tests): the long queries would
    hold CREATE INDEX CONCURRENTLY indefinitely, so the fix ends them first, then builds the index."""
    require_fault(lab_env, "slow-queries")
    require_fault(lab_env, "long-queries")
    with lab.fault("slow-queries"), lab.fault("long-queries"):
        before = _database(lab_env)
        assert before["index_valid"] is None
        long_running = _long_running(lab_env)
        assert long_running, "the long-queries fault should show long-running queries"

        # dry_run=False without confirm, as an unattended run would get it: nothing happens.
        nb = run_nb("scenarios/slow_queries.ipynb", incident_id=record.id, dry_run=False, long_query_s=1)
        assert not errors(nb), errors(nb)
        assert _database(lab_env) == before
        assert long_running <= _long_running(lab_env)
        assert all(e["result"] in ("planned", "awaiting_confirmation") for e in _entries(record))

        nb = run_nb(
            "scenarios/slow_queries.ipynb", incident_id=record.id, dry_run=False, confirm=record.id, long_query_s=1
        )
        assert not errors(nb), errors(nb)
        after = _database(lab_env)
        assert after["index_valid"] is True
        assert after["emissions_maintenance"] != before["emissions_maintenance"]  # vacuumed and analyzed
        assert not (long_running & _long_running(lab_env))

    confirmed = [e for e in _entries(record) if e["result"] == "succeeded"]
    assert {e["action"] for e in confirmed} == {
        "postgres.terminate",
        "postgres.create_index",
        "postgres.vacuum_analyze",
    }
    assert all(e["verification"]["ok"] is True for e in confirmed)
    index = next(e for e in confirmed if e["action"] == "postgres.create_index")
    checks = {c["name"]: c["ok"] for c in index["verification"]["checks"]}
    assert checks["probe query uses the index"]


def test_disk_full_fix_confirmed_deletes_the_old_logs_and_frees_space(
    lab: Any, lab_env: dict[str, str], kube: KubeClient, record: IncidentRecord, run_nb: RunNb, restore: None
) -> None:
    require_fault(lab_env, "disk-full")
    with lab.fault("disk-full"):
        assert _cluster(kube)["old_logs"], "the disk-full fault should leave week-old logs"
        nb = run_nb("scenarios/disk_full.ipynb", incident_id=record.id, dry_run=False, confirm=record.id)
        assert not errors(nb), errors(nb)
        assert _cluster(kube)["old_logs"] == []
    (cleanup,) = _entries(record)
    assert cleanup["action"] == "disk.cleanup" and cleanup["result"] == "succeeded", cleanup["message"]
    assert cleanup["verification"]["ok"] is True


def test_external_api_down_fix_confirmed_sets_both_switches_and_sends_nothing(
    lab: Any, lab_env: dict[str, str], kube: KubeClient, record: IncidentRecord, run_nb: RunNb, restore: None
) -> None:
    require_fault(lab_env, "external-down")
    with lab.fault("external-down"):
        nb = run_nb("scenarios/external_api_down.ipynb", incident_id=record.id, dry_run=False, confirm=record.id)
        assert not errors(nb), errors(nb)
    env = {e["name"]: e.get("value") for e in kube.get(DEPLOY)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CIRCUIT_BREAKER_ENABLED"] == "true" and env["USE_CACHED_DATA"] == "true"
    (switched,) = _entries(record)
    assert switched["result"] == "succeeded" and switched["verification"]["ok"] is True, switched["message"]
    assert "External data provider unavailable" in output_text(nb)
    assert not IncidentRecord.load(record.id, record.outputs).data.get("notifications")  # shown, never sent


def test_memory_leak_fix_confirmed_raises_the_limit_restarts_every_pod_and_turns_on_profiling(
    lab: Any, lab_env: dict[str, str], kube: KubeClient, record: IncidentRecord, run_nb: RunNb, restore: None
) -> None:
    require_fault(lab_env, "oomkill")
    with lab.fault("oomkill"):
        before = _cluster(kube)
        nb = run_nb("scenarios/memory_leak.ipynb", incident_id=record.id, dry_run=False, confirm=record.id)
        assert not errors(nb), errors(nb)
        after = _cluster(kube)
    container = after["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "16Gi"
    assert container["resources"]["requests"]["memory"] == "8Gi"
    assert {"name": "MEMORY_PROFILING_ENABLED", "value": "true"} in container["env"]
    assert not set(before["pods"]) & set(after["pods"])  # every pod was replaced
    entries = _entries(record)
    assert [e["action"] for e in entries] == ["k8s.set_resources", "k8s.rollout_restart", "k8s.set_env"]
    for entry in entries:
        assert entry["result"] == "succeeded" and entry["verification"]["ok"] is True, entry["message"]

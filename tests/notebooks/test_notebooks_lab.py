"""Every runbook notebook, executed by papermill against the lab: healthy, and under each fault that
concerns it. What is asserted is what the runner collects — the findings read back from the
executed notebook's finding outputs — and what a reader sees (banners, verdicts).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _nbtools import (
    DIAGNOSTIC,
    RunNb,
    errors,
    findings,
    output_text,
    panel_now,
    require,
    require_fault,
    settle_metrics,
    volumes_min_free,
    wait_for,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

#: Findings that mean "a fault is in force"; the healthy lab raises none of them.
FAULT_KEYS = {
    "db.lock_chain",
    "db.pool_exhaustion",
    "db.max_connections",
    "db.long_queries",
    "db.missing_index",
    "redis.memory_pressure",
    "redis.slow_commands",
    "redis.unavailable",
    "db.unavailable",
    "kube.oomkilled",
    "kube.crashloop",
    "kube.bad_deploy",
    "kube.disk_full",
    "metrics.error_rate",
    "metrics.latency",
    "deps.http_down",
    "deps.dependency_down",
}


def _keys(nb: dict[str, Any]) -> set[str]:
    return {f["key"] for f in findings(nb)}


def _one(nb: dict[str, Any], key: str) -> dict[str, Any]:
    found = [f for f in findings(nb) if f["key"] == key]
    assert found, f"no finding {key}; found {sorted(_keys(nb))}\n{output_text(nb)[-3000:]}"
    return found[0]


# -- healthy -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", DIAGNOSTIC)
def test_each_notebook_runs_clean_on_the_healthy_lab(rel: str, healthy: Callable[[str], Any]) -> None:
    _, nb = healthy(rel)
    assert not errors(nb), errors(nb)
    raised = _keys(nb) & FAULT_KEYS
    assert not raised, f"{rel} reports faults on a healthy lab: {[f for f in findings(nb) if f['key'] in raised]}"


# -- under faults ------------------------------------------------------------------------------


def _wait_for_errors() -> None:
    """Live metric faults take a scrape or two and a rate window to show; wait until Prometheus sees them."""
    # Findings read the last few points of the window, so wait until the spike has lasted a minute.
    wait_for(
        lambda: (panel_now("error_ratio_5xx", least_over="60s") or 0) > 0.05,
        240,
        "the 5xx share to stay above 5 % for a minute",
    )


def _wait_for_crashloop() -> None:
    """The emulator's controller takes a few seconds to put the pods into CrashLoopBackOff."""
    from vcci_nb.sources import kube

    def looping() -> bool:
        ev = kube.gather_pods(None)
        return ev.ok and bool((ev.frame["status"] == "CrashLoopBackOff").any())

    wait_for(looping, 60, "pods in CrashLoopBackOff")


def _root_blockers(admin_url: str) -> set[int]:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
        ).fetchall()
    blocked = {int(pid) for pid, _ in rows}
    blockers = {int(b) for _, bs in rows for b in bs}
    return blockers - blocked


def test_database_under_lock_contention_names_the_blocking_pid(
    lab: Any, lab_env: dict[str, str], run_nb: RunNb
) -> None:
    require_fault(lab_env, "lock-contention")
    with lab.fault("lock-contention"):
        roots = _root_blockers(lab_env["VCCI_ADMIN_DATABASE_URL"])
        nb = run_nb("03_investigate_database.ipynb")
    assert roots, "the fault should hold a lock chain"
    chain = _one(nb, "db.lock_chain")
    assert set(chain["details"]["blocking_pids"]) & roots, chain
    assert any(str(pid) in chain["summary"] for pid in roots), chain["summary"]
    assert not errors(nb)


def test_database_under_pool_exhaustion_names_the_application(lab: Any, lab_env: dict[str, str], run_nb: RunNb) -> None:
    require_fault(lab_env, "pool-exhaustion")
    with lab.fault("pool-exhaustion"):
        nb = run_nb("03_investigate_database.ipynb")
    pool = _one(nb, "db.pool_exhaustion")
    assert "vcci-api" in pool["summary"] or "vcci_app" in pool["summary"], pool


def test_database_under_long_queries_lists_them(lab: Any, lab_env: dict[str, str], run_nb: RunNb) -> None:
    require_fault(lab_env, "long-queries")
    with lab.fault("long-queries"):
        nb = run_nb("03_investigate_database.ipynb", long_query_s=1)
    long = _one(nb, "db.long_queries")
    assert long["value"] >= 1


def test_database_under_slow_queries_finds_the_missing_index(lab: Any, lab_env: dict[str, str], run_nb: RunNb) -> None:
    require_fault(lab_env, "slow-queries")
    with lab.fault("slow-queries"):
        nb = run_nb("03_investigate_database.ipynb")
    missing = _one(nb, "db.missing_index")
    assert "idx_emissions_tenant_date" in missing["summary"] or "emissions" in missing["summary"], missing


@pytest.mark.parametrize(
    ("fault", "key"),
    [("redis-memory", "redis.memory_pressure"), ("redis-slow", "redis.slow_commands")],
)
def test_redis_faults_are_reported(lab: Any, lab_env: dict[str, str], run_nb: RunNb, fault: str, key: str) -> None:
    require_fault(lab_env, fault)
    with lab.fault(fault):
        nb = run_nb("03_investigate_redis.ipynb")
    _one(nb, key)
    assert not errors(nb)


def test_redis_down_shows_the_banner_and_the_notebook_finishes(
    lab: Any, lab_env: dict[str, str], run_nb: RunNb
) -> None:
    require_fault(lab_env, "redis-down")
    with lab.fault("redis-down"):
        nb = run_nb("03_investigate_redis.ipynb")
    assert not errors(nb)
    assert "[UNAVAILABLE]" in output_text(nb)
    assert "redis.unavailable" in _keys(nb) or "Findings" in output_text(nb)


@pytest.mark.parametrize(
    ("rel", "fault", "key"),
    [
        ("03_investigate_system.ipynb", "oomkill", "kube.oomkilled"),
        ("03_investigate_system.ipynb", "crashloop", "kube.crashloop"),
        ("03_investigate_logs.ipynb", "crashloop", "logs.errors"),
        ("03_investigate_changes.ipynb", "bad-deploy", "kube.bad_deploy"),
        ("03_investigate_dependencies.ipynb", "external-down", "deps.http_down"),
        ("03_investigate_metrics.ipynb", "error-spike", "metrics.error_rate"),
    ],
)
def test_each_fault_is_found_by_its_notebook(
    lab: Any, lab_env: dict[str, str], run_nb: RunNb, rel: str, fault: str, key: str
) -> None:
    require_fault(lab_env, fault)
    params = {"window_start": "now-15m"} if rel == "03_investigate_metrics.ipynb" else {}
    with lab.fault(fault):
        if fault == "error-spike":
            _wait_for_errors()
        if fault == "crashloop":
            _wait_for_crashloop()
        nb = run_nb(rel, **params)
    _one(nb, key)
    assert not errors(nb)


def test_dependencies_under_rabbitmq_down(lab: Any, lab_env: dict[str, str], run_nb: RunNb) -> None:
    require_fault(lab_env, "dependency-down")
    with lab.fault("dependency-down"):
        nb = run_nb("03_investigate_dependencies.ipynb")
    assert _keys(nb) & {"deps.rabbitmq", "deps.http_down", "deps.dependency_down"}, _keys(nb)
    assert not errors(nb)


def test_decision_tree_under_bad_deploy_ranks_the_recent_deployment_first(
    lab: Any, lab_env: dict[str, str], run_nb: RunNb
) -> None:
    require_fault(lab_env, "bad-deploy")
    with lab.fault("bad-deploy"):
        nb = run_nb("03_decision_tree.ipynb")
    top = _one(nb, "tree.hypothesis")["details"]["hypotheses"][0]
    text = f"{top['symptom']} {top['cause']} {top['check']} {' '.join(top['findings'])}".lower()
    assert "deploy" in text or "kube.bad_deploy" in text, top


def test_triage_suggests_p1_or_worse_for_the_example_incident(lab: Any, lab_env: dict[str, str], run_nb: RunNb) -> None:
    require_fault(lab_env, "example_incident")
    with lab.fault("example_incident"):
        _wait_for_errors()
        nb = run_nb("01_triage.ipynb", window_start="now-15m")
    severity = _one(nb, "triage.severity")
    assert severity["value"] in ("P0", "P1"), severity
    assert "Dry run: would open" in output_text(nb), "headless with dry_run, no record is opened"


def test_triage_opens_a_record_only_when_not_dry_run(
    lab: Any, lab_env: dict[str, str], run_nb: RunNb, tmp_path: Path
) -> None:
    from vcci_nb.record import list_records

    out = tmp_path / "records"
    run_nb("01_triage.ipynb", outputs=out, dry_run=True)
    assert list_records(out) == []
    nb = run_nb("01_triage.ipynb", outputs=out, dry_run=False)
    records = list_records(out)
    assert len(records) == 1 and records[0]["id"] in output_text(nb)
    # Run again with that ID: it joins the record instead of opening another.
    run_nb("01_triage.ipynb", outputs=out, dry_run=False, incident_id=records[0]["id"])
    assert len(list_records(out)) == 1


@pytest.mark.parametrize(
    "scenario", ["connection_pool_exhausted", "memory_leak", "disk_full", "slow_queries", "external_api_down"]
)
def test_each_scenario_notebook_confirms_its_scenario(
    lab: Any, lab_env: dict[str, str], run_nb: RunNb, scenario: str
) -> None:
    require_fault(lab_env, scenario)
    with lab.fault(scenario):
        if scenario == "connection_pool_exhausted":
            _wait_for_errors()
        if scenario == "disk_full":
            wait_for(lambda: (volumes_min_free() or 1) < 0.1, 120, "Prometheus to scrape the nearly full volume")
        nb = run_nb(f"scenarios/{scenario}.ipynb", window_start="now-15m")
    verdict = _one(nb, f"scenario.{scenario}")
    assert verdict["severity"] == "high", verdict
    assert verdict["details"]["symptoms"][0]["status"] == "confirmed", verdict


@pytest.mark.parametrize(
    "scenario", ["connection_pool_exhausted", "memory_leak", "disk_full", "slow_queries", "external_api_down"]
)
def test_scenarios_are_not_confirmed_on_the_healthy_lab(scenario: str, healthy: Callable[[str], Any]) -> None:
    _, nb = healthy(f"scenarios/{scenario}.ipynb")
    verdict = _one(nb, f"scenario.{scenario}")
    assert verdict["severity"] != "high", verdict


@pytest.fixture
def quiet_lab(lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, dict[str, str]]]:
    """A lab of its own, whose Prometheus has seen no earlier test's metric spike.

    "Resolved" needs the live 5xx share and p95 quiet for the stable time; on the session lab an
    earlier error-spike stays in the 5-minute rate windows for up to five minutes after its heal.
    A second lab (about 5 s to start from the warm template) is much cheaper than that wait.
    It takes ``lab_env`` only to be set up after it, so that its variables win in ``os.environ``.
    """
    from tests.labs import own_lab

    with own_lab("vcci-nb-quiet-lab-") as own:
        env = own.env()
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield own, env


def test_resolve_says_not_yet_during_a_fault_and_resolved_after_heal(
    quiet_lab: tuple[Any, dict[str, str]], run_nb: RunNb
) -> None:
    own, env = quiet_lab
    require(env, "KUBECONFIG", "PROMETHEUS_URL")
    require_fault(env, "crashloop")
    with own.fault("crashloop"):
        _wait_for_crashloop()
        during = run_nb("06_resolve.ipynb", env=env, stable_minutes=1)
    verdict = _one(during, "resolve.verdict")
    assert verdict["value"] == "not yet" and "not ready" in verdict["summary"], verdict
    # Nothing spiked this lab's metrics; the check is kept so a failure names the cause.
    settle_metrics(env, worst_over="90s", margin=1.0, timeout=120)
    after = run_nb("06_resolve.ipynb", env=env, stable_minutes=1)
    verdict = _one(after, "resolve.verdict")
    assert verdict["value"] == "resolved", verdict["summary"]


def test_monitor_compares_each_snapshot_with_the_previous_one(run_nb: RunNb, tmp_path: Path) -> None:
    outputs = tmp_path / "monitor-outputs"
    first = run_nb("05_monitor.ipynb", outputs=outputs, incident_id="INC-20260106-001")
    second = run_nb("05_monitor.ipynb", outputs=outputs, incident_id="INC-20260106-001")
    assert "first snapshot: no trend yet" in output_text(first)
    assert "previous:" in output_text(second)
    assert (outputs / "INC-20260106-001" / "monitor" / "vcci-production.json").exists()
    assert not errors(first) and not errors(second)
    assert "Start live refresh" not in output_text(second) or "Refreshing every" not in output_text(second), (
        "nothing refreshes headless"
    )


# -- a source down -----------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broken_env(lab_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The lab's environment with every source pointing at a port where nothing listens."""
    port = _closed_port()
    env = dict(lab_env)
    for var in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_URL", "RABBITMQ_URL", "EXTERNAL_API_URL"):
        if var in env:
            env[var] = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", env[var])
    kubeconfig = tmp_path / "kubeconfig-down"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: vcci-lab\n"
        f"clusters: [{{name: vcci-lab, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: viewer, user: {token: canary-down-token}}]\n"
        "contexts: [{name: vcci-lab, context: {cluster: vcci-lab, user: viewer}}]\n"
    )
    env["KUBECONFIG"] = str(kubeconfig)
    return env


@pytest.mark.parametrize("rel", DIAGNOSTIC)
def test_with_every_source_down_each_notebook_finishes_and_shows_banners(
    rel: str, lab_env: dict[str, str], run_nb: RunNb, tmp_path: Path
) -> None:
    nb = run_nb(rel, env=_broken_env(lab_env, tmp_path))
    assert not errors(nb), errors(nb)
    text = output_text(nb)
    assert "[UNAVAILABLE]" in text or "UNAVAILABLE" in text, f"{rel} shows no banner"
    assert "canary-down-token" not in text

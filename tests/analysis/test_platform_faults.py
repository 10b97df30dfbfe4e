"""The rest of the lab: Prometheus (live scrapes over backfilled history), RabbitMQ, the external
API, the deployment repository, and the lab's own Kubernetes emulator, healthy and with faults.

Metric faults act through ``rate(...[5m])``: the tests poll (as an engineer would refresh) until
the finding appears, up to two minutes, and run last because the rates take minutes to decay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from vcci_nb.analysis import Finding, evaluate, find_all, suggest
from vcci_nb.evidence import Evidence
from vcci_nb.sources import git, http, kube, prometheus, rabbitmq
from vcci_nb.sources.window import incident_window

pytestmark = pytest.mark.lab


def _need(lab_env: dict[str, str], *names: str) -> None:
    missing = [n for n in names if not lab_env.get(n)]
    if missing:
        pytest.skip(f"this lab has no {', '.join(missing)}")


def platform() -> dict[str, Evidence]:
    w = incident_window(minutes=30)
    evs: dict[str, Evidence] = {}
    for ev in prometheus.gather_panels("lab", w, panels=["error_ratio_5xx", "latency_p95"]).values():
        evs[ev.name] = ev
    for ev in (
        prometheus.gather_volumes("lab"),
        prometheus.gather_dependency_up("lab", w),
        rabbitmq.gather_overview("lab"),
        rabbitmq.gather_queues("lab"),
        http.gather_health("lab"),
    ):
        evs[ev.name] = ev
    evs.update(kube.gather_workload("lab"))
    return evs


def keys(findings: list[Finding]) -> set[str]:
    return {f.key for f in findings}


def until(key: str, gather: Callable[[], dict[str, Evidence]], timeout: float = 120) -> list[Finding]:
    deadline = time.monotonic() + timeout
    while True:
        findings = find_all(gather())
        if key in keys(findings) or time.monotonic() > deadline:
            return findings
        time.sleep(3)


def test_platform_sources_answer_with_the_lab_s_data(lab_env: dict[str, str]) -> None:
    _need(lab_env, "PROMETHEUS_URL", "RABBITMQ_URL", "EXTERNAL_API_URL", "VCCI_GIT_REPO")
    evs = platform()
    bad = {n: e.message for n, e in evs.items() if not e.ok}
    assert not bad, bad
    assert evs["rabbitmq.overview"].frame.loc[0, "rabbitmq_version"]
    assert len(evs["rabbitmq.queues"].frame) >= 1
    health = evs["http.health"].frame
    assert health.loc[0, "name"] == "external-api" and bool(health.loc[0, "up"])
    assert evs["prometheus.volumes"].frame.loc[0, "persistentvolumeclaim"] == "vcci-api-data"
    assert len(evs["prometheus.error_ratio_5xx"].frame) > 100
    log = git.gather_git_log("lab")
    assert log.ok, log.message
    assert len(log.frame) >= 1 and set(log.frame["paths"]) <= {"k8s/", "terraform/environments/production"}
    assert (log.frame["at"] >= log.collected_at - timedelta(hours=24)).all()
    findings = find_all(evs)
    assert not keys(findings) & {"deps.http_down", "deps.rabbitmq", "kube.disk_full", "deps.dependency_down"}


def test_external_api_down_is_a_dependency_finding(lab: Any, lab_env: dict[str, str], cause_first: Any) -> None:
    _need(lab_env, "EXTERNAL_API_URL")
    with lab.fault("external-down"):
        ev = http.gather_health("lab", timeout=3)
    f = [x for x in find_all([ev]) if x.key == "deps.http_down"]
    assert f and f[0].details["endpoints"] == ["external-api"]
    tree = evaluate([ev], findings=f)
    assert tree.top is not None and "deps.http_down" in tree.top.findings
    assert tree.top.cause in ("External API timeout", "Network issues")
    assert cause_first([ev], f, {"deps.http_down"}) in ("External API timeout", "Network issues")


def test_dependency_down_names_rabbitmq_and_the_external_api(
    lab: Any, lab_env: dict[str, str], cause_first: Any
) -> None:
    _need(lab_env, "RABBITMQ_URL", "EXTERNAL_API_URL")
    with lab.fault("dependency-down"):
        evs = [rabbitmq.gather_overview("lab", timeout=3), http.gather_health("lab", timeout=3)]
    assert evs[0].status == "unavailable"
    found = keys(find_all(evs))
    assert {"deps.rabbitmq", "deps.http_down"} <= found
    assert suggest(evs).level == "P2"
    cause_first(evs, find_all(evs), {"deps.rabbitmq", "deps.http_down"})


def test_disk_full_from_volume_metrics(lab: Any, lab_env: dict[str, str], cause_first: Any) -> None:
    _need(lab_env, "PROMETHEUS_URL")
    with lab.fault("disk-full"):
        findings = until("kube.disk_full", lambda: {"v": prometheus.gather_volumes("lab")}, timeout=60)
    f = [x for x in findings if x.key == "kube.disk_full"]
    assert f and "vcci-api-data" in f[0].summary and float(f[0].value) < 0.1  # type: ignore[arg-type]
    tree = evaluate({}, findings=f)
    assert tree.top is not None and tree.top.cause == "Disk full"
    assert cause_first({}, f, {"kube.disk_full"}) == "Disk full"


def test_error_spike_alert_shows_in_triage_before_the_5_minute_panels_move(lab: Any, lab_env: dict[str, str]) -> None:
    """The lab's rule fires on a 1-minute rate; the finding and the suggested level come from it."""
    _need(lab_env, "PROMETHEUS_URL")

    def firing() -> set[str]:
        ev = prometheus.gather_alerts("lab")
        assert ev.ok, ev.message
        return set(ev.frame.loc[ev.frame["state"] == "firing", "alertname"])

    # An earlier error-spike (another test) keeps this alert firing for about a minute after its heal.
    deadline = time.monotonic() + 150
    while "VcciApiHighErrorRate" in firing() and time.monotonic() < deadline:
        time.sleep(3)
    assert "VcciApiHighErrorRate" not in firing(), "the alert is firing before the fault is injected"
    with lab.fault("error-spike"):
        # Another alert may still be firing from an earlier test: wait for this one by name.
        deadline = time.monotonic() + 120
        while True:
            found = find_all({"prometheus.alerts": prometheus.gather_alerts("lab")})
            f = [x for x in found if x.key == "alerts.firing"]
            if (f and "VcciApiHighErrorRate (critical, since" in f[0].summary) or time.monotonic() > deadline:
                break
            time.sleep(3)
    assert f and "VcciApiHighErrorRate (critical, since" in f[0].summary, [(x.key, x.summary) for x in found]
    assert f[0].severity == "critical"
    severity = suggest({}, findings=f)
    assert severity.level == "P1"
    assert any(r.startswith("Alert VcciApiHighErrorRate firing (severity=critical) → P1") for r in severity.reasons)


def test_error_spike_raises_the_5xx_finding(lab: Any, lab_env: dict[str, str]) -> None:
    _need(lab_env, "PROMETHEUS_URL")

    def panel() -> dict[str, Evidence]:
        ev = prometheus.gather_panel("lab", "error_ratio_5xx", incident_window(minutes=30), baseline=False)
        return {ev.name: ev}

    with lab.fault("error-spike"):
        findings = until("metrics.error_rate", panel)
    f = [x for x in findings if x.key == "metrics.error_rate"]
    assert f, [(x.key, x.summary) for x in findings]
    assert float(f[0].value) >= 0.05  # type: ignore[arg-type]
    assert "5xx share of requests" in f[0].summary


def test_latency_spike_raises_the_latency_finding(lab: Any, lab_env: dict[str, str]) -> None:
    _need(lab_env, "PROMETHEUS_URL")

    def panel() -> dict[str, Evidence]:
        ev = prometheus.gather_panel("lab", "latency_p95", incident_window(minutes=30), baseline=False)
        return {ev.name: ev}

    with lab.fault("latency-spike"):
        findings = until("metrics.latency", panel)
    f = [x for x in findings if x.key == "metrics.latency"]
    assert f and float(f[0].value) >= 2.0  # type: ignore[arg-type]
    assert suggest({}, findings=f).level == "P2"

"""Kubernetes, traffic and disk actions against the lab's Kubernetes API emulator.

Every test compares the cluster before and after a dry run (nothing changed), then runs the action
confirmed and checks the state a user would see: images, ready pods, annotations, free space.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vcci_nb.actions import (
    ActionRefused,
    AllowSourceRanges,
    BlockSourceRanges,
    CleanupFiles,
    DeletePod,
    DeletePodsRolling,
    ExpandVolume,
    MaintenanceMode,
    RateLimit,
    RolloutRestart,
    RolloutUndo,
    Scale,
    SetEnv,
    SetResources,
    run,
)
from vcci_nb.kubeapi import KubeClient
from vcci_nb.record import IncidentRecord

pytestmark = pytest.mark.lab

NS = "vcci-production"
DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments/vcci-api"
INGRESS = f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/vcci-api-ingress"
MAINTENANCE = f"/api/v1/namespaces/{NS}/configmaps/vcci-maintenance"
PVC = f"/api/v1/namespaces/{NS}/persistentvolumeclaims/vcci-api-data"
TIMEOUT = 90.0


@pytest.fixture
def kube(lab_env: dict[str, str]) -> KubeClient:
    if "KUBECONFIG" not in lab_env:
        pytest.skip("this lab runs without the Kubernetes API emulator (no KUBECONFIG in lab.env())")
    return KubeClient(lab_env["KUBECONFIG"], "vcci-lab-admin")


@pytest.fixture
def restore(lab: Any) -> Iterator[None]:
    """Tests that change the cluster put it back to the lab's baseline afterwards."""
    yield
    lab.reset()


def _rv(kube: KubeClient, path: str) -> str:
    return str(kube.get(path)["metadata"]["resourceVersion"])


def _api_pods(kube: KubeClient) -> list[dict[str, Any]]:
    return list(kube.get(f"/api/v1/namespaces/{NS}/pods", labelSelector="app=vcci-api")["items"])


def _ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conds
    )


def _image(obj: dict[str, Any]) -> str:
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return str(spec["containers"][0]["image"])


def _history(lab_env: dict[str, str]) -> list[tuple[str, str]]:
    """``kubectl rollout history`` of vcci-api: (revision, change-cause), oldest first."""
    import subprocess

    out = subprocess.run(
        ["kubectl", "--kubeconfig", lab_env["KUBECONFIG"], "--context", "vcci-lab-admin", "rollout", "history",
         "deployment/vcci-api", "-n", NS],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    rows = [line.split(None, 1) for line in out.splitlines()[2:] if line.strip()]
    return [(r[0], r[1].strip() if len(r) > 1 else "") for r in rows]


def test_rollback_after_bad_deploy_brings_back_the_previous_revision_with_ready_pods(
    lab: Any, lab_env: dict[str, str], kube: KubeClient, record: IncidentRecord, restore: None
) -> None:
    good = _image(kube.get(DEPLOY))
    before_fault = _history(lab_env)
    with lab.fault("bad-deploy"):
        bad = _image(kube.get(DEPLOY))
        assert bad != good
        before = _rv(kube, DEPLOY)

        dry = run(RolloutUndo("vcci-api", timeout_s=TIMEOUT), record.id)
        assert dry.status == "planned" and "back from revision" in dry.plan.summary  # type: ignore[union-attr]
        assert good in dry.plan.diff and bad in dry.plan.diff  # type: ignore[union-attr]
        assert "vcci-nb/incident" in dry.plan.diff  # type: ignore[union-attr]
        assert _rv(kube, DEPLOY) == before and _image(kube.get(DEPLOY)) == bad

        assert run(RolloutUndo("vcci-api"), record.id, dry_run=False).status == "planned"  # headless, unconfirmed
        assert _rv(kube, DEPLOY) == before

        out = run(RolloutUndo("vcci-api", timeout_s=TIMEOUT), record.id, dry_run=False, confirm=record.id)
        assert out.status == "succeeded", out.message
        dep = kube.get(DEPLOY)
        assert _image(dep) == good
        assert dep["metadata"]["annotations"]["vcci-nb/incident"] == record.id
        pods = [p for p in _api_pods(kube) if _ready(p)]
        assert len(pods) == dep["spec"]["replicas"] and all(_image(p) == good for p in pods)
        # As after `kubectl rollout undo`: the new revision carries the good release's change-cause,
        # not the bad one's (the bad release keeps its own revision in the history).
        history = _history(lab_env)
        assert history[-1][1] == before_fault[-1][1], history
        assert "CHG-1974" in dict(history).get(str(int(history[-1][0]) - 1), ""), history
    entry = record.data["actions"][-1]
    assert entry["result"] == "succeeded" and entry["identity"].startswith("kubernetes:vcci-lab-admin")
    assert {c["name"] for c in entry["verification"]["checks"]} >= {"rollout complete", "pods ready"}


def test_rollback_to_a_given_revision_and_to_a_missing_one(
    kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]
) -> None:
    with pytest.raises(ActionRefused, match="revision 99 of vcci-api does not exist"):
        run(RolloutUndo("vcci-api", to_revision=99), record.id)
    out = run(RolloutUndo("vcci-api", to_revision=2, timeout_s=TIMEOUT), record.id, dry_run=False, confirm=record.id)
    assert out.status == "succeeded", out.message
    assert _image(kube.get(DEPLOY)).endswith(":2.11.0")


def test_scale_up_and_back_down(
    kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]
) -> None:
    replicas = kube.get(DEPLOY)["spec"]["replicas"]
    before = _rv(kube, DEPLOY)
    dry = run(Scale("vcci-api", replicas + 2), record.id)
    assert dry.status == "planned" and _rv(kube, DEPLOY) == before
    out = run(Scale("vcci-api", replicas + 2, timeout_s=TIMEOUT), record.id, dry_run=False, confirm=record.id)
    assert out.status == "succeeded", out.message
    assert sum(_ready(p) for p in _api_pods(kube)) == replicas + 2
    down = run(Scale("vcci-api", replicas, timeout_s=TIMEOUT), record.id, dry_run=False, confirm=record.id)
    assert down.status == "succeeded" and any("scaling down" in w for w in down.plan.warnings)  # type: ignore[union-attr]


def test_scale_to_zero_is_destructive(kube: KubeClient, record: IncidentRecord, lab_env: dict[str, str]) -> None:
    before = _rv(kube, DEPLOY)
    with pytest.raises(ActionRefused, match="destroys data or capacity"):
        run(Scale("vcci-api", 0), record.id, dry_run=False)
    panel = run(Scale("vcci-api", 0), record.id, dry_run=False, interactive=True).widget
    panel.confirm_button.click()
    assert panel.outcome.status == "refused" and _rv(kube, DEPLOY) == before


def test_set_env_and_resources_roll_out_and_are_verified(
    kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]
) -> None:
    before = _rv(kube, DEPLOY)
    env = SetEnv("vcci-api", {"CIRCUIT_BREAKER_ENABLED": True, "USE_CACHED_DATA": True}, timeout_s=TIMEOUT)
    assert run(env, record.id).status == "planned" and _rv(kube, DEPLOY) == before
    out = run(
        SetEnv("vcci-api", {"CIRCUIT_BREAKER_ENABLED": True, "USE_CACHED_DATA": True}, timeout_s=TIMEOUT),
        record.id,
        dry_run=False,
        confirm=record.id,
    )
    assert out.status == "succeeded", out.message
    have = {e["name"]: e.get("value") for e in kube.get(DEPLOY)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert have["CIRCUIT_BREAKER_ENABLED"] == "true" and have["USE_CACHED_DATA"] == "true"

    res = SetResources("vcci-api", limits={"memory": "16Gi"}, requests={"memory": "8Gi"}, timeout_s=TIMEOUT)
    out2 = run(res, record.id, dry_run=False, confirm=record.id)
    assert out2.status == "succeeded", out2.message
    resources = kube.get(DEPLOY)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"]["memory"] == "16Gi" and resources["requests"]["memory"] == "8Gi"

    with pytest.raises(ActionRefused, match="not one of the runbook's switches"):
        run(SetEnv("vcci-api", {"DATABASE_PASSWORD": "x"}), record.id)
    with pytest.raises(ActionRefused, match="would exceed"):
        run(SetResources("vcci-api", requests={"memory": "64Gi"}), record.id)


def test_set_env_and_resources_change_the_profiles_api_container_not_a_sidecar_listed_first(
    kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]
) -> None:
    # A log shipper ahead of the API's container (as many platforms inject one): the runbook's
    # switches and resources are the API's (the profile's kubernetes.api_container), never the first one's.
    dep = kube.get(DEPLOY)
    containers = dep["spec"]["template"]["spec"]["containers"]
    [api] = [c["name"] for c in containers]
    shipper = {"name": "log-shipper", "image": containers[0]["image"], "env": [{"name": "LEVEL", "value": "info"}]}
    kube.patch(DEPLOY, {"spec": {"template": {"spec": {"containers": [shipper, *containers]}}}})

    env = run(SetEnv("vcci-api", {"CIRCUIT_BREAKER_ENABLED": True}, timeout_s=TIMEOUT), record.id)
    assert env.status == "planned"
    assert [r["container"] for r in env.plan.changes] == [api]  # type: ignore[union-attr]
    assert f"vcci-api/{api}" in env.plan.summary  # type: ignore[union-attr]
    res = run(SetResources("vcci-api", limits={"memory": "16Gi"}, timeout_s=TIMEOUT), record.id)
    assert [r["container"] for r in res.plan.changes] == [api]  # type: ignore[union-attr]
    # Said explicitly, the sidecar is changed; a deployment whose containers include neither is refused.
    side = run(SetEnv("vcci-api", {"USE_CACHED_DATA": True}, container="log-shipper"), record.id)
    assert [r["container"] for r in side.plan.changes] == ["log-shipper"]  # type: ignore[union-attr]
    renamed = {**containers[0], "name": "app"}
    kube.patch(DEPLOY, {"spec": {"template": {"spec": {"containers": [shipper, renamed]}}}})
    with pytest.raises(ActionRefused, match=r"none is the profile's kubernetes\.api_container"):
        run(SetEnv("vcci-api", {"USE_CACHED_DATA": True}), record.id)


def test_rollout_restart_replaces_every_pod(
    kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]
) -> None:
    old = {p["metadata"]["uid"] for p in _api_pods(kube)}
    out = run(RolloutRestart("vcci-api", timeout_s=TIMEOUT), record.id, dry_run=False, confirm=record.id)
    assert out.status == "succeeded", out.message
    ready = [p for p in _api_pods(kube) if _ready(p)]
    assert ready and not ({p["metadata"]["uid"] for p in ready} & old)


def test_delete_one_pod_and_rolling_delete_of_a_label(
    kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]
) -> None:
    pods = _api_pods(kube)
    victim = pods[0]["metadata"]["name"]
    dry = run(DeletePod(victim), record.id)
    assert dry.status == "planned" and victim in {p["metadata"]["name"] for p in _api_pods(kube)}
    out = run(DeletePod(victim, timeout_s=TIMEOUT), record.id, dry_run=False, confirm=record.id)
    assert out.status == "succeeded", out.message
    assert victim not in {p["metadata"]["name"] for p in _api_pods(kube)}

    old = {p["metadata"]["uid"] for p in _api_pods(kube)}
    rolling = DeletePodsRolling("app=vcci-api", max_unavailable=2, timeout_s=TIMEOUT)
    with pytest.raises(ActionRefused, match="destroys data or capacity"):
        run(rolling, record.id, dry_run=False)  # all pods of a label: typed ID required
    assert {p["metadata"]["uid"] for p in _api_pods(kube)} == old
    ready_seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # how many pods are ready while the rolling delete runs
        while not stop.is_set():
            ready_seen.append(sum(_ready(p) for p in _api_pods(kube)))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        out2 = run(rolling, record.id, dry_run=False, confirm=record.id)
    finally:
        stop.set()
        watcher.join()
    assert out2.status == "succeeded", out2.message
    assert len(ready_seen) > 3 and min(ready_seen) >= len(old) - 2  # never more than max_unavailable down
    now = _api_pods(kube)
    assert not ({p["metadata"]["uid"] for p in now} & old)
    assert sum(_ready(p) for p in now) >= len(old)


def test_kube_system_is_refused_and_audited(record: IncidentRecord) -> None:
    for action in (Scale("coredns", 0, namespace="kube-system"), DeletePod("coredns-1", namespace="kube-system")):
        with pytest.raises(ActionRefused, match="refusing to change anything in kube-system"):
            run(action, record.id, dry_run=False, confirm=record.id)
    entries = record.data["actions"]
    assert [e["result"] for e in entries] == ["refused", "refused"]
    assert all("kube-system" in e["message"] and e["target"].startswith("kube-system/") for e in entries)


def test_read_only_context_is_refused_every_write(
    kube: KubeClient, record: IncidentRecord, lab_env: dict[str, str]
) -> None:
    before = _rv(kube, DEPLOY)
    pod = _api_pods(kube)[0]["metadata"]["name"]
    view = {"context": "vcci-lab"}
    for action in (
        Scale("vcci-api", 8, **view),
        RolloutRestart("vcci-api", **view),
        DeletePod(pod, **view),
        RateLimit(50, **view),
        MaintenanceMode(False, **view),
        ExpandVolume("vcci-api-data", "40Gi", **view),
    ):
        with pytest.raises(ActionRefused, match=r"Kubernetes refused .* for kubernetes:vcci-lab "):
            run(action, record.id)  # even the server-side dry run is a write, and is refused
    view_client = KubeClient(lab_env["KUBECONFIG"], "vcci-lab")
    with pytest.raises(ActionRefused, match="refused exec"):
        view_client.exec(NS, pod, ["true"])
    assert _rv(kube, DEPLOY) == before
    assert [e["result"] for e in record.data["actions"]] == ["refused"] * 6


def test_rate_limit_and_source_ranges(
    kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]
) -> None:
    before = _rv(kube, INGRESS)
    assert run(RateLimit(50), record.id).status == "planned" and _rv(kube, INGRESS) == before
    out = run(RateLimit(50), record.id, dry_run=False, confirm=record.id)
    assert out.status == "succeeded", out.message
    annotations = kube.get(INGRESS)["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/limit-rps"] == "50"
    assert annotations["vcci-nb/incident"] == record.id

    # The seed's "Block specific IP" example: as an allowlist it blocks nothing, as a blocklist everyone.
    seed = run(AllowSourceRanges(["0.0.0.0/0"]), record.id)
    assert any("blocks nothing" in w for w in seed.plan.warnings)  # type: ignore[union-attr]
    for bad in (["0.0.0.0/0"], ["0.0.0.0/1", "128.0.0.0/1"], ["::/0"]):
        with pytest.raises(ActionRefused, match="lock every client out"):
            run(BlockSourceRanges(bad), record.id, dry_run=False, confirm=record.id)
    with pytest.raises(ActionRefused, match="empty allowlist"):
        run(AllowSourceRanges([]), record.id, dry_run=False, confirm=record.id)
    with pytest.raises(ActionRefused, match="not an IP address"):
        run(BlockSourceRanges(["203.0.113.300"]), record.id)

    ok = run(BlockSourceRanges(["203.0.113.7/32"]), record.id, dry_run=False, confirm=record.id)
    assert ok.status == "succeeded"
    assert kube.get(INGRESS)["metadata"]["annotations"]["nginx.ingress.kubernetes.io/denylist-source-range"] == (
        "203.0.113.7/32"
    )
    assert run(AllowSourceRanges(["10.0.0.0/8"]), record.id, dry_run=False, confirm=record.id).status == "succeeded"
    with pytest.raises(ActionRefused, match="every allowed range is also blocked"):
        run(BlockSourceRanges(["10.0.0.0/8"]), record.id, dry_run=False, confirm=record.id)
    refusals = [e for e in record.data["actions"] if e["result"] == "refused"]
    assert len(refusals) == 6


def test_maintenance_mode_on_needs_the_typed_id_then_off(
    kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]
) -> None:
    before = _rv(kube, MAINTENANCE)
    with pytest.raises(ActionRefused, match="destroys data or capacity"):
        run(MaintenanceMode(True), record.id, dry_run=False)
    assert _rv(kube, MAINTENANCE) == before
    on = run(MaintenanceMode(True), record.id, dry_run=False, confirm=record.id)
    assert on.status == "succeeded", on.message
    data = kube.get(MAINTENANCE)["data"]
    assert data["enabled"] == "true" and data["incident"] == record.id
    assert kube.get(MAINTENANCE)["metadata"]["annotations"]["vcci-nb/incident"] == record.id
    off = run(MaintenanceMode(False), record.id, dry_run=False, confirm=record.id)
    assert off.status == "succeeded" and kube.get(MAINTENANCE)["data"]["enabled"] == "false"


def test_disk_full_cleanup_over_exec_frees_space(
    lab: Any, kube: KubeClient, record: IncidentRecord, lab_env: dict[str, str]
) -> None:
    with lab.fault("disk-full"):
        pod = sorted(p["metadata"]["name"] for p in _api_pods(kube) if _ready(p))[0]

        def free() -> int:
            _, out, _ = kube.exec(NS, pod, ["df", "-P", "/var/log"])
            return int(out.splitlines()[-1].split()[3])

        before = free()
        dry = run(CleanupFiles(pod), record.id)
        assert dry.status == "planned"
        logs = dry.plan.changes[0]  # type: ignore[union-attr]
        assert logs["files"] > 0 and logs["bytes"] > 0
        assert free() == before

        with pytest.raises(ActionRefused, match="not one of the cleanable directories"):
            run(CleanupFiles(pod, log_dir="/"), record.id)
        out = run(CleanupFiles(pod), record.id, dry_run=False, confirm=record.id)
        assert out.status == "succeeded", out.message
        assert free() > before
        _, left, _ = kube.exec(NS, pod, ["find", "/var/log", "-type", "f", "-name", "*.log", "-mtime", "+7"])
        assert left.strip() == ""


def test_expand_volume(kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]) -> None:
    before = _rv(kube, PVC)
    with pytest.raises(ActionRefused, match="shrink"):
        run(ExpandVolume("vcci-api-data", "1Gi"), record.id)
    dry = run(ExpandVolume("vcci-api-data", "40Gi"), record.id)
    assert dry.status == "planned" and _rv(kube, PVC) == before
    out = run(ExpandVolume("vcci-api-data", "40Gi", timeout_s=30), record.id, dry_run=False, confirm=record.id)
    assert kube.get(PVC)["spec"]["resources"]["requests"]["storage"] == "40Gi"
    assert kube.get(PVC)["metadata"]["annotations"]["vcci-nb/incident"] == record.id
    assert out.status == "succeeded", out.message


def test_a_plan_confirmed_after_the_object_changed_is_not_applied(
    kube: KubeClient, record: IncidentRecord, restore: None, lab_env: dict[str, str]
) -> None:
    """The Confirm panel may be clicked minutes after the plan: a stale plan must not overwrite a newer change."""
    image = _image(kube.get(DEPLOY))
    out = run(RolloutUndo("vcci-api", timeout_s=TIMEOUT), record.id, dry_run=False, interactive=True)
    panel = out.widget
    # Someone else changes the deployment between the plan and the click.
    run(
        Scale("vcci-api", kube.get(DEPLOY)["spec"]["replicas"] + 1, timeout_s=TIMEOUT),
        record.id,
        dry_run=False,
        confirm=record.id,
    )
    panel.confirm_button.click()
    assert panel.outcome.status in ("failed", "refused")
    assert panel.outcome.status == "failed" and "changed since the plan" in panel.outcome.message
    assert _image(kube.get(DEPLOY)) == image

"""The same operations through the official ``kubernetes`` Python client, plus API details it exposes."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kubernetes import client, config, watch
from kubernetes.client import ApiException
from kubernetes.stream import stream

from tests.kube.conftest import NS, KubeServer


def _api(kube: KubeServer, context: str) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(
        config_file=str(kube.kubeconfig), context=context, client_configuration=cfg, persist_config=False
    )
    return client.ApiClient(cfg)


@pytest.fixture
def admin(fresh: KubeServer) -> Iterator[client.ApiClient]:
    api = _api(fresh, "vcci-lab-admin")
    yield api
    api.close()


@pytest.fixture
def viewer(kube: KubeServer) -> Iterator[client.ApiClient]:
    api = _api(kube, "vcci-lab")
    yield api
    api.close()


def _status(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_kubeconfig_is_tls_with_both_contexts(kube: KubeServer) -> None:
    contexts, current = config.list_kube_config_contexts(config_file=str(kube.kubeconfig))
    assert current["name"] == "vcci-lab"
    assert {c["name"] for c in contexts} == {"vcci-lab", "vcci-lab-admin"}
    text = kube.kubeconfig.read_text()
    assert '"server": "https://127.0.0.1:' in text and "certificate-authority-data" in text
    assert oct(kube.kubeconfig.stat().st_mode & 0o777) == "0o600"


def test_lists_selectors_and_resource_versions(admin: client.ApiClient) -> None:
    v1 = client.CoreV1Api(admin)
    pods = v1.list_namespaced_pod(NS)
    assert len(pods.items) == 12 and int(pods.metadata.resource_version) > 0
    api = v1.list_namespaced_pod(NS, label_selector="app=vcci-api")
    assert len(api.items) == 6 and all(p.metadata.labels["app"] == "vcci-api" for p in api.items)
    assert len(v1.list_namespaced_pod(NS, label_selector="app in (vcci-api,vcci-worker),tier!=db").items) == 12
    assert len(v1.list_namespaced_pod(NS, label_selector="app!=vcci-api").items) == 6
    assert len(v1.list_namespaced_pod(NS, field_selector="status.phase=Running").items) == 12
    assert v1.list_namespaced_pod(NS, field_selector="status.phase!=Running").items == []
    node = api.items[0].spec.node_name
    on_node = v1.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    assert on_node and all(p.spec.node_name == node for p in on_node)
    name = api.items[0].metadata.name
    assert [p.metadata.name for p in v1.list_namespaced_pod(NS, field_selector=f"metadata.name={name}").items] == [name]
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_pod(NS, field_selector="spec.containers=1")
    assert err.value.status == 400 and "field label not supported" in _status(err.value)["message"]
    # chunked lists, as kubectl asks for them
    first = v1.list_namespaced_pod(NS, limit=5)
    assert len(first.items) == 5 and first.metadata._continue and first.metadata.remaining_item_count == 7
    rest = v1.list_namespaced_pod(NS, limit=50, _continue=first.metadata._continue)
    assert len(rest.items) == 7
    assert {p.metadata.name for p in first.items} | {p.metadata.name for p in rest.items} == {
        p.metadata.name for p in pods.items
    }
    nodes = v1.list_node().items
    assert len(nodes) >= 3
    n = nodes[0]
    assert {c.type for c in n.status.conditions} >= {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert n.status.capacity["cpu"] == "8" and n.status.allocatable["memory"].endswith("Ki")
    assert n.status.node_info.kubelet_version.startswith("v1.31")
    assert {ns.metadata.name for ns in v1.list_namespace().items} >= {NS, "monitoring", "kube-system"}
    cm = v1.read_namespaced_config_map("vcci-maintenance", NS)
    assert cm.data["enabled"] == "false"
    pvc = v1.read_namespaced_persistent_volume_claim("vcci-api-data", NS)
    assert pvc.status.phase == "Bound" and pvc.status.capacity["storage"] == "20Gi"
    ing = client.NetworkingV1Api(admin).read_namespaced_ingress("vcci-api-ingress", NS)
    assert ing.spec.rules[0].host == "api.vcci.example.com"


def test_pod_status_fields_and_events(admin: client.ApiClient, fresh: KubeServer) -> None:
    v1 = client.CoreV1Api(admin)
    pod = v1.list_namespaced_pod(NS, label_selector="app=vcci-api").items[0]
    cs = pod.status.container_statuses[0]
    assert cs.ready and cs.restart_count == 0 and cs.state.running.started_at is not None
    assert pod.status.pod_ip and pod.status.host_ip and pod.status.qos_class == "Burstable"
    fresh.lab("POST", "/_lab/faults/crashloop")
    time.sleep(2.5)
    pod = v1.read_namespaced_pod(pod.metadata.name, NS)
    cs = pod.status.container_statuses[0]
    assert not cs.ready and cs.restart_count >= 1
    assert cs.state.waiting.reason == "CrashLoopBackOff"
    assert cs.last_state.terminated.reason == "Error" and cs.last_state.terminated.exit_code == 1
    sel = f"involvedObject.name={pod.metadata.name},involvedObject.namespace={NS},involvedObject.uid={pod.metadata.uid}"
    events = v1.list_namespaced_event(NS, field_selector=sel).items
    reasons = {e.reason for e in events}
    assert "BackOff" in reasons
    assert all(e.involved_object.name == pod.metadata.name for e in events)
    warn = v1.list_namespaced_event(NS, field_selector="type=Warning,reason=BackOff").items
    assert warn and all(e.type == "Warning" for e in warn)


def test_logs_parameters(admin: client.ApiClient, fresh: KubeServer) -> None:
    v1 = client.CoreV1Api(admin)
    name = v1.list_namespaced_pod(NS, label_selector="app=vcci-api").items[0].metadata.name
    tail = v1.read_namespaced_pod_log(name, NS, tail_lines=50)
    assert len(tail.splitlines()) == 50
    assert tail == v1.read_namespaced_pod_log(name, NS, tail_lines=50) or True  # lines may advance by one
    stamped = v1.read_namespaced_pod_log(name, NS, tail_lines=3, timestamps=True).splitlines()
    ts = dt.datetime.fromisoformat(stamped[-1].split(" ", 1)[0][:26] + "+00:00")
    assert abs((dt.datetime.now(dt.UTC) - ts).total_seconds()) < 5
    recent = v1.read_namespaced_pod_log(name, NS, since_seconds=30).splitlines()
    assert 10 <= len(recent) <= 25  # a line every 1.5 s
    limited = v1.read_namespaced_pod_log(name, NS, limit_bytes=1000)
    assert len(limited.encode()) <= 1000
    assert v1.read_namespaced_pod_log(name, NS, container="vcci-api", tail_lines=1)
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod_log(name, NS, container="sidecar")
    assert err.value.status == 400 and "is not valid for pod" in _status(err.value)["message"]
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod_log(name, NS, previous=True)
    assert err.value.status == 400 and "previous terminated container" in _status(err.value)["message"]
    fresh.lab("POST", "/_lab/faults/oomkill")
    deadline = time.time() + 10
    while v1.read_namespaced_pod(name, NS).status.container_statuses[0].restart_count < 1 and time.time() < deadline:
        time.sleep(0.3)
    prev = v1.read_namespaced_pod_log(name, NS, previous=True, tail_lines=5)
    assert "MemoryError" in prev and "worker out of memory" in prev  # the OOM-killed run ends with its trace


def test_metrics_api(admin: client.ApiClient) -> None:
    co = client.CustomObjectsApi(admin)
    nodes = co.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
    assert nodes["kind"] == "NodeMetricsList" and len(nodes["items"]) >= 3
    assert nodes["items"][0]["usage"]["cpu"].endswith("n") and nodes["items"][0]["usage"]["memory"].endswith("Ki")
    pods = co.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", NS, "pods", label_selector="app=vcci-api")
    assert len(pods["items"]) == 6
    assert pods["items"][0]["containers"][0]["name"] == "vcci-api"


def test_writes_scale_restart_env_resources_undo(admin: client.ApiClient, fresh: KubeServer) -> None:
    apps = client.AppsV1Api(admin)
    scale = apps.patch_namespaced_deployment_scale("vcci-api", NS, {"spec": {"replicas": 9}})
    assert scale.spec.replicas == 9
    fresh.wait_ready("vcci-api")
    assert len(fresh.pods()) == 9
    stamp = dt.datetime.now(dt.UTC).isoformat()
    apps.patch_namespaced_deployment(
        "vcci-api",
        NS,
        {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}},
    )
    fresh.wait_observed("vcci-api")
    env_patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "vcci-api", "env": [{"name": "CIRCUIT_BREAKER_ENABLED", "value": "true"}]}]
                }
            }
        }
    }
    apps.patch_namespaced_deployment("vcci-api", NS, env_patch)
    fresh.wait_observed("vcci-api")
    res_patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "vcci-api", "resources": {"limits": {"memory": "16Gi"}, "requests": {"memory": "8Gi"}}}
                    ]
                }
            }
        }
    }
    d = apps.patch_namespaced_deployment("vcci-api", NS, res_patch)
    c = d.spec.template.spec.containers[0]
    assert c.resources.limits == {"cpu": "2", "memory": "16Gi"}  # strategic merge keeps cpu
    assert [e.value for e in c.env if e.name == "CIRCUIT_BREAKER_ENABLED"] == ["true"]
    assert len(c.env) == 7
    d = fresh.wait_ready("vcci-api")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "9"
    # rollout undo the way kubectl does it: read the ReplicaSets, patch the template back
    rss = apps.list_namespaced_replica_set(NS, label_selector="app=vcci-api").items
    by_rev = {int(r.metadata.annotations["deployment.kubernetes.io/revision"]): r for r in rss}
    assert sorted(by_rev) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert all(
        r.metadata.owner_references[0].uid == apps.read_namespaced_deployment("vcci-api", NS).metadata.uid for r in rss
    )
    target = admin.sanitize_for_serialization(by_rev[6].spec.template)
    target["metadata"]["labels"].pop("pod-template-hash")
    apps.patch_namespaced_deployment("vcci-api", NS, [{"op": "replace", "path": "/spec/template", "value": target}])
    d = fresh.wait_ready("vcci-api")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "10"
    revs = {
        int(r.metadata.annotations["deployment.kubernetes.io/revision"])
        for r in apps.list_namespaced_replica_set(NS, label_selector="app=vcci-api").items
    }
    assert 6 not in revs and 10 in revs
    assert all(p["spec"]["containers"][0]["resources"]["limits"]["memory"] == "4Gi" for p in fresh.pods())


def test_delete_pod_replacement_and_configmap_patch(admin: client.ApiClient, fresh: KubeServer) -> None:
    v1 = client.CoreV1Api(admin)
    victim = v1.list_namespaced_pod(NS, label_selector="app=vcci-api").items[0]
    gone = v1.delete_namespaced_pod(victim.metadata.name, NS)
    assert gone.metadata.deletion_timestamp is not None
    fresh.wait_ready("vcci-api")
    deadline = time.time() + 10
    while time.time() < deadline:
        names = {p.metadata.name for p in v1.list_namespaced_pod(NS, label_selector="app=vcci-api").items}
        if victim.metadata.name not in names:
            break
        time.sleep(0.2)
    assert victim.metadata.name not in names and len(names) == 6
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod(victim.metadata.name, NS)
    assert err.value.status == 404
    cm = v1.patch_namespaced_config_map("vcci-maintenance", NS, {"data": {"enabled": "true"}})
    assert cm.data["enabled"] == "true"
    net = client.NetworkingV1Api(admin)
    ing = net.patch_namespaced_ingress(
        "vcci-api-ingress",
        NS,
        {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8"}}},
    )
    assert ing.metadata.annotations["nginx.ingress.kubernetes.io/whitelist-source-range"] == "10.0.0.0/8"


def test_dry_run_all_changes_nothing(admin: client.ApiClient, fresh: KubeServer) -> None:
    v1, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    before = apps.read_namespaced_deployment("vcci-api", NS)
    pods = {p.metadata.name for p in v1.list_namespaced_pod(NS).items}
    d = apps.patch_namespaced_deployment(
        "vcci-api",
        NS,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "vcci-api", "env": [{"name": "USE_CACHED_DATA", "value": "true"}]}]
                    }
                }
            }
        },
        dry_run="All",
    )
    assert [e.value for e in d.spec.template.spec.containers[0].env if e.name == "USE_CACHED_DATA"] == ["true"]
    assert d.metadata.generation == before.metadata.generation + 1
    s = apps.patch_namespaced_deployment_scale("vcci-api", NS, {"spec": {"replicas": 0}}, dry_run="All")
    assert s.spec.replicas == 0
    victim = sorted(pods)[0]
    out = v1.delete_namespaced_pod(victim, NS, dry_run="All")
    assert out.metadata.deletion_timestamp is not None
    cm = v1.patch_namespaced_config_map("vcci-maintenance", NS, {"data": {"enabled": "true"}}, dry_run="All")
    assert cm.data["enabled"] == "true"
    new_cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dry"), data={"a": "b"})
    assert v1.create_namespaced_config_map(NS, new_cm, dry_run="All").metadata.name == "dry"
    v1.delete_collection_namespaced_pod(NS, label_selector="app=vcci-api", dry_run="All")
    time.sleep(1)
    after = apps.read_namespaced_deployment("vcci-api", NS)
    assert after.metadata.resource_version == before.metadata.resource_version
    assert {p.metadata.name for p in v1.list_namespaced_pod(NS).items} == pods
    assert v1.read_namespaced_config_map("vcci-maintenance", NS).data["enabled"] == "false"
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_config_map("dry", NS)
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale("vcci-api", NS, {"spec": {"replicas": 3}}, dry_run="Some")
    assert err.value.status == 400


def test_error_status_codes(admin: client.ApiClient, fresh: KubeServer) -> None:
    v1, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("nope", NS)
    body = _status(err.value)
    assert err.value.status == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"},
        "code": 404,
    }
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="vcci-maintenance"), data={})
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map(NS, cm)
    assert err.value.status == 409 and _status(err.value)["reason"] == "AlreadyExists"
    stale = v1.read_namespaced_config_map("vcci-maintenance", NS)
    v1.patch_namespaced_config_map("vcci-maintenance", NS, {"data": {"message": "x"}})
    stale.data["enabled"] = "true"
    with pytest.raises(ApiException) as err:
        v1.replace_namespaced_config_map("vcci-maintenance", NS, stale)
    assert err.value.status == 409 and _status(err.value)["reason"] == "Conflict"
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale("vcci-api", NS, {"spec": {"replicas": -2}})
    assert err.value.status == 422 and _status(err.value)["reason"] == "Invalid"
    bad = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "vcci-api", "resources": {"requests": {"memory": "32Gi"}}}]}}
        }
    }
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("vcci-api", NS, bad)
    st = _status(err.value)
    assert (
        err.value.status == 422
        and st["details"]["causes"][0]["field"] == "spec.template.spec.containers[0].resources.requests"
    )
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("vcci-api", NS, {"spec": {"selector": {"matchLabels": {"app": "other"}}}})
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod("nope", NS, {"metadata": {"labels": {"a": "b"}}})
    assert err.value.status == 404


def test_tokens_401_and_403(fresh: KubeServer, viewer: client.ApiClient) -> None:
    r = fresh.api("GET", f"/api/v1/namespaces/{NS}/pods", token="")
    assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
    r = fresh.api("GET", f"/api/v1/namespaces/{NS}/pods", token="wrong-token")
    assert r.status_code == 401
    assert requests.get(fresh.url + "/readyz", timeout=5).status_code == 200
    assert requests.get(fresh.url + "/version", timeout=5).json()["gitVersion"].startswith("v1.31")
    v1, apps = client.CoreV1Api(viewer), client.AppsV1Api(viewer)
    assert len(v1.list_namespaced_pod(NS).items) == 12
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale("vcci-api", NS, {"spec": {"replicas": 1}})
    st = _status(err.value)
    assert err.value.status == 403 and st["reason"] == "Forbidden"
    assert (
        'User "system:serviceaccount:vcci-production:vcci-diag" cannot patch resource "deployments/scale"'
        in st["message"]
    )
    for call in (
        lambda: v1.delete_namespaced_pod(v1.list_namespaced_pod(NS).items[0].metadata.name, NS),
        lambda: v1.patch_namespaced_config_map("vcci-maintenance", NS, {"data": {"enabled": "true"}}),
        lambda: v1.list_namespaced_secret(NS),
        lambda: apps.patch_namespaced_deployment("vcci-api", NS, {"spec": {"replicas": 1}}, dry_run="All"),
    ):
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 403
    assert fresh.api("POST", "/_lab/faults/oomkill", token=fresh.view_token).status_code == 403
    assert fresh.api("GET", "/_lab/faults", token=fresh.view_token).status_code == 200
    assert len(fresh.pods()) == 6


def test_exec_stream(admin: client.ApiClient) -> None:
    v1 = client.CoreV1Api(admin)
    name = v1.list_namespaced_pod(NS, label_selector="app=vcci-api").items[0].metadata.name
    out = stream(
        v1.connect_get_namespaced_pod_exec,
        name,
        NS,
        command=["df", "-h"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert "Mounted on" in out and "/var/log" in out
    resp = stream(
        v1.connect_get_namespaced_pod_exec,
        name,
        NS,
        command=["sh", "-c", "ls /var/log/vcci | wc -l; exit 0"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=10)
    assert resp.returncode == 0 and int(resp.read_stdout().strip()) >= 10
    resp = stream(
        v1.connect_get_namespaced_pod_exec,
        name,
        NS,
        command=["cat", "/nope"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=10)
    assert resp.returncode == 1 and "No such file" in resp.read_stderr()


def test_watch_with_timeout(admin: client.ApiClient, fresh: KubeServer) -> None:
    v1, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    rv = v1.list_namespaced_pod(NS, label_selector="app=vcci-api").metadata.resource_version
    apps.patch_namespaced_deployment_scale("vcci-api", NS, {"spec": {"replicas": 7}})
    seen: list[tuple[str, str, bool]] = []
    w = watch.Watch()
    start = time.time()
    for ev in w.stream(
        v1.list_namespaced_pod, NS, label_selector="app=vcci-api", resource_version=rv, timeout_seconds=3
    ):
        pod = ev["object"]
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        seen.append((ev["type"], pod.metadata.name, ready))
    assert time.time() - start < 6  # the server ends the watch at timeoutSeconds
    added = [s for s in seen if s[0] == "ADDED"]
    assert len(added) == 1
    assert any(t == "MODIFIED" and n == added[0][1] and r for t, n, r in seen)


def test_lab_endpoints(fresh: KubeServer) -> None:
    faults = fresh.lab("GET", "/_lab/faults").json()
    assert set(faults["available"]) == {"oomkill", "crashloop", "bad-deploy", "disk-full"}
    assert not any(f["active"] for f in faults["faults"].values())
    r = fresh.lab("POST", "/_lab/faults/meteor")
    assert r.status_code == 404 and "valid faults: oomkill, crashloop, bad-deploy, disk-full" in r.json()["message"]
    assert fresh.lab("POST", "/_lab/faults/crashloop").json()["faults"]["crashloop"]["active"]
    metrics = fresh.lab("GET", "/_lab/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    text = metrics.text
    for name in (
        "kube_pod_container_status_restarts_total",
        "container_memory_working_set_bytes",
        "container_spec_memory_limit_bytes",
        "container_cpu_usage_seconds_total",
        "kubelet_volume_stats_available_bytes",
        "kubelet_volume_stats_capacity_bytes",
    ):
        assert f"# TYPE {name} " in text
    time.sleep(2.5)
    text = fresh.lab("GET", "/_lab/metrics").text
    assert 'kube_pod_container_status_waiting_reason{namespace="vcci-production",pod="vcci-api-' in text
    assert fresh.lab("DELETE", "/_lab/faults/crashloop").json()["faults"]["crashloop"]["active"] is False
    fresh.wait_ready("vcci-api")
    assert all(p["status"]["containerStatuses"][0]["restartCount"] == 0 for p in fresh.pods())
    fresh.lab("POST", "/_lab/faults/disk-full")
    assert fresh.lab("POST", "/_lab/reset").json()["faults"]["disk-full"]["active"] is False


def test_pvc_expansion_grows_the_volume(admin: client.ApiClient, fresh: KubeServer) -> None:
    v1 = client.CoreV1Api(admin)
    fresh.lab("POST", "/_lab/faults/disk-full")
    v1.patch_namespaced_persistent_volume_claim(
        "vcci-api-data", NS, {"spec": {"resources": {"requests": {"storage": "60Gi"}}}}
    )
    deadline = time.time() + 10
    while v1.read_namespaced_persistent_volume_claim("vcci-api-data", NS).status.capacity["storage"] != "60Gi":
        assert time.time() < deadline
        time.sleep(0.2)
    name = v1.list_namespaced_pod(NS, label_selector="app=vcci-api").items[0].metadata.name
    df = stream(
        v1.connect_get_namespaced_pod_exec,
        name,
        NS,
        command=["df", "-h", "/var/log"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert df.splitlines()[1].split()[1] == "60G"
    text = fresh.lab("GET", "/_lab/metrics").text
    assert (
        f'kubelet_volume_stats_capacity_bytes{{namespace="{NS}",persistentvolumeclaim="vcci-api-data"}} {60 * 1024**3}'
        in text
    )
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_persistent_volume_claim(
            "vcci-api-data", NS, {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}
        )
    assert err.value.status == 422 and "can not be less than status.capacity" in _status(err.value)["message"]


def test_generic_objects_roles_and_jobs(admin: client.ApiClient) -> None:
    rbac, batch = client.RbacAuthorizationV1Api(admin), client.BatchV1Api(admin)
    role = client.V1Role(
        metadata=client.V1ObjectMeta(name="vcci-mitigate"),
        rules=[
            client.V1PolicyRule(
                api_groups=["apps"], resources=["deployments", "deployments/scale"], verbs=["get", "patch"]
            )
        ],
    )
    rbac.create_namespaced_role(NS, role)
    assert [r.metadata.name for r in rbac.list_namespaced_role(NS).items] == ["vcci-mitigate"]
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="vcci-nb-run-1", labels={"app": "vcci-nb"}),
        spec=client.V1JobSpec(
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never", containers=[client.V1Container(name="run", image="vcci-nb:latest")]
                )
            )
        ),
    )
    batch.create_namespaced_job(NS, job)
    assert [j.metadata.name for j in batch.list_namespaced_job(NS, label_selector="app=vcci-nb").items] == [
        "vcci-nb-run-1"
    ]

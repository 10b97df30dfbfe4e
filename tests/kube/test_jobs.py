# ruff: noqa: E501  (the containers' commands read best on one line)
"""Jobs that run: the emulator's Job controller runs each pod's command as a local process.

With kubectl and with the official client, as the Job executor (``serve --executor kubernetes``)
drives a real cluster: status transitions, logs, back-off, deadline, TTL, Secrets in the
environment, a pod lost mid-run, and who may do what.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch

from tests.kube.conftest import KubeServer

JNS = "vcci-jobs"
PY = "import os,sys,time;"


@pytest.fixture
def jobs(kube: KubeServer) -> KubeServer:
    """The shared emulator with a namespace of its own for Jobs (another test may have reset it)."""
    r = kube.api("POST", "/api/v1/namespaces", json={"metadata": {"name": JNS}})
    assert r.status_code in (201, 409), r.text
    return kube


@pytest.fixture
def batch(jobs: KubeServer) -> Iterator[tuple[client.BatchV1Api, client.CoreV1Api]]:
    cfg = client.Configuration()
    config.load_kube_config(
        config_file=str(jobs.kubeconfig), context="vcci-lab-admin", client_configuration=cfg, persist_config=False
    )
    api = client.ApiClient(cfg)
    yield client.BatchV1Api(api), client.CoreV1Api(api)
    api.close()


def _job(name: str, code: str, *, command_prefix: bool = False, **spec: Any) -> dict[str, Any]:
    if command_prefix:
        code = PY + code
    container: dict[str, Any] = {"name": "run", "image": "ghcr.io/vcci/vcci-nb:dev", "command": ["python", "-c", code]}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"incident": "INC-7", "run": name}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}, **spec},
    }


def _until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _get(kube: KubeServer, path: str) -> dict[str, Any]:
    r = kube.api("GET", path)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _job_status(kube: KubeServer, name: str) -> dict[str, Any]:
    return _get(kube, f"/apis/batch/v1/namespaces/{JNS}/jobs/{name}").get("status") or {}


def _finished(kube: KubeServer, name: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        st = _job_status(kube, name)
        done = {c["type"] for c in st.get("conditions") or []} & {"Complete", "Failed"}
        return st if done else None

    return check


def _pods(kube: KubeServer, job: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _get(
        kube, f"/api/v1/namespaces/{JNS}/pods?labelSelector=batch.kubernetes.io/job-name%3D{job}"
    )["items"]
    return items


def _create(kube: KubeServer, job: dict[str, Any], tmp: Path) -> None:
    f = tmp / f"{job['metadata']['name']}.json"
    f.write_text(json.dumps(job))
    kube.kubectl("create", "-n", JNS, "-f", str(f))


def test_kubectl_runs_a_job_to_complete_with_logs_list_and_describe(jobs: KubeServer, tmp_path: Path) -> None:
    _create(
        jobs, _job("hello", 'print("hi", flush=True); print("bye", file=sys.stderr)', command_prefix=True), tmp_path
    )
    jobs.kubectl("wait", "-n", JNS, "--for=condition=complete", "job/hello", "--timeout=60s")
    assert jobs.kubectl("logs", "-n", JNS, "job/hello").stdout == "hi\nbye\n"
    assert jobs.kubectl("logs", "-n", JNS, "job/hello", "--tail=1").stdout == "bye\n"
    stamped = jobs.kubectl("logs", "-n", JNS, "job/hello", "--timestamps").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["hi", "bye"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", stamped[0].split(" ")[0])
    table = jobs.kubectl("get", "jobs", "-n", JNS, "-l", "incident=INC-7,run=hello").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert table[1].split()[:3] == ["hello", "Complete", "1/1"]
    pods = jobs.kubectl("get", "pods", "-n", JNS, "-l", "job-name=hello").stdout.splitlines()
    assert pods[1].split()[1:3] == ["0/1", "Completed"]
    described = jobs.kubectl("describe", "job", "-n", JNS, "hello").stdout
    assert "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed" in described
    assert "SuccessfulCreate" in described and "Job completed" in described
    pod = _pods(jobs, "hello")[0]
    labels, owner = pod["metadata"]["labels"], pod["metadata"]["ownerReferences"][0]
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "hello"
    assert labels["controller-uid"] == owner["uid"] and owner["kind"] == "Job" and owner["controller"] is True
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_client_failing_job_backs_off_to_backoff_limit_exceeded(
    batch: tuple[client.BatchV1Api, client.CoreV1Api], jobs: KubeServer
) -> None:
    bv1, v1 = batch
    seen: list[tuple[str, str]] = []
    bv1.create_namespaced_job(JNS, _job("fails", PY + 'print("boom", file=sys.stderr); sys.exit(3)', backoffLimit=1))
    w = watch.Watch()
    for ev in w.stream(bv1.list_namespaced_job, JNS, field_selector="metadata.name=fails", timeout_seconds=60):
        conds = {c.type: c for c in ev["object"].status.conditions or []}
        seen.append((ev["type"], ",".join(sorted(conds))))
        if "Failed" in conds:
            w.stop()
    job = bv1.read_namespaced_job("fails", JNS)
    failed = {c.type: c for c in job.status.conditions}["Failed"]
    assert (failed.reason, failed.message) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert job.status.failed == 2 and not job.status.succeeded and not job.status.active
    assert job.status.completion_time is None
    assert seen[0][0] == "ADDED" and seen[-1][1] == "Failed,FailureTarget"
    pods = v1.list_namespaced_pod(JNS, label_selector="job-name=fails").items
    assert len(pods) == 2 and {p.status.phase for p in pods} == {"Failed"}
    term = pods[0].status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (3, "Error")
    assert v1.read_namespaced_pod_log(pods[0].metadata.name, JNS) == "boom\n"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _log(kube: KubeServer, pod: str) -> str:
    r = kube.api("GET", f"/api/v1/namespaces/{JNS}/pods/{pod}/log")
    return r.text if r.status_code == 200 else ""


def _running_pid(kube: KubeServer, job: str) -> tuple[str, int]:
    """The name of a Job's running pod and the pid its process printed first."""

    def check() -> tuple[str, int] | None:
        for p in _pods(kube, job):
            first = _log(kube, p["metadata"]["name"]).split("\n")[0]
            if p["status"]["phase"] == "Running" and first.isdigit():
                return p["metadata"]["name"], int(first)
        return None

    found: tuple[str, int] = _until(f"a running pod of {job}", check)
    return found


SLEEPER = PY + "print(os.getpid(), flush=True); time.sleep(300)"


def test_active_deadline_kills_the_process_and_fails_the_job(jobs: KubeServer, tmp_path: Path) -> None:
    code = PY + 'ballast = b"x" * (80 * 2**20); print(os.getpid(), flush=True); time.sleep(300)'
    _create(jobs, _job("slow", code, activeDeadlineSeconds=4, backoffLimit=0), tmp_path)
    name, pid = _running_pid(jobs, "slow")
    assert _pid_alive(pid)
    top = jobs.kubectl("top", "pod", "-n", JNS, name, "--no-headers").stdout.split()
    assert top[0] == name and top[2].endswith("Mi") and int(top[2][:-2]) >= 80  # the process's real memory
    st = _until("the deadline", _finished(jobs, "slow"))
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Failed"]["reason"] == "DeadlineExceeded"
    assert conds["Failed"]["message"] == "Job was active longer than specified deadline"
    assert not _pid_alive(pid)
    assert "DeadlineExceeded" in jobs.kubectl("describe", "job", "-n", JNS, "slow").stdout


def test_ttl_after_finished_deletes_the_job_and_its_pods(jobs: KubeServer, tmp_path: Path) -> None:
    _create(jobs, _job("brief", 'print("done")', ttlSecondsAfterFinished=1), tmp_path)
    _until("the job to finish", _finished(jobs, "brief"))
    _until("the TTL", lambda: jobs.api("GET", f"/apis/batch/v1/namespaces/{JNS}/jobs/brief").status_code == 404)
    _until("its pods to go", lambda: not _pods(jobs, "brief"))


def test_env_from_secrets_and_configmaps_and_a_missing_secret(jobs: KubeServer, tmp_path: Path) -> None:
    canary = "canary-s3cr3t-value-9f1"
    secret = {"metadata": {"name": "run-creds"}, "stringData": {"DSN": canary, "TOKEN": "tok-2"}}
    assert jobs.api("POST", f"/api/v1/namespaces/{JNS}/secrets", json=secret).status_code == 201
    stored = _get(jobs, f"/api/v1/namespaces/{JNS}/secrets/run-creds")
    assert "stringData" not in stored and stored["type"] == "Opaque" and canary not in json.dumps(stored)
    cm = {"metadata": {"name": "run-conf"}, "data": {"MODE": "headless"}}
    assert jobs.api("POST", f"/api/v1/namespaces/{JNS}/configmaps", json=cm).status_code == 201
    code = (
        PY
        + 'print(os.environ["VCCI_DSN"], os.environ["TOKEN"], os.environ["MODE"], os.environ["POD"], os.environ["URL"])'
    )
    container = {
        "env": [
            {"name": "VCCI_DSN", "valueFrom": {"secretKeyRef": {"name": "run-creds", "key": "DSN"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "URL", "value": "mode=$(MODE)"},
        ],
        "envFrom": [{"secretRef": {"name": "run-creds"}}, {"configMapRef": {"name": "run-conf"}}],
    }
    _create(jobs, _job("with-env", code, container=container), tmp_path)
    jobs.kubectl("wait", "-n", JNS, "--for=condition=complete", "job/with-env", "--timeout=60s")
    pod = _pods(jobs, "with-env")[0]["metadata"]["name"]
    assert _log(jobs, pod) == f"{canary} tok-2 headless {pod} mode=headless\n"
    spec = json.dumps(_get(jobs, f"/apis/batch/v1/namespaces/{JNS}/jobs/with-env"))
    assert canary not in spec

    missing = {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "later", "key": "K"}}}]}
    _create(jobs, _job("needs-secret", PY + 'print(os.environ["X"])', container=missing), tmp_path)

    def waiting() -> dict[str, Any] | None:
        for p in _pods(jobs, "needs-secret"):
            w = (p["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("waiting") or {}
            if w.get("reason") == "CreateContainerConfigError":
                return p
        return None

    pod_obj = _until("CreateContainerConfigError", waiting)
    assert pod_obj["status"]["phase"] == "Pending"
    assert pod_obj["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == 'secret "later" not found'
    out = jobs.kubectl("get", "pods", "-n", JNS, "-l", "job-name=needs-secret").stdout
    assert "CreateContainerConfigError" in out
    later = {"metadata": {"name": "later"}, "data": {"Kx": "eA=="}}
    assert jobs.api("POST", f"/api/v1/namespaces/{JNS}/secrets", json=later).status_code == 201

    def key_missing() -> bool:
        p = waiting()
        msg = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"] if p else ""
        return msg == f"couldn't find key K in Secret {JNS}/later"

    _until("the missing key's message", key_missing)
    fixed = {"data": {"K": "dmFsdWU="}}
    r = jobs.api(
        "PATCH",
        f"/api/v1/namespaces/{JNS}/secrets/later",
        json=fixed,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    _until("the job to run once the key exists", _finished(jobs, "needs-secret"))
    assert _log(jobs, _pods(jobs, "needs-secret")[0]["metadata"]["name"]) == "value\n"


@pytest.mark.parametrize("how", ["kubectl delete pod", "node lost"])
def test_a_pod_lost_mid_run_is_replaced_and_counted_failed(jobs: KubeServer, tmp_path: Path, how: str) -> None:
    marker = tmp_path / "second-attempt"
    code = (
        PY
        + f'p={str(marker)!r}; first=not os.path.exists(p); open(p,"a").close(); print(os.getpid(), flush=True); time.sleep(300 if first else 0); print("finished")'
    )
    name = "lost" if how == "kubectl delete pod" else "node-lost"
    _create(jobs, _job(name, code, backoffLimit=2), tmp_path)
    first, pid = _running_pid(jobs, name)
    if how == "kubectl delete pod":
        jobs.kubectl("delete", "pod", "-n", JNS, first, "--wait=false")
    else:
        r = jobs.lab("POST", f"/_lab/pods/{JNS}/{first}/node-lost")
        assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
        conds = {c["type"]: c for c in r.json()["status"]["conditions"]}
        assert conds["DisruptionTarget"]["reason"] == "DeletionByTaintManager"
    st = _until("the replacement to finish", _finished(jobs, name))
    assert {c["type"] for c in st["conditions"]} >= {"Complete"}
    assert (st["failed"], st["succeeded"]) == (1, 1)
    assert not _pid_alive(pid)
    names = [p["metadata"]["name"] for p in _pods(jobs, name)]
    assert first not in names and len(names) == 1
    assert _log(jobs, names[0]).endswith("finished\n")


def test_eviction_marks_the_pod_disrupted(batch: tuple[client.BatchV1Api, client.CoreV1Api], jobs: KubeServer) -> None:
    bv1, v1 = batch
    bv1.create_namespaced_job(JNS, _job("evicted", SLEEPER, backoffLimit=0))
    name, pid = _running_pid(jobs, "evicted")
    rv = v1.list_namespaced_pod(JNS, label_selector="job-name=evicted").metadata.resource_version
    v1.create_namespaced_pod_eviction(name, JNS, {"metadata": {"name": name, "namespace": JNS}})
    w = watch.Watch()
    pods = w.stream(
        v1.list_namespaced_pod, JNS, label_selector="job-name=evicted", resource_version=rv, timeout_seconds=60
    )
    reasons = []
    for ev in pods:
        pod = ev["object"]
        reasons += [c.reason for c in pod.status.conditions or [] if c.type == "DisruptionTarget"]
        if ev["type"] == "DELETED" and pod.metadata.name == name:
            w.stop()
    assert "EvictionByEvictionAPI" in reasons
    st = _until("the job to fail", _finished(jobs, "evicted"))
    assert {c["type"]: c for c in st["conditions"]}["Failed"]["reason"] == "BackoffLimitExceeded"
    assert not _pid_alive(pid)


def test_bad_specs_rbac_and_delete_propagation(
    batch: tuple[client.BatchV1Api, client.CoreV1Api], jobs: KubeServer
) -> None:
    bv1, v1 = batch
    bad = _job("bad", "pass", backoffLimit=-1)
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    r = jobs.api("POST", f"/apis/batch/v1/namespaces/{JNS}/jobs", json=bad)
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"
    fields = {c["field"]: c["message"] for c in r.json()["details"]["causes"]}
    assert fields["spec.backoffLimit"] == "Invalid value: -1: must be greater than or equal to 0"
    assert fields["spec.template.spec.restartPolicy"] == 'Required value: valid values: "OnFailure", "Never"'
    long = _job("x" * 64, "pass")
    del long["metadata"]["labels"]["run"]
    r = jobs.api("POST", f"/apis/batch/v1/namespaces/{JNS}/jobs", json=long)
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.template.labels"
    assert r.json()["message"].endswith("must be no more than 63 characters")
    r = jobs.api("POST", f"/apis/batch/v1/namespaces/{JNS}/jobs", json=_job("ro", "pass"), token=jobs.view_token)
    assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
    assert 'cannot create resource "jobs" in API group "batch"' in r.json()["message"]

    # a Job deleted without a propagationPolicy orphans its pods (batch/v1's default), with a warning
    bv1.create_namespaced_job(JNS, _job("orphans", SLEEPER))
    name, pid = _running_pid(jobs, "orphans")
    r = jobs.api("DELETE", f"/apis/batch/v1/namespaces/{JNS}/jobs/orphans")
    assert r.status_code == 200 and "child pods are preserved" in r.headers["Warning"]
    time.sleep(1.5)  # give the garbage collector a chance it must not take
    pod = v1.read_namespaced_pod(name, JNS)
    assert not pod.metadata.owner_references and _pid_alive(pid)
    assert jobs.api("GET", f"/api/v1/namespaces/{JNS}/pods/{name}/log", token=jobs.view_token).status_code == 200
    r = jobs.api("DELETE", f"/api/v1/namespaces/{JNS}/pods/{name}", token=jobs.view_token)
    assert r.status_code == 403
    v1.delete_namespaced_pod(name, JNS, grace_period_seconds=0)
    _until("the orphan's process to stop", lambda: not _pid_alive(pid))

    # Background (kubectl's default) takes the pods and their processes with the Job
    bv1.create_namespaced_job(JNS, _job("cascade", SLEEPER))
    name, pid = _running_pid(jobs, "cascade")
    jobs.kubectl("delete", "job", "-n", JNS, "cascade")
    _until("the pod to go", lambda: not _pods(jobs, "cascade"))
    assert not _pid_alive(pid)


def test_processes_do_not_outlive_the_emulator(tmp_path: Path) -> None:
    from tests.kube.emulator import start_emulator, stop_emulator

    e = start_emulator(tmp_path)
    own = KubeServer(e.url, e.view_token, e.admin_token, e.kubeconfig, e.proc)
    try:
        r = own.api("POST", "/api/v1/namespaces", json={"metadata": {"name": JNS}})
        assert r.status_code == 201
        r = own.api("POST", f"/apis/batch/v1/namespaces/{JNS}/jobs", json=_job("in-ns", SLEEPER))
        assert r.status_code == 201
        _, in_ns = _running_pid(own, "in-ns")
        assert own.api("DELETE", f"/api/v1/namespaces/{JNS}").status_code == 200
        _until("the namespace's process to stop", lambda: not _pid_alive(in_ns), timeout=15)
        assert own.api("POST", "/api/v1/namespaces", json={"metadata": {"name": JNS}}).status_code == 201
        r = own.api("POST", f"/apis/batch/v1/namespaces/{JNS}/jobs", json=_job("forever", SLEEPER))
        assert r.status_code == 201
        _, pid = _running_pid(own, "forever")
    finally:
        stop_emulator(e.proc)
    _until("the process to stop with the emulator", lambda: not _pid_alive(pid), timeout=15)


def test_on_failure_restarts_the_container_in_place(jobs: KubeServer, tmp_path: Path) -> None:
    marker = tmp_path / "restarted"
    code = (
        PY
        + f'p={str(marker)!r}; again=os.path.exists(p); open(p,"a").close(); print("again" if again else "first"); sys.exit(0 if again else 2)'
    )
    job = _job("in-place", code, backoffLimit=3)
    job["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    _create(jobs, job, tmp_path)
    jobs.kubectl("wait", "-n", JNS, "--for=condition=complete", "job/in-place", "--timeout=60s")
    (pod,) = _pods(jobs, "in-place")
    cs = pod["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 1 and cs["lastState"]["terminated"]["exitCode"] == 2
    name = pod["metadata"]["name"]
    assert jobs.kubectl("logs", "-n", JNS, name).stdout == "again\n"
    assert jobs.kubectl("logs", "-n", JNS, name, "--previous").stdout == "first\n"
    assert _job_status(jobs, "in-place")["succeeded"] == 1


def test_pod_failure_policy_ignores_disruption_and_fails_on_an_exit_code(jobs: KubeServer, tmp_path: Path) -> None:
    marker = tmp_path / "second"
    code = (
        PY
        + f'p={str(marker)!r}; first=not os.path.exists(p); open(p,"a").close(); print(os.getpid(), flush=True); time.sleep(300) if first else sys.exit(42)'
    )
    policy = {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "run", "operator": "In", "values": [42]}},
        ]
    }
    bad = _job("policy-bad", "pass", podFailurePolicy=policy)
    bad["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    r = jobs.api("POST", f"/apis/batch/v1/namespaces/{JNS}/jobs", json=bad)
    assert r.status_code == 422
    assert (
        r.json()["details"]["causes"][0]["message"]
        == 'Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified'
    )

    _create(jobs, _job("policy", code, backoffLimit=0, podFailurePolicy=policy), tmp_path)
    first, _ = _running_pid(jobs, "policy")
    assert jobs.lab("POST", f"/_lab/pods/{JNS}/{first}/node-lost").status_code == 200
    st = _until("the job to fail", _finished(jobs, "policy"))
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert failed["reason"] == "PodFailurePolicy"
    (second,) = [p["metadata"]["name"] for p in _pods(jobs, "policy")]
    assert (
        failed["message"]
        == f"Container run for pod {JNS}/{second} failed with exit code 42 matching FailJob rule at index 1"
    )
    assert st["failed"] == 1  # the disrupted pod was ignored, not counted against backoffLimit 0


def _free_millicpu(kube: KubeServer) -> dict[str, int]:
    """Each node's allocatable CPU less the requests of the pods bound to it that have not finished."""
    from vcci_lab.kube._util import parse_quantity

    free = {
        n["metadata"]["name"]: parse_quantity(n["status"]["allocatable"]["cpu"])
        for n in _get(kube, "/api/v1/nodes")["items"]
    }
    for p in _get(kube, "/api/v1/pods")["items"]:
        node = p["spec"].get("nodeName")
        if node and p["status"].get("phase") not in ("Succeeded", "Failed"):
            for c in p["spec"]["containers"]:
                r = c.get("resources") or {}
                v = (r.get("requests") or {}).get("cpu", (r.get("limits") or {}).get("cpu"))
                free[node] -= parse_quantity(v) if v is not None else 0.0
    return {k: int(v * 1000) for k, v in free.items()}


def test_a_pod_no_node_has_room_for_stays_pending_until_one_has(jobs: KubeServer, tmp_path: Path) -> None:
    huge = _job("huge", 'print("never")', container={"resources": {"requests": {"cpu": "64"}}})
    _create(jobs, huge, tmp_path)
    (pod,) = _until("the pod", lambda: _pods(jobs, "huge"))
    cond = pod["status"]["conditions"][0]
    assert (pod["status"]["phase"], cond["type"], cond["status"], cond["reason"]) == (
        "Pending",
        "PodScheduled",
        "False",
        "Unschedulable",
    )
    nodes = len(_get(jobs, "/api/v1/nodes")["items"])
    assert cond["message"].startswith(f"0/{nodes} nodes are available: {nodes} Insufficient cpu.")
    assert "FailedScheduling" in jobs.kubectl("describe", "pod", "-n", JNS, pod["metadata"]["name"]).stdout
    assert _job_status(jobs, "huge")["active"] == 1
    jobs.kubectl("delete", "job", "-n", JNS, "huge")

    hogs = []
    try:
        for i in range(nodes):  # fill every node: each hog takes what the roomiest node has left
            room = max(_free_millicpu(jobs).values()) - 1
            hog = _job(f"hog-{i}", SLEEPER, container={"resources": {"requests": {"cpu": f"{room}m"}}})
            _create(jobs, hog, tmp_path)
            hogs.append(f"hog-{i}")
            _running_pid(jobs, f"hog-{i}")
        _create(
            jobs, _job("waiter", 'print("got a node")', container={"resources": {"requests": {"cpu": "1"}}}), tmp_path
        )
        time.sleep(1.5)  # the scheduler retries every second: still no room
        (waiter,) = _pods(jobs, "waiter")
        assert waiter["status"]["phase"] == "Pending" and not waiter["spec"].get("nodeName")
        jobs.kubectl("delete", "job", "-n", JNS, hogs.pop(0))
        jobs.kubectl("wait", "-n", JNS, "--for=condition=complete", "job/waiter", "--timeout=60s")
        assert jobs.kubectl("logs", "-n", JNS, "job/waiter").stdout == "got a node\n"
    finally:
        for name in hogs:
            jobs.kubectl("delete", "job", "-n", JNS, name, check=False)


def test_a_suspended_job_runs_nothing_until_resumed(jobs: KubeServer, tmp_path: Path) -> None:
    _create(jobs, _job("later", 'print("resumed")', suspend=True), tmp_path)
    st = _until("Suspended", lambda: _job_status(jobs, "later").get("conditions"))
    assert [(c["type"], c["status"], c["reason"]) for c in st] == [("Suspended", "True", "JobSuspended")]
    assert "startTime" not in _job_status(jobs, "later") and not _pods(jobs, "later")
    assert jobs.kubectl("get", "job", "-n", JNS, "later", "--no-headers").stdout.split()[1] == "Suspended"
    jobs.kubectl("patch", "job", "-n", JNS, "later", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    jobs.kubectl("wait", "-n", JNS, "--for=condition=complete", "job/later", "--timeout=60s")
    conds = {c["type"]: c for c in _job_status(jobs, "later")["conditions"]}
    assert (conds["Suspended"]["status"], conds["Suspended"]["reason"]) == ("False", "JobResumed")
    assert jobs.kubectl("logs", "-n", JNS, "job/later").stdout == "resumed\n"

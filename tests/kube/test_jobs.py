"""Jobs that run: the emulator's Job controller runs each pod's command as a local process.

With kubectl and with the official client, as the Job executor (``serve --executor kubernetes``)
drives a real cluster: status transitions, logs, back-off, deadline, TTL, Secrets in the
environment, a pod lost mid-run, and who may do what.
"""

from __future__ import annotations

import json
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


def _job(name: str, code: str, **spec: Any) -> dict[str, Any]:
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
    _create(jobs, _job("hello", 'print("hi")'), tmp_path)
    jobs.kubectl("wait", "-n", JNS, "--for=condition=complete", "job/hello", "--timeout=60s")
    assert jobs.kubectl("logs", "-n", JNS, "job/hello").stdout == "hi\n"
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

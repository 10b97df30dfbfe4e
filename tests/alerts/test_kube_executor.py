"""``serve --executor kubernetes`` on the lab: bundle runs as Jobs in the emulator, results through S3.

One receiver with the Job executor and one with the local executor get the same alert at the same
time (so they read the same lab): the records must hold the same notebooks, findings and HTML.
The Jobs are read back with kubectl and the official client: listed by incident label, and no
secret value (a registered canary among them) in any spec. A Job whose pod is deleted mid-run is
recorded in the timeline and run again once.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.alerts._support import ROOT, Serve, alert, notification, start_serve, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]

NAMESPACE = "monitoring"
SECRET = "vcci-nb-sources"
CANARY = "kube-canary-7d3f1e9b5a2c"
BUNDLE = "connection_pool_exhausted"
#: What the pod needs from the lab, as an operator would put it in the Secret (secret-reference.yaml).
SOURCE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "KUBECONFIG",
    "PROMETHEUS_URL",
    "ALERTMANAGER_URL",
    "RABBITMQ_URL",
    "EXTERNAL_API_URL",
    "VCCI_API_URL",
    "VCCI_API_SMOKE_TOKEN",
    "VCCI_GIT_REPO",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_EC2_METADATA_DISABLED",
)


def _api(env: dict[str, str]) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=env["KUBECONFIG"], context="vcci-lab-admin")


def prepare_cluster(lab: Any) -> dict[str, str]:
    """The Secret the Jobs reference (lab values + a canary) and the record store's bucket."""
    import boto3
    from kubernetes import client

    env: dict[str, str] = lab.env()
    values = {k: env[k] for k in SOURCE_VARS if k in env}
    values["VCCI_CANARY_TOKEN"] = CANARY
    core = client.CoreV1Api(_api(env))
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}, "stringData": values}
    try:
        core.create_namespaced_secret(NAMESPACE, body)
    except client.ApiException as exc:
        assert exc.status == 409, exc
        core.replace_namespaced_secret(SECRET, NAMESPACE, body)
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    if "vcci-nb-records" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="vcci-nb-records")
    return values


def routes_text() -> str:
    """The shipped routes, with correlation off: each alert group its own incident."""
    text = (ROOT / "parameters" / "routes.yaml").read_text()
    return text.replace("correlate_window_s: 900", "correlate_window_s: 0")


def post_alert(serve: Serve, name: str, fingerprint: str) -> None:
    one = alert(name, fingerprint=fingerprint, severity="warning", bundle=BUNDLE, namespace="vcci-production")
    r = serve.post(notification([one], group_key=f'{{}}:{{alertname="{name}"}}'))
    assert r.status_code == 200, r.text


def record_of(serve: Serve, name: str) -> dict[str, Any] | None:
    for record in serve.records():
        if any(a["labels"].get("alertname") == name for a in record["alerts"]):
            return record
    return None


def settled_record(serve: Serve, name: str, timeout: float = 900) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        record = record_of(serve, name)
        if record is None:
            return None
        jobs = [j for j in serve.jobs() if j["incident_id"] == record["id"]]
        if jobs and all(j["state"] not in ("queued", "running") and j["announced"] for j in jobs):
            return record_of(serve, name)
        return None

    record: dict[str, Any] = wait_for(done, timeout=timeout, interval=1.0, what=f"the record of {name}")
    return record


@pytest.fixture(scope="module")
def serves(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, Serve, dict[str, str]]]:
    secret_values = prepare_cluster(lab)
    env = lab.env()
    kube = start_serve(
        tmp_path_factory.mktemp("kube-serve"),
        "--executor",
        "kubernetes",
        routes=routes_text(),
        real_runner=True,
        env_extra=env,
    )
    local = start_serve(
        tmp_path_factory.mktemp("local-serve"),
        "--concurrency",
        "2",
        routes=routes_text(),
        real_runner=True,
        env_extra=env,
    )
    try:
        yield kube, local, secret_values
    finally:
        kube.stop()
        local.stop()


def _quiet_alerts(prometheus: str, timeout: float = 300) -> None:
    """Wait (bounded) until the lab's Prometheus has no alert firing or pending.

    The two runs read the live lab at different moments; an earlier test's alert that resolves between
    them gives one record an ``alerts.firing`` finding the other lacks, which says nothing about the
    executor. Past the bound the test goes on: a steady alert is seen by both runs alike.
    """
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = requests.get(f"{prometheus}/api/v1/query", params={"query": "ALERTS"}, timeout=10).json()
            if not body["data"]["result"]:
                return
        except (requests.RequestException, KeyError, ValueError):
            pass
        time.sleep(2)


@pytest.fixture(scope="module")
def same_alert(lab: Any, serves: tuple[Serve, Serve, dict[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    kube, local, _ = serves
    _quiet_alerts(lab.env()["PROMETHEUS_URL"])
    post_alert(kube, "VcciJobsSameAlert", "f00d000000000001")
    post_alert(local, "VcciJobsSameAlert", "f00d000000000001")
    return settled_record(kube, "VcciJobsSameAlert"), settled_record(local, "VcciJobsSameAlert")


def _content(serve: Serve, record: dict[str, Any]) -> dict[str, Any]:
    folder = serve.outputs / record["id"]
    return {
        "notebooks": sorted((nb["name"], nb["status"], nb.get("findings")) for nb in record["notebooks"]),
        "files": sorted(p.name for p in folder.iterdir() if p.suffix in (".ipynb", ".html") and p.name != "index.html"),
        "findings": sorted((f["key"], f["severity"], f.get("notebook")) for f in record["findings"]),
        "evidence": sorted(p.name for p in (folder / "evidence").iterdir()),
        "index": (folder / "index.html").is_file(),
    }


def test_a_job_run_gives_the_record_a_local_run_gives(
    serves: tuple[Serve, Serve, dict[str, str]], same_alert: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    kube, local, _ = serves
    by_job, by_process = same_alert
    [job] = [j for j in kube.jobs() if j["incident_id"] == by_job["id"]]
    assert job["state"] == "succeeded", (job, (kube.root / "serve.log").read_text()[-3000:])
    ours, theirs = _content(kube, by_job), _content(local, by_process)
    assert ours["notebooks"] and all(status == "succeeded" for _, status, _ in ours["notebooks"]), ours
    assert ours == theirs
    # the executed notebooks are real papermill output, and the HTML copies are there
    nb = json.loads((kube.outputs / by_job["id"] / "connection_pool_exhausted.ipynb").read_text())
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    summaries = [e["summary"] for e in by_job["timeline"]]
    assert any("as Kubernetes Job monitoring/" in s for s in summaries), summaries
    assert any(s.endswith("running") and s.startswith("Job ") for s in summaries), summaries
    assert any("succeeded (exit 0)" in s for s in summaries), summaries


def test_kubectl_lists_an_incidents_jobs(
    lab: Any, serves: tuple[Serve, Serve, dict[str, str]], same_alert: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    env = lab.env()
    incident = same_alert[0]["id"]
    # Incident IDs are numbered per outputs folder: another receiver on the same cluster may use the
    # same ones, so this receiver's Jobs are also told apart by its instance label.
    instance = (serves[0].state_dir / "instance").read_text().strip()
    # Incident IDs are per outputs folder: another receiver on the same cluster may number the same
    # way, so this one's Jobs are also told apart by its instance label.
    instance = (serves[0].state_dir / "instance").read_text().strip()
    out = subprocess.run(
        [
            "kubectl",
            "--context",
            "vcci-lab",
            "-n",
            NAMESPACE,
            "get",
            "jobs",
            "-l",
            f"incident={incident},vcci-nb/serve={instance}",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env={"KUBECONFIG": env["KUBECONFIG"], "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(Path.home())},
        timeout=60,
        check=True,
    )
    items = json.loads(out.stdout)["items"]
    assert len(items) == 1
    assert items[0]["metadata"]["labels"]["bundle"] == BUNDLE
    assert items[0]["status"].get("succeeded") == 1


def test_no_secret_value_in_any_job_spec(
    lab: Any, serves: tuple[Serve, Serve, dict[str, str]], same_alert: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    from kubernetes import client

    _, _, secret_values = serves
    api = _api(lab.env())
    jobs = client.BatchV1Api(api).list_namespaced_job(
        NAMESPACE, label_selector="app.kubernetes.io/managed-by=vcci-nb-serve"
    )
    assert jobs.items
    text = json.dumps([api.sanitize_for_serialization(j) for j in jobs.items])
    secret_like = ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL", "AWS_SECRET_ACCESS_KEY", "VCCI_API_SMOKE_TOKEN")
    for key in (*secret_like, "VCCI_CANARY_TOKEN"):
        assert secret_values[key] not in text, key
    assert '"secretRef": {"name": "vcci-nb-sources"}' in text.replace("'", '"')


def test_a_pod_killed_mid_run_is_recorded_and_run_again_once(
    lab: Any, serves: tuple[Serve, Serve, dict[str, str]]
) -> None:
    from kubernetes import client

    kube, _, _ = serves
    instance = (kube.state_dir / "instance").read_text().strip()
    core = client.CoreV1Api(_api(lab.env()))
    post_alert(kube, "VcciJobsPodKilled", "f00d000000000002")
    record = wait_for(lambda: record_of(kube, "VcciJobsPodKilled"), timeout=120, what="the incident")

    def running_pod() -> str | None:
        pods = core.list_namespaced_pod(
            NAMESPACE, label_selector=f"incident={record['id']},vcci-nb/serve={instance}"
        ).items
        up = [p for p in pods if p.status.phase == "Running"]
        return str(up[0].metadata.name) if up else None

    pod = wait_for(running_pod, timeout=300, interval=0.5, what="the Job's pod running")
    time.sleep(3)  # let the run get under way (kernels starting) before the node "goes away"
    core.delete_namespaced_pod(pod, NAMESPACE, grace_period_seconds=0)
    final = settled_record(kube, "VcciJobsPodKilled")
    [job] = [j for j in kube.jobs() if j["incident_id"] == final["id"]]
    assert job["attempts"] == 2 and job["state"] == "succeeded", job
    summaries = [e["summary"] for e in final["timeline"]]
    lost = [s for s in summaries if "pod was lost" in s]
    assert len(lost) == 1 and "queued again (attempt 2 of 2)" in lost[0], summaries
    assert sum("as Kubernetes Job" in s for s in summaries) == 2
    assert {nb["status"] for nb in final["notebooks"]} == {"succeeded"}


def test_a_restarted_serve_follows_the_jobs_it_left_running(
    lab: Any, serves: tuple[Serve, Serve, dict[str, str]]
) -> None:
    from kubernetes import client

    kube, _, _ = serves
    instance = (kube.state_dir / "instance").read_text().strip()
    batch = client.BatchV1Api(_api(lab.env()))
    post_alert(kube, "VcciJobsServeRestart", "f00d000000000003")
    record = wait_for(lambda: record_of(kube, "VcciJobsServeRestart"), timeout=120, what="the incident")

    def job_running() -> bool:
        jobs = batch.list_namespaced_job(NAMESPACE, label_selector=f"incident={record['id']},vcci-nb/serve={instance}")
        return any((j.status.active or 0) > 0 for j in jobs.items)

    wait_for(job_running, timeout=300, interval=0.5, what="the Job running")
    kube.stop()  # the Job runs on without serve (or ends meanwhile: the new serve merges it all the same)
    kube.start()
    final = settled_record(kube, "VcciJobsServeRestart")
    [job] = [j for j in kube.jobs() if j["incident_id"] == final["id"]]
    assert job["attempts"] == 1 and job["state"] == "succeeded", job
    summaries = [e["summary"] for e in final["timeline"]]
    assert any("again after a restart" in s for s in summaries), summaries
    assert {nb["status"] for nb in final["notebooks"]} == {"succeeded"}

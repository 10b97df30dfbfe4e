# ruff: noqa: E501  (API payloads and kubectl command lines read best on one line)
"""Every kubectl command of the seed's Phases 1, 3, 4 and 6, run with the real kubectl against the emulator."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.kube.conftest import NS, KubeServer

OOM_JSONPATH = (
    'jsonpath={range .items[*]}{.metadata.name}{"\\t"}'
    '{.status.containerStatuses[*].lastState.terminated.reason}{"\\n"}{end}'
)


def test_server_version_and_discovery(kube: KubeServer) -> None:
    out = json.loads(kube.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"].startswith("v1.31.")
    res = kube.kubectl("api-resources", "-o", "name").stdout.split()
    for name in (
        "pods",
        "nodes",
        "events",
        "configmaps",
        "deployments.apps",
        "replicasets.apps",
        "ingresses.networking.k8s.io",
        "nodes.metrics.k8s.io",
    ):
        assert name in res


def test_phase1_get_pods_nodes_top(kube: KubeServer) -> None:
    pods = kube.kubectl("get", "pods", "-n", NS).stdout.splitlines()
    assert re.split(r"\s+", pods[0].strip()) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(pods) == 13  # header + 12 pods
    assert all(" Running " in line for line in pods[1:])
    nodes = kube.kubectl("get", "nodes").stdout.splitlines()
    assert len(nodes) >= 4 and all(" Ready " in n for n in nodes[1:])
    top = kube.kubectl("top", "nodes").stdout.splitlines()
    assert top[0].split()[:5] == ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
    assert len(top) == len(nodes)
    top_pods = kube.kubectl("top", "pods", "-n", NS).stdout.splitlines()
    assert len(top_pods) == 13 and top_pods[1].split()[2].endswith("Mi")


def test_phase3_describe_nodes_and_pods(fresh: KubeServer) -> None:
    out = fresh.kubectl("describe", "nodes").stdout
    cond = out[out.index("Conditions:") :].splitlines()[:7]
    assert any("Ready" in line and "True" in line and "KubeletReady" in line for line in cond)
    assert "Allocatable:" in out and "Non-terminated Pods:" in out
    fresh.lab("POST", "/_lab/faults/crashloop")
    time.sleep(2.5)
    desc = fresh.kubectl("describe", "pods", "-n", NS).stdout
    events = desc[desc.index("Events:") :].splitlines()[:10]
    assert any("BackOff" in e and "Back-off restarting failed container" in e for e in events), events


def test_phase3_oomkilled_jsonpath_and_heal(fresh: KubeServer) -> None:
    before = fresh.kubectl("get", "pods", "-n", NS, "-o", OOM_JSONPATH).stdout
    assert "OOMKilled" not in before
    fresh.lab("POST", "/_lab/faults/oomkill")
    deadline = time.time() + 10
    while time.time() < deadline:
        out = fresh.kubectl("get", "pods", "-n", NS, "-o", OOM_JSONPATH).stdout
        if sum("OOMKilled" in line for line in out.splitlines()) == 6:
            break
        time.sleep(0.5)
    hit = [line.split("\t")[0] for line in out.splitlines() if line.endswith("OOMKilled")]
    assert len(hit) == 6 and all(h.startswith("vcci-api-") for h in hit)
    restarts = fresh.kubectl("get", "pods", "-l", "app=vcci-api", "--no-headers").stdout
    assert all(int(line.split()[3]) >= 1 for line in restarts.splitlines())
    top = fresh.kubectl("top", "pods", "-l", "app=vcci-api", "--no-headers").stdout
    assert all(int(line.split()[2].rstrip("Mi")) > 3000 for line in top.splitlines())  # over 73% of the 4Gi limit
    fresh.lab("DELETE", "/_lab/faults/oomkill")
    fresh.wait_ready("vcci-api")
    after = fresh.kubectl("get", "pods", "-n", NS, "-o", OOM_JSONPATH).stdout
    assert "OOMKilled" not in after


def test_phase1_and_3_logs(fresh: KubeServer) -> None:
    out = fresh.kubectl("logs", "-n", NS, "-l", "app=vcci-api", "--tail=100").stdout.splitlines()
    assert len(out) == 600
    assert {m.group(1) for line in out if (m := re.search(r"Z (INFO|WARN|ERROR) ", line))} >= {"INFO", "WARN"}
    stamped = fresh.kubectl("logs", "-n", NS, "-l", "app=vcci-api", "--tail=500", "--timestamps").stdout.splitlines()
    assert len(stamped) == 3000
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z \d{4}-", line) for line in stamped)
    pod = fresh.pods()[0]["metadata"]["name"]
    assert len(fresh.kubectl("logs", "-n", NS, pod, "--tail=200").stdout.splitlines()) == 200
    prev = fresh.kubectl("logs", "-n", NS, pod, "--previous", check=False)
    assert prev.returncode != 0 and "previous terminated container" in prev.stderr
    fresh.lab("POST", "/_lab/faults/crashloop")
    time.sleep(2.5)
    errors = [
        line
        for line in fresh.kubectl("logs", "-n", NS, "-l", "app=vcci-api", "--tail=100").stdout.splitlines()
        if "ERROR" in line
    ]
    assert len(errors) >= 6
    # As from a kubelet: in CrashLoopBackOff, --previous is lastState.terminated, the run that just
    # crashed, from the first crash on (the seed's `kubectl logs --previous` check).
    deadline = time.time() + 15
    while "CrashLoopBackOff" not in fresh.kubectl("get", "pod", "-n", NS, pod).stdout and time.time() < deadline:
        time.sleep(0.3)
    prev = fresh.kubectl("logs", "-n", NS, pod, "--previous")
    assert "ERROR vcci.startup Database connection failed" in prev.stdout
    assert prev.stdout == fresh.kubectl("logs", "-n", NS, pod).stdout, "both show the last crashed run"


def test_phase4_rollout_history_undo_status(fresh: KubeServer) -> None:
    hist = fresh.kubectl("rollout", "history", "deployment/vcci-api", "-n", NS).stdout
    rows = [line.split(None, 1) for line in hist.splitlines()[2:] if line.strip()]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert rows[-1][1].startswith("Deploy 2.14.0")
    fresh.kubectl("rollout", "undo", "deployment/vcci-api", "-n", NS)
    fresh.kubectl("rollout", "status", "deployment/vcci-api", "-n", NS, "--timeout=60s")
    img = fresh.kubectl("get", "deploy", "vcci-api", "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert img.endswith(":2.13.0")
    hist = fresh.kubectl("rollout", "history", "deployment/vcci-api", "-n", NS).stdout
    revs = [line.split()[0] for line in hist.splitlines()[2:] if line.strip()]
    assert revs == ["1", "2", "3", "4", "6", "7"]  # revision 5 came back as 7
    out = fresh.kubectl("rollout", "undo", "deployment/vcci-api", "-n", NS, "--to-revision=4").stdout
    assert "rolled back" in out
    status = fresh.kubectl("rollout", "status", "deployment/vcci-api", "-n", NS, "--timeout=60s").stdout
    assert 'deployment "vcci-api" successfully rolled out' in status
    img = fresh.kubectl("get", "deploy", "vcci-api", "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert img.endswith(":2.12.1")
    pods = fresh.pods()
    assert len(pods) == 6 and all(p["spec"]["containers"][0]["image"].endswith(":2.12.1") for p in pods)
    bad = fresh.kubectl("rollout", "undo", "deployment/vcci-api", "--to-revision=99", check=False)
    assert bad.returncode != 0 and "unable to find specified revision 99" in bad.stderr


def test_phase4_seed_to_revision_5(fresh: KubeServer) -> None:
    fresh.kubectl("rollout", "undo", "deployment/vcci-api", "-n", NS, "--to-revision=5")
    fresh.kubectl("rollout", "status", "deployment/vcci-api", "-n", NS, "--timeout=60s")
    rs = json.loads(fresh.kubectl("get", "rs", "-n", NS, "-l", "app=vcci-api", "-o", "json").stdout)["items"]
    live = [r for r in rs if r["spec"]["replicas"] > 0]
    assert len(live) == 1
    ann = live[0]["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/revision"] == "7"
    assert ann["deployment.kubernetes.io/revision-history"] == "5"
    assert ann["kubernetes.io/change-cause"].startswith("Deploy 2.13.0")


def test_phase4_restart_scale_set(fresh: KubeServer) -> None:
    fresh.kubectl("rollout", "restart", "deployment/vcci-api", "-n", NS)
    fresh.kubectl("rollout", "status", "deployment/vcci-api", "-n", NS, "--timeout=60s")
    d = fresh.wait_ready("vcci-api")
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "7"
    fresh.kubectl("scale", "deployment/vcci-api", "-n", NS, "--replicas=12")
    fresh.kubectl("rollout", "status", "deployment/vcci-api", "-n", NS, "--timeout=60s")
    assert len(fresh.pods()) == 12
    fresh.kubectl(
        "set", "resources", "deployment/vcci-api", "-n", NS, "--limits=cpu=4,memory=8Gi", "--requests=cpu=2,memory=4Gi"
    )
    # each change gets its own revision once the controller has seen it (two changes faster than the
    # controller share one, on a real cluster too)
    fresh.wait_observed("vcci-api")
    fresh.kubectl("set", "env", "deployment/vcci-api", "-n", NS, "DATABASE_POOL_SIZE=50")
    fresh.kubectl("rollout", "status", "deployment/vcci-api", "-n", NS, "--timeout=60s")
    d = fresh.wait_ready("vcci-api")
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"limits": {"cpu": "4", "memory": "8Gi"}, "requests": {"cpu": "2", "memory": "4Gi"}}
    assert {"name": "DATABASE_POOL_SIZE", "value": "50"} in c["env"]
    assert [e["name"] for e in c["env"]][:2] == ["DJANGO_SETTINGS_MODULE", "DATABASE_POOL_SIZE"]  # merged in place
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "9"
    pods = fresh.pods()
    assert len(pods) == 12
    assert all({"name": "DATABASE_POOL_SIZE", "value": "50"} in p["spec"]["containers"][0]["env"] for p in pods)
    bad = fresh.kubectl("set", "resources", "deployment/vcci-api", "--requests=memory=64Gi", check=False)
    assert bad.returncode != 0 and "must be less than or equal to memory limit" in bad.stderr
    neg = fresh.kubectl("scale", "deployment/vcci-api", "--replicas=-1", check=False)
    assert neg.returncode != 0


def test_phase4_delete_pods(fresh: KubeServer) -> None:
    victim = fresh.pods()[0]["metadata"]["name"]
    out = fresh.kubectl("delete", "pod", "-n", NS, victim, timeout=60).stdout
    assert f'pod "{victim}" deleted' in out
    fresh.wait_ready("vcci-api")
    names = {p["metadata"]["name"] for p in fresh.pods()}
    assert victim not in names and len(names) == 6
    out = fresh.kubectl("delete", "pods", "-n", NS, "-l", "app=vcci-api", timeout=60).stdout
    assert out.count("deleted") == 6
    fresh.wait_ready("vcci-api")
    assert not names & {p["metadata"]["name"] for p in fresh.pods()}


def test_phase4_patch_ingress_json(fresh: KubeServer) -> None:
    patch = '[{"op": "add", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1limit-rps", "value": "50"}]'
    out = fresh.kubectl("patch", "ingress", "vcci-api-ingress", "-n", NS, "--type=json", "-p", patch).stdout
    assert "patched" in out
    ann = fresh.kubectl("get", "ingress", "vcci-api-ingress", "-n", NS, "-o", "jsonpath={.metadata.annotations}").stdout
    assert json.loads(ann)["nginx.ingress.kubernetes.io/limit-rps"] == "50"
    # a number where the API wants a string is refused, as by a real API server
    bad = '[{"op": "add", "path": "/metadata/annotations/x", "value": 50}]'
    cp = fresh.kubectl("patch", "ingress", "vcci-api-ingress", "--type=json", "-p", bad, check=False)
    assert cp.returncode != 0 and "cannot unmarshal number" in cp.stderr
    missing = '[{"op": "replace", "path": "/spec/nope/x", "value": "1"}]'
    cp = fresh.kubectl("patch", "ingress", "vcci-api-ingress", "--type=json", "-p", missing, check=False)
    assert cp.returncode != 0


def test_phase6_grep_not_running(fresh: KubeServer) -> None:
    out = fresh.kubectl("get", "pods", "-n", NS).stdout.splitlines()[1:]
    assert [line for line in out if "Running" not in line] == []
    fresh.lab("POST", "/_lab/faults/crashloop")
    time.sleep(2.5)
    out = fresh.kubectl("get", "pods", "-n", NS).stdout.splitlines()[1:]
    assert len([line for line in out if "Running" not in line]) == 6


def test_bad_deploy_and_undo_recovers(fresh: KubeServer) -> None:
    fresh.lab("POST", "/_lab/faults/bad-deploy")
    time.sleep(3)
    hist = fresh.kubectl("rollout", "history", "deployment/vcci-api").stdout
    assert "7         Deploy 2.15.0" in hist
    st = fresh.kubectl("rollout", "status", "deployment/vcci-api", "--timeout=3s", check=False)
    assert st.returncode != 0 and "Waiting for deployment" in st.stdout
    deadline = time.time() + 15
    while True:
        pods = fresh.kubectl("get", "pods", "-l", "app=vcci-api", "--no-headers").stdout.splitlines()
        broken = [p.split()[0] for p in pods if "CrashLoopBackOff" in p]
        if broken or time.time() > deadline:
            break
        time.sleep(0.5)
    assert broken, pods
    # A pod in CrashLoopBackOff may have begun its next attempt by the time we ask (it shows only its
    # start-up lines then); --previous is the run that crashed, as an engineer would ask for it.
    logs = fresh.kubectl("logs", broken[0], "--previous", "--tail=20").stdout
    assert "ERROR vcci.startup Migration emissions.0042_scope3_category_split is not applied" in logs
    running = [p for p in pods if " 1/1 " in p]
    assert len(running) >= 4  # maxUnavailable keeps the old release serving
    fresh.kubectl("rollout", "undo", "deployment/vcci-api")
    fresh.kubectl("rollout", "status", "deployment/vcci-api", "--timeout=60s")
    img = fresh.kubectl("get", "deploy", "vcci-api", "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert img.endswith(":2.14.0")
    fresh.lab("DELETE", "/_lab/faults/bad-deploy")


def test_bad_deploy_heal_rolls_back(fresh: KubeServer) -> None:
    fresh.lab("POST", "/_lab/faults/bad-deploy")
    time.sleep(1)
    fresh.lab("DELETE", "/_lab/faults/bad-deploy")
    fresh.kubectl("rollout", "status", "deployment/vcci-api", "--timeout=60s")
    assert all(p["spec"]["containers"][0]["image"].endswith(":2.14.0") for p in fresh.pods())


def test_exec_disk_full_cleanup(fresh: KubeServer) -> None:
    def pvc_use() -> int:
        line = [
            x
            for x in fresh.kubectl("exec", "-n", NS, "deployment/vcci-api", "--", "df", "-h").stdout.splitlines()
            if x.endswith(" /var/log")
        ]
        return int(line[0].split()[-2].rstrip("%"))

    assert pvc_use() < 50
    logs = fresh.kubectl("logs", "-n", NS, "-l", "app=vcci-api", "--tail=100").stdout
    assert "No space left on device" not in logs
    fresh.lab("POST", "/_lab/faults/disk-full")
    assert pvc_use() >= 95
    metrics = fresh.lab("GET", "/_lab/metrics").text
    avail = float(
        re.search(
            r'kubelet_volume_stats_available_bytes\{namespace="vcci-production",persistentvolumeclaim="vcci-api-data"\} (\S+)',
            metrics,
        ).group(1)
    )  # type: ignore[union-attr]
    cap = float(
        re.search(
            r'kubelet_volume_stats_capacity_bytes\{namespace="vcci-production",persistentvolumeclaim="vcci-api-data"\} (\S+)',
            metrics,
        ).group(1)
    )  # type: ignore[union-attr]
    assert avail / cap < 0.05
    logs = fresh.kubectl("logs", "-n", NS, "-l", "app=vcci-api", "--tail=100").stdout
    assert "No space left on device" in logs
    old = fresh.kubectl(
        "exec",
        "-n",
        NS,
        "deployment/vcci-api",
        "--",
        "find",
        "/var/log",
        "-type",
        "f",
        "-name",
        "*.log",
        "-mtime",
        "+7",
    ).stdout
    assert len(old.splitlines()) >= 20
    fresh.kubectl(
        "exec",
        "-n",
        NS,
        "deployment/vcci-api",
        "--",
        "find",
        "/var/log",
        "-type",
        "f",
        "-name",
        "*.log",
        "-mtime",
        "+7",
        "-delete",
    )
    assert pvc_use() < 50
    tmp = fresh.kubectl("exec", "-n", NS, "deployment/vcci-api", "--", "sh", "-c", "du -sh /tmp").stdout
    assert tmp.split()[0].endswith("G")
    fresh.kubectl("exec", "-n", NS, "deployment/vcci-api", "--", "sh", "-c", "rm -rf /tmp/*")
    tmp = fresh.kubectl("exec", "-n", NS, "deployment/vcci-api", "--", "du", "-sh", "/tmp").stdout
    assert not tmp.split()[0].endswith("G")
    bad = fresh.kubectl("exec", "-n", NS, "deployment/vcci-api", "--", "ls", "/does-not-exist", check=False)
    assert bad.returncode == 2 and "No such file or directory" in bad.stderr
    fresh.lab("DELETE", "/_lab/faults/disk-full")


def test_view_token_is_read_only(fresh: KubeServer) -> None:
    assert fresh.kubectl("get", "pods", admin=False).returncode == 0
    cp = fresh.kubectl("scale", "deployment/vcci-api", "--replicas=3", admin=False, check=False)
    assert cp.returncode != 0
    assert 'cannot patch resource "deployments/scale" in API group "apps"' in cp.stderr
    cp = fresh.kubectl("delete", "pod", fresh.pods()[0]["metadata"]["name"], admin=False, check=False)
    assert "Forbidden" in cp.stderr or "forbidden" in cp.stderr
    cp = fresh.kubectl("get", "secrets", admin=False, check=False)
    assert cp.returncode != 0 and "forbidden" in cp.stderr
    cp = fresh.kubectl("exec", "deployment/vcci-api", "--", "df", "-h", admin=False, check=False)
    assert cp.returncode != 0
    assert "yes" in fresh.kubectl("auth", "can-i", "list", "pods").stdout
    assert "no" in fresh.kubectl("auth", "can-i", "patch", "deployments", admin=False, check=False).stdout
    who = fresh.kubectl("auth", "whoami", "-o", "json", admin=False).stdout
    assert json.loads(who)["status"]["userInfo"]["username"].endswith(":vcci-diag")
    assert len(fresh.pods()) == 6  # nothing changed


def test_server_side_dry_run_changes_nothing(fresh: KubeServer) -> None:
    before = fresh.api("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/vcci-api").json()
    pods_before = {p["metadata"]["name"] for p in fresh.pods(terminating=True)}
    out = fresh.kubectl("scale", "deployment/vcci-api", "--replicas=12", "--dry-run=server").stdout
    assert "(server dry run)" in out
    fresh.kubectl("set", "env", "deployment/vcci-api", "USE_CACHED_DATA=true", "--dry-run=server")
    fresh.kubectl(
        "set", "resources", "deployment/vcci-api", "--limits=memory=16Gi", "--requests=memory=8Gi", "--dry-run=server"
    )
    fresh.kubectl("rollout", "undo", "deployment/vcci-api", "--dry-run=server")
    fresh.kubectl("delete", "pods", "-l", "app=vcci-api", "--dry-run=server")
    fresh.kubectl(
        "patch",
        "ingress",
        "vcci-api-ingress",
        "--type=json",
        "--dry-run=server",
        "-p",
        '[{"op":"add","path":"/metadata/annotations/a","value":"b"}]',
    )
    fresh.kubectl("patch", "configmap", "vcci-maintenance", "--dry-run=server", "-p", '{"data":{"enabled":"true"}}')
    time.sleep(1)
    after = fresh.api("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/vcci-api").json()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]
    assert {p["metadata"]["name"] for p in fresh.pods(terminating=True)} == pods_before
    cm = fresh.api("GET", f"/api/v1/namespaces/{NS}/configmaps/vcci-maintenance").json()
    assert cm["data"]["enabled"] == "false"
    ing = fresh.api("GET", f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/vcci-api-ingress").json()
    assert "a" not in ing["metadata"]["annotations"]


def test_get_watch_sees_changes(fresh: KubeServer) -> None:
    import os
    import subprocess

    env = {**os.environ, "KUBECONFIG": str(fresh.kubeconfig)}
    proc = subprocess.Popen(
        [
            "/usr/bin/kubectl",
            "--context",
            "vcci-lab-admin",
            "get",
            "pods",
            "-l",
            "app=vcci-api",
            "-w",
            "--request-timeout=8s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(1.5)
    fresh.kubectl("scale", "deployment/vcci-api", "--replicas=7")
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "READY", "STATUS"]
    new = [line for line in lines[7:] if line.strip()]
    assert any("ContainerCreating" in line or "Pending" in line for line in new)
    assert any(" 1/1 " in line and "Running" in line for line in new)


def test_exec_interactive_shell_reads_stdin(kube: KubeServer) -> None:
    import os
    import subprocess

    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    cp = subprocess.run(
        ["/usr/bin/kubectl", "--context", "vcci-lab-admin", "exec", "-i", "-n", NS, "deployment/vcci-api", "--", "sh"],
        input="df -h /var/log\nls /var/log/vcci | wc -l\nls /missing\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    lines = cp.stdout.splitlines()
    assert lines[0].startswith("Filesystem") and lines[1].endswith("/var/log")
    assert int(lines[2]) >= 10
    assert "No such file or directory" in cp.stderr and cp.returncode == 2


def test_apply_and_create_from_manifests(fresh: KubeServer, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied, namespace: vcci-production}\ndata: {a: '1'}\n"
    )
    assert "configmap/applied created" in fresh.kubectl("apply", "-f", str(manifest)).stdout
    manifest.write_text(manifest.read_text().replace("'1'", "'2'"))
    assert "configmap/applied configured" in fresh.kubectl("apply", "-f", str(manifest)).stdout
    cm = fresh.api("GET", f"/api/v1/namespaces/{NS}/configmaps/applied").json()
    assert cm["data"] == {"a": "2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in cm["metadata"]["annotations"]
    again = fresh.kubectl("create", "-f", str(manifest), check=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr

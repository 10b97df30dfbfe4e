"""The shipped manifests and Alertmanager snippet agree with the code, and the real tools accept them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from vcci_nb.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "parameters" / "deploy"


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def _by_kind() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name in yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]:
        for doc in _docs(name):
            out.setdefault(doc["kind"], []).append(doc)
    return out


def test_deployment_runs_serve_with_arguments_the_cli_accepts() -> None:
    [deployment] = _by_kind()["Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "serve"
    assert args.host == "0.0.0.0" and args.port == 9787
    assert args.state_dir.startswith("/var/lib/vcci-nb") and args.outputs.startswith("/var/lib/vcci-nb")
    assert deployment["spec"]["replicas"] == 1  # one receiver per state directory (serve.lock)
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    [service] = _by_kind()["Service"]
    assert service["spec"]["ports"][0]["port"] == args.port == container["ports"][0]["containerPort"]


def test_token_comes_from_a_secret_file_never_from_a_literal() -> None:
    [deployment] = _by_kind()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "VCCI_NB_SERVE_TOKEN" not in env
    token_path = Path(env["VCCI_NB_SERVE_TOKEN_FILE"]["value"])
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    [mount] = [m for m in mounts.values() if token_path.parent == Path(m["mountPath"])]
    assert volumes[mount["name"]]["secret"]["secretName"] == "vcci-nb-serve-token"
    assert pod["serviceAccountName"] == "vcci-nb-serve"


def test_the_service_account_can_only_read() -> None:
    kinds = _by_kind()
    roles = kinds["Role"] + kinds["ClusterRole"]
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, (role["metadata"]["name"], rule)
            assert "secrets" not in rule["resources"]
    for binding in kinds["RoleBinding"] + kinds["ClusterRoleBinding"]:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vcci-nb-serve", "namespace": "monitoring"}]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds_the_manifests() -> None:
    proc = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(proc.stdout) if d}
    assert kinds == {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} | {
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
    }


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool (prometheus-alertmanager) is not installed")
def test_alertmanager_accepts_the_receiver_snippet(tmp_path: Path) -> None:
    snippet = yaml.safe_load((DEPLOY / "alertmanager-receiver.yaml").read_text())
    token = tmp_path / "token"
    token.write_text("x" * 32)
    for receiver in snippet["receivers"]:
        for hook in receiver["webhook_configs"]:
            assert hook["url"].endswith("/alertmanager")
            assert hook["send_resolved"] is True
            assert hook["http_config"]["authorization"]["type"] == "Bearer"
            hook["http_config"]["authorization"]["credentials_file"] = str(token)
    config = {
        "route": {"receiver": "default", "routes": snippet["route"]["routes"]},
        "receivers": [{"name": "default"}, *snippet["receivers"]],
    }
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


EXECUTOR = DEPLOY.parent / "deploy-kubernetes-executor"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_executor_overlay_builds_and_grants_jobs_in_its_own_namespace_only() -> None:
    from vcci_nb.alerts.kubejobs import JobSettings
    from vcci_nb.config import load_profile

    proc = subprocess.run(
        ["kubectl", "kustomize", str(EXECUTOR)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    deployment = by[("Deployment", "vcci-nb-serve")]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.executor == "kubernetes" and args.profile == "production"
    namespace = deployment["metadata"]["namespace"]
    role = by[("Role", "vcci-nb-jobs")]
    assert role["metadata"]["namespace"] == namespace
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get"]},
    ]
    binding = by[("RoleBinding", "vcci-nb-jobs")]
    assert binding["metadata"]["namespace"] == namespace
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vcci-nb-serve", "namespace": namespace}]
    assert not any(d["kind"] == "ClusterRole" and "jobs" in json.dumps(d) for d in docs)
    # The Jobs the production profile builds land where the Role is, as the overlay's run identity,
    # from the image the manifests name (built from the Containerfile).
    settings = JobSettings.from_profile(load_profile("production"))
    assert settings.namespace == namespace
    assert ("ServiceAccount", settings.service_account) in by
    assert settings.image == container["image"]
    # ... and that identity may only read.
    for doc in docs:
        if doc["kind"] in ("RoleBinding", "ClusterRoleBinding") and doc["subjects"][0]["name"] == "vcci-nb-run":
            role_of = by[(doc["roleRef"]["kind"], doc["roleRef"]["name"])]
            for rule in role_of["rules"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


def test_the_containerfile_steps_are_ones_the_check_performs() -> None:
    import importlib.util

    path = DEPLOY.parents[1] / "tools" / "check_containerfile.py"
    spec = importlib.util.spec_from_file_location("check_containerfile", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    steps = module.plan(DEPLOY.parents[1] / "Containerfile")
    kinds = [kind for kind, _ in steps]
    assert ["run", ["pip", "install", "/app"]] in [[k, a] for k, a in steps]
    assert ("entrypoint", ['["vcci-nb"]']) in steps
    assert kinds.count("copy") >= 4 and "from" in kinds

"""One Kubernetes client for reads and mitigation (issue 18 item 3), against the API emulator.

- with no kubeconfig at all, a pod's service account (KUBERNETES_SERVICE_HOST/PORT, token, CA) is
  used, over TLS checked against the mounted CA; without one the source says what is missing;
- the mitigation identity falls back to ~/.kube/config like the read one;
- the identity is chosen by argument: the same 404 is a KubeApiError for a read and a refusal
  for a change.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from vcci_nb import config
from vcci_nb.errors import ActionRefused, KubeApiError
from vcci_nb.kubeapi import KubeClient
from vcci_nb.redact import redact
from vcci_nb.sources import kube


def _no_kubeconfig(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(home))  # no ~/.kube/config there
    monkeypatch.setenv("VCCI_NB_PROFILE", "lab")


def test_in_cluster_service_account_is_used_when_there_is_no_kubeconfig(
    kube_emu: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    doc = json.loads(kube_emu.kubeconfig.read_text())  # type: ignore[attr-defined]
    cluster = doc["clusters"][0]["cluster"]
    server = urlsplit(cluster["server"])
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(kube_emu.view_token + "\n")  # type: ignore[attr-defined]
    (sa / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    _no_kubeconfig(monkeypatch, tmp_path)
    monkeypatch.setattr(config, "SERVICEACCOUNT_DIR", sa)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", str(server.hostname))
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))

    ev = kube.gather_pods("lab", timeout=10)
    assert ev.ok, ev.message
    assert not ev.frame.empty
    with kube.api_client("lab") as client:
        assert client.identity == "kubernetes:in-cluster (user serviceaccount)"
    # The mounted token is a secret from the moment it is read.
    assert kube_emu.view_token not in redact(f"token {kube_emu.view_token}")  # type: ignore[attr-defined]

    # Without the CA the pod's server is not trusted (TLS is checked, never skipped).
    (sa / "ca.crt").unlink()
    ev = kube.gather_pods("lab", timeout=5)
    assert ev.status == "unavailable" and ev.meta.get("cause") == "tls", ev.message


def test_without_kubeconfig_or_service_account_the_source_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_kubeconfig(monkeypatch, tmp_path)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(config, "SERVICEACCOUNT_DIR", tmp_path / "nothing-mounted")
    ev = kube.gather_pods("lab", timeout=5)
    assert ev.status == "unavailable"
    assert "KUBECONFIG is not set" in ev.message and "not running in a cluster" in ev.message


def test_mitigation_identity_falls_back_to_the_home_kubeconfig(
    kube_emu: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_kubeconfig(monkeypatch, tmp_path)
    (tmp_path / ".kube").mkdir()
    shutil.copy(kube_emu.kubeconfig, tmp_path / ".kube" / "config")  # type: ignore[attr-defined]
    with KubeClient.connect("lab", mitigation=True) as client:
        assert client.context == "vcci-lab-admin"  # the profile's on-call context, from ~/.kube/config
        deployment = client.get("/apis/apps/v1/namespaces/vcci-production/deployments/vcci-api")
        assert deployment["metadata"]["name"] == "vcci-api"
    with KubeClient.connect("lab") as client:
        assert client.context == "vcci-lab"  # the read-only context


def test_the_identity_decides_how_an_error_reads(kube_env: object) -> None:
    missing = "/apis/apps/v1/namespaces/vcci-production/deployments/no-such-deployment"
    with KubeClient.connect("lab") as reader, pytest.raises(KubeApiError) as read_error:
        reader.get(missing)
    assert read_error.value.status == 404 and "check the namespace and names" in str(read_error.value)
    with KubeClient.connect("lab", mitigation=True) as oncall, pytest.raises(ActionRefused, match="not found"):
        oncall.get(missing)
    # The read-only identity may not change anything: a dry-run patch is refused, not made.
    with KubeClient.connect("lab", mitigation=False) as reader, pytest.raises(KubeApiError) as write_error:
        reader.patch(missing.replace("no-such-deployment", "vcci-api"), {"spec": {"replicas": 3}}, dry_run=True)
    assert write_error.value.status == 403

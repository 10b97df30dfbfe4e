"""Fixtures for the Kubernetes emulator's own tests.

The emulator runs as the lab runs it (``python -m vcci_lab.kube`` in a subprocess, with a tokens
file), on a free port, independent of the lab fixture. Tests that change the cluster start from a
fresh one (``POST /_lab/reset``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.kube.emulator import start_emulator, stop_emulator

KUBECTL = "/usr/bin/kubectl"
NS = "vcci-production"


@dataclass
class KubeServer:
    url: str
    view_token: str
    admin_token: str
    kubeconfig: Path
    proc: subprocess.Popen[bytes]

    def lab(self, method: str, path: str) -> requests.Response:
        return requests.request(
            method, self.url + path, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=10
        )

    def api(self, method: str, path: str, *, token: str | None = None, **kw: Any) -> requests.Response:
        tok = self.admin_token if token is None else token
        headers = kw.pop("headers", {})
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kw)

    def kubectl(
        self, *args: str, admin: bool = True, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        ctx = ["--context", "vcci-lab-admin"] if admin else []
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.kubeconfig.parent)}
        cp = subprocess.run(
            [KUBECTL, *ctx, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if check and cp.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}")
        return cp

    def reset(self) -> None:
        r = self.lab("POST", "/_lab/reset")
        assert r.status_code == 200, r.text
        self.wait_ready("vcci-api")

    def wait_ready(self, deployment: str, timeout: float = 30) -> dict[str, Any]:
        """Wait until the deployment is fully rolled out (as kubectl rollout status decides)."""
        deadline = time.time() + timeout
        while True:
            d = self.api("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/{deployment}").json()
            st = d.get("status", {})
            want = d["spec"]["replicas"]
            if (
                st.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and st.get("updatedReplicas", 0) == want
                and st.get("replicas", 0) == want
                and st.get("availableReplicas", 0) == want
            ):
                return d
            if time.time() > deadline:
                raise AssertionError(f"deployment {deployment} did not roll out: {st}")
            time.sleep(0.2)

    def wait_observed(self, deployment: str, timeout: float = 30) -> None:
        """Wait until the deployment controller has seen the latest spec (a new ReplicaSet exists)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            d = self.api("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/{deployment}").json()
            if d.get("status", {}).get("observedGeneration", 0) >= d["metadata"]["generation"]:
                return
            time.sleep(0.1)
        raise AssertionError(f"deployment {deployment}: generation never observed")

    def pods(self, selector: str = "app=vcci-api", *, terminating: bool = False) -> list[dict[str, Any]]:
        """Pods matching ``selector``; those already Terminating only when asked for."""
        r = self.api("GET", f"/api/v1/namespaces/{NS}/pods", params={"labelSelector": selector})
        return [p for p in r.json()["items"] if terminating or not p["metadata"].get("deletionTimestamp")]


def _start(tmp: Path, pods: int = 12) -> KubeServer:
    e = start_emulator(tmp, pods)
    return KubeServer(e.url, e.view_token, e.admin_token, e.kubeconfig, e.proc)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeServer]:
    srv = _start(tmp_path_factory.mktemp("kube"))
    try:
        yield srv
    finally:
        stop_emulator(srv.proc)


@pytest.fixture
def fresh(kube: KubeServer) -> KubeServer:
    """The emulator reset to its initial state, with every fault healed."""
    kube.reset()
    return kube

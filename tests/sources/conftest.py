"""Fixtures for the data layer's tests: real servers only.

- ``lab`` / ``lab_env`` (tests/conftest.py): PostgreSQL, Redis and friends with their faults;
- ``kube_emu``: the lab's Kubernetes API emulator on a free port with a tokens file (view and
  admin tokens) and a kubeconfig; ``kube_emu.fault("oomkill")`` injects and heals;
- ``hanging_port``: a TCP socket that accepts connections and never answers (a hung server);
- ``closed_port``: a port with nothing listening (a server that is down).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests


@dataclass
class KubeEmu:
    url: str
    view_token: str
    admin_token: str
    kubeconfig: Path
    dir: Path
    proc: subprocess.Popen[bytes]

    def _lab(self, method: str, path: str) -> requests.Response:
        auth = {"Authorization": f"Bearer {self.admin_token}"}
        r = requests.request(method, self.url + path, headers=auth, timeout=20)
        assert r.status_code < 300, r.text
        return r

    @contextlib.contextmanager
    def fault(self, name: str) -> Iterator[None]:
        self._lab("POST", f"/_lab/faults/{name}")
        try:
            yield
        finally:
            self._lab("DELETE", f"/_lab/faults/{name}")

    def reset(self) -> None:
        self._lab("POST", "/_lab/reset")

    def kubeconfig_with_token(self, token: str, name: str) -> Path:
        """A kubeconfig like the lab's whose view context carries ``token`` instead."""
        from vcci_lab.kube import write_kubeconfig

        return write_kubeconfig(self.dir / name, self.url, token, self.admin_token)


@pytest.fixture(scope="session")
def kube_emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEmu]:
    from tests.kube.emulator import start_emulator, stop_emulator

    e = start_emulator(tmp_path_factory.mktemp("kube-emu"))
    emu = KubeEmu(e.url, e.view_token, e.admin_token, e.kubeconfig, e.dir, e.proc)
    try:
        yield emu
    finally:
        stop_emulator(e.proc)


@pytest.fixture
def kube_env(kube_emu: KubeEmu, monkeypatch: pytest.MonkeyPatch) -> KubeEmu:
    """The emulator's kubeconfig in KUBECONFIG (context vcci-lab: the read-only token)."""
    monkeypatch.setenv("KUBECONFIG", str(kube_emu.kubeconfig))
    monkeypatch.setenv("VCCI_NB_PROFILE", "lab")
    return kube_emu


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A listening socket that accepts and then says nothing, ever (like a wedged server)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        srv.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port

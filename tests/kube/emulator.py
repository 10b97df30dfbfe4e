"""Start and stop the lab's Kubernetes API emulator on a free port, as the lab runs it.

Shared by the emulator's own tests (``tests/kube``) and the data layer's (``tests/sources``):
``python -m vcci_lab.kube`` in a subprocess with a tokens file (a view and an admin token),
ready when ``/readyz`` answers, with a kubeconfig written by ``write_kubeconfig``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from vcci_lab.kube import write_kubeconfig


@dataclass
class Started:
    url: str
    view_token: str
    admin_token: str
    kubeconfig: Path
    dir: Path
    proc: subprocess.Popen[bytes]


def start_emulator(tmp: Path, pods: int = 12) -> Started:
    view, admin = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    tokens = tmp / "tokens.json"
    tokens.write_text(json.dumps({view: "view", admin: "admin"}))
    argv = [sys.executable, "-m", "vcci_lab.kube", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--dir", str(tmp / "kube"), "--pods", str(pods), "--tokens-file", str(tokens)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=(tmp / "kube.log").open("wb"))
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}; see {tmp / 'kube.log'}")
    url = line.strip().rsplit(" ", 1)[-1]
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", url, view, admin)
    return Started(url, view, admin, kubeconfig, tmp, proc)


def stop_emulator(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

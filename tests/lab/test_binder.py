"""The Binder start script brings the lab up in the background and runs the command it is given."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from vcci_lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: What a kernel started before the lab was up lacks.
_LAB_VARS = {"DATABASE_URL", "REDIS_URL", "PROMETHEUS_URL", "KUBECONFIG", "RABBITMQ_URL", "ALERTMANAGER_URL"}


def test_start_script_brings_the_lab_up_and_execs_the_command() -> None:
    lab_dir = Path(tempfile.mkdtemp(prefix="vcci-nb-binder-"))
    os.chmod(lab_dir, 0o711)
    env = {**os.environ, "VCCI_NB_LAB_DIR": str(lab_dir)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    lab = Lab(lab_dir)
    try:
        res = subprocess.run(
            [str(ROOT / "binder" / "start"), sys.executable, "-c", "print('server started')"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert res.returncode == 0, res.stderr
        assert "server started" in res.stdout  # the command ran without waiting for the lab
        env_file = lab_dir / "env.sh"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not env_file.exists():
            time.sleep(0.5)
        log = (lab_dir / "up.log").read_text() if (lab_dir / "up.log").exists() else ""
        assert env_file.exists(), f"the lab did not come up; up.log:\n{log}"
        assert lab.is_up()
        exports = env_file.read_text()
        for key in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_URL", "KUBECONFIG", "RABBITMQ_URL"):
            assert f"export {key}=" in exports
        assert "ready at" in log

        # A kernel the server started before the lab was up has only VCCI_NB_LAB_DIR: vcci_nb
        # adopts the lab's variables from env.sh, and the sources answer.
        bare = {k: v for k, v in env.items() if k not in _LAB_VARS}
        probe = (
            "from vcci_nb.sources import postgres, redis\n"
            "print(redis.gather_ping('lab').status, postgres.gather_connections('lab').status)"
        )
        res = subprocess.run(
            [sys.executable, "-c", probe], env=bare, capture_output=True, text=True, timeout=60, check=False
        )
        assert res.stdout.split() == ["ok", "ok"], res.stdout + res.stderr
    finally:
        lab.down()
        shutil.rmtree(lab_dir, ignore_errors=True)

"""``vcci-nb jupyter``: the command line it builds (the browser tests start it for real)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcci_nb", "jupyter", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_opens_the_project_notebooks_with_this_python_from_any_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VCCI_NB_OUTPUTS"}
    out = subprocess.run(
        [sys.executable, "-m", "vcci_nb", "jupyter", "--print", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"cd {ROOT / 'notebooks'}"
    assert f"export VCCI_NB_OUTPUTS={ROOT / 'outputs'}" in lines
    assert f"export JUPYTER_DATA_DIR={Path(sys.prefix) / 'share' / 'jupyter'}" in lines
    cmd = lines[-1]
    assert cmd.startswith(f"{sys.executable} -m jupyterlab ")
    assert f"--ServerApp.root_dir={ROOT / 'notebooks'}" in cmd and "--ServerApp.port=0" in cmd
    assert ("--allow-root" in cmd) == (os.geteuid() == 0)


def test_lab_that_is_not_up_says_what_to_do(tmp_path: Path) -> None:
    out = _run("--lab", str(tmp_path / "nolab"), "--print", cwd=tmp_path)
    assert out.returncode == 2
    assert "is not up" in out.stderr and "vcci-nb lab up" in out.stderr and "leave out --lab" in out.stderr

"""``vcci-nb jupyter``: JupyterLab on the notebooks, with the right environment, folder and kernel.

- Folder: the project's ``notebooks/`` (each kernel starts in its notebook's folder; records go to
  ``$VCCI_NB_OUTPUTS`` or the project's ``outputs/`` whatever that folder is).
- Environment: the caller's (``KUBECONFIG``, ``DATABASE_URL``, ...); with ``--lab`` the running
  lab's connection variables are added (read with ``vcci-nb lab env``, so this module never imports
  the lab). ``VCCI_NB_OUTPUTS`` is set explicitly so every kernel writes the same records.
- Kernel: this Python's own (the virtual environment that has vcci_nb), whatever kernelspecs the
  user's Jupyter folders hold: ``JUPYTER_DATA_DIR`` points into this environment.
- Root: ``--allow-root`` is passed when running as root (containers, Binder-like machines).

Everything after ``--`` goes to JupyterLab unchanged (``vcci-nb jupyter -- --ServerApp.base_url=/x/``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from vcci_nb import runenv
from vcci_nb.errors import ConfigError
from vcci_nb.runenv import RunEnv


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "jupyter",
        help="open JupyterLab on the notebooks with this environment's kernel (--lab: the lab's connections)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--lab",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="add the running lab's connection variables (lab directory: DIR, else $VCCI_NB_LAB_DIR, else .lab)",
    )
    p.add_argument("--notebooks", metavar="DIR", help="folder to open (default: the project's notebooks/)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8888, help="port (default 8888; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--print", action="store_true", help="print the command and the variables it adds; start nothing")
    p.add_argument("extra", nargs="*", help="arguments after -- go to JupyterLab")
    p.set_defaults(func=_jupyter)


def lab_variables(lab_dir: str) -> dict[str, str]:
    """The running lab's connection variables, from ``vcci-nb lab --dir DIR env`` (its export lines)."""
    cmd = [sys.executable, "-m", "vcci_nb", "lab", "--dir", lab_dir, "env"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"could not ask the lab for its variables ({shlex.join(cmd)}): {exc}") from exc
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        why = (lines[-1] if lines else "no output").removeprefix("vcci-nb: ").rstrip(".")
        raise ConfigError(
            f"`vcci-nb lab --dir {lab_dir} env` failed: {why}. Start the lab first (`vcci-nb lab up`), "
            "or leave out --lab to use your own environment."
        )
    env: dict[str, str] = {}
    for line in out.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            env[key] = value
    if not env:
        raise ConfigError(f"the lab in {lab_dir} gave no variables; is it up? (`vcci-nb lab --dir {lab_dir} status`)")
    return env


def command(args: argparse.Namespace) -> tuple[list[str], dict[str, str], Path]:
    """The JupyterLab command line, the variables added to the caller's environment, and the folder."""
    from vcci_nb.record import outputs_dir, project_dir

    env = runenv.current()
    root = project_dir()
    if args.notebooks:
        folder = Path(args.notebooks).resolve()
    elif root is not None:
        folder = root / "notebooks"
    else:
        raise ConfigError("no project checkout found for the notebooks; pass --notebooks DIR")
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder; pass --notebooks with the folder holding the notebooks")
    added: dict[str, str] = {}
    if args.lab is not None:
        lab_dir = args.lab or str(env.lab_dir or (root or Path.cwd()) / ".lab")
        added.update(lab_variables(str(Path(lab_dir).resolve())))
    added[RunEnv.var("outputs")] = str(env.outputs or outputs_dir().resolve())
    # The kernel is this environment's Python: hide kernelspecs in the user's own Jupyter folder.
    added.setdefault("JUPYTER_DATA_DIR", str(Path(sys.prefix) / "share" / "jupyter"))
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={folder}",
        f"--ServerApp.ip={args.ip}",
        f"--ServerApp.port={args.port}",
        "--MappingKernelManager.default_kernel_name=python3",
    ]
    if args.no_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    cmd += list(args.extra)
    return cmd, added, folder


def _jupyter(args: argparse.Namespace) -> int:
    cmd, added, folder = command(args)
    if args.print:
        print(f"cd {shlex.quote(str(folder))}")
        for key, value in sorted(added.items()):  # the lab's values hold passwords: names only
            shown = value if key in (RunEnv.var("outputs"), "JUPYTER_DATA_DIR") else "…"
            print(f"export {key}={shlex.quote(shown)}")
        print(shlex.join(cmd))
        return 0
    env = {**os.environ, **added}
    os.chdir(folder)
    sys.stdout.flush()
    os.execve(cmd[0], cmd, env)  # noqa: S606 -- JupyterLab takes this process over (signals, exit status)

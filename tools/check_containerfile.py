#!/usr/bin/env python3
"""Check the Containerfile without an image builder: perform its install steps in a clean folder.

No podman, docker or buildah runs where this project is developed, so this script reads the
Containerfile and does what a builder would with its ``COPY`` and ``RUN`` steps, in a fresh
temporary folder standing in for the image's root and a fresh virtualenv standing in for its
Python (the same Python version as the ``FROM`` image's, checked):

- ``COPY SRC... DEST`` copies from this checkout into the folder (``/app`` → ``<tmp>/app``);
- ``RUN pip install ...`` and ``RUN python -m ...`` run with the virtualenv's pip and python;
- ``RUN apt-get ...`` and ``RUN useradd ...`` are reported, not run (system steps: the packages
  are in ./dev's APT_PACKAGES, the user is the manifests' runAsUser);
- ``ENV`` is applied (paths under ``/`` mapped into the folder), except ``PIP_NO_CACHE_DIR``: the
  host's pip cache only makes the check faster, the installed result is the same.

Then the entry point must answer from outside the checkout (so nothing is imported from it):
``vcci-nb --help``, ``vcci-nb job-run --help``, every bundle of bundles.yaml resolves to notebooks
in the image, and the ``python3`` kernel is installed. Exit 0 when all hold.

    tools/check_containerfile.py             # the whole check (a few minutes: pip installs everything)
    tools/check_containerfile.py --dry-run   # only print what it would do
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = ("apt-get", "useradd")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs, with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def env_pairs(arg: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(arg))


def plan(path: Path) -> list[tuple[str, list[str]]]:
    """What to do: ("copy", [src..., dest]), ("run", argv), ("skip", [text]), ("env", [k, v]), ("from", [image])."""
    steps: list[tuple[str, list[str]]] = []
    for word, arg in instructions(path):
        if word == "FROM":
            steps.append(("from", [arg]))
        elif word == "ENV":
            steps += [("env", [k, v]) for k, v in env_pairs(arg).items()]
        elif word == "COPY":
            steps.append(("copy", shlex.split(arg)))
        elif word == "RUN":
            argv = shlex.split(arg)
            if argv[0] in SKIPPED:
                steps.append(("skip", [arg]))
            elif argv[0] in ("pip", "python"):
                steps.append(("run", argv))
            else:
                raise SystemExit(f"Containerfile: RUN {arg!r} is not a step this check knows how to perform")
        elif word in ("ENTRYPOINT", "CMD", "WORKDIR", "USER"):
            steps.append((word.lower(), [arg]))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containerfile", default=str(ROOT / "Containerfile"))
    parser.add_argument("--dry-run", action="store_true", help="print the steps, perform none")
    parser.add_argument("--keep", action="store_true", help="keep the folder afterwards")
    args = parser.parse_args(argv)
    steps = plan(Path(args.containerfile))
    image = next(a[0] for kind, a in steps if kind == "from")
    want = re.search(r"python:(\d+\.\d+)", image)
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    if want and want.group(1) != have:
        print(
            f"FROM {image} has Python {want.group(1)}, this check runs {have}: the result may differ", file=sys.stderr
        )
    if args.dry_run:
        for kind, items in steps:
            print(kind, *items)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="vcci-containerfile-"))
    root = tmp / "root"
    venv = tmp / "venv"

    def mapped(text: str) -> str:
        return str(root) + text if text.startswith("/") else text

    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = {"PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin", "HOME": str(root / "home"), "LANG": "C.UTF-8"}
        (root / "home").mkdir(parents=True)
        workdir = root
        for kind, items in steps:
            if kind == "env":
                key, value = items
                if key == "PIP_NO_CACHE_DIR":  # the image keeps no cache; here the host's pip cache saves minutes
                    continue
                env[key] = mapped(value) if key != "HOME" else str(root / "home")
            elif kind == "workdir":
                workdir = Path(mapped(items[0]))
                workdir.mkdir(parents=True, exist_ok=True)
            elif kind == "copy":
                *sources, dest = items
                target = Path(mapped(dest))
                for src in sources:
                    source = ROOT / src
                    into = target / source.name if dest.endswith("/") else target
                    into.parent.mkdir(parents=True, exist_ok=True)
                    if source.is_dir():
                        shutil.copytree(source, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                    else:
                        shutil.copy2(source, into)
                print("COPY", *items, flush=True)
            elif kind == "run":
                argv2 = [str(venv / "bin" / items[0]), *[mapped(a) for a in items[1:]]]
                print("RUN", *items, flush=True)
                subprocess.run(argv2, check=True, env=env, cwd=workdir)
            elif kind == "skip":
                print("SKIPPED (system step):", items[0], flush=True)
        entry = str(venv / "bin" / "vcci-nb")
        checks = [
            [entry, "--help"],
            [entry, "job-run", "--help"],
            [
                str(venv / "bin" / "python"),
                "-c",
                "import vcci_nb, sys; from vcci_nb.runner.bundles import load_bundles, resolve_target\n"
                "assert '/site-packages/' in vcci_nb.__file__, vcci_nb.__file__\n"
                "[resolve_target(b) for b in load_bundles()]\n"
                "print('bundles resolve:', ', '.join(load_bundles()))",
            ],
            [str(venv / "bin" / "jupyter"), "kernelspec", "list"],
        ]
        for check in checks:
            out = subprocess.run(check, env=env, cwd=tmp, capture_output=True, text=True, check=False)
            ok = out.returncode == 0 and (check[-1] != "list" or "python3" in out.stdout)
            print(
                ("ok  " if ok else "FAIL"), " ".join(Path(c).name if c.startswith(str(tmp)) else c for c in check)[:100]
            )
            if not ok:
                print(out.stdout[-2000:], out.stderr[-2000:], file=sys.stderr)
                return 1
        print("the Containerfile's steps install a working vcci-nb")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

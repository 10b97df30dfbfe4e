"""A lab that stops when its owner dies: ``vcci-nb lab up --stop-with PID``.

A lab normally outlives the command that started it (``lab up`` returns, the servers keep
running), so its servers cannot simply die with their parent. A test session or a CI script that
is killed before its clean-up would then leave PostgreSQL, RabbitMQ and the rest running with
nobody to stop them. The watchdog is a small detached process that polls the owner (by PID and
start time, so a reused PID does not fool it) and runs :meth:`Lab.down` when the owner has gone;
with ``remove_dir`` it also deletes the lab directory. It exits by itself as soon as the lab is
down, whoever stopped it.

    python -m vcci_lab._watchdog --dir DIR --pid OWNER [--start-time T] [--remove-dir]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vcci_lab import _procs

log = logging.getLogger(__name__)

#: Seconds between looks at the owner and the lab.
POLL_SECONDS = 1.0


def start(lab_dir: Path, owner_pid: int, *, remove_dir: bool = False) -> dict[str, Any]:
    """Start the watchdog for ``lab_dir``; return its state entry (pid, start time, owner)."""
    owner_start = _procs.pid_start_time(owner_pid)
    if owner_start is None:
        from vcci_nb.errors import LabError

        raise LabError(f"--stop-with {owner_pid}: no such process; give the PID of a running process")
    argv = [sys.executable, "-m", "vcci_lab._watchdog", "--dir", str(lab_dir), "--pid", str(owner_pid)]
    argv += ["--start-time", owner_start]
    if remove_dir:
        argv.append("--remove-dir")
    log_path = lab_dir / "logs" / "watchdog.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed with the owner's process group
            close_fds=True,
        )
    return {
        "pid": proc.pid,
        "start_time": _procs.pid_start_time(proc.pid),
        "owner_pid": owner_pid,
        "owner_start_time": owner_start,
        "remove_dir": remove_dir,
    }


def stop(entry: dict[str, Any] | None) -> None:
    """Stop a watchdog recorded in the lab's state (unless we are it)."""
    if not entry or entry.get("pid") == os.getpid():
        return
    if _procs.is_ours(entry.get("pid"), entry.get("start_time")):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(entry["pid"]), signal.SIGTERM)


def _lab_is_up(lab_dir: Path) -> bool:
    from vcci_lab._state import StateFile

    try:
        return bool(StateFile(lab_dir).load()["components"])
    except Exception:  # unreadable or removed: nothing left to guard
        return False


def watch(lab_dir: Path, owner_pid: int, owner_start: str | None, *, remove_dir: bool) -> str:
    """Block until the owner dies (then stop the lab) or the lab is down; say which happened."""
    while True:
        if not _lab_is_up(lab_dir):
            return "lab already down"
        if not _procs.is_ours(owner_pid, owner_start):
            break
        time.sleep(POLL_SECONDS)
    from vcci_lab import Lab

    print(f"owner {owner_pid} has gone; stopping the lab in {lab_dir}", flush=True)
    try:
        Lab(lab_dir).down()
    finally:
        if remove_dir:
            shutil.rmtree(lab_dir, ignore_errors=True)
    return "owner gone: lab stopped"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vcci_lab._watchdog")
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--pid", required=True, type=int)
    ap.add_argument("--start-time", default=None)
    ap.add_argument("--remove-dir", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s watchdog %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(watch(args.dir, args.pid, args.start_time, remove_dir=args.remove_dir), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

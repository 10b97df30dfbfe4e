"""A Job pod's process group is signalled only while its leader is unreaped.

Once the leader is reaped its pid (the group's id) may be handed to another process group after the
pids wrap around (pid_max is 32768 here); a ``killpg`` then would SIGKILL someone else's kernels.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vcci_lab.kube import _runner


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_leftovers_die_with_the_main_process_and_the_group_is_never_signalled_after_reaping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "child.pid"
    proc = _runner.spawn(
        ["sh", "-c", f"sleep 60 & echo $! > {pidfile}; exit 3"],
        dict(os.environ),
        tmp_path / "cwd",
        tmp_path / "log" / "0.log",
    )
    assert proc.wait(10) == 3
    child = int(pidfile.read_text())
    deadline = time.time() + 5
    while _alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(child)  # the container's leftover went with it

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "killpg", lambda pgid, sig: calls.append((pgid, sig)))
    proc.kill_group()
    proc.kill_now(0)
    proc.signal(9)
    assert calls == []  # reaped: its pid may belong to another group by now

"""Containers that really run: a Job's pod's command as a local process.

There are no images here, so the project's own environment stands in for the image: the command
runs with the emulator's Python environment's ``bin`` first on ``PATH``, in a fresh working folder
(its ``HOME`` and ``TMPDIR`` too), with only the environment the container spec gives it (plus
``PATH``, ``HOME``, ``HOSTNAME``, ``LANG``), as a container would.

Each process runs in a session of its own, so stopping it stops everything it started (papermill's
kernels included); it also gets ``PR_SET_PDEATHSIG`` so that it dies with the emulator even if the
emulator is killed outright. Its stdout and stderr are read by a thread that writes them to a log
file in the kubelet's CRI format (``<RFC 3339 nano time> <stream> F <line>``), one file per
container instance, which ``GET pods/{name}/log`` reads back.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from vcci_lab.kube._util import parse_time, rfc3339_nano

#: Where the stand-in image's executables are: the emulator's own Python environment.
ENV_BIN = str(Path(sys.executable).parent)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Proc:
    """One container instance's process and its log."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    reader: threading.Thread
    started_at: float
    exit_code: int | None = None
    finished_at: float | None = None
    signalled: list[int] = field(default_factory=list)

    def poll(self) -> int | None:
        """The container's exit code once it has exited (128+N when signal N killed it).

        The main process is looked at without reaping it first (``WNOWAIT``): while it is a zombie
        its pid stays the process group's id, so the group's leftovers can be SIGKILLed by that id
        (a container's processes all stop when it does). Only then is it reaped. Signalling the
        group after reaping could reach an unrelated process group that was given the same number
        once the pid wrapped around (jupyter kernels are group leaders): that killed other runs'
        kernels on a busy machine.
        """
        if self.exit_code is None:
            try:
                exited = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # already reaped (by Popen itself): nothing to signal safely
                exited = None
            if exited is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
            rc = self.popen.poll()
            if rc is not None:
                self.exit_code = 128 - rc if rc < 0 else rc
                self.finished_at = time.time()
        return self.exit_code

    def signal(self, sig: int) -> None:
        """Signal the whole process group (the container's processes), while its leader is unreaped."""
        if self.poll() is not None:
            return
        self.signalled.append(sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def kill_group(self) -> None:
        """Whatever is left of the container's process group goes once its main process has exited:
        :meth:`poll` SIGKILLs the group before it reaps the main process (never after)."""
        self.poll()

    def wait(self, timeout: float) -> int | None:
        """:meth:`poll` until the process has exited or ``timeout`` seconds have passed."""
        deadline = time.time() + timeout
        while self.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        return self.exit_code

    def kill_now(self, wait: float = 2.0) -> None:
        """SIGTERM, then SIGKILL if it has not gone after ``wait`` seconds (anything the container
        started that ignored SIGTERM goes with it, by :meth:`poll`)."""
        self.signal(signal.SIGTERM)
        if self.wait(wait) is None:
            self.signal(signal.SIGKILL)
            self.wait(2.0)


def _pump(stream: object, path: Path) -> None:
    """Copy a process's output to its log file in CRI format until the pipe closes."""
    with path.open("ab") as out:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            tag = b"F" if raw.endswith(b"\n") else b"P"
            line = raw.rstrip(b"\n")
            out.write(rfc3339_nano(time.time()).encode() + b" stdout " + tag + b" " + line + b"\n")
            out.flush()
    with contextlib.suppress(Exception):
        stream.close()  # type: ignore[attr-defined]


def spawn(argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> Proc:
    """Start one container instance.

    Raises:
        OSError: the executable is missing or not executable (the caller reports the kubelet's error).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.touch()
    cwd.mkdir(parents=True, exist_ok=True)
    popen = subprocess.Popen(
        argv,
        env=env,
        cwd=str(cwd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
        close_fds=True,
    )
    reader = threading.Thread(target=_pump, args=(popen.stdout, log_path), name=f"log-{popen.pid}", daemon=True)
    reader.start()
    return Proc(popen, log_path, reader, time.time())


def read_log(
    path: Path,
    *,
    tail: int | None,
    since: float | None,
    timestamps: bool,
    limit_bytes: int | None,
    offset: int = 0,
) -> tuple[str, int]:
    """The text ``GET .../log`` returns from a CRI log file, and the file offset it read up to.

    Only whole lines are read (a line still being written is left for the next read).
    """
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return "", offset
    cut = data.rfind(b"\n") + 1
    data = data[:cut]
    lines: list[str] = []
    for raw in data.decode(errors="replace").splitlines():
        parts = raw.split(" ", 3)
        if len(parts) < 3:
            continue
        ts, _stream, tag = parts[0], parts[1], parts[2]
        content = parts[3] if len(parts) > 3 else ""
        if since is not None:
            try:
                if parse_time(ts[:26] + "Z" if len(ts) > 27 else ts) < since:
                    continue
            except ValueError:
                pass
        text = content + ("\n" if tag == "F" else "")
        lines.append(f"{ts} {text}" if timestamps else text)
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    out = "".join(lines)
    if limit_bytes is not None:
        out = out.encode()[:limit_bytes].decode(errors="ignore")
    return out, offset + cut


def base_env(pod_name: str, home: Path) -> dict[str, str]:
    """What every container's environment holds before its spec's ``env``/``envFrom``."""
    path = os.pathsep.join([ENV_BIN, "/usr/local/bin", "/usr/bin", "/bin"])
    return {
        "PATH": path,
        "HOSTNAME": pod_name,
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
    }


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


_snapshot: tuple[float, dict[int, tuple[int, float, int]]] = (0.0, {})


def _proc_table() -> dict[int, tuple[int, float, int]]:
    """pid -> (ppid, CPU seconds, resident bytes) of every process, read at most twice a second."""
    global _snapshot
    taken, table = _snapshot
    if time.monotonic() - taken < 0.5:
        return table
    stats: dict[int, tuple[int, float, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        try:
            ppid = int(fields[1])
            cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
            rss = int(fields[21]) * _PAGE
        except (IndexError, ValueError):
            continue
        stats[int(entry.name)] = (ppid, cpu, rss)
    _snapshot = (time.monotonic(), stats)
    return stats


def tree_usage(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, resident bytes) of a process and every process under it, from ``/proc``
    (what the container's cgroup would account; None once the process is gone)."""
    stats = _proc_table()
    if pid not in stats:
        return None
    children: dict[int, list[int]] = {}
    for p, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(p)
    cpu = rss = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        _, c, r = stats[p]
        cpu += c
        rss += r
        todo.extend(children.get(p, []))
    return cpu, rss

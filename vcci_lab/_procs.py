"""Starting, watching and stopping the lab's server processes.

Every server runs in its own session (``start_new_session=True``), so its process group id is its
PID and ``down`` can signal the whole group: nothing the server forked survives it. Ports are
probed on 127.0.0.1 and busy ones are skipped, because other labs and test servers share the
machine.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from vcci_nb.errors import LabError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"

#: Debian package that ships each server binary, named when the binary is missing.
PACKAGES: dict[str, str] = {
    "postgres": "postgresql-15",
    "initdb": "postgresql-15",
    "redis-server": "redis-server",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "prometheus-postgres-exporter": "prometheus-postgres-exporter",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
    "rabbitmq-server": "rabbitmq-server",
    "epmd": "erlang-base",
    "git": "git",
}


def _pg_bin_dirs() -> list[str]:
    """PostgreSQL's versioned bin directories, 15 first (the platform's version), then the newest."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    found.sort(key=lambda p: (p.parent.name != "15", -int(p.parent.name)))
    return [str(p) for p in found]


_EXTRA_DIRS = {"rabbitmq-server": ["/usr/lib/rabbitmq/bin", "/usr/sbin"], "epmd": ["/usr/lib/erlang/bin"]}


def find_binary(name: str) -> str:
    """The path of a server binary, or a LabError naming the Debian package that provides it."""
    dirs = _pg_bin_dirs() if name in ("postgres", "initdb") else _EXTRA_DIRS.get(name, [])
    for d in dirs:
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    package = PACKAGES.get(name, name)
    raise LabError(
        f"{name} is not installed, and the lab needs it. Install it with: apt-get install -y {package} "
        f"(or run ./dev setup), then run `vcci-nb lab up` again."
    )


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port and we could bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return not port_is_listening(port)


def port_is_listening(port: int, timeout: float = 0.2) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((HOST, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out free ports, never the same one twice, preferring the ones a lab used before."""

    def __init__(self) -> None:
        self._taken: set[int] = set()

    def get(self, preferred: int | None = None) -> int:
        if preferred and preferred not in self._taken and port_is_free(preferred):
            self._taken.add(preferred)
            return preferred
        if preferred:
            log.info("port %s is busy; choosing another", preferred)
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((HOST, 0))
                port = int(s.getsockname()[1])
            if port not in self._taken:
                self._taken.add(port)
                return port
        raise LabError("could not find a free port on 127.0.0.1; stop some servers and try again")


def pid_alive(pid: int | None) -> bool:
    """True when the process exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return True


def pid_start_time(pid: int) -> str | None:
    """The kernel's start time of a process, so a recycled PID is never mistaken for ours."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def is_ours(pid: int | None, start_time: str | None) -> bool:
    if not pid or not pid_alive(pid):
        return False
    return start_time is None or pid_start_time(pid) == start_time


def group_members(pgid: int) -> list[int]:
    """PIDs whose process group is ``pgid`` (read from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                out.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return out


def our_children() -> set[int]:
    """PIDs of this process's direct children (servers the lab spawned from here)."""
    me = os.getpid()
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == me and fields[0] not in ("Z", "X"):
                out.add(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return out


def stop_group(pid: int, start_time: str | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Signal a process group led by ``pid``; escalate to SIGKILL if it has not gone by ``timeout``.

    The group is only signalled when its leader is still the process we started (same start
    time), or when the leader is gone but members of its group remain.
    """
    leader_ours = is_ours(pid, start_time)
    members = group_members(pid)
    if not leader_ours and not members:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not group_members(pid) and not pid_alive(pid):
            return
        time.sleep(0.05)
    log.warning("process group %s did not stop within %.0fs; killing it", pid, timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (group_members(pid) or pid_alive(pid)):
        _reap(pid)
        time.sleep(0.05)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def run_as(user: str | None) -> tuple[int | None, int | None, list[int] | None]:
    """(uid, gid, extra groups) for Popen to run a child as ``user`` (meaningful only as root)."""
    if user is None:
        return None, None, None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid, []


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server in its own session with stdout and stderr going to ``log_path``."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    uid, gid, groups = run_as(user)
    with open(log_path, "ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=str(cwd) if cwd else None,
                start_new_session=True,
                close_fds=True,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        except FileNotFoundError as exc:
            raise LabError(f"{name}: cannot run {argv[0]}: {exc.strerror}") from exc
    log.debug("started %s pid %s: %s", name, proc.pid, " ".join(argv))
    return proc


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:])


def wait_until(
    name: str,
    check: Callable[[], bool],
    *,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    interval: float = 0.05,
) -> None:
    """Poll ``check`` until it is true; fail early (with the server's log) when the process dies."""
    deadline = time.monotonic() + timeout
    last_error = "none"
    while True:
        try:
            if check():
                return
        except Exception as exc:  # readiness probes fail in many ways while a server starts
            last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.debug("%s not ready yet: %s", name, exc)
        if proc is not None and proc.poll() is not None:
            where = f"\n--- last lines of {log_path} ---\n{tail(log_path)}" if log_path else ""
            raise LabError(f"{name} exited with code {proc.returncode} while starting.{where}")
        if time.monotonic() > deadline:
            where = f"\n--- last lines of {log_path} ---\n{tail(log_path)}" if log_path else ""
            if proc is not None:  # never leave behind a server we gave up on
                stop_group(proc.pid, None, timeout=10)
            raise LabError(f"{name} was not ready after {timeout:.0f}s (last error: {last_error}).{where}")
        time.sleep(interval)


def http_ok(url: str, timeout: float = 1.0, headers: Mapping[str, str] | None = None) -> bool:
    """True when ``url`` answers 2xx."""
    req = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - lab URLs on 127.0.0.1
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def bind_failed(log_path: Path) -> bool:
    """Whether a server's log says its port was taken (another process won the race for it)."""
    text = tail(log_path, 40).lower()
    return any(s in text for s in ("address already in use", "eaddrinuse", os.strerror(errno.EADDRINUSE).lower()))

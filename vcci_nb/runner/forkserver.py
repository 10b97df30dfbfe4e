"""A fork server ("zygote") for kernels: one warm process per run forks each notebook's kernel.

Why: the machine has two cores, and a fresh ``python -m ipykernel_launcher`` that imports
ipykernel, pandas, Plotly and vcci_nb costs 1-2 s of CPU per kernel, competing with the notebooks
that are running. The zygote pays those imports once per run; each kernel is then a ``fork()``
(a few milliseconds) that goes straight to ``IPKernelApp.launch_instance``.

How it fits together:

- :func:`start` (in the run's parent, :func:`vcci_nb.runner.core._execute`) spawns
  ``python -c "…forkserver.main()" SOCKET PARENT_PID`` with the same interpreter options as
  the ``python3`` kernelspec. The zygote imports :data:`ZYGOTE_MODULES`, runs the Plotly
  warm-up, and only then renames its unix socket into place: the socket existing means "ready".
  While idle it then imports :data:`ZYGOTE_LATER` (the rest of vcci_nb the notebooks use).
- A worker's kernel manager uses :class:`ForkProvisioner` (a jupyter_client kernel provisioner),
  which sends the kernel command, environment, working directory and the worker's stdio file
  descriptors over the socket (``SOCK_SEQPACKET``; fds via ``SCM_RIGHTS``). The zygote forks; the
  child sets itself up exactly like a Popen kernel (own session and process group, default
  signal handlers, the job's environment *replacing* ``os.environ``, its cwd, the worker's
  stdout/stderr) and runs the kernel. The zygote answers with the pid and a pidfd, so the
  worker can signal the kernel (interrupt, timeout, kill) without pid-reuse races and see it die.
- The zygote reaps its children and sends each one's exit status on that request's connection
  (so ``poll()`` returns a real return code and nbclient raises ``DeadKernelError`` as before).
  If the worker goes away first, the zygote kills the kernel's process group.
- Lifetimes: the zygote has ``PR_SET_PDEATHSIG=SIGKILL`` towards the run's process and checks its
  parent every second; every kernel has ``PR_SET_PDEATHSIG=SIGKILL`` towards the zygote. Killing
  the run (even with SIGKILL) therefore takes the zygote and every forked kernel with it.
- Safety of ``fork()``: no thread may run in the zygote when it forks, and no zmq context may
  exist. numpy's OpenBLAS and pyarrow's jemalloc start threads at import, so the zygote runs with
  ``OPENBLAS_NUM_THREADS=1`` and jemalloc's background thread off; each child restores
  OpenBLAS' thread count to what a fresh interpreter would use under the job's environment.
  The zygote checks ``threading.active_count()`` and ``/proc/self/task`` before every fork and
  refuses (the worker falls back) rather than fork with a thread running.
- No state leaks between jobs: the zygote starts with credentials and live-source variables
  removed from its environment, registers no secrets, and each child re-seeds numpy's global
  random state, clears :mod:`vcci_nb.redact`'s registry and recomputes Plotly's default renderer
  for its own environment (Plotly decides it at import, which happened outside a kernel).
- Fallback: if the zygote did not start, died, refuses, or the kernel is not this interpreter's
  ``ipykernel_launcher`` (another kernel name, a kernelspec with another argv or its own env),
  the provisioner starts the kernel the usual way (Popen). That is logged at debug level.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import glob
import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from vcci_nb.errors import ZygoteUnavailable
from vcci_nb.runenv import ZYGOTE_RESTORE

log = logging.getLogger(__name__)

#: Imported once in the zygote; every forked kernel finds them in ``sys.modules``.
ZYGOTE_MODULES: tuple[str, ...] = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "vcci_nb.runner.warm",  # pandas, Plotly (+ its first-figure warm-up) and vcci_nb
)
#: Imported after the zygote is ready, while it waits for requests (kept off the first kernel's
#: critical path; a kernel forked before they are in imports what it needs itself).
ZYGOTE_LATER: tuple[str, ...] = (
    "vcci_nb.charts",
    "vcci_nb.analysis.findings",
    "vcci_nb.analysis.severity",
    "vcci_nb.evidence",
    "vcci_nb.notebook",
    "vcci_nb.widgets",
    "vcci_nb.sources.http",
    "vcci_nb.sources.kube",
    "vcci_nb.sources.postgres",
    "vcci_nb.sources.prometheus",
    "vcci_nb.sources.rabbitmq",
    "vcci_nb.sources.redis",
)
SOCKET_NAME = "zygote.sock"
#: How long a worker waits for the zygote to finish its imports before starting a kernel itself.
READY_WAIT = 30.0
_MAX_MESSAGE = 1 << 20
_PR_SET_PDEATHSIG = 1
#: Names removed from the zygote's own environment (kernels get their job's environment instead).
_SECRET_ENV = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|APIKEY|PRIVATE_KEY|CREDENTIALS?|_URL)(_FILE)?$", re.I)
_LIVE_ENV = {"KUBECONFIG", "VCCI_GIT_REPO", "DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"}
_ZYGOTE_ONLY_ENV = {"OPENBLAS_NUM_THREADS": "1", "JE_ARROW_MALLOC_CONF": "background_thread:false"}


# ``-c``, not ``-m``: running this module as __main__ would import it twice (vcci_nb.runner imports it).
_BOOT = "import sys; from vcci_nb.runner.forkserver import main; sys.exit(main(sys.argv[1:]))"


# ------------------------------------------------------------------------------------------
# the run's side: start and stop the zygote


@dataclass(frozen=True)
class ZygoteInfo:
    """What a worker needs to ask the zygote for a kernel (picklable, travels in each Job)."""

    socket: str
    pid: int
    #: The kernel command up to and including ``ipykernel_launcher``; only such commands are forked.
    prefix: tuple[str, ...]
    #: ``PYTHON*`` variables the zygote's interpreter started with (they cannot change after start).
    python_env: tuple[tuple[str, str], ...]

    def accepts(self, cmd: list[str]) -> bool:
        """True if ``cmd`` is this interpreter's ipykernel with only kernel arguments after it."""
        n = len(self.prefix)
        return len(cmd) > n and tuple(cmd[:n]) == self.prefix


class Zygote:
    """Handle on a running zygote, owned by the run's parent process."""

    def __init__(self, proc: subprocess.Popen[bytes], info: ZygoteInfo, log_path: Path) -> None:
        self.proc = proc
        self.info = info
        self.log_path = log_path

    def stop(self) -> None:
        """Kill the zygote (its kernels die with it: PDEATHSIG) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip()
            if text:
                log.debug("kernel fork server said:\n%s", text)


def _python_env(env: dict[str, str] | os._Environ[str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith("PYTHON") and k != "PYTHONEXECUTABLE"))


def kernel_prefix(kernel_name: str = "python3") -> tuple[str, ...] | None:
    """The kernelspec's command up to ``ipykernel_launcher`` if a zygote can stand in for it.

    That is: the kernel runs *this* interpreter (``sys.executable``) with only interpreter options
    before ``-m ipykernel_launcher``, only ``-f {connection_file}`` after it, and no env stanza.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except Exception as exc:
        log.debug("no kernelspec %r for the fork server: %s", kernel_name, exc)
        return None
    argv = list(spec.argv)
    if spec.env or not argv or "-m" not in argv:
        return None
    if argv[0] in ("python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        argv[0] = sys.executable  # jupyter_client's format_kernel_cmd does the same
    if not _same_interpreter(argv[0], sys.executable):
        return None
    m = argv.index("-m")
    opts = argv[1:m]
    if argv[m + 1 : m + 2] != ["ipykernel_launcher"] or argv[m + 2 :] != ["-f", "{connection_file}"]:
        return None
    if any(not o.startswith("-X") and o not in ("-E", "-s", "-B", "-O", "-OO", "-u") for o in opts):
        return None
    return (argv[0], *opts, "-m", "ipykernel_launcher")


def _same_interpreter(exe: str, ours: str) -> bool:
    """``exe`` is this interpreter: the same file, in the same folder (a venv is known by its folder)."""
    if not os.path.isabs(exe):
        return False
    a, b = os.path.abspath(exe), os.path.abspath(ours)
    try:
        return os.path.dirname(a) == os.path.dirname(b) and os.path.samefile(a, b)
    except OSError:
        return False


def start(sockets_dir: str, kernel_name: str = "python3") -> Zygote | None:
    """Spawn the zygote for one run (it gets ready in the background); None if it cannot serve."""
    prefix = kernel_prefix(kernel_name)
    if prefix is None:
        log.debug("kernelspec %r is not this interpreter's ipykernel: no fork server", kernel_name)
        return None
    env = {
        k: v
        for k, v in os.environ.items()
        if not _SECRET_ENV.search(k) and not k.startswith(("VCCI_NB_", "PG", "JPY_")) and k not in _LIVE_ENV
    }
    env.update({k: v for k, v in _ZYGOTE_ONLY_ENV.items() if k not in env})
    env[ZYGOTE_RESTORE] = ",".join(k for k in _ZYGOTE_ONLY_ENV if k not in os.environ)
    path = os.path.join(sockets_dir, SOCKET_NAME)
    log_path = Path(sockets_dir) / "zygote.log"
    opts = list(prefix[1:-2])
    try:
        with open(log_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, *opts, "-c", _BOOT, path, str(os.getpid())],
                env=env,
                cwd=sockets_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
    except OSError as exc:
        log.debug("could not start the kernel fork server: %s", exc)
        return None
    return Zygote(proc, ZygoteInfo(path, proc.pid, prefix, _python_env(env)), log_path)


# ------------------------------------------------------------------------------------------
# the worker's side: ask for a kernel, watch it


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (our zygote is not our child: no waitpid)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _fileno(stream: Any, default: int) -> int | None:
    if stream is None:
        return default
    if isinstance(stream, int):
        return stream if stream >= 0 else None  # PIPE / DEVNULL / STDOUT: Popen's business
    with contextlib.suppress(Exception):
        return int(stream.fileno())
    return None


class ForkedKernel:
    """A kernel process forked by the zygote: its pid, a pidfd, and the connection its exit comes on."""

    def __init__(self, conn: socket.socket, pid: int, pidfd: int | None) -> None:
        self.conn = conn
        self.pid = pid
        self.pidfd = pidfd
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def _take_exit(self, timeout: float) -> bool:
        # The worker's watchdog thread polls too: one reader at a time, and never a blocking recv.
        with self._lock:
            if self.returncode is not None:
                return True
            ready, _, _ = select.select([self.conn], [], [], timeout)
            if not ready:
                return False
            try:
                data = self.conn.recv(_MAX_MESSAGE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return False
            except OSError:
                data = b""
            if data:
                self.returncode = int(json.loads(data).get("exit", -signal.SIGKILL))
            else:  # the zygote died; its kernels die with it (PDEATHSIG)
                self.returncode = -signal.SIGKILL
            return True

    def poll(self) -> int | None:
        """The return code if the kernel has exited (negative: killed by that signal), else None."""
        if self.returncode is not None:
            return self.returncode
        if self._take_exit(0):
            return self.returncode
        if self.pidfd is not None:
            exited, _, _ = select.select([self.pidfd], [], [], 0)
            if exited and not self._take_exit(2.0):
                self.returncode = -signal.SIGKILL  # dead, but the zygote is too slow to say how
        return self.returncode

    def signal(self, signum: int, group: bool = True) -> None:
        """Signal the kernel's process group (like Popen kernels), or the kernel alone."""
        if self.poll() is not None:
            return
        if group:
            try:
                os.killpg(self.pid, signum)
                return
            except OSError:
                pass
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None


def request_kernel(
    info: ZygoteInfo,
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: str,
    stdout: int = 1,
    stderr: int = 2,
    wait: float = READY_WAIT,
) -> ForkedKernel:
    """Ask the zygote to fork a kernel running ``cmd``; ZygoteUnavailable if it cannot."""
    if not info.accepts(cmd):
        raise ZygoteUnavailable(f"{cmd[:4]} is not this interpreter's ipykernel")
    if _python_env(env) != info.python_env:
        raise ZygoteUnavailable("the kernel's PYTHON* variables differ from the fork server's")
    deadline = time.monotonic() + wait
    while not os.path.exists(info.socket):
        if not _alive(info.pid):
            raise ZygoteUnavailable("the fork server is not running")
        if time.monotonic() > deadline:
            raise ZygoteUnavailable(f"the fork server was not ready after {wait:g} s")
        time.sleep(0.02)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    devnull = os.open(os.devnull, os.O_RDONLY)  # a Popen kernel's stdin is a closed pipe: EOF either way
    try:
        conn.connect(info.socket)
        payload = json.dumps({"argv": cmd[len(info.prefix) :], "env": env, "cwd": cwd}).encode()
        socket.send_fds(conn, [payload], [devnull, stdout, stderr])
        ready, _, _ = select.select([conn], [], [], 30.0)
        if not ready:
            raise ZygoteUnavailable("the fork server did not answer within 30 s")
        data, fds, _, _ = socket.recv_fds(conn, _MAX_MESSAGE, 1)
        if not data:
            raise ZygoteUnavailable("the fork server closed the connection")
        answer = json.loads(data)
        if "error" in answer:
            for fd in fds:
                os.close(fd)
            raise ZygoteUnavailable(str(answer["error"]))
        return ForkedKernel(conn, int(answer["pid"]), fds[0] if fds else None)
    except ZygoteUnavailable:
        conn.close()
        raise
    except (OSError, ValueError) as exc:
        conn.close()
        raise ZygoteUnavailable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        os.close(devnull)


class ForkProvisioner(LocalProvisioner):
    """jupyter_client provisioner: kernels forked by the run's zygote, else LocalProvisioner's Popen.

    LocalProvisioner's ``pre_launch`` (connection file, kernel command, environment) is reused
    unchanged; launch, poll, wait, signals and cleanup go to the forked kernel when there is one.
    """

    zygote: ZygoteInfo | None = None
    forked: ForkedKernel | None = None

    @property
    def has_process(self) -> bool:
        return self.forked is not None or bool(super().has_process)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        info = self.zygote
        if info is not None:
            out, err = _fileno(kwargs.get("stdout"), 1), _fileno(kwargs.get("stderr"), 2)
            env = dict(kwargs.get("env") or os.environ)
            if not kwargs.get("independent"):
                env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's launch_kernel sets it
            cwd = str(kwargs.get("cwd") or os.getcwd())
            try:
                if out is None or err is None or kwargs.get("stdin") is not None:
                    raise ZygoteUnavailable("custom stdio redirection")
                self.forked = request_kernel(info, cmd, env=env, cwd=cwd, stdout=out, stderr=err)
            except ZygoteUnavailable as exc:
                log.debug("kernel started without the fork server (%s): %s", exc, " ".join(cmd[:4]))
            else:
                self.pid = self.pgid = self.forked.pid
                self.cwd = cwd
                return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)

    async def poll(self) -> int | None:
        if self.forked is not None:
            return self.forked.poll()
        return await super().poll()

    async def wait(self) -> int | None:
        if self.forked is None:
            return await super().wait()
        import asyncio

        while (code := self.forked.poll()) is None:
            await asyncio.sleep(0.05)
        self.forked.close()
        self.forked = None
        return code

    async def send_signal(self, signum: int) -> None:
        if self.forked is not None:
            self.forked.signal(signum)
            return
        await super().send_signal(signum)

    async def kill(self, restart: bool = False) -> None:
        if self.forked is not None:
            self.forked.signal(signal.SIGKILL)
            return
        await super().kill(restart=restart)

    async def terminate(self, restart: bool = False) -> None:
        if self.forked is not None:
            self.forked.signal(signal.SIGTERM)
            return
        await super().terminate(restart=restart)

    async def cleanup(self, restart: bool = False) -> None:
        if self.forked is not None and self.forked.poll() is not None:
            self.forked.close()
            self.forked = None
        await super().cleanup(restart=restart)

    async def get_provisioner_info(self) -> dict[str, Any]:
        provisioner_info: dict[str, Any] = await super().get_provisioner_info()
        provisioner_info["forked"] = self.forked is not None
        return provisioner_info


# ------------------------------------------------------------------------------------------
# the zygote


def set_pdeathsig(signum: int = signal.SIGKILL) -> None:
    """Have the kernel send ``signum`` to this process when its parent (thread) dies (Linux prctl)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _fork_safe() -> str | None:
    """Why forking now would be unsafe (a thread or a zmq context exists), or None."""
    if threading.active_count() != 1 or _threads() != 1:
        return f"{threading.active_count()} Python threads, {_threads()} OS threads"
    zmq = sys.modules.get("zmq")
    if zmq is not None and getattr(zmq.Context, "_instance", None) is not None:
        return "a zmq context exists"
    return None


#: Signal dispositions this interpreter started with, restored in every kernel.
_STARTUP_SIGNALS = {
    s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE, signal.SIGHUP)
}


class _Server:
    def __init__(self, path: str, parent: int) -> None:
        self.path = path
        self.parent = parent
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.conns: dict[socket.socket, int | None] = {}  # connection -> its kernel's pid (None: no request yet)
        self.kernels: dict[int, tuple[socket.socket | None, int | None]] = {}  # pid -> (connection, pidfd)
        self.path0 = sys.path[0] if sys.path else None
        self.restore = [k for k in os.environ.get(ZYGOTE_RESTORE, "").split(",") if k]

    def serve(self) -> None:
        tmp = f"{self.path}.{os.getpid()}.tmp"
        self.listener.bind(tmp)
        self.listener.listen(16)
        os.replace(tmp, self.path)  # ready
        later = list(ZYGOTE_LATER)
        while True:
            if os.getppid() != self.parent:
                return
            pidfds = {fd: pid for pid, (_, fd) in self.kernels.items() if fd is not None}
            watched: list[Any] = [self.listener, *self.conns, *pidfds]
            ready, _, _ = select.select(watched, [], [], 0 if later else 1.0)
            if not ready and later:
                _import(later.pop(0))
                if not later:
                    _freeze()
                continue
            for item in ready:
                if item is self.listener:
                    conn, _ = self.listener.accept()
                    self.conns[conn] = None
                elif isinstance(item, socket.socket):
                    self._readable(item)
            self._reap()

    def _readable(self, conn: socket.socket) -> None:
        pid = self.conns.get(conn)
        if pid is not None:  # a kernel's worker: anything but EOF is unexpected; EOF means it went away
            with contextlib.suppress(OSError):
                if conn.recv(_MAX_MESSAGE):
                    return
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            self._drop(conn)
            pidfd = self.kernels.get(pid, (None, None))[1]
            self.kernels[pid] = (None, pidfd)
            return
        try:
            data, fds, _, _ = socket.recv_fds(conn, _MAX_MESSAGE, 3)
        except OSError:
            data, fds = b"", []
        if not data or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            self._drop(conn)
            return
        try:
            self._fork(conn, json.loads(data), fds)
        finally:
            for fd in fds:
                os.close(fd)

    def _fork(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        unsafe = _fork_safe()
        if unsafe:
            with contextlib.suppress(OSError):
                conn.send(json.dumps({"error": f"cannot fork safely: {unsafe}"}).encode())
            self._drop(conn)
            print(f"fork server: refusing to fork: {unsafe}", file=sys.stderr, flush=True)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(request, fds)  # never returns
        pidfd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            pidfd = os.pidfd_open(pid)
        self.conns[conn] = pid
        self.kernels[pid] = (conn, pidfd)
        try:
            socket.send_fds(conn, [json.dumps({"pid": pid}).encode()], [pidfd] if pidfd is not None else [])
        except OSError:  # the worker is gone already
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def _drop(self, conn: socket.socket) -> None:
        self.conns.pop(conn, None)
        with contextlib.suppress(OSError):
            conn.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn, pidfd = self.kernels.pop(pid, (None, None))
            if pidfd is not None:
                os.close(pidfd)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
                self._drop(conn)

    # -- in the forked child -------------------------------------------------------------

    def _child(self, request: dict[str, Any], fds: list[int]) -> None:
        code = 1
        try:
            zygote = os.getppid()
            self.listener.close()
            for conn in list(self.conns):
                conn.close()
            for _, pidfd in self.kernels.values():
                if pidfd is not None:
                    with contextlib.suppress(OSError):
                        os.close(pidfd)
            os.setsid()  # own session and process group, like Popen(start_new_session=True)
            for signum, handler in _STARTUP_SIGNALS.items():
                signal.signal(signum, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            set_pdeathsig()
            if os.getppid() != zygote:
                os._exit(1)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            if self.path0 is not None and sys.path and sys.path[0] == self.path0:
                del sys.path[0]  # as ipykernel_launcher does with the cwd entry (IPython adds its own)
            _refresh_env_defaults()
            argv = [str(a) for a in request["argv"]]
            sys.argv = [_launcher_path(), *argv]
            _reset_state(self.restore)
            from ipykernel.kernelapp import IPKernelApp

            IPKernelApp.launch_instance(argv=argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                import atexit

                atexit._run_exitfuncs()
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def _launcher_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("ipykernel_launcher")
    return spec.origin if spec is not None and spec.origin else "ipykernel_launcher"


#: Trait defaults ipykernel reads from the environment when it is *imported* (in the zygote).
_ENV_TRAITS = (("parent_handle", "JPY_PARENT_PID"), ("interrupt", "JPY_INTERRUPT_EVENT"))


def _refresh_env_defaults() -> None:
    """Recompute the trait defaults that ipykernel took from the zygote's environment at import."""
    from ipykernel.kernelapp import IPKernelApp

    for trait_name, var in _ENV_TRAITS:
        try:
            value = int(os.environ.get(var) or 0)
        except ValueError:
            value = 0
        trait = IPKernelApp.class_traits().get(trait_name)
        if trait is None:
            continue
        trait.default_value = value
        for klass in IPKernelApp.__mro__:
            cached = klass.__dict__.get("_static_immutable_initial_values")
            if isinstance(cached, dict) and trait_name in cached:
                cached[trait_name] = value


def _reset_state(restore: list[str]) -> None:
    """Make the forked kernel what a fresh interpreter would be under the job's environment."""
    redact = sys.modules.get("vcci_nb.redact")
    if redact is not None:
        with redact._lock:
            redact._secrets.clear()
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        np_random.seed()  # otherwise every forked kernel draws the same "random" numbers
    if "OPENBLAS_NUM_THREADS" in restore:
        _restore_blas_threads()
    pio = sys.modules.get("plotly.io")
    if pio is not None:
        with contextlib.suppress(Exception):
            pio.renderers.default = plotly_kernel_renderer(os.environ)


_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")


def _restore_blas_threads() -> None:
    """OpenBLAS ran single-threaded in the zygote; give the kernel what a fresh process gets."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not isinstance(numpy.__file__, str):
        return
    wanted = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    try:
        n = int(wanted) if wanted else len(os.sched_getaffinity(0))
    except ValueError:
        return
    if n <= 1:
        return
    for lib in glob.glob(os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs", "*openblas*")):
        with contextlib.suppress(OSError, AttributeError):
            handle = ctypes.CDLL(lib)
            for name in _BLAS_SETTERS:
                if hasattr(handle, name):
                    getattr(handle, name)(ctypes.c_int(n))
                    return


def plotly_kernel_renderer(env: Any) -> str:
    """Plotly's default renderer as ``plotly.io._renderers`` picks it inside an ipykernel shell.

    Plotly decides at import time; the zygote imported it outside any shell (where it picks
    ``browser``), so each kernel sets what a kernel importing Plotly itself would have got.
    """
    if env.get("PLOTLY_RENDERER"):
        return str(env["PLOTLY_RENDERER"])
    for var, name in (("COLAB_NOTEBOOK_ID", "colab"),):
        if var in env:
            return name
    if os.path.exists("/kaggle/input"):
        return "kaggle"
    for var, name in (
        ("AZURE_NOTEBOOKS_HOST", "azure"),
        ("VSCODE_PID", "vscode"),
        ("NTERACT_EXE", "nteract"),
        ("COCALC_PROJECT_ID", "cocalc"),
        ("DATABRICKS_RUNTIME_VERSION", "databricks"),
    ):
        if var in env:
            return name
    return "plotly_mimetype"


def _import(name: str) -> None:
    import importlib

    try:
        importlib.import_module(name)
    except Exception as exc:  # the notebook's own import will report it
        print(f"fork server: import {name} failed: {exc}", file=sys.stderr, flush=True)


def _freeze() -> None:
    """Keep what is imported so far out of the kernels' garbage collections (pages stay shared)."""
    import gc

    gc.freeze()


def main(argv: list[str]) -> int:
    """The zygote's entry point: ``SOCKET PARENT_PID`` (see :data:`_BOOT`).

    The run's parent kills the zygote with SIGKILL when it is done (and removes the sockets
    folder). If the parent dies first, PDEATHSIG sends SIGTERM: the zygote then removes the
    run's sockets folder itself (nobody else will) and exits; its kernels die with it.
    """
    path, parent = argv[0], int(argv[1])
    set_pdeathsig(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if os.getppid() != parent:
            return 1
        return _boot_and_serve(path, parent)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if _TERMINATED:  # PDEATHSIG arrives before the kernel reparents us: wait for that
            deadline = time.monotonic() + 1.0
            while os.getppid() == parent and time.monotonic() < deadline:
                time.sleep(0.01)
        if os.getppid() != parent:
            import shutil

            shutil.rmtree(os.path.dirname(path), ignore_errors=True)


_TERMINATED: list[int] = []


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    _TERMINATED.append(signum)
    raise SystemExit(0)


def _boot_and_serve(path: str, parent: int) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle; kernels get theirs back
    for name in ZYGOTE_MODULES:
        _import(name)
    pio = sys.modules.get("plotly.io")
    if pio is not None:
        # warm.py imported Plotly's renderers here, outside a kernel: that default ("browser") is
        # not what kernels get; each child sets its own (_reset_state), this sets the likely one.
        with contextlib.suppress(Exception):
            pio.renderers.default = plotly_kernel_renderer(os.environ)
    _freeze()
    unsafe = _fork_safe()
    if unsafe:
        print(f"fork server: not serving, forking would be unsafe: {unsafe}", file=sys.stderr, flush=True)
        return 3
    try:
        _Server(path, parent).serve()
    except OSError as exc:
        if exc.errno != errno.EINTR:
            print(f"fork server stopped: {exc}", file=sys.stderr, flush=True)
            return 1
    return 0


__all__ = [
    "READY_WAIT",
    "ZYGOTE_LATER",
    "ZYGOTE_MODULES",
    "ForkProvisioner",
    "ForkedKernel",
    "Zygote",
    "ZygoteInfo",
    "ZygoteUnavailable",
    "kernel_prefix",
    "plotly_kernel_renderer",
    "request_kernel",
    "set_pdeathsig",
    "start",
]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

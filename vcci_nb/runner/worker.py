"""One worker process: executes notebooks with papermill, one at a time, each in a fresh kernel.

Why it looks like this:

- **Processes, never threads.** papermill changes the process-wide working directory, so the
  runner forks one worker per ``--jobs`` slot; each worker runs one notebook at a time.
- **Pre-started kernels.** papermill's fixed cost is mostly kernel start (~0.5 s) and graceful
  shutdown (~0.4 s). A worker starts the kernel for its *next* notebook (with that notebook's
  environment and working directory) while the current one runs, hands it to papermill through
  nbclient's ``km`` argument, and kills used kernels immediately instead of waiting for a
  graceful shutdown (nothing in a finished kernel needs saving: the notebook holds the outputs).
  The kernel imports pandas, Plotly and vcci_nb while it boots (:mod:`vcci_nb.runner.warm`).
- **No save at every cell** (``request_save_on_cell_execute=False``): that save dominated runs with
  large outputs. Instead a cheap checkpoint after a cell completes, at most every
  ``CHECKPOINT_SECONDS`` and never more than ~10 % of the time, keeps a partial notebook on disk
  if the whole worker dies; and when the kernel dies or a cell fails, the live notebook object
  (kept by our papermill engine) is written out with the error visible.
- **Redaction at the edge.** Every notebook and HTML written goes through :mod:`vcci_nb.redact`,
  and papermill's record of the parameters (the injected cell and
  ``metadata.papermill.parameters``) is scrubbed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_nb.analysis.model import FINDING_MIME
from vcci_nb.record import _redact_tree, atomic_write_text, utc_iso
from vcci_nb.redact import MASK
from vcci_nb.runner.forkserver import ZygoteInfo

log = logging.getLogger(__name__)

ENGINE_NAME = "vcci-nb"
CHECKPOINT_SECONDS = 10.0
#: Seconds between interrupting a timed-out kernel and killing it.
INTERRUPT_GRACE = 5.0
_SECRET_NAME_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential", "private_key")


@dataclass
class Job:
    """Everything a worker needs to run one notebook (picklable)."""

    index: int
    name: str  # the notebook's own name (name_2 when run again), the stem of the files in the record folder
    source: str  # the notebook to run
    output: str  # record_folder/name.ipynb
    html: str  # record_folder/name.html
    record_folder: str
    parameters: dict[str, Any]
    env: dict[str, str]
    unset_env: list[str]
    cwd: str
    timeout: float
    kernel_name: str = "python3"
    warm: bool = True
    export_html: bool = True
    sockets_dir: str | None = None  # per-run folder for kernel IPC sockets; the parent removes it
    zygote: ZygoteInfo | None = None  # the run's kernel fork server, if it has one
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# papermill engine that keeps a handle on the live notebook


class _Live:
    nb: Any = None
    kc: Any = None  # a kernel client already connected and ready (Kernel.wait_ready), for nbclient


def _register_engine() -> None:
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    class VcciEngine(NBClientEngine):  # type: ignore[misc]
        """papermill's nbclient engine, plus: keep the live notebook and close our kernel client."""

        @classmethod
        def execute_managed_notebook(  # type: ignore[no-untyped-def]
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            _Live.nb = nb_man.nb
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logging.getLogger("papermill"),
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = PapermillNotebookClient(nb_man, **final_kwargs)
            if _Live.kc is not None:
                # nbclient skips its own connect-and-wait (~0.2 s: see Kernel.wait_ready) when given one.
                client.kc, _Live.kc = _Live.kc, None
                client.kc.allow_stdin = False
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    with contextlib.suppress(Exception):
                        client.kc.stop_channels()

    papermill_engines.register(ENGINE_NAME, VcciEngine)


def preload() -> None:
    """Import the heavy libraries (and build the HTML exporter) once, before workers fork."""
    import jupyter_client.manager  # noqa: F401
    import nbformat  # noqa: F401
    import papermill  # noqa: F401

    from vcci_nb.runner import html

    _register_engine()
    # Build the exporter and compile its templates and highlighter regexes once, before the fork.
    import nbformat as nbf

    warm_nb = nbf.v4.new_notebook()  # type: ignore[no-untyped-call]
    warm_nb.cells = [nbf.v4.new_code_cell("x = 1  # warm")]  # type: ignore[no-untyped-call]
    html._exporter().from_notebook_node(warm_nb)


# ------------------------------------------------------------------------------------------
# kernels


@functools.cache
def _kernel_manager_class() -> Any:
    """AsyncKernelManager whose kernels come from the run's fork server when it can give them."""
    from jupyter_client.manager import AsyncKernelManager

    from vcci_nb.runner.forkserver import ForkProvisioner

    class ZygoteKernelManager(AsyncKernelManager):
        zygote: ZygoteInfo | None = None

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            if self.provisioner is None and self.zygote is not None:
                import uuid

                self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
                provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
                provisioner.zygote = self.zygote
                self.provisioner = provisioner
            return await super()._async_pre_start_kernel(**kw)

        async def _async_wait(self, pollinterval: float = 0.005) -> None:
            # After a kill, notice the exit within milliseconds (jupyter_client polls every 0.1 s).
            await super()._async_wait(pollinterval=pollinterval)

    return ZygoteKernelManager


async def _until_ready(kc: Any, km: Any, timeout: float) -> None:
    """IOPub delivers a message (the kernel is subscribed to us), then shell answers kernel_info."""
    from queue import Empty

    deadline = time.monotonic() + timeout
    while True:
        try:
            await kc.iopub_channel.get_msg(timeout=0.5)
            break
        except Empty:
            if not await km.is_alive():
                raise RuntimeError("the kernel died before it was ready") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel was not ready after {timeout:g} s") from None
            kc.kernel_info()  # a kernel without iopub_welcome still publishes a status for this
    msg_id = kc.kernel_info()
    while True:
        reply = await kc.shell_channel.get_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["msg_type"] == "kernel_info_reply":
            kc._handle_kernel_info_reply(reply)
            if reply["parent_header"].get("msg_id") == msg_id:
                return


class Kernel:
    """A kernel started ahead of its notebook, with that notebook's env and working directory.

    With a fork server (``job.zygote``) the kernel is forked from it; otherwise, or if the fork
    server cannot serve this kernel, it is started with Popen as jupyter_client always does.
    """

    def __init__(self, job: Job) -> None:
        from jupyter_core.utils import run_sync

        # IPC sockets: local only (no TCP ports open to other users), and no "unencrypted TCP" warning.
        self.sockets = tempfile.mkdtemp(prefix="vcci-k-", dir=job.sockets_dir)
        self.km = _kernel_manager_class()(kernel_name=job.kernel_name, transport="ipc", ip=f"{self.sockets}/k")
        self.km.zygote = job.zygote if job.warm else None
        self.kc: Any = None
        env = dict(os.environ)
        for name in job.unset_env:
            env.pop(name, None)
        env.update(job.env)
        extra = (
            ["--IPKernelApp.exec_lines=import vcci_nb.runner.warm as _vcci_warm; del _vcci_warm"] if job.warm else []
        )
        run_sync(self.km.start_kernel)(env=env, cwd=job.cwd, extra_arguments=extra)

    @property
    def forked(self) -> bool:
        """True if the fork server gave us this kernel."""
        return getattr(self.km.provisioner, "forked", None) is not None

    def signal(self, signum: int) -> None:
        """Signal the kernel process (from any thread); a kernel that is gone (or reaped) is ignored."""
        provisioner = self.km.provisioner
        if provisioner is None or not provisioner.has_process:
            return
        with contextlib.suppress(OSError, ValueError):  # ValueError: closed under us by kill()
            forked = getattr(provisioner, "forked", None)
            if forked is not None:
                forked.signal(signum, group=False)
                return
            process = getattr(provisioner, "process", None)
            if process is not None:
                process.send_signal(signum)  # Popen: never signals a reaped (maybe reused) pid

    @property
    def pid(self) -> int | None:
        pid = getattr(self.km.provisioner, "pid", None)
        return pid if isinstance(pid, int) else None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the kernel answers, and keep that connected client for papermill.

        jupyter_client's ``wait_for_ready`` costs ~0.2 s even on an idle, ready kernel: it reads
        IOPub only after the shell reply, and zmq.asyncio misses the messages that arrived
        meanwhile, so its 0.2 s IOPub check times out once. Waiting on IOPub first (for the
        kernel's ``iopub_welcome``, or the status of a ``kernel_info`` nudge) takes milliseconds.
        Errors are left for nbclient to report properly.
        """
        from jupyter_core.utils import run_sync

        if self.kc is not None:
            return
        kc = self.km.client()
        try:
            kc.start_channels()
            run_sync(_until_ready)(kc, self.km, timeout)
        except Exception as exc:
            log.debug("kernel not ready: %s", exc)
            with contextlib.suppress(Exception):
                kc.stop_channels()
            return
        self.kc = kc

    def take_client(self) -> Any:
        """The ready client from :meth:`wait_ready` (once), or None."""
        kc, self.kc = self.kc, None
        return kc

    def kill(self) -> None:
        """Kill at once: a finished kernel holds nothing we need (the notebook has the outputs)."""
        from jupyter_core.utils import run_sync

        kc = self.take_client()
        if kc is not None:
            with contextlib.suppress(Exception):
                kc.stop_channels()

        with contextlib.suppress(Exception):
            run_sync(self.km.shutdown_kernel)(now=True)
        shutil.rmtree(self.sockets, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# what gets written


def looks_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_NAME_WORDS)


def scrub_parameters(nb: Any) -> None:
    """Mask secret-looking parameters in both places papermill stores them, then redact both."""
    from papermill.translators import PythonTranslator

    params = ((nb.get("metadata") or {}).get("papermill") or {}).get("parameters")
    if isinstance(params, dict):
        for name in list(params):
            if looks_secret(name):
                params[name] = MASK
        nb["metadata"]["papermill"]["parameters"] = _redact_tree(params)
    for cell in nb.get("cells", []):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if "injected-parameters" in tags and isinstance(params, dict):
            lines = ["# Parameters"] + [
                PythonTranslator.assign(name, PythonTranslator.translate(value))
                for name, value in nb["metadata"]["papermill"]["parameters"].items()
            ]
            cell["source"] = "\n".join(lines) + "\n"


def collect_findings(nb: Any, notebook: str) -> list[dict[str, Any]]:
    """Every finding the notebook emitted as a ``application/vnd.vcci-nb.finding+json`` output."""
    found: list[dict[str, Any]] = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            if FINDING_MIME not in data:
                continue
            payload = data[FINDING_MIME]
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except json.JSONDecodeError:
                    continue
            items = payload if isinstance(payload, list) else [payload]
            for item in items:
                if isinstance(item, dict) and {"key", "severity", "summary"} <= item.keys():
                    finding = dict(item)
                    finding["notebook"] = notebook
                    found.append(finding)
    return found


def _banner(nb: Any, text: str) -> None:
    import html

    import nbformat

    message = f'<span style="color:red;font-weight:bold">This notebook did not finish: {html.escape(text)}</span>'
    cell = nbformat.v4.new_markdown_cell(message)  # type: ignore[no-untyped-call]
    cell.metadata["tags"] = ["vcci-nb-error"]
    nb.cells.insert(0, cell)


def write_notebook(nb: Any, path: Path) -> Any:
    """Scrub, redact and atomically write ``nb``; returns the redacted notebook that was written."""
    import nbformat

    scrub_parameters(nb)
    clean = nbformat.from_dict(_redact_tree(nb))  # type: ignore[no-untyped-call]
    atomic_write_text(path, nbformat.writes(clean), what="executed notebook")  # type: ignore[no-untyped-call]
    return clean


class _Checkpointer:
    """Saves the partial notebook after a cell, rarely and cheaply (see module docstring)."""

    def __init__(self, path: Path, every: float = CHECKPOINT_SECONDS) -> None:
        self.path = path
        self.every = every
        self.last = time.monotonic()
        self.spent = 0.0
        self.started = self.last

    def __call__(self, **_: Any) -> None:
        now = time.monotonic()
        if now - self.last < self.every or self.spent > 0.1 * (now - self.started):
            return
        nb = _Live.nb
        if nb is None:
            return
        import copy

        try:
            write_notebook(copy.deepcopy(nb), self.path)
        except Exception as exc:  # a checkpoint must never break the run
            log.warning("checkpoint of %s failed: %s", self.path.name, exc)
        done = time.monotonic()
        self.spent += done - now
        self.last = done


# ------------------------------------------------------------------------------------------
# running one notebook


def _failed_cell(nb: Any) -> int | None:
    for index, cell in enumerate(nb.get("cells", [])):
        status = ((cell.get("metadata") or {}).get("papermill") or {}).get("status")
        if status == "running":
            return index
    return None


def run_one(job: Job, kernel: Kernel | None, events: Any, waited: float | None = None) -> dict[str, Any]:
    """Run ``job`` to completion or failure; always writes the (partial) notebook. Returns the result event."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    started = time.monotonic()
    events.put({"type": "started", "index": job.index, "at": utc_iso(), "pid": os.getpid()})
    output = Path(job.output)
    timed_out = threading.Event()
    status, error = "succeeded", None
    #: Where the failure was and what was raised, as papermill keeps it (errors.NotebookFailed).
    failure: dict[str, Any] | None = None
    _Live.nb = None
    if kernel is None:
        try:
            kernel = Kernel(job)
        except Exception as exc:
            return _finish(job, None, "failed", f"Could not start a {job.kernel_name} kernel: {exc}", started)
    running = kernel
    timing: dict[str, float] = {"forked": float(kernel.forked)}
    if waited is not None:
        timing["kernel_wait"] = round(waited, 3)

    def on_timeout() -> None:
        timed_out.set()
        running.signal(signal.SIGINT)
        time.sleep(INTERRUPT_GRACE)
        running.signal(signal.SIGKILL)

    watchdog = threading.Timer(job.timeout, on_timeout)
    watchdog.daemon = True
    watchdog.start()
    mark = time.monotonic()
    _Live.kc = kernel.take_client()
    try:
        pm.execute_notebook(
            job.source,
            None,
            parameters=job.parameters,
            engine_name=ENGINE_NAME,
            request_save_on_cell_execute=False,
            progress_bar=False,
            kernel_name=job.kernel_name,
            km=kernel.km,
            execution_timeout=job.timeout,
            on_cell_executed=_Checkpointer(output),
        )
    except PapermillExecutionError as exc:
        status = "failed"
        error = f"{exc.ename}: {exc.evalue} (cell [{exc.exec_count}])"
        failure = {"cell_index": exc.cell_index, "exec_count": exc.exec_count, "ename": exc.ename,
                   "evalue": str(exc.evalue)}  # fmt: skip
    except Exception as exc:
        status = "failed"
        cell = _failed_cell(_Live.nb) if _Live.nb is not None else None
        where = f" in cell {cell}" if cell is not None else ""
        name = type(exc).__name__
        failure = {"cell_index": cell, "exec_count": None, "ename": name, "evalue": str(exc)}
        if name == "DeadKernelError" or "Kernel died" in str(exc):
            error = f"The kernel died{where} (killed, or out of memory); the notebook up to that point is kept."
        else:
            error = f"{name}{where}: {exc}"
            log.debug("run of %s failed:\n%s", job.name, traceback.format_exc())
    finally:
        if _Live.kc is not None:  # papermill failed before it took the client
            with contextlib.suppress(Exception):
                _Live.kc.stop_channels()
            _Live.kc = None
        watchdog.cancel()
        timing["execute"] = round(time.monotonic() - mark, 3)
        mark = time.monotonic()
        kernel.kill()
        timing["kill"] = round(time.monotonic() - mark, 3)
    if timed_out.is_set():
        status = "timed_out"
        error = f"Timed out after {job.timeout:g} s and was stopped; raise --timeout if it needs longer. ({error})"
        failure = {**(failure or {}), "ename": "Timeout", "evalue": f"stopped after {job.timeout:g} s"}
    result = _finish(job, _Live.nb, status, error, started, timing)
    if failure is not None and result["status"] != "succeeded":
        result["failure"] = failure
    return result


def _finish(
    job: Job, nb: Any, status: str, error: str | None, started: float, timing: dict[str, float] | None = None
) -> dict[str, Any]:
    """Write the notebook (partial or whole) and its HTML; build the result event."""
    output = Path(job.output)
    result: dict[str, Any] = {
        "type": "finished",
        "index": job.index,
        "status": status,
        "error": error,
        "findings": [],
        "html": None,
        "seconds": 0.0,
    }
    if nb is None:  # never got as far as parameterizing: keep the source so the record links to something
        import nbformat

        nb = nbformat.read(job.source, as_version=4)  # type: ignore[no-untyped-call]
    if status != "succeeded" and not any(
        "papermill-error-cell-tag" in (c.get("metadata", {}).get("tags") or []) for c in nb.cells
    ):
        _banner(nb, error or status)
    try:
        mark = time.monotonic()
        clean = write_notebook(nb, output)
        timing = dict(timing or {}, write=round(time.monotonic() - mark, 3))
        mark = time.monotonic()
        result["findings"] = collect_findings(clean, job.name)
        if job.export_html:
            from vcci_nb.runner.html import export_html

            try:
                export_html(clean, Path(job.html), record_folder=Path(job.record_folder))
                result["html"] = job.html
            except Exception as exc:  # the notebook is the record; the HTML is a convenience
                log.warning("HTML export of %s failed: %s", job.name, exc)
                result["html_error"] = f"HTML export failed: {exc}"
            timing["html"] = round(time.monotonic() - mark, 3)
    except Exception as exc:
        result["status"] = "failed"
        result["error"] = f"{error + '; ' if error else ''}could not write the notebook: {exc}"
    result["seconds"] = round(time.monotonic() - started, 3)
    if timing:
        result["timing"] = timing  # where the time went (benchmarks read it; the record does not)
    result["at"] = utc_iso()
    return result


def worker_main(jobs: Any, events: Any, prefetch: bool = True, parent: int | None = None) -> None:
    """Take jobs until the sentinel; start the next job's kernel while the current one runs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    if parent is not None:
        # A worker must not outlive its run (it would start more kernels for nobody): die with it.
        from vcci_nb.runner.forkserver import set_pdeathsig

        try:
            set_pdeathsig()
        except OSError as exc:
            log.debug("no parent-death signal for the worker: %s", exc)
        if os.getppid() != parent:
            return
    pending: tuple[Job, Kernel | None] | None = None
    done = False
    while True:
        if pending is None:
            if done:
                break
            job = jobs.get()
            if job is None:
                break
            current: tuple[Job, Kernel | None] = (job, _start(job, events))
        else:
            current, pending = pending, None
        waited: float | None = None
        if prefetch and not done and current[1] is not None:
            # Let this kernel finish booting before the next one competes with it for the CPU.
            mark = time.monotonic()
            current[1].wait_ready()
            waited = time.monotonic() - mark
        if prefetch and not done:
            # Empty only means the parent's queue feeder is behind: no prefetch this time, not the end.
            try:
                nxt = jobs.get(timeout=0.05)
            except queue.Empty:
                nxt = False
            if nxt is None:
                done = True
            elif nxt is not False:
                pending = (nxt, _start(nxt, events))
        result = run_one(current[0], current[1], events, waited)
        events.put(result)
        if pending is None and done:
            break


def _start(job: Job, events: Any) -> Kernel | None:
    try:
        return Kernel(job)
    except Exception as exc:
        log.warning("could not pre-start a kernel for %s: %s", job.name, exc)
        events.put({"type": "log", "index": job.index, "message": f"kernel pre-start failed: {exc}"})
        return None

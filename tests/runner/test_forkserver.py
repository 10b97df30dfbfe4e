"""Kernels forked by the run's fork server behave like Popen kernels, and nothing outlives a run.

Real kernels, a real fork server, no mocks. Each test says which behaviour a user would notice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from vcci_nb.record import IncidentRecord
from vcci_nb.runner import forkserver
from vcci_nb.runner.worker import Job, Kernel

CLI = [sys.executable, "-m", "vcci_nb"]

pytestmark = pytest.mark.slow

# What a kernel reports about itself; compared between forked and Popen kernels.
PROBE = """
import json, os, signal, sys
import plotly.io as pio
from ipykernel.kernelapp import IPKernelApp
app = IPKernelApp.instance()
print(json.dumps({
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "path": sys.path,
    "argv0": os.path.basename(sys.argv[0]),
    "own_group": os.getpgid(0) == os.getpid(),
    "own_session": os.getsid(0) == os.getpid(),
    "signals": {
        s.name: repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE)
    },
    "renderer": pio.renderers.default,
    "parent_handle": app.parent_handle,
}))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _wait_gone(pids: list[int], seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[forkserver.Zygote]:
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    z = forkserver.start(str(sockets))
    assert z is not None, "this interpreter's python3 kernelspec should be servable by the fork server"
    yield z
    z.stop()


def _job(tmp_path: Path, zygote: forkserver.Zygote | None, env: dict[str, str], unset: list[str]) -> Job:
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    return Job(
        index=0,
        name="probe",
        source="",
        output="",
        html="",
        record_folder="",
        parameters={},
        env=env,
        unset_env=unset,
        cwd=str(cwd),
        timeout=60,
        sockets_dir=str(tmp_path / "sockets") if zygote else None,
        zygote=zygote.info if zygote else None,
    )


def _execute(kernel: Kernel, code: str) -> str:
    kc = kernel.km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        msg_id = kc.execute(code)
        out: list[str] = []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("ERROR " + msg["content"]["evalue"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    finally:
        kc.stop_channels()


def _probe(kernel: Kernel) -> dict[str, Any]:
    return dict(json.loads(_execute(kernel, PROBE)))


# ------------------------------------------------------------------------------------------
# a forked kernel is the kernel Popen would have started


def test_forked_kernel_looks_like_a_popen_kernel(
    tmp_path: Path, zygote: forkserver.Zygote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCCI_TEST_DROP_ME", "present in the worker, unset for the job")
    env = {"VCCI_NB_INCIDENT_ID": "INC-20260101-001", "VCCI_TEST_ONLY_IN_JOB": "yes"}
    unset = ["VCCI_TEST_DROP_ME"]
    forked = Kernel(_job(tmp_path, zygote, env, unset))
    popen = Kernel(_job(tmp_path, None, env, unset))
    try:
        assert forked.forked and not popen.forked
        seen_forked, seen_popen = _probe(forked), _probe(popen)
    finally:
        forked.kill()
        popen.kill()
    assert seen_forked["env"]["VCCI_TEST_ONLY_IN_JOB"] == "yes"
    assert "VCCI_TEST_DROP_ME" not in seen_forked["env"]
    assert "OPENBLAS_NUM_THREADS" not in seen_forked["env"]  # the fork server's own setting stays its own
    # Everything a notebook can observe is the same: env, cwd, sys.path, process group, signals,
    # Plotly's renderer (decided at import, which happened in the fork server) and the parent poller.
    assert seen_forked == seen_popen
    assert seen_forked["own_group"] and seen_forked["own_session"]
    assert seen_forked["renderer"] == "plotly_mimetype"


def test_jobs_do_not_see_each_others_env_or_secrets(
    tmp_path: Path, zygote: forkserver.Zygote, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary_a = f"canaryA{uuid.uuid4().hex[:10]}"
    canary_b = f"canaryB{uuid.uuid4().hex[:10]}"
    a = Kernel(_job(tmp_path, zygote, {"VCCI_TEST_API_TOKEN": canary_a}, []))
    try:
        assert a.forked
        # job A registers its secret and changes its environment, as notebooks do
        _execute(
            a,
            "import os, vcci_nb.redact as r\n"
            "r.register_secret(os.environ['VCCI_TEST_API_TOKEN'])\nos.environ['LEAK'] = '1'",
        )
        b = Kernel(_job(tmp_path, zygote, {"VCCI_TEST_OTHER": canary_b}, ["VCCI_TEST_API_TOKEN"]))
        try:
            assert b.forked
            seen = _execute(
                b,
                "import os, vcci_nb.redact as r\nprint(sorted(r._secrets), dict(os.environ))\n"
                f"print(r.redact('x {canary_a} y'))",
            )
        finally:
            b.kill()
    finally:
        a.kill()
    assert canary_a not in seen.splitlines()[0]
    assert "'LEAK'" not in seen
    assert canary_b in seen
    assert f"x {canary_a} y" in seen  # B's redaction does not know A's secret: it never had it


def test_fork_server_holds_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = f"canary{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("VCCI_TEST_API_TOKEN", canary)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:{canary}@127.0.0.1:1/db")
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    z = forkserver.start(str(sockets))
    assert z is not None
    try:
        deadline = time.monotonic() + 60
        while not Path(z.info.socket).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        environ = Path(f"/proc/{z.info.pid}/environ").read_bytes()
    finally:
        z.stop()
    assert canary.encode() not in environ


def test_killed_forked_kernel_is_seen_dead_and_reaped(tmp_path: Path, zygote: forkserver.Zygote) -> None:
    from jupyter_core.utils import run_sync

    kernel = Kernel(_job(tmp_path, zygote, {}, []))
    try:
        assert kernel.forked and kernel.pid
        pid = kernel.pid
        assert run_sync(kernel.km.is_alive)()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while run_sync(kernel.km.is_alive)() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not run_sync(kernel.km.is_alive)()
        assert kernel.km.provisioner.forked.returncode == -signal.SIGKILL
        assert _wait_gone([pid]) == []
        assert not Path(f"/proc/{pid}").exists()  # reaped by the fork server, not left a zombie
    finally:
        kernel.kill()


def test_interrupt_reaches_a_forked_kernel(tmp_path: Path, zygote: forkserver.Zygote) -> None:
    from jupyter_core.utils import run_sync

    kernel = Kernel(_job(tmp_path, zygote, {}, []))
    try:
        assert kernel.forked
        kc = kernel.km.blocking_client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        msg_id = kc.execute("import time\ntime.sleep(60)")
        time.sleep(1.0)
        run_sync(kernel.km.interrupt_kernel)()
        reply = kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        kc.stop_channels()
        assert run_sync(kernel.km.is_alive)()
    finally:
        kernel.kill()


def test_falls_back_to_popen_when_the_fork_server_is_gone(tmp_path: Path, zygote: forkserver.Zygote) -> None:
    zygote.stop()
    kernel = Kernel(_job(tmp_path, zygote, {"VCCI_TEST_ONLY_IN_JOB": "yes"}, []))
    try:
        assert not kernel.forked
        assert _execute(kernel, "import os\nprint(os.environ['VCCI_TEST_ONLY_IN_JOB'])").strip() == "yes"
    finally:
        kernel.kill()


# ------------------------------------------------------------------------------------------
# whole runs through the CLI


NOTEBOOK_CELLS = [
    "import os, json\nimport pandas as pd\nimport plotly.graph_objects as go",
    "df = pd.DataFrame({'t': range(5), 'v': [3, 1, 4, 1, 5]})\ndf",
    "fig = go.Figure(go.Scatter(x=df.t, y=df.v))\nfig.update_layout(title='v over t')\nfig.show()",
    "print(json.dumps({k: os.environ.get(k) for k in ('VCCI_NB_INCIDENT_ID', 'VCCI_ALT', 'HOME')}))",
    # last cell: who started this kernel (differs by design; not compared)
    "print(json.dumps({'forked': 'forkserver' in open(f'/proc/{os.getppid()}/cmdline').read(),"
    " 'pid': os.getpid(), 'ppid': os.getppid(), 'worker': int(os.environ['JPY_PARENT_PID'])}))",
]


def _notebook(path: Path, cells: list[str], params: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if params is not None:
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "parameters").mkdir(parents=True)
    (root / "notebooks").mkdir()
    for name in ("alpha", "beta", "gamma"):
        _notebook(root / "notebooks" / f"{name}.ipynb", NOTEBOOK_CELLS, 'incident_id = ""')
    bundles = {
        "version": 1,
        "bundles": {"three": {"notebooks": [f"notebooks/{n}.ipynb" for n in ("alpha", "beta", "gamma")]}},
    }
    (root / "parameters" / "bundles.yaml").write_text(yaml.safe_dump(bundles))
    return root


def _env(project: Path, outputs: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "VCCI_NB_OUTPUTS": str(outputs),
        "VCCI_NB_BUNDLES": str(project / "parameters" / "bundles.yaml"),
        **extra,
    }


def _comparable(nb: nbformat.NotebookNode) -> list[Any]:
    return [c.get("outputs", []) for c in nb.cells if c.cell_type == "code"][:-1]


def _env_seen(nb: nbformat.NotebookNode) -> dict[str, Any]:
    cell = next(c for c in nb.cells if c.source.startswith("print(json.dumps({k: os.environ"))
    return dict(json.loads(cell.outputs[0]["text"]))


def _last(nb: nbformat.NotebookNode) -> dict[str, Any]:
    return dict(json.loads(nb.cells[-1].outputs[0]["text"]))


def test_run_with_fork_server_gives_the_same_notebooks_and_leaves_nothing_running(
    project: Path, tmp_path: Path
) -> None:
    outputs = tmp_path / "out"
    env = _env(project, outputs)
    folders = {}
    for mode, flags in (("warm", []), ("cold", ["--cold"])):
        record = IncidentRecord.open("P3", f"fork server {mode}", outputs=outputs)
        r = subprocess.run(
            [*CLI, "run", "three", "--incident", record.id, *flags],
            env=env,
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        folders[mode] = record.folder
    pids: list[int] = []
    for name in ("alpha", "beta", "gamma"):
        warm = nbformat.read(folders["warm"] / f"{name}.ipynb", as_version=4)
        cold = nbformat.read(folders["cold"] / f"{name}.ipynb", as_version=4)
        assert _last(warm)["forked"] is True and _last(cold)["forked"] is False
        # same outputs, apart from the incident ID each run was given
        ids = {
            _env_seen(warm)["VCCI_NB_INCIDENT_ID"],
            _env_seen(cold)["VCCI_NB_INCIDENT_ID"],
        }
        assert len(ids) == 2
        text_warm, text_cold = json.dumps(_comparable(warm)), json.dumps(_comparable(cold))
        for incident in ids:
            text_warm, text_cold = text_warm.replace(incident, "ID"), text_cold.replace(incident, "ID")
        assert text_warm == text_cold
        assert "application/vnd.plotly.v1+json" in text_warm
        assert (folders["warm"] / f"{name}.html").read_text().count("Plotly.newPlot") == 1
        last = _last(warm)
        pids += [last["pid"], last["ppid"], last["worker"]]
    assert len(set(pids)) >= 3
    assert _wait_gone(pids, 5.0) == []  # kernels, the fork server and the workers are all gone


def test_kernels_and_fork_server_die_with_a_killed_run(project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    marker = tmp_path / "markers"
    marker.mkdir()
    cells = [
        "import os, json, time\n"
        f"open(os.path.join({str(marker)!r}, str(os.getpid())), 'w').write(json.dumps("
        "{'pid': os.getpid(), 'ppid': os.getppid(), 'worker': int(os.environ['JPY_PARENT_PID']),"
        " 'zygote': open(f'/proc/{os.getppid()}/cmdline').read().split(chr(0))}))",
        "time.sleep(120)",
    ]
    for name in ("s1", "s2"):
        _notebook(project / "notebooks" / f"{name}.ipynb", cells)
    spec = yaml.safe_load((project / "parameters" / "bundles.yaml").read_text())
    spec["bundles"]["sleepers"] = {"notebooks": ["notebooks/s1.ipynb", "notebooks/s2.ipynb"]}
    (project / "parameters" / "bundles.yaml").write_text(yaml.safe_dump(spec))
    record = IncidentRecord.open("P3", "killed run", outputs=outputs)
    proc = subprocess.Popen(
        [*CLI, "run", "sleepers", "--incident", record.id, "--jobs", "2"],
        env=_env(project, outputs),
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(marker.iterdir())) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.2)
        seen = [json.loads(p.read_text()) for p in marker.iterdir()]
        assert len(seen) == 2
        pids = sorted({n for s in seen for n in (s["pid"], s["ppid"], s["worker"])})
        zygotes = {s["ppid"] for s in seen}
        assert len(zygotes) == 1  # both kernels were forked by the run's one fork server
        assert all(_alive(p) for p in pids)
        sockets = Path(next(a for a in seen[0]["zygote"] if a.endswith(forkserver.SOCKET_NAME))).parent
        assert sockets.is_dir()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_gone(pids) == []
        assert not sockets.exists()  # the fork server cleaned up the run's kernel sockets
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_falls_back_to_popen_for_another_kernelspec(project: Path, tmp_path: Path) -> None:
    # A python3 kernelspec with its own env stanza: the fork server cannot stand in for it.
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (alt)",
        "language": "python",
        "env": {"VCCI_ALT": "from the kernelspec"},
    }
    (kernels / "kernel.json").write_text(json.dumps(spec))
    outputs = tmp_path / "out"
    record = IncidentRecord.open("P3", "fallback", outputs=outputs)
    r = subprocess.run(
        [*CLI, "run", "notebooks/alpha.ipynb", "--incident", record.id],
        env=_env(project, outputs, JUPYTER_PATH=str(tmp_path / "jupyter")),
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    nb = nbformat.read(record.folder / "alpha.ipynb", as_version=4)
    assert _last(nb)["forked"] is False
    assert _env_seen(nb)["VCCI_ALT"] == "from the kernelspec"


def test_no_thread_runs_in_the_fork_server(tmp_path: Path, zygote: forkserver.Zygote) -> None:
    deadline = time.monotonic() + 60
    while not Path(zygote.info.socket).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    kernel = Kernel(_job(tmp_path, zygote, {}, []))
    try:
        assert kernel.forked
        _execute(kernel, "import numpy; numpy.ones((200, 200)) @ numpy.ones((200, 200))")
        assert os.listdir(f"/proc/{zygote.info.pid}/task") == [str(zygote.info.pid)]
    finally:
        kernel.kill()

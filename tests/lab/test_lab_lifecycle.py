"""`lab up` / `lab down` on a lab of their own (not the session's): nothing may be left behind."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vcci_lab import FAULTS, PRESETS, Lab, _procs
from vcci_nb.errors import LabError

pytestmark = [pytest.mark.lab, pytest.mark.slow]

VCCI_NB = [sys.executable, "-m", "vcci_nb"]


def _lab_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="vcci-nb-lifecycle-"))
    os.chmod(path, 0o711)
    return path


@pytest.fixture(scope="module")
def own_lab() -> Iterator[Lab]:
    path = _lab_dir()
    lab = Lab(path)
    try:
        yield lab
    finally:
        lab.down()
        shutil.rmtree(path, ignore_errors=True)


def _pids_and_ports(lab: Lab) -> tuple[list[int], list[int]]:
    state = lab._state.load()  # what up recorded: the PIDs and ports it promised to clean up
    pids = [int(e["pid"]) for e in state["components"].values() if e.get("pid")]
    return pids, sorted(set(state["ports"].values()))


def _listening(port: int) -> bool:
    return _procs.port_is_listening(port)


def test_up_is_idempotent_and_down_leaves_no_process_or_port(own_lab: Lab) -> None:
    status = own_lab.up()
    assert status["up"], status
    unhealthy = [n for n, c in status["components"].items() if not c["healthy"]]
    assert not unhealthy, f"components not answering after up: {unhealthy}"
    pids, ports = _pids_and_ports(own_lab)
    assert len(pids) >= 10 and all(_procs.pid_alive(p) for p in pids)
    assert all(_listening(p) for p in ports if p != own_lab._state.load()["ports"].get("rabbitmq_dist"))
    assert (own_lab.dir / "state.json").stat().st_mode & 0o777 == 0o600

    # Second up: nothing new is started, the same processes keep running, and it says what runs.
    again = subprocess.run([*VCCI_NB, "lab", "--dir", str(own_lab.dir), "up"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stdout
    assert "postgres" in again.stdout and "rabbitmq" in again.stdout
    assert _pids_and_ports(own_lab)[0] == pids

    # The epmd the lab started is its own, not the machine's default 4369.
    epmd_port = own_lab._state.load()["ports"]["epmd"]
    assert epmd_port != 4369 and _listening(epmd_port)

    # Fault holders (processes keeping connections and slow commands alive) die with down too.
    own_lab.inject("pool-exhaustion")
    own_lab.inject("redis-slow")
    holders = [int(f["pid"]) for f in own_lab._state.load()["faults"].values()]
    assert len(holders) == 2 and all(_procs.pid_alive(p) for p in holders)
    pids += holders

    down = subprocess.run([*VCCI_NB, "lab", "--dir", str(own_lab.dir), "down"], capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    left = [p for p in pids if _procs.pid_alive(p)]
    assert not left, f"processes still running after down: {left}"
    for pid in pids:  # nothing the servers forked (postgres backends, beam children) survives either
        assert not _procs.group_members(pid)
    still = [p for p in ports if _listening(p)]
    assert not still, f"ports still listening after down: {still}"

    # Down while down is a no-op that says so.
    twice = subprocess.run([*VCCI_NB, "lab", "--dir", str(own_lab.dir), "down"], capture_output=True, text=True)
    assert twice.returncode == 0
    assert "not running" in twice.stdout


def test_a_busy_port_is_skipped(own_lab: Lab) -> None:
    own_lab.down()
    old = own_lab._state.load()["ports"]
    assert old, "the previous test should have left the lab's port choices in state.json"
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old["redis"]))
        squatter.listen()
        status = own_lab.up()
        new = own_lab._state.load()["ports"]
        assert new["redis"] != old["redis"]
        assert status["components"]["redis"]["healthy"]
        env = own_lab.env()
        assert f":{new['redis']}/" in env["REDIS_URL"]
        pong = subprocess.run(
            ["redis-cli", "-u", env["REDIS_URL"], "--no-auth-warning", "PING"], capture_output=True, text=True
        )
        assert pong.stdout.strip() == "PONG"
    own_lab.down()
    assert not own_lab.status()["up"]


def _gone_within(seconds: float, check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def test_stop_with_stops_the_lab_when_its_owner_is_killed_and_not_before() -> None:
    """A test session or CI job killed before its clean-up must not leave servers running."""
    path = _lab_dir()
    owner = subprocess.Popen(["sleep", "600"])
    lab = Lab(path)
    try:
        # Stopped normally: the watchdog goes with the lab.
        lab.up(stop_with=owner.pid)
        watchdog = lab._state.load()["watchdog"]
        assert _procs.is_ours(watchdog["pid"], watchdog["start_time"])
        lab.down()
        assert _gone_within(10, lambda: not _procs.is_ours(watchdog["pid"], watchdog["start_time"]))
        # Owner killed: the lab stops by itself and its directory is removed.
        lab.up(stop_with=owner.pid, remove_dir_on_stop=True)
        pids, ports = _pids_and_ports(lab)
        assert pids and lab.status()["up"]
        owner.kill()
        owner.wait()
        assert _gone_within(90, lambda: not any(_procs.pid_alive(p) for p in pids) and not path.exists()), (
            f"still running: {[p for p in pids if _procs.pid_alive(p)]}; dir exists: {path.exists()}"
        )
        assert not [port for port in ports if _listening(port)]
    finally:
        owner.kill()
        lab.down()
        shutil.rmtree(path, ignore_errors=True)


def test_stop_with_a_pid_that_does_not_exist_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no such process"):
        Lab(tmp_path / "lab").up(stop_with=2**22 + 12345)
    assert not (tmp_path / "lab" / "state.json").exists() or not Lab(tmp_path / "lab").status()["up"]


def test_unknown_fault_lists_the_valid_ones(tmp_path: Path) -> None:
    res = subprocess.run(
        [*VCCI_NB, "lab", "--dir", str(tmp_path), "inject", "pool-exaustion"], capture_output=True, text=True
    )
    assert res.returncode != 0
    assert "unknown fault 'pool-exaustion'" in res.stderr
    for name in (*FAULTS, *PRESETS):
        assert name in res.stderr
    with pytest.raises(LabError, match="unknown fault"):
        Lab(tmp_path).heal("nope")


def test_inject_without_argument_lists_faults_and_presets(tmp_path: Path) -> None:
    res = subprocess.run([*VCCI_NB, "lab", "--dir", str(tmp_path), "inject"], capture_output=True, text=True)
    assert res.returncode == 0
    for name in (*FAULTS, *PRESETS):
        assert name in res.stdout


def test_inject_on_a_lab_that_is_not_up_says_so(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="not up"):
        Lab(tmp_path).inject("redis-slow")
    with pytest.raises(LabError, match="lab up"):
        Lab(tmp_path).env()


def test_a_missing_server_binary_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LabError) as err:
        _procs.find_binary("prometheus-redis-exporter")
    assert "apt-get install -y prometheus-redis-exporter" in str(err.value)
    with pytest.raises(LabError, match="apt-get install -y redis-server"):
        _procs.find_binary("redis-server")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(f"{entry.name}: {cmd[:120]}")
    return found


def test_up_with_servers_missing_names_the_packages_and_leaves_nothing_running() -> None:
    path = _lab_dir()
    try:
        env = {**os.environ, "PATH": "/nonexistent"}  # PostgreSQL is still found in its own directory
        res = subprocess.run(
            [*VCCI_NB, "lab", "--dir", str(path), "up"], capture_output=True, text=True, env=env, timeout=300
        )
        assert res.returncode != 0
        assert "apt-get install -y redis-server" in res.stderr
        assert "apt-get install -y prometheus-alertmanager" in res.stderr
        assert "the lab did not start" in res.stderr
        assert not _processes_mentioning(str(path)), "up left servers running after it failed"
        assert not Lab(path).status()["up"]
    finally:
        Lab(path).down()
        shutil.rmtree(path, ignore_errors=True)

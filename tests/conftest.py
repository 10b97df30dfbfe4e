"""Shared fixtures: the lab (real servers on 127.0.0.1, started once per pytest session).

``lab`` is a started :class:`vcci_lab.Lab` in a temporary directory, stopped at the end of the
session even when tests fail or the run is interrupted. ``lab_env`` is ``lab.env()``, also put in
``os.environ`` for the test. A test that changes the lab heals what it injected:
``with lab.fault("pool-exhaustion"): ...``.

To iterate quickly, start a lab yourself (``vcci-nb lab up --dir /tmp/mylab``) and run pytest with
``VCCI_NB_TEST_LAB_DIR=/tmp/mylab``: the fixture then uses that lab and leaves it running.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The session's lab once the ``lab`` fixture has started it (for the per-module fault check).
_SESSION_LAB: list[object] = []


@pytest.fixture(scope="session")
def lab() -> Iterator[object]:
    from vcci_lab import Lab

    reuse = os.environ.get("VCCI_NB_TEST_LAB_DIR")
    if reuse:
        existing = Lab(reuse)
        if not existing.is_up():
            existing.up(progress=lambda m: print(f"[lab] {m}", file=sys.stderr))
        _SESSION_LAB.append(existing)
        yield existing
        return

    # Not under pytest's tmp_path: its parents are mode 0700, which the postgres user (root runs
    # PostgreSQL as postgres) cannot traverse.
    path = Path(tempfile.mkdtemp(prefix="vcci-nb-test-lab-"))
    os.chmod(path, 0o711)
    started = Lab(path)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        try:
            started.down()
        finally:
            if not os.environ.get("VCCI_NB_KEEP_LAB_DIR"):
                shutil.rmtree(path, ignore_errors=True)

    atexit.register(stop)  # even if the session dies before its finalizers run
    try:
        # ... and if it is killed outright, the lab's watchdog stops the servers and removes the folder.
        started.up(
            progress=lambda m: print(f"[lab] {m}", file=sys.stderr), stop_with=os.getpid(), remove_dir_on_stop=True
        )
        _SESSION_LAB.append(started)
        yield started
    finally:
        stop()


@pytest.fixture
def lab_env(lab: object, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env: dict[str, str] = lab.env()  # type: ignore[attr-defined]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(scope="module", autouse=True)
def _lab_faults_healed_after_each_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """A module that leaves a fault in force would break every later test: heal it, and say so."""
    yield
    if not _SESSION_LAB:
        return
    lab = _SESSION_LAB[-1]
    left = lab.faults()  # type: ignore[attr-defined]
    if left:
        warnings.warn(f"{request.module.__name__} left lab faults in force: {left}; healing them", stacklevel=1)
        for name in left:
            lab.heal(name)  # type: ignore[attr-defined]

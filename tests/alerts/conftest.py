"""Fixtures for the alert receiver: a real `vcci-nb serve` process, real HTTP, real SQLite.

Runs go to a small real script (``fake_runner.py``) instead of the notebook runner, so that these
tests see exactly which runs started, with which arguments, how many at once, and whether one
finished twice. The end-to-end test in test_e2e.py uses the real runner and the lab.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.alerts._support import Serve, start_serve


@pytest.fixture
def make_serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """Start `vcci-nb serve` with the fake runner; every instance is stopped at the end."""
    started: list[Serve] = []

    def factory(*args: str, root: Path | None = None, **kw: Any) -> Serve:
        serve = start_serve(root or tmp_path, *args, **kw)
        started.append(serve)
        return serve

    yield factory
    for serve in started:
        serve.stop()


@pytest.fixture(scope="module")
def shared_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One receiver for a whole module of tests that only look at answers, never at state."""
    serve = start_serve(tmp_path_factory.mktemp("serve"), "--max-body", "65536")
    yield serve
    serve.stop()

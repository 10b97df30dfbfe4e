"""Fixtures for running the runbook notebooks against the lab.

``run_nb(rel, **parameters)`` executes a notebook with papermill in the lab's environment (as the
runner and an alert would) and returns the executed notebook as JSON. ``healthy(rel)`` runs each
notebook once per session against a healthy lab and reuses the result (HTML export, nbval).

The healthy runs use a lab of their own, started on first use: on the session's lab, a metric fault
an earlier test healed stays in the 5-minute rate windows for up to five minutes, and waiting for it
to drain cost more than starting a second lab (about 5 s from the warm template).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _nbtools import RunNb, run_notebook, settle_metrics

from tests.labs import own_lab


@pytest.fixture
def run_nb(lab_env: dict[str, str], tmp_path: Path) -> RunNb:
    counter = {"n": 0}

    def run(rel: str, outputs: Path | None = None, env: dict[str, str] | None = None, **parameters: Any) -> Any:
        counter["n"] += 1
        out = tmp_path / f"{counter['n']:02d}_{Path(rel).stem}.ipynb"
        full_env = {**lab_env, "VCCI_NB_OUTPUTS": str(outputs or tmp_path / "outputs"), **(env or {})}
        return run_notebook(rel, out, parameters, env=full_env)

    return run


_HEALTHY: dict[str, tuple[Path, dict[str, Any]]] = {}


@pytest.fixture(scope="session")
def healthy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("healthy")


@pytest.fixture(scope="session")
def healthy_lab(lab: Any) -> Iterator[Any]:
    """A second lab that no test breaks (with ``VCCI_NB_TEST_LAB_DIR``, the session's lab itself)."""
    if os.environ.get("VCCI_NB_TEST_LAB_DIR"):
        yield lab
        return
    with own_lab("vcci-nb-healthy-lab-") as own:
        yield own


@pytest.fixture
def healthy(healthy_lab: Any, healthy_dir: Path) -> Callable[[str], tuple[Path, dict[str, Any]]]:
    """Each notebook executed once per session against the healthy lab: (path, notebook JSON)."""

    def get(rel: str) -> tuple[Path, dict[str, Any]]:
        if rel not in _HEALTHY:
            assert not healthy_lab.faults(), f"the lab should be healthy, but has {healthy_lab.faults()}"
            # The notebooks read "now" as the median of the last points of the window: the worst value
            # over the last 90 s must be under the thresholds, not just the instant one.
            settle_metrics(healthy_lab.env(), worst_over="90s", margin=0.9)
            out = healthy_dir / rel.replace("/", "__")
            env = {**healthy_lab.env(), "VCCI_NB_OUTPUTS": str(healthy_dir / "outputs")}
            _HEALTHY[rel] = (out, run_notebook(rel, out, {}, env=env))
        return _HEALTHY[rel]

    return get

"""Fixtures for running the runbook notebooks against the lab.

``run_nb(rel, **parameters)`` executes a notebook with papermill in the lab's environment (as the
runner and an alert would) and returns the executed notebook as JSON. ``healthy(rel)`` runs each
notebook once per session against the healthy lab and reuses the result (HTML export, nbval).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _nbtools import RunNb, run_notebook, settle_metrics


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


@pytest.fixture
def healthy(lab: Any, healthy_dir: Path) -> Callable[[str], tuple[Path, dict[str, Any]]]:
    """Each notebook executed once per session against the healthy lab: (path, notebook JSON)."""

    def get(rel: str) -> tuple[Path, dict[str, Any]]:
        if rel not in _HEALTHY:
            assert not lab.faults(), f"the lab should be healthy, but has {lab.faults()}"
            settle_metrics(lab.env())
            out = healthy_dir / rel.replace("/", "__")
            env = {**lab.env(), "VCCI_NB_OUTPUTS": str(healthy_dir / "outputs")}
            _HEALTHY[rel] = (out, run_notebook(rel, out, {}, env=env))
        return _HEALTHY[rel]

    return get

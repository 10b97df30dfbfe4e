"""The analysis tests use the same real-server fixtures as the sources tests (tests/sources/conftest.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "vcci_nb_test_source_fixtures", Path(__file__).resolve().parent.parent / "sources" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _fixtures  # dataclasses look their module up there
_spec.loader.exec_module(_fixtures)

kube_emu = _fixtures.kube_emu
kube_env = _fixtures.kube_env
hanging_port = _fixtures.hanging_port
closed_port = _fixtures.closed_port
KubeEmu = _fixtures.KubeEmu

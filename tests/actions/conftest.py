"""Fixtures for the actions tests: a fresh incident record per test, headless by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcci_nb.record import IncidentRecord


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IncidentRecord:
    """An open P1 incident in a temporary outputs folder; actions run headless unless a test says so."""
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("VCCI_NB_OUTPUTS", str(outputs))
    monkeypatch.setenv("VCCI_NB_ACTOR", "alice")
    monkeypatch.setenv("VCCI_NB_INTERACTIVE", "0")
    return IncidentRecord.open("P1", "API 5xx spike", outputs=outputs)

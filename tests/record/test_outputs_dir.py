"""One ``outputs/`` wherever a kernel starts: JupyterLab's ``notebooks/`` or any other folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import papermill
import pytest

from vcci_nb.record import IncidentRecord, outputs_dir

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "02_communicate.ipynb"


def test_records_resolve_to_the_project_outputs_not_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VCCI_NB_OUTPUTS", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert outputs_dir() == ROOT / "outputs"
    stray = ROOT / "notebooks" / "outputs"
    had_stray = stray.exists()
    record = IncidentRecord.open("P3", "outputs test: one folder wherever a kernel starts", "tester")
    try:
        assert record.folder.parent == ROOT / "outputs"
        for cwd in (ROOT / "notebooks", elsewhere):
            # the dry run of 02_communicate loads the record and records its drafts there
            papermill.execute_notebook(
                str(NOTEBOOK),
                str(tmp_path / f"run-{cwd.name}.ipynb"),
                parameters={"incident_id": record.id},
                kernel_name="python3",
                cwd=str(cwd),
                progress_bar=False,
                request_save_on_cell_execute=False,
            )
        drafts = IncidentRecord.load(record.id).data["notifications"]
        assert len(drafts) >= 2 and all(d["status"] == "dry_run" for d in drafts), drafts
        assert {d["template"] for d in drafts} == {"initial"}
        assert not (elsewhere / "outputs").exists()
        assert had_stray or not stray.exists()
    finally:
        shutil.rmtree(record.folder, ignore_errors=True)


def test_outputs_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCCI_NB_OUTPUTS", str(tmp_path / "mine"))
    assert outputs_dir() == tmp_path / "mine"

"""The 04_mitigate_* notebooks, run headless with papermill against the lab, as the runner runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import papermill
import pytest
import redis

from vcci_nb.record import IncidentRecord

pytestmark = [pytest.mark.lab, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
MITIGATE = sorted(p.name for p in NOTEBOOKS.glob("04_mitigate_*.ipynb"))


def _run(name: str, out: Path, **params: Any) -> dict[str, Any]:
    nb = papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(out / name),
        parameters=params,
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
        request_save_on_cell_execute=False,
    )
    return dict(nb)


@pytest.fixture
def cache_keys(lab_env: dict[str, str]) -> Any:
    r = redis.Redis.from_url(lab_env["VCCI_MITIGATION_REDIS_URL"], decode_responses=True)
    r.mset({f"cache:nb-test:{i}": "x" for i in range(40)})
    yield r
    left = list(r.scan_iter("cache:nb-test:*"))
    if left:
        r.unlink(*left)
    r.close()


def test_there_are_mitigation_notebooks() -> None:
    assert {"04_mitigate_rollback.ipynb", "04_mitigate_database.ipynb", "04_mitigate_cache.ipynb"} <= set(MITIGATE)


@pytest.mark.parametrize("name", MITIGATE)
def test_each_mitigation_notebook_runs_headless_as_a_dry_run_and_changes_nothing(
    name: str, lab_env: dict[str, str], record: IncidentRecord, tmp_path: Path, cache_keys: Any
) -> None:
    size = cache_keys.dbsize()
    _run(name, tmp_path, incident_id=record.id)  # defaults: dry_run=True
    assert cache_keys.dbsize() == size
    entries = record.data["actions"]
    assert all(e["result"] in ("planned", "refused") for e in entries), [e["message"] for e in entries]


def test_cache_notebook_executes_only_with_the_confirmation(
    lab_env: dict[str, str], record: IncidentRecord, tmp_path: Path, cache_keys: Any
) -> None:
    pattern = "cache:nb-test:*"
    _run("04_mitigate_cache.ipynb", tmp_path, incident_id=record.id, dry_run=False, pattern=pattern)
    assert sum(1 for _ in cache_keys.scan_iter(pattern)) == 40  # headless, not confirmed: nothing happens
    _run("04_mitigate_cache.ipynb", tmp_path, incident_id=record.id, dry_run=False, pattern=pattern, confirm=record.id)
    assert sum(1 for _ in cache_keys.scan_iter(pattern)) == 0
    results = [e["result"] for e in record.data["actions"] if e["action"] == "redis.clear_pattern"]
    assert results[-1] == "succeeded" and "succeeded" not in results[:-1]

"""The database notebooks on a real prepared-transaction fault: what 03 finds, and 04's fix by gid."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _nbtools import RunNb, findings

from vcci_nb.record import IncidentRecord

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _gids(env: dict[str, str]) -> list[str]:
    with psycopg.connect(env["VCCI_ADMIN_DATABASE_URL"], autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT gid FROM pg_prepared_xacts").fetchall()]


def _wait_older_than_threshold(env: dict[str, str]) -> None:
    """The finding is about transactions *left* open (older than the profile's prepared_xact_s): wait for that."""
    from vcci_nb.config import load_profile

    threshold = load_profile("lab").threshold("prepared_xact_s")
    deadline = time.monotonic() + threshold + 30
    with psycopg.connect(env["VCCI_ADMIN_DATABASE_URL"], autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT min(extract(epoch FROM now() - prepared)) FROM pg_prepared_xacts").fetchone()
            if row and row[0] is not None and float(row[0]) > threshold + 1:
                return
            time.sleep(0.5)
    raise AssertionError("the injected prepared transaction never grew older than the lab's threshold")


def test_database_notebooks_name_the_prepared_transaction_and_roll_it_back_by_gid(
    lab: Any, lab_env: dict[str, str], run_nb: RunNb, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"
    record = IncidentRecord.open("P2", "tenant syncs hang", "alice", outputs=outputs)
    with lab.fault("prepared-xact"):
        [gid] = _gids(lab_env)
        _wait_older_than_threshold(lab_env)
        nb = run_nb("03_investigate_database.ipynb", outputs=outputs, incident_id=record.id)
        found = {f["key"]: f for f in findings(nb)}
        chain = found["db.lock_chain"]
        assert chain["details"]["blocking_gids"] == [gid] and chain["details"]["blocking_pids"] == []
        assert gid in found["db.prepared_xacts"]["details"]["gids"]

        run_nb(
            "04_mitigate_database.ipynb",
            outputs=outputs,
            incident_id=record.id,
            dry_run=False,
            confirm=record.id,
            terminate_idle=False,
            rollback_gid=gid,
        )
        assert _gids(lab_env) == []
    entries = IncidentRecord.load(record.id, outputs).data["actions"]
    done = [e for e in entries if e["action"] == "postgres.rollback_prepared"]
    assert len(done) == 1 and done[0]["result"] == "succeeded" and done[0]["parameters"]["gid"] == gid

"""The lab's PostgreSQL faults for a DBA's 3 a.m. checks are real: psql sees each one, and its heal removes it.

Each test asks ``psql`` (not vcci_nb) the question a DBA would, with the fault in force and after
the heal: a prepared transaction and who waits on it, a session idle in transaction, the
database's transaction ID age, a replication slot retaining WAL, dead tuples autovacuum left.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

pytestmark = pytest.mark.lab


def psql(env: dict[str, str], sql: str) -> str:
    exe = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    out = subprocess.run(
        [exe, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", env["VCCI_ADMIN_DATABASE_URL"], "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def test_prepared_transaction_holds_a_lock_with_no_backend(lab: Any, lab_env: dict[str, str]) -> None:
    with lab.fault("prepared-xact"):
        gid = psql(lab_env, "SELECT gid FROM pg_prepared_xacts")
        assert gid.startswith("vcci-recalc-")
        # the waiters' blocker is PID 0: a prepared transaction has no backend to terminate
        blockers = psql(
            lab_env,
            "SELECT DISTINCT unnest(pg_blocking_pids(pid)) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        )
        assert "0" in blockers.split()  # the first waiter's blocker; the next waits behind the first
        held = (
            "SELECT count(*) FROM pg_locks l JOIN pg_prepared_xacts p ON l.transactionid = p.transaction "
            "WHERE l.pid IS NULL"
        )
        assert int(psql(lab_env, held)) == 1  # its own transaction ID lock, held with no PID
    assert psql(lab_env, "SELECT count(*) FROM pg_prepared_xacts") == "0"
    assert psql(lab_env, "SELECT count(*) FROM pg_locks WHERE NOT granted") == "0"


def test_idle_in_transaction_session(lab: Any, lab_env: dict[str, str]) -> None:
    q = "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND application_name = 'vcci-api'"
    with lab.fault("idle-in-transaction"):
        assert psql(lab_env, q) == "1"
        assert "AccessShareLock" in psql(
            lab_env,
            "SELECT string_agg(DISTINCT l.mode, ',') FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE a.state = 'idle in transaction' AND a.application_name = 'vcci-api'",
        )
    assert psql(lab_env, q) == "0"


def test_transaction_id_age_climbs_and_stays_behind_an_old_xid(lab: Any, lab_env: dict[str, str]) -> None:
    age_q = "SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database()"
    with lab.fault("xid-age"):
        psql(lab_env, "VACUUM (FREEZE) tenants")  # freezing cannot pass the old transaction's XID
        assert int(psql(lab_env, "SELECT age(relfrozenxid) FROM pg_class WHERE relname = 'tenants'")) >= 150_000
        assert int(psql(lab_env, age_q)) >= 150_000
        assert int(psql(lab_env, "SELECT max(age(backend_xid)) FROM pg_stat_activity")) >= 150_000
    assert int(psql(lab_env, "SELECT age(relfrozenxid) FROM pg_class WHERE relname = 'tenants'")) < 1_000
    assert int(psql(lab_env, "SELECT max(age(datfrozenxid)) FROM pg_database WHERE datallowconn")) < 10_000


def test_replication_slot_retains_wal(lab: Any, lab_env: dict[str, str]) -> None:
    q = (
        "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), 0)::bigint "
        "FROM pg_replication_slots WHERE NOT active"
    )
    with lab.fault("wal-slot"):
        assert psql(lab_env, "SELECT slot_name || ' ' || slot_type || ' ' || active FROM pg_replication_slots") == (
            "vcci_replica_1 physical false"
        )
        assert int(psql(lab_env, q)) > 16 * 1024 * 1024
    assert psql(lab_env, "SELECT count(*) FROM pg_replication_slots") == "0"


def test_dead_tuples_pile_up_where_autovacuum_is_off(lab: Any, lab_env: dict[str, str]) -> None:
    q = "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'suppliers'"
    with lab.fault("dead-tuples"):
        assert int(psql(lab_env, q)) >= 20_000
        assert psql(lab_env, "SELECT reloptions::text FROM pg_class WHERE relname = 'suppliers'") == (
            "{autovacuum_enabled=false}"
        )
    assert int(psql(lab_env, q)) < 1000
    assert psql(lab_env, "SELECT reloptions FROM pg_class WHERE relname = 'suppliers'") == ""


def test_replica_lag_of_a_streaming_standby(lab: Any, lab_env: dict[str, str]) -> None:
    q = (
        "SELECT application_name || ' ' || state || ' ' || (pg_wal_lsn_diff(sent_lsn, replay_lsn) > 1048576)::text "
        "FROM pg_stat_replication"
    )
    with lab.fault("replica-lag"):
        assert psql(lab_env, q) == "vcci-replica-1 streaming true"
    assert psql(lab_env, "SELECT count(*) FROM pg_stat_replication") == "0"

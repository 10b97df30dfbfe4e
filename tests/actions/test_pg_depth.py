"""A DBA's deeper checks against the lab's real PostgreSQL: gather, finding, fix through the gateway.

Each test injects the lab fault, gathers with the read-only identity, checks the finding names
the culprit the way a DBA would (a gid, a pid, a slot, a table), then fixes it with the
mitigation identity through the gateway and checks, with its own SQL, that the fault is gone.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from vcci_nb.actions import (
    ActionRefused,
    DropReplicationSlot,
    TerminateSessions,
    VacuumAnalyze,
    idle_in_transaction_sessions,
    rollback_prepared,
    run,
)
from vcci_nb.analysis.decision_tree import evaluate
from vcci_nb.analysis.findings import find_all
from vcci_nb.analysis.scenarios import scenario_check
from vcci_nb.config import load_profile
from vcci_nb.record import IncidentRecord
from vcci_nb.sources import postgres

pytestmark = pytest.mark.lab


def _sql(env: dict[str, str], query: str) -> Any:
    with psycopg.connect(env["VCCI_ADMIN_DATABASE_URL"], autocommit=True) as conn:
        return conn.execute(query).fetchone()[0]  # type: ignore[index]


def _keys(evidence: list[Any], thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    th = {k: float(v) for k, v in (load_profile("lab").get("thresholds") or {}).items()}
    th.update(thresholds or {})
    return {f.key: f for f in find_all(evidence, th)}


def test_lock_chain_behind_a_prepared_transaction_names_the_gid_and_rolls_it_back(
    lab: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    with lab.fault("prepared-xact"):
        gid = _sql(lab_env, "SELECT gid FROM pg_prepared_xacts")
        blocking = postgres.gather_blocking()
        prepared = postgres.gather_prepared_xacts()
        found = _keys([blocking, prepared], {"prepared_xact_s": 0})
        chain = found["db.lock_chain"]
        assert chain.details["blocking_gids"] == [gid]
        assert 0 not in chain.details["blocking_pids"] and chain.details["blocking_pids"] == []
        assert f"prepared transaction {gid!r}" in chain.summary and "ROLLBACK PREPARED" in chain.summary
        px = found["db.prepared_xacts"]
        assert px.details["gids"] == [gid] and px.severity == "high"
        # the decision tree and the slow-queries scenario use them
        top = evaluate([blocking, prepared], findings=list(found.values())).hypotheses[0]
        assert top.cause == "Database queries slow" and "db.prepared_xacts" in top.findings
        check = scenario_check("slow_queries", {"b": blocking, "p": prepared}, found.values())
        row = check.frame.set_index("symptom").loc[
            "Locks held by a prepared transaction or a session idle in transaction"
        ]
        assert row["status"] == "confirmed"
        assert prepared.frame.iloc[0]["owner"] == "vcci_worker" and prepared.frame.iloc[0]["locks_held"] >= 1

        planned = run(rollback_prepared(gid), record.id)
        assert planned.status == "planned" and planned.plan.destructive  # type: ignore[union-attr]
        assert planned.plan.changes[0]["statement"] == f"ROLLBACK PREPARED '{gid}'"  # type: ignore[union-attr]
        with pytest.raises(ActionRefused, match="headless it runs only with"):
            run(rollback_prepared(gid), record.id, dry_run=False)
        assert _sql(lab_env, "SELECT count(*) FROM pg_prepared_xacts") == 1

        done = run(rollback_prepared(gid), record.id, dry_run=False, confirm=record.id)
        assert done.status == "succeeded", done.message
        assert _sql(lab_env, "SELECT count(*) FROM pg_prepared_xacts") == 0
        assert done.entry["identity"].startswith("postgres:vcci_xact_resolver")
        with pytest.raises(ActionRefused, match="no prepared transaction"):
            run(rollback_prepared(gid), record.id)
    assert [e["result"] for e in record.data["actions"]] == ["planned", "refused", "succeeded", "refused"]


def test_idle_in_transaction_has_its_own_threshold_finding_and_fix(
    lab: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    with lab.fault("idle-in-transaction"):
        pid = _sql(lab_env, "SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction'")
        none_yet = postgres.gather_idle_in_transaction(threshold_s=3600)
        assert none_yet.ok and none_yet.frame.empty
        ev = postgres.gather_idle_in_transaction(threshold_s=0)
        row = ev.frame.set_index("pid").loc[pid]
        assert row["application"] == "vcci-api" and row["locks_held"] >= 2
        finding = _keys([ev])["db.idle_in_transaction"]
        assert finding.details["pids"] == [pid] and "idle in an open transaction" in finding.summary

        out = run(idle_in_transaction_sessions(0, application="vcci-api"), record.id, dry_run=False, confirm=record.id)
        assert out.status == "succeeded", out.message
        assert out.result["terminated"] == [pid]
        assert _sql(lab_env, "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'") == 0


def test_xid_age_finding_names_what_holds_the_horizon_and_the_fix_freezes(
    lab: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    with lab.fault("xid-age"):
        ev = postgres.gather_xid_age()
        finding = _keys([ev])["db.xid_age"]
        assert finding.value >= 150_000
        assert "vcci_production" in finding.details["databases"]
        kinds = [h["kind"] for h in finding.details["holders"]]
        assert kinds[0] == "session" and "vcci-worker" in finding.details["holders"][0]["name"]
        assert "Freezing is held back by: session pid" in finding.summary

        # The fix: end what holds the horizon (by the PID the finding names), then freeze.
        pid = int(finding.details["holders"][0]["name"].split()[1])
        ended = run(TerminateSessions(["idle in transaction"], 0, pids=[pid]), record.id, dry_run=False,
                    confirm=record.id)  # fmt: skip
        assert ended.status == "succeeded", ended.message
        frozen = run(VacuumAnalyze("tenants", freeze=True), record.id, dry_run=False, confirm=record.id)
        assert frozen.status == "succeeded" and frozen.plan.summary.startswith("VACUUM (FREEZE, ANALYZE)")  # type: ignore[union-attr]
        assert _sql(lab_env, "SELECT age(relfrozenxid) FROM pg_class WHERE relname = 'tenants'") < 1_000
    healthy = postgres.gather_xid_age()
    assert "db.xid_age" not in _keys([healthy])


def test_replication_slot_retaining_wal_is_found_and_dropped(
    lab: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    with lab.fault("wal-slot"):
        ev = postgres.gather_replication_slots()
        row = ev.frame.iloc[0]
        assert row["slot"] == "vcci_replica_1" and not row["active"] and row["retained_bytes"] > 16 * 1024**2
        finding = _keys([ev])["db.replication_slot_wal"]
        assert finding.details["slots"] == ["vcci_replica_1"]

        with pytest.raises(ActionRefused, match="headless it runs only with"):
            run(DropReplicationSlot("vcci_replica_1"), record.id, dry_run=False)
        assert _sql(lab_env, "SELECT count(*) FROM pg_replication_slots") == 1
        done = run(DropReplicationSlot("vcci_replica_1"), record.id, dry_run=False, confirm=record.id)
        assert done.status == "succeeded", done.message
        assert done.entry["identity"].startswith("postgres:vcci_slot_dropper@")
        assert _sql(lab_env, "SELECT count(*) FROM pg_replication_slots") == 0
        assert "db.replication_slot_wal" not in _keys([postgres.gather_replication_slots()])


def test_autovacuum_behind_on_a_busy_table_is_vacuumed_and_reenabled(
    lab: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    with lab.fault("dead-tuples"):
        ev = postgres.gather_vacuum()
        finding = _keys([ev])["db.autovacuum_behind"]
        assert finding.details["tables"] == ["suppliers"] and finding.details["autovacuum_disabled"] == ["suppliers"]
        assert "autovacuum disabled on the table" in finding.summary

        out = run(VacuumAnalyze("suppliers", enable_autovacuum=True), record.id, dry_run=False, confirm=record.id)
        assert out.status == "succeeded", out.message
        assert [c.name for c in out.verification.checks] == [  # type: ignore[union-attr]
            "tables vacuumed and analyzed",
            "autovacuum enabled again",
        ]
        assert _sql(lab_env, "SELECT reloptions IS NULL FROM pg_class WHERE relname = 'suppliers'") is True
        assert "db.autovacuum_behind" not in _keys([postgres.gather_vacuum()])


def test_replica_lag_is_found_with_its_replica_and_bytes(lab: Any, lab_env: dict[str, str]) -> None:
    with lab.fault("replica-lag"):
        ev = postgres.gather_replication()
        row = ev.frame.iloc[0]
        assert row["replica"] == "vcci-replica-1" and row["replay_lag_bytes"] > 1024**2
        finding = _keys([ev])["db.replica_lag"]
        assert finding.details["replicas"] == ["vcci-replica-1"] and "MiB behind" in finding.summary
    assert "db.replica_lag" not in _keys([postgres.gather_replication()])

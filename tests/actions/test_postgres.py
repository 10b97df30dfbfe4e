"""PostgreSQL actions against the lab's real server: dry runs change nothing, confirmed runs fix the fault."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from vcci_nb.actions import (
    ActionFailed,
    ActionRefused,
    CreateIndex,
    SetMaxConnections,
    TerminateSessions,
    VacuumAnalyze,
    emissions_tenant_date_index,
    run,
)
from vcci_nb.record import IncidentRecord

pytestmark = pytest.mark.lab


def _admin(env: dict[str, str]) -> Any:
    return psycopg.connect(env["VCCI_ADMIN_DATABASE_URL"], autocommit=True, application_name="actions-test-admin")


def _app_url(lab: Any, env: dict[str, str]) -> str:
    """vcci_app's URL, with the password the lab generated (contract A: <dir>/state.json)."""
    secrets = json.loads((lab.dir / "state.json").read_text())["secrets"]
    parts = urlsplit(env["VCCI_ADMIN_DATABASE_URL"])
    netloc = f"vcci_app:{secrets['vcci_app']}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _sessions(env: dict[str, str], **where: str) -> set[int]:
    with _admin(env) as conn:
        rows = conn.execute(
            "SELECT pid, usename, application_name FROM pg_stat_activity WHERE backend_type = 'client backend'"
        ).fetchall()
    return {pid for pid, user, app in rows if where.get("user", user) == user and where.get("application", app) == app}


def _index_valid(env: dict[str, str], name: str) -> bool | None:
    with _admin(env) as conn:
        row = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s", (name,)
        ).fetchone()
    return None if row is None else bool(row[0])


def test_terminating_idle_connections_under_pool_exhaustion_lets_the_app_connect_again(
    lab: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    app_url = _app_url(lab, lab_env)
    with lab.fault("pool-exhaustion"):
        with pytest.raises(psycopg.OperationalError, match="too many connections"):
            psycopg.connect(app_url, connect_timeout=5).close()
        held = _sessions(lab_env, user="vcci_app", application="vcci-api")
        assert len(held) >= 20

        # With the runbook's five minutes, the sessions are there but too young: the plan says so,
        # and what it would do at that point and why, instead of a bare "terminate 0 sessions".
        young = run(TerminateSessions(state="idle", min_age_s=300, application="vcci-api"), record.id)
        summary = young.plan.summary  # type: ignore[union-attr]
        assert summary.startswith("terminate 0 idle session(s) for ≥ 300 s of application 'vcci-api'; ")
        assert f"{len(held)} idle session(s) from vcci-api are younger (oldest " in summary
        assert "the 300 s threshold is not reached yet. In about " in summary and "this step would end them" in summary

        def action() -> TerminateSessions:
            return TerminateSessions(state="idle", min_age_s=0, application="vcci-api", user="vcci_app")

        plan_out = run(action(), record.id)  # dry run
        assert plan_out.status == "planned"
        assert {c["pid"] for c in plan_out.plan.changes} == held  # type: ignore[union-attr]
        assert all(c["user"] == "vcci_app" for c in plan_out.plan.changes)  # type: ignore[union-attr]
        assert _sessions(lab_env, user="vcci_app", application="vcci-api") == held

        headless = run(action(), record.id, dry_run=False)  # no confirm
        assert headless.status == "planned"
        assert _sessions(lab_env, user="vcci_app", application="vcci-api") == held

        out = run(action(), record.id, dry_run=False, confirm=record.id)
        assert out.status == "succeeded", out.message
        assert sorted(out.result["terminated"]) == sorted(held)
        assert not (_sessions(lab_env, user="vcci_app", application="vcci-api") & held)
        with psycopg.connect(app_url, connect_timeout=5, application_name="vcci-api") as conn:
            assert conn.execute("SELECT count(*) FROM tenants").fetchone()[0] > 0  # type: ignore[index]
    entry = record.data["actions"][-1]
    assert entry["result"] == "succeeded" and entry["identity"].startswith("postgres:vcci_mitigate")
    assert {r["pid"] for r in entry["plan"]["changes"]} == held
    assert entry["verification"]["ok"] is True


def test_terminate_never_touches_superuser_background_or_its_own_session(
    lab_env: dict[str, str], record: IncidentRecord
) -> None:
    with _admin(lab_env) as su:
        su_pid = su.info.backend_pid
        bg = su.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").fetchone()
        assert bg is not None
        bg_pid = bg[0]
        with pytest.raises(ActionRefused, match="superuser session"):
            run(TerminateSessions(pids=[su_pid]), record.id, dry_run=False, confirm=record.id)
        with pytest.raises(ActionRefused, match="checkpointer process, not a client session"):
            run(TerminateSessions(pids=[bg_pid]), record.id, dry_run=False, confirm=record.id)
        own = TerminateSessions(pids=[])
        own.pids = [own.conn.info.backend_pid]
        with pytest.raises(ActionRefused, match="session doing the terminating"):
            run(own, record.id, dry_run=False, confirm=record.id)

        # A wide filter lists the superuser's session as skipped and never plans it.
        wide = run(TerminateSessions(state=["idle", "active"], min_age_s=0, limit=10_000), record.id)
        planned = {c["pid"] for c in wide.plan.changes}  # type: ignore[union-attr]
        skipped = {s["pid"]: s["reason"] for s in wide.plan.skipped}  # type: ignore[union-attr]
        assert su_pid not in planned and "superuser" in skipped[su_pid]
        assert both_alive(lab_env, su_pid, bg_pid)
    refusals = [e for e in record.data["actions"] if e["result"] == "refused"]
    assert len(refusals) == 3 and all(e["message"] and e["parameters"]["pids"] for e in refusals)


@pytest.fixture(scope="module")
def replication_server() -> Iterator[dict[str, Any]]:
    """A throwaway PostgreSQL with WAL senders (the lab runs with max_wal_senders=0).

    A real replication session needs ``max_wal_senders`` > 0; only this one test needs it, so it gets
    its own small cluster rather than making the shared lab heavier.
    """
    bindir = Path("/usr/lib/postgresql/15/bin")
    if not (bindir / "initdb").exists():
        pytest.skip("PostgreSQL 15 binaries are not installed")
    root = Path(tempfile.mkdtemp(prefix="vcci-nb-repl-"))
    os.chmod(root, 0o755)
    as_pg: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(root, "postgres")
    data = root / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        subprocess.run(
            [*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
        )
        opts = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_wal_senders=3 -c wal_level=replica"
        )
        subprocess.run(
            [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o", opts, "start"],
            check=True,
            capture_output=True,
        )
        base = f"postgresql://%s@127.0.0.1:{port}/postgres"
        with psycopg.connect(base % "postgres", autocommit=True) as su:
            su.execute("CREATE ROLE mitig LOGIN; GRANT pg_signal_backend, pg_read_all_stats TO mitig")
            su.execute("CREATE ROLE repl LOGIN REPLICATION")
        yield {
            "mitigate": base % "mitig",
            "replication": base % "repl" + "?replication=database",
            "admin": base % "postgres",
        }
    finally:
        subprocess.run(
            [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def test_terminate_never_touches_a_replication_session(
    replication_server: dict[str, Any], record: IncidentRecord
) -> None:
    with psycopg.connect(replication_server["replication"], autocommit=True) as walsender:
        wal_pid = walsender.info.backend_pid
        with psycopg.connect(replication_server["admin"], autocommit=True) as su:
            row = su.execute("SELECT backend_type, usename FROM pg_stat_activity WHERE pid = %s", (wal_pid,)).fetchone()
        assert row == ("walsender", "repl")  # not a superuser: pg_signal_backend alone could end it
        url = replication_server["mitigate"]
        with pytest.raises(ActionRefused, match=r"replication \(walsender\) session"):
            run(TerminateSessions(pids=[wal_pid], url=url), record.id, dry_run=False, confirm=record.id)
        wide = run(TerminateSessions(state=["idle", "active"], min_age_s=0, user="repl", url=url), record.id)
        assert wal_pid not in {c["pid"] for c in wide.plan.changes}  # type: ignore[union-attr]
        assert walsender.execute("IDENTIFY_SYSTEM").fetchone() is not None  # still alive


def both_alive(env: dict[str, str], *pids: int) -> bool:
    with _admin(env) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)).fetchall()
    return {r[0] for r in rows} == set(pids)


def test_terminate_long_running_query(lab_env: dict[str, str], record: IncidentRecord) -> None:
    url = lab_env["VCCI_MITIGATION_DATABASE_URL"]
    errors: list[str] = []
    started = threading.Event()

    def sleeper() -> None:
        with psycopg.connect(url, application_name="actions-test-sleeper", autocommit=True) as conn:
            started.set()
            try:
                conn.execute("SELECT pg_sleep(60)")
            except psycopg.Error as exc:
                errors.append(str(exc))

    t = threading.Thread(target=sleeper)
    t.start()
    started.wait(10)
    import time

    time.sleep(1.2)
    try:
        action = TerminateSessions(state="active", min_age_s=1, application="actions-test-sleeper")
        out = run(action, record.id, dry_run=False, confirm=record.id)
        assert out.status == "succeeded", out.message
        assert len(out.result["terminated"]) == 1
        assert "pg_sleep" in out.plan.changes[0]["query"]  # type: ignore[union-attr]
    finally:
        t.join(20)
    assert errors and "terminat" in errors[0]


def test_create_index_after_slow_queries_makes_the_seq_scan_go_away(
    lab: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    with lab.fault("slow-queries"):
        assert _index_valid(lab_env, "idx_emissions_tenant_date") is None
        dry = run(emissions_tenant_date_index(), record.id)
        assert dry.status == "planned" and "CREATE INDEX CONCURRENTLY" in dry.plan.summary  # type: ignore[union-attr]
        assert any("Seq Scan" in line for line in dry.plan.details["explain_before"])  # type: ignore[union-attr]
        assert _index_valid(lab_env, "idx_emissions_tenant_date") is None

        assert "as vcci_index_builder (connections.postgres_index_builder)" in dry.plan.summary  # type: ignore[union-attr]
        out = run(emissions_tenant_date_index(), record.id, dry_run=False, confirm=record.id)
        assert out.status == "succeeded", out.message
        assert out.entry["identity"].startswith("postgres:vcci_index_builder@")
        assert _index_valid(lab_env, "idx_emissions_tenant_date") is True
        checks = {c.name: c for c in out.verification.checks}  # type: ignore[union-attr]
        assert checks["probe query uses the index"].ok
        assert not any("Seq Scan" in line for line in out.result["explain_after"])

        again = run(emissions_tenant_date_index(), record.id, dry_run=False, confirm=record.id)
        assert again.status == "planned" and "already exists" in again.message


def test_create_index_drops_an_invalid_leftover_first(lab_env: dict[str, str], record: IncidentRecord) -> None:
    with _admin(lab_env) as su:
        su.execute("DROP TABLE IF EXISTS actions_test_dups")
        su.execute("CREATE TABLE actions_test_dups (x int)")
        su.execute("INSERT INTO actions_test_dups SELECT 1 FROM generate_series(1, 10)")
        su.execute("ALTER TABLE actions_test_dups OWNER TO vcci_owner")
        with pytest.raises(psycopg.errors.UniqueViolation):
            su.execute("CREATE UNIQUE INDEX CONCURRENTLY idx_actions_test_x ON actions_test_dups (x)")
        try:
            assert _index_valid(lab_env, "idx_actions_test_x") is False  # the failed build's leftover
            action = CreateIndex("actions_test_dups", ["x"], "idx_actions_test_x")
            dry = run(action, record.id)
            assert any("INVALID" in w for w in dry.plan.warnings)  # type: ignore[union-attr]
            assert _index_valid(lab_env, "idx_actions_test_x") is False
            out = run(
                CreateIndex("actions_test_dups", ["x"], "idx_actions_test_x"),
                record.id,
                dry_run=False,
                confirm=record.id,
            )
            assert out.status == "succeeded" and out.result["dropped_invalid_first"] is True
            assert _index_valid(lab_env, "idx_actions_test_x") is True
        finally:
            su.execute("DROP TABLE IF EXISTS actions_test_dups")


def test_max_connections_is_written_and_reported_pending_restart(
    lab_env: dict[str, str], record: IncidentRecord
) -> None:
    def auto_conf_value(su: Any) -> Any:
        row = su.execute(
            "SELECT setting FROM pg_file_settings WHERE name = 'max_connections' "
            "AND sourcefile LIKE '%%postgresql.auto.conf'"
        ).fetchone()
        return None if row is None else row[0]

    with _admin(lab_env) as su:
        current = int(su.execute("SHOW max_connections").fetchone()[0])  # type: ignore[index]
        # The lab loads parameters/rbac/postgres.sql: the mitigation role's grants are those.
        try:
            dry = run(SetMaxConnections(current + 50), record.id)
            assert any("restart" in w for w in dry.plan.warnings)  # type: ignore[union-attr]
            assert auto_conf_value(su) is None
            out = run(SetMaxConnections(current + 50), record.id, dry_run=False, confirm=record.id)
            assert out.status == "succeeded", out.message
            assert out.entry["identity"].startswith("postgres:vcci_mitigate@")
            assert auto_conf_value(su) == str(current + 50)
            checks = {c.name: c for c in out.verification.checks}  # type: ignore[union-attr]
            assert checks["written to postgresql.auto.conf"].ok
            assert "pending_restart=True" in checks["new value pending restart"].detail
            assert int(su.execute("SHOW max_connections").fetchone()[0]) == current  # type: ignore[index]
        finally:
            su.execute("ALTER SYSTEM RESET max_connections")
            su.execute("SELECT pg_reload_conf()")
    with pytest.raises(ActionRefused, match="outside"):
        run(SetMaxConnections(1), record.id, dry_run=False, confirm=record.id)


def test_vacuum_analyze_one_table(lab_env: dict[str, str], record: IncidentRecord) -> None:
    def last_vacuum() -> Any:
        with _admin(lab_env) as conn:
            return conn.execute("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'tenants'").fetchone()

    before = last_vacuum()
    dry = run(VacuumAnalyze("tenants"), record.id)
    assert dry.status == "planned" and dry.plan.changes[0]["table"] == "public.tenants"  # type: ignore[union-attr]
    assert last_vacuum() == before
    assert "as vcci_maintainer (connections.postgres_maintainer)" in dry.plan.summary  # type: ignore[union-attr]
    out = run(VacuumAnalyze("tenants"), record.id, dry_run=False, confirm=record.id)
    assert out.status == "succeeded", out.message
    assert out.entry["identity"].startswith("postgres:vcci_maintainer@")  # its own identity, not the mitigation role
    assert last_vacuum() != before
    with pytest.raises(ActionRefused, match="plain SQL identifier"):
        run(VacuumAnalyze("tenants; DROP TABLE tenants"), record.id)


def test_create_index_waits_for_older_transactions_only_as_long_as_allowed(
    lab_env: dict[str, str], record: IncidentRecord
) -> None:
    """A concurrent build waits for every older transaction; behind one that never ends it must
    give up after ``wait_s``, drop its invalid leftover and say why, not hang the notebook."""
    with _admin(lab_env) as su:
        su.execute("DROP TABLE IF EXISTS actions_test_wait")
        su.execute("CREATE TABLE actions_test_wait (x int)")
        su.execute("INSERT INTO actions_test_wait SELECT g FROM generate_series(1, 100) g")
        su.execute("ALTER TABLE actions_test_wait OWNER TO vcci_owner")
        su.execute("GRANT SELECT ON actions_test_wait TO vcci_app")  # the holder is an application session
    # In the same database: a concurrent build waits only for its own database's transactions.
    holder = psycopg.connect(lab_env["VCCI_LAB_APP_DATABASE_URL"], application_name="actions-test-holder")
    try:
        # An open REPEATABLE READ transaction keeps its snapshot (xmin) between statements, as a
        # long report query would; a READ COMMITTED one idle between statements would not block.
        holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        holder.execute("SELECT count(*) FROM actions_test_wait")
        dry = run(CreateIndex("actions_test_wait", ["x"], "idx_actions_test_wait", wait_s=2), record.id)
        assert any("open transaction" in w for w in dry.plan.warnings), dry.plan.warnings  # type: ignore[union-attr]
        with pytest.raises(ActionFailed, match=r"did not finish within 2 s") as failed:
            run(
                CreateIndex("actions_test_wait", ["x"], "idx_actions_test_wait", wait_s=2),
                record.id,
                dry_run=False,
                confirm=record.id,
            )
        assert "postgres.terminate" in str(failed.value)
        assert _index_valid(lab_env, "idx_actions_test_wait") is not True
        assert record.data["actions"][-1]["result"] == "failed"
        holder.rollback()
        again = run(
            CreateIndex("actions_test_wait", ["x"], "idx_actions_test_wait", wait_s=2),
            record.id,
            dry_run=False,
            confirm=record.id,
        )
        assert again.status == "succeeded", again.message
        assert _index_valid(lab_env, "idx_actions_test_wait") is True
    finally:
        holder.close()
        with _admin(lab_env) as su:
            su.execute("DROP TABLE IF EXISTS actions_test_wait")

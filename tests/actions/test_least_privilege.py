"""The read-only identities (DATABASE_URL's vcci_diag, REDIS_URL's vcci-diag, context vcci-lab) are refused every write.

Each write the actions make is tried directly as the read-only identity, and one action of each
system is run through the gateway with it: the refusal lands in the incident record.

The PostgreSQL mitigation role (vcci_mitigate, parameters/rbac/postgres.sql as the lab loads it)
terminates sessions and sets max_connections, and PostgreSQL refuses it the data and the schema;
the actions that need more run as their own identities (tests/actions/test_postgres.py and
test_pg_depth.py check each one's audit entry names it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import yaml

from vcci_nb.actions import ActionRefused, ClearCachePattern, TerminateSessions, VacuumAnalyze, run
from vcci_nb.record import IncidentRecord

ROOT = Path(__file__).resolve().parents[2]

PG_WRITES = [
    "INSERT INTO tenants (slug, name, plan) VALUES ('lp-test', 'x', 'free')",
    "UPDATE tenants SET plan = plan WHERE id = 1",
    "DELETE FROM emissions WHERE id = -1",
    "CREATE INDEX CONCURRENTLY idx_lp_test ON emissions (supplier_id)",
    "CREATE TABLE lp_test (x int)",
    "ALTER SYSTEM SET max_connections = 500",
    "SELECT pg_reload_conf()",
    "SELECT pg_terminate_backend({victim})",
    "SELECT pg_cancel_backend({victim})",
]


@pytest.mark.lab
@pytest.mark.parametrize("statement", PG_WRITES)
def test_postgres_diagnostics_role_is_refused_every_write(lab_env: dict[str, str], statement: str) -> None:
    # a session of another (non-superuser) role to aim signals at
    with psycopg.connect(lab_env["VCCI_MITIGATION_DATABASE_URL"], autocommit=True) as victim:
        with (
            psycopg.connect(lab_env["DATABASE_URL"], autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(statement.format(victim=victim.info.backend_pid))  # type: ignore[arg-type]
        assert victim.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.lab
def test_postgres_diagnostics_role_cannot_vacuum(lab_env: dict[str, str]) -> None:
    # VACUUM of a table one does not own is skipped with a WARNING rather than an error.
    with psycopg.connect(lab_env["DATABASE_URL"], autocommit=True) as conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("VACUUM (ANALYZE) tenants")
    assert any("skipping" in n for n in notices), notices


@pytest.mark.lab
def test_terminate_through_the_gateway_as_diag_is_refused_and_audited(
    lab: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    with lab.fault("pool-exhaustion"):
        action = TerminateSessions(state="idle", min_age_s=0, user="vcci_app", url=lab_env["DATABASE_URL"])
        with pytest.raises(ActionRefused, match=r"must be a member of .*pg_signal_backend"):
            run(action, record.id, dry_run=False, confirm=record.id)
    entry = record.data["actions"][-1]
    assert entry["result"] == "refused" and entry["identity"].startswith("postgres:vcci_diag")
    assert "use the mitigation one" in entry["message"]


#: What the mitigation role must never do: change or read the data, change the schema, or become a
#: role that may. Each runs in a transaction that is rolled back, so that on grants that wrongly
#: allowed it (the owner's membership, as before issue 16) the test fails without harming the lab.
MITIGATION_REFUSED = [
    "DELETE FROM emissions WHERE id = -1",
    "TRUNCATE emissions",
    "DROP TABLE emissions",
    "CREATE TABLE lp_mitigate (x int)",
    "ALTER TABLE emissions ADD COLUMN lp_x int",
    "ALTER TABLE emissions SET (autovacuum_enabled = false)",
    "UPDATE tenants SET plan = plan WHERE id = 1",
    "INSERT INTO tenants (slug, name, plan, created_at) VALUES ('lp-test', 'x', 'free', now())",
    "SELECT count(*) FROM emissions",
    "CREATE INDEX idx_lp_mitigate ON emissions (supplier_id)",
    "SET ROLE vcci_owner",
    "SET ROLE vcci_app",
    "GRANT vcci_owner TO vcci_mitigate",
    "SELECT vcci_ops.drop_inactive_replication_slot('lp_none')",  # the slot dropper's, not this role's
]


@pytest.mark.lab
@pytest.mark.parametrize("statement", MITIGATION_REFUSED)
def test_postgres_mitigation_role_is_refused_the_data_and_the_schema(lab_env: dict[str, str], statement: str) -> None:
    with psycopg.connect(lab_env["VCCI_MITIGATION_DATABASE_URL"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("vcci_mitigate",)
        try:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
                conn.execute(statement)  # type: ignore[arg-type]
        finally:
            conn.rollback()
    assert refused.value.sqlstate == "42501"


@pytest.mark.lab
def test_postgres_mitigation_role_may_not_vacuum_and_the_action_says_whose_job_it_is(
    lab_env: dict[str, str], record: IncidentRecord
) -> None:
    with pytest.raises(ActionRefused, match=r"may not vacuum 'tenants'.*connections\.postgres_maintainer"):
        run(VacuumAnalyze("tenants", url=lab_env["VCCI_MITIGATION_DATABASE_URL"]), record.id)
    assert record.data["actions"][-1]["result"] == "refused"


@pytest.mark.lab
def test_postgres_mitigation_role_terminates_and_reads_back_settings(
    lab_env: dict[str, str], record: IncidentRecord
) -> None:
    """What it may do, end to end as that role (the other identities: test_postgres, test_pg_depth)."""
    with psycopg.connect(lab_env["VCCI_LAB_APP_DATABASE_URL"], autocommit=True, application_name="lp-victim") as v:
        victim = v.info.backend_pid
        out = run(
            TerminateSessions(state="idle", min_age_s=0, application="lp-victim"),
            record.id,
            dry_run=False,
            confirm=record.id,
        )
        assert out.status == "succeeded", out.message
        assert out.entry["identity"].startswith("postgres:vcci_mitigate@") and out.result["terminated"] == [victim]
    with psycopg.connect(lab_env["VCCI_MITIGATION_DATABASE_URL"], autocommit=True) as conn:
        # ALTER SYSTEM on max_connections only, and read back what the files say.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER SYSTEM SET work_mem = '1GB'")
        assert conn.execute("SELECT count(*) FROM pg_file_settings").fetchone()[0] > 0  # type: ignore[index]


REDIS_WRITES: list[tuple[str, ...]] = [
    ("SET", "lp:test", "x"),
    ("DEL", "cache:emissions:1"),
    ("UNLINK", "cache:emissions:1"),
    ("EXPIRE", "cache:emissions:1", "1"),
    ("FLUSHDB",),
    ("FLUSHALL",),
    ("KEYS", "*"),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("DEBUG", "SLEEP", "0"),
]


@pytest.mark.lab
@pytest.mark.parametrize("command", REDIS_WRITES, ids=lambda c: " ".join(c[:2]))
def test_redis_diagnostics_user_is_refused_every_write(lab_env: dict[str, str], command: tuple[str, ...]) -> None:
    r = redis.Redis.from_url(lab_env["REDIS_URL"], decode_responses=True)
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.execute_command(*command)
    finally:
        r.close()


@pytest.mark.lab
def test_clear_pattern_through_the_gateway_as_diag_is_refused_and_audited(
    lab_env: dict[str, str], record: IncidentRecord
) -> None:
    r = redis.Redis.from_url(lab_env["VCCI_MITIGATION_REDIS_URL"], decode_responses=True)
    r.set("cache:lp-test:1", "x")
    try:
        with pytest.raises(ActionRefused, match=r"(?i)no permissions"):
            run(
                ClearCachePattern("cache:lp-test:*", url=lab_env["REDIS_URL"]),
                record.id,
                dry_run=False,
                confirm=record.id,
            )
        assert r.get("cache:lp-test:1") == "x"
    finally:
        r.delete("cache:lp-test:1")
        r.close()
    entry = record.data["actions"][-1]
    assert entry["result"] == "refused" and entry["identity"] == "redis:vcci-diag"


# -- the shipped definitions --------------------------------------------------------------------


def _rbac() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ROOT / "parameters/rbac/kubernetes.yaml").read_text()) if d]


WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}


def test_kubernetes_triage_roles_are_read_only_and_never_see_secrets() -> None:
    triage = [d for d in _rbac() if d["kind"] in ("Role", "ClusterRole") and "triage" in d["metadata"]["name"]]
    assert len(triage) == 2
    for role in triage:
        for rule in role["rules"]:
            assert not set(rule["verbs"]) & WRITE_VERBS, rule
            assert "secrets" not in rule["resources"] and "*" not in rule["resources"], rule
            assert "pods/exec" not in rule["resources"]


def test_kubernetes_mitigation_role_has_only_the_verbs_the_actions_use() -> None:
    [role] = [d for d in _rbac() if d["kind"] == "Role" and d["metadata"]["name"] == "vcci-nb-mitigate"]
    granted = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    for _, resource, verb in granted:
        assert resource not in ("secrets", "*") and verb != "*"
        assert verb not in ("update", "deletecollection", "escalate", "bind", "impersonate")
        assert verb != "create" or resource == "pods/exec"
    # what vcci_nb.actions calls (kube.py, traffic.py, disk.py)
    used = {
        ("apps", "deployments", "patch"),
        ("apps", "replicasets", "list"),
        ("", "pods", "delete"),
        ("", "pods/exec", "create"),
        ("networking.k8s.io", "ingresses", "patch"),
        ("", "configmaps", "patch"),
        ("", "persistentvolumeclaims", "patch"),
    }
    assert used <= granted
    assert role["metadata"]["namespace"] == "vcci-production"


def test_shipped_redis_acl_diag_line_matches_the_contract() -> None:
    lines = [ln for ln in (ROOT / "parameters/rbac/redis-acl.conf").read_text().splitlines() if ln.startswith("user ")]
    diag = next(ln for ln in lines if ln.startswith("user vcci-diag "))
    assert "-@all" in diag and "+scan" in diag and "+info" in diag and "+slowlog|get" in diag
    for forbidden in ("+keys", "+flushdb", "+flushall", "+@write", "+@all", "+set", "+del"):
        assert forbidden not in diag.split()

"""Table maintenance: :class:`VacuumAnalyze` (seed 4.1, bloat and stale statistics)."""

from __future__ import annotations

import time
from typing import Any

from vcci_nb.actions._model import Plan, Verification
from vcci_nb.actions.postgres._base import _ident, _PostgresAction
from vcci_nb.config import Profile
from vcci_nb.errors import ActionRefused


class VacuumAnalyze(_PostgresAction):
    """``VACUUM (ANALYZE)`` of one table, or of every table the role may vacuum (seed 4.1, bloat).

    Runs as its own identity, ``connections.postgres_maintainer`` (``vcci_maintainer``): before
    PostgreSQL 17 only a table's owner (or the database's owner, or a superuser) may VACUUM it, and
    VACUUM cannot run in a function or transaction, so no narrow grant exists; from 17 on the role
    gets the MAINTAIN privilege instead of the owner's membership (``parameters/rbac/postgres.sql``).
    Re-enabling autovacuum (``ALTER TABLE … RESET``) still needs the owner.
    """

    name = "postgres.vacuum_analyze"
    connection = "postgres_maintainer"

    def __init__(
        self,
        table: str | None = None,
        *,
        freeze: bool = False,
        enable_autovacuum: bool = False,
        url: str | None = None,
        profile: Profile | str | None = None,
    ) -> None:
        super().__init__(url=url, profile=profile)
        self.table = table
        self.freeze = bool(freeze)
        self.enable_autovacuum = bool(enable_autovacuum)

    @property
    def target(self) -> str:
        return self.database_target() + (f"/table/{self.table}" if self.table else "/all-tables")

    def parameters(self) -> dict[str, Any]:
        return {"table": self.table, "freeze": self.freeze, "enable_autovacuum": self.enable_autovacuum}

    def preflight(self) -> None:
        if self.table is not None:
            _ident(self.table, "table")

    def _tables(self) -> list[dict[str, Any]]:
        # MAINTAIN (PostgreSQL 17+) lets a role that owns nothing VACUUM and ANALYZE a table.
        maintain = int(self.scalar("SELECT current_setting('server_version_num')::int")) >= 170000
        may = "has_table_privilege(c.oid, 'MAINTAIN')" if maintain else "false"
        rows = self.rows(
            """
            SELECT s.schemaname AS schema, s.relname AS table, s.n_live_tup AS live_rows,
                   s.n_dead_tup AS dead_rows, s.last_vacuum, s.last_autovacuum, s.last_analyze,
                   pg_has_role(c.relowner, 'USAGE') AS owns,
                   pg_has_role(c.relowner, 'USAGE') OR """
            + may
            + """ AS may_vacuum, s.relid, age(c.relfrozenxid)::bigint AS xid_age,
                   coalesce((SELECT o.option_value::bool FROM pg_options_to_table(c.reloptions) o
                              WHERE o.option_name = 'autovacuum_enabled'), true) AS autovacuum_enabled
            FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
            ORDER BY s.n_dead_tup DESC, s.relname
            """
        )
        if self.table is not None:
            rows = [r for r in rows if r["table"] == self.table]
        return rows

    def plan(self) -> Plan:
        rows = self._tables()
        if self.table is not None and not rows:
            raise ActionRefused(f"no table {self.table!r} in this database; check the name with \\dt")
        targets = [r for r in rows if r["may_vacuum"]]
        skipped = [
            {
                "table": f"{r['schema']}.{r['table']}",
                "reason": "neither owned by this role nor granted MAINTAIN (VACUUM would skip it)",
            }
            for r in rows
            if not r["may_vacuum"]
        ]
        if self.table is not None and not targets:
            raise ActionRefused(
                f"this role may not vacuum {self.table!r} (VACUUM would skip it); use the maintainer identity "
                "(connections.postgres_maintainer, parameters/rbac/postgres.sql)"
            )
        changes = [
            {
                "table": f"{r['schema']}.{r['table']}",
                "live_rows": r["live_rows"],
                "dead_rows": r["dead_rows"],
                "last_vacuum": str(r["last_vacuum"] or r["last_autovacuum"] or "never"),
                "last_analyze": str(r["last_analyze"] or "never"),
                "xid_age": r["xid_age"],
                "autovacuum": "enabled"
                if r["autovacuum_enabled"]
                else "disabled on the table" + (" → RESET" if self.enable_autovacuum else ""),
            }
            for r in targets
        ]
        verb = "VACUUM (FREEZE, ANALYZE)" if self.freeze else "VACUUM (ANALYZE)"
        disabled = [r for r in targets if self.enable_autovacuum and not r["autovacuum_enabled"]]
        reenable = [[r["schema"], r["table"]] for r in disabled if r["owns"]]
        warnings = ["VACUUM reads whole tables: expect extra I/O while it runs (it does not block reads or writes)"]
        not_owned = [f"{r['schema']}.{r['table']}" for r in disabled if not r["owns"]]
        if not_owned:
            warnings.append(
                f"autovacuum stays disabled on {', '.join(not_owned)}: re-enabling it (ALTER TABLE … RESET "
                "(autovacuum_enabled)) needs the table's owner, which this identity is not"
            )
        identity = self.identity_note()
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"{verb} {len(targets)} table(s)"
            + (f"; re-enable autovacuum on {', '.join('.'.join(t) for t in reenable)}" if reenable else "")
            + f", {identity}",
            changes=changes,
            skipped=skipped,
            noop=not targets,
            warnings=warnings,
            details={
                "tables": [[r["schema"], r["table"]] for r in targets],
                "reenable": reenable,
                "identity": identity,
            },
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        from psycopg import sql

        done = []
        started = self.scalar("SELECT now()")
        self.conn.execute("SET statement_timeout = 0")
        for schema, table in plan.details.get("reenable") or []:
            self.conn.execute(
                sql.SQL("ALTER TABLE {}.{} RESET (autovacuum_enabled)").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            )
        verb = sql.SQL("VACUUM (FREEZE, ANALYZE) {}.{}" if self.freeze else "VACUUM (ANALYZE) {}.{}")
        for schema, table in plan.details["tables"]:
            self.conn.execute(verb.format(sql.Identifier(schema), sql.Identifier(table)))
            done.append(f"{schema}.{table}")
        self.conn.execute("RESET statement_timeout")
        return {"vacuumed": done, "started": started.isoformat()}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        # Statistics are flushed when a backend goes idle: look from a fresh snapshot, with a short wait.
        wanted = set(result["vacuumed"])
        fresh: set[str] = set()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            rows = self.rows(
                "SELECT schemaname || '.' || relname AS t FROM pg_stat_user_tables "
                "WHERE last_vacuum >= %s::timestamptz AND last_analyze >= %s::timestamptz",
                (result["started"], result["started"]),
            )
            self.conn.execute("SELECT pg_stat_clear_snapshot()")
            fresh = {r["t"] for r in rows} & wanted
            if fresh == wanted:
                break
            time.sleep(0.2)
        missing = sorted(wanted - fresh)
        v = Verification().add(
            "tables vacuumed and analyzed",
            not missing,
            f"{len(fresh)} of {len(wanted)} show a fresh last_vacuum" + (f"; missing {missing}" if missing else ""),
        )
        if plan.details.get("reenable"):
            still = [
                f"{r['schema']}.{r['table']}"
                for r in self._tables()
                if [r["schema"], r["table"]] in plan.details["reenable"] and not r["autovacuum_enabled"]
            ]
            v.add(
                "autovacuum enabled again", not still, f"still disabled on {still}" if still else "reset on every table"
            )
        return v

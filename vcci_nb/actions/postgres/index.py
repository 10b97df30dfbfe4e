"""Index builds: :class:`CreateIndex` (``CREATE INDEX CONCURRENTLY``, checked for validity afterwards)."""

from __future__ import annotations

import re
from typing import Any

from vcci_nb.actions._model import Plan, Verification
from vcci_nb.actions.postgres._base import _ident, _PostgresAction
from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ActionRefused, ConfigError
from vcci_nb.redact import redact


class CreateIndex(_PostgresAction):
    """``CREATE INDEX CONCURRENTLY`` (seed scenario 4), checked for validity afterwards.

    Concurrent builds do not block writes but can fail half-way (a deadlock, a cancelled
    statement, a unique violation), leaving an *invalid* index that slows writes and helps no
    query. So the verification reads ``pg_index.indisvalid``, and a failed build drops its invalid
    leftover and says so.

    Args:
        table, columns, index_name: what to build.
        probe_query: a query that should use the index; its EXPLAIN is shown in the plan (before)
            and in the verification (after), so the seq scan can be seen to go away.
        wait_s: how long the build may wait for older transactions (``lock_timeout``). A
            concurrent build waits for every transaction that started before it; behind a query
            running for an hour it would wait an hour. The plan lists those transactions.
    """

    name = "postgres.create_index"
    #: Its own identity: CREATE INDEX needs the table's owner, which the mitigation role is not.
    connection = "postgres_index_builder"

    def __init__(
        self,
        table: str,
        columns: list[str] | tuple[str, ...],
        index_name: str,
        *,
        probe_query: str | None = None,
        wait_s: float = 120.0,
        url: str | None = None,
        profile: Profile | str | None = None,
    ) -> None:
        super().__init__(url=url, profile=profile)
        self.table = table
        self.columns = list(columns)
        self.index_name = index_name
        self.probe_query = probe_query
        self.wait_s = wait_s

    @property
    def target(self) -> str:
        return self.database_target() + f"/table/{self.table}/index/{self.index_name}"

    def parameters(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "columns": self.columns,
            "index_name": self.index_name,
            "probe": self.probe_query,
            "wait_s": self.wait_s,
        }

    def preflight(self) -> None:
        _ident(self.table, "table")
        _ident(self.index_name, "index name")
        if not self.columns:
            raise ActionRefused("give at least one column to index")
        for c in self.columns:
            _ident(c, "column")
        if self.probe_query is not None and not re.match(r"(?is)^\s*select\b", self.probe_query):
            raise ActionRefused("probe_query must be a SELECT (it is only EXPLAINed, never run)")

    def _statement(self) -> Any:
        from psycopg import sql

        return sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} ({})").format(
            sql.Identifier(self.index_name),
            sql.Identifier(self.table),
            sql.SQL(", ").join(sql.Identifier(c) for c in self.columns),
        )

    def _index(self) -> dict[str, Any] | None:
        rows = self.rows(
            "SELECT c.relname AS name, i.indisvalid AS valid, i.indisready AS ready, t.relname AS table, "
            "pg_get_indexdef(i.indexrelid) AS definition "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE c.relname = %s AND c.relnamespace = to_regnamespace(current_schema())::oid",
            (self.index_name,),
        )
        return rows[0] if rows else None

    def _explain(self) -> list[str]:
        if not self.probe_query:
            return []
        lines = self.rows("EXPLAIN " + self.probe_query)
        return [str(next(iter(r.values()))) for r in lines]

    def plan(self) -> Plan:
        exists = self.scalar("SELECT to_regclass(%s) IS NOT NULL", (self.table,))
        if not exists:
            raise ActionRefused(f"no table {self.table!r} in schema {self.scalar('SELECT current_schema()')}")
        cols = {
            r["attname"]
            for r in self.rows(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (self.table,),
            )
        }
        missing = [c for c in self.columns if c not in cols]
        if missing:
            raise ActionRefused(f"table {self.table} has no column(s) {missing}; its columns: {sorted(cols)}")
        found = self._index()
        warnings = ["the build reads the whole table; it does not block writes but takes a while on big tables"]
        noop = False
        if found is not None and found["table"] != self.table:
            raise ActionRefused(f"an index named {self.index_name} already exists on table {found['table']}")
        if found is not None and found["valid"]:
            noop = True
        elif found is not None:
            warnings.insert(0, f"an INVALID index {self.index_name} exists (a failed build); it will be dropped first")
        # Other roles' transactions are visible with pg_read_all_stats, else through the diagnostics identity.
        reader = self.reader
        own = self._own_pids()
        older = self.rows(
            "SELECT pid, usename AS user, application_name AS application, "
            "round(extract(epoch FROM now() - xact_start))::int AS xact_age_s, left(query, 120) AS query "
            "FROM pg_stat_activity WHERE xact_start IS NOT NULL AND NOT (pid = ANY(%s)) "
            "AND datname = current_database() "
            "AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) ORDER BY xact_start LIMIT 10",
            (own,),
            conn=reader,
        )
        for t in older:
            t["query"] = redact(str(t["query"] or ""))
        if older and not noop:
            warnings.insert(
                0,
                f"{len(older)} open transaction(s) started before the build (oldest {older[0]['xact_age_s']} s, "
                f"pid {older[0]['pid']}); the build waits for them, at most {self.wait_s:g} s "
                "(end long-running queries first with postgres.terminate if they will not finish)",
            )
        est = self.scalar("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", (self.table,))
        statement = self._statement().as_string(self.conn)
        identity = self.identity_note()
        return Plan(
            action=self.name,
            target=self.target,
            summary=(f"index {self.index_name} already exists and is valid" if noop else statement) + f", {identity}",
            changes=[{"statement": statement, "table_rows_estimate": est}],
            warnings=warnings,
            noop=noop,
            details={
                "explain_before": self._explain(),
                "invalid_leftover": found is not None and not found["valid"],
                "older_transactions": older,
                "identity": identity,
            },
        )

    def _drop_invalid(self) -> bool:
        from psycopg import sql

        found = self._index()
        if found is not None and not found["valid"]:
            self.conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(self.index_name)))
            return True
        return False

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        dropped_before = self._drop_invalid() if plan.details.get("invalid_leftover") else False
        self.conn.execute("SET statement_timeout = 0")
        self.conn.execute(f"SET lock_timeout = '{int(self.wait_s * 1000)}ms'")
        try:
            self.conn.execute(self._statement())
        except Exception as exc:
            try:
                dropped = self._drop_invalid()
            except Exception:
                dropped = False
            note = " Its invalid leftover was dropped." if dropped else ""
            if "lock timeout" in str(exc):
                older = plan.details.get("older_transactions") or []
                pids = ", ".join(str(t["pid"]) for t in older) or "see pg_stat_activity"
                note += (
                    f" Older transactions (pids {pids}) did not finish within {self.wait_s:g} s; end them "
                    "(postgres.terminate) or let them finish. A leftover invalid index is dropped on the next run."
                )
            raise ConfigError(
                f"CREATE INDEX CONCURRENTLY {self.index_name} failed: {str(exc).strip().splitlines()[0]}.{note} "
                "Look at the cause, then run the action again."
            ) from exc
        finally:
            self.conn.execute("RESET statement_timeout")
            self.conn.execute("RESET lock_timeout")
        self.conn.execute(f"ANALYZE {_ident(self.table, 'table')}")
        return {"created": self.index_name, "dropped_invalid_first": dropped_before}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        v = Verification()
        found = self._index()
        if found is None:
            return v.add("index exists", False, f"{self.index_name} is not there")
        if not found["valid"]:
            dropped = self._drop_invalid()
            return v.add(
                "index valid",
                False,
                f"{self.index_name} is INVALID" + ("; it was dropped, run the action again" if dropped else ""),
            )
        v.add("index valid", True, str(found["definition"]))
        if self.probe_query:
            after = self._explain()
            text = "\n".join(after)
            uses = self.index_name in text
            seq = "Seq Scan" in text
            v.add(
                "probe query uses the index",
                uses and not seq,
                ("uses " + self.index_name if uses else "does not use " + self.index_name)
                + ("; still a Seq Scan" if seq else ""),
            )
            result["explain_after"] = after
        return v


def emissions_tenant_date_index(**kwargs: Any) -> CreateIndex:
    """The seed's worked example: ``idx_emissions_tenant_date ON emissions(tenant_id, calculated_at)``."""
    return CreateIndex(
        "emissions",
        ["tenant_id", "calculated_at"],
        "idx_emissions_tenant_date",
        probe_query=(
            "SELECT sum(kgco2e) FROM emissions WHERE tenant_id = 7 AND calculated_at >= now() - interval '30 days'"
        ),
        **kwargs,
    )


def expected_index(profile: Profile | str | None = None, *, which: int = 0, **kwargs: Any) -> CreateIndex:
    """Build the profile's ``postgres.expected_indexes[which]`` (the runbook's index) CONCURRENTLY.

    The lab's is the seed's ``idx_emissions_tenant_date ON emissions(tenant_id, calculated_at)``;
    another platform names its own table, index and columns, and an optional ``probe_query`` whose
    plan must use the index afterwards.
    """
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    listed = prof.get("postgres.expected_indexes") or []
    if not listed or which >= len(listed):
        raise ConfigError(
            f"profile {prof.name!r} has no postgres.expected_indexes[{which}]; add "
            '{table: ..., name: ..., columns: "a, b"} to its YAML file'
        )
    spec = listed[which]
    columns = [c.strip() for c in str(spec["columns"]).split(",") if c.strip()]
    probe = spec.get("probe_query")
    return CreateIndex(
        str(spec["table"]),
        columns,
        str(spec["name"]),
        probe_query=str(probe) if probe else None,
        profile=profile,
        **kwargs,
    )

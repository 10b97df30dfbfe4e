"""PostgreSQL emergency actions of seed 4.1 and 4.2, guarded.

- :class:`TerminateSessions`: kill long-running queries and idle connections by age, application,
  user and state. Never a superuser's session, never a replication (walsender) or background
  process, never the session doing the terminating. The plan lists the exact PIDs, users,
  applications and queries; execution only touches planned sessions that still match (same PID
  *and* same backend start, so a PID reused since the plan is left alone).
- :class:`SetMaxConnections`: ``ALTER SYSTEM SET max_connections``, then ``pg_reload_conf()``;
  the verification reports ``pending_restart``, because this setting only applies after a restart.
- :class:`VacuumAnalyze`: ``VACUUM (ANALYZE)`` of one table or every table the role may vacuum.
- :class:`CreateIndex`: ``CREATE INDEX CONCURRENTLY`` (the seed's ``idx_emissions_tenant_date`` is
  :func:`emissions_tenant_date_index`); checks ``indisvalid`` afterwards and drops an invalid
  leftover of a failed build, reporting it.

All of them connect with the mitigation role (``VCCI_MITIGATION_DATABASE_URL``, ``vcci_mitigate``:
``pg_signal_backend``, member of the table owner, ``ALTER SYSTEM`` on ``max_connections``).
"""

from __future__ import annotations

import re
import time
from typing import Any

from vcci_nb.actions._connect import pg_connect, postgres_url
from vcci_nb.actions._model import Action, Plan, Verification, real_number, whole_number
from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ActionRefused, ConfigError
from vcci_nb.redact import redact

_STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class _PostgresAction(Action):
    """Shared connection handling: one autocommit connection per action, opened on first use."""

    def __init__(self, *, url: str | None = None, profile: Profile | str | None = None) -> None:
        self._url_arg = url
        self._profile = profile
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = pg_connect(postgres_url(self._url_arg, self._profile))
        return self._conn

    def rows(self, sql: str, params: Any = None, *, conn: Any = None) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with (conn or self.conn).cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def scalar(self, sql: str, params: Any = None) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return row[0] if row else None

    def identity(self) -> str:
        return f"postgres:{self.scalar('SELECT current_user')}@{self.scalar('SELECT current_database()')}"

    def database_target(self) -> str:
        try:
            return f"postgres/{self.scalar('SELECT current_database()')}"
        except Exception:
            return "postgres"

    def close(self) -> None:
        for c in (self._conn, getattr(self, "_reader", None)):
            if c is not None and not c.closed:
                c.close()


def _ident(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ActionRefused(
            f"{what} {name!r} is not a plain SQL identifier (letters, digits, underscore); "
            "give the bare name, e.g. emissions."
        )
    return name


_ACTIVITY_SQL = """
SELECT a.pid, a.backend_start, a.usename AS "user", a.application_name AS application,
       host(a.client_addr) AS client, a.datname AS database, a.state, a.backend_type,
       round(extract(epoch FROM now() - CASE WHEN a.state = 'active' THEN a.query_start
                                                 ELSE a.state_change END)::numeric, 1)::float AS age_s,
       left(a.query, 300) AS query,
       coalesce(r.rolsuper, false) AS superuser,
       a.pid = ANY(%s) AS self,
       coalesce(r.rolreplication, false) AS replication_role
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid IS NOT NULL
ORDER BY age_s DESC NULLS LAST, a.pid
"""


class TerminateSessions(_PostgresAction):
    """Terminate sessions by state, minimum age, application, user, database (or explicit PIDs).

    The seed's two forms:

    - long-running queries: ``TerminateSessions(state="active", min_age_s=600)``;
    - idle connections (pool exhaustion): ``TerminateSessions(state="idle", min_age_s=300)``.

    Args:
        state: one state or several (``active``, ``idle``, ``idle in transaction``, …).
        min_age_s: only sessions in that state for at least this long (``query_start`` for active
            ones, ``state_change`` otherwise).
        application: only this ``application_name``; ``user``: only this role; ``database``: only
            this database (default: every database).
        pids: only these PIDs. Asking for a protected PID (superuser, replication, ourselves) is
            refused rather than silently skipped.
        limit: refuse if more sessions than this would be terminated (a safety net against a
            filter that is too wide).
    """

    name = "postgres.terminate"
    _reader: Any = None

    def __init__(
        self,
        state: str | list[str] | tuple[str, ...] = "idle",
        min_age_s: float = 300,
        *,
        application: str | None = None,
        user: str | None = None,
        database: str | None = None,
        pids: list[int] | None = None,
        limit: int = 500,
        url: str | None = None,
        profile: Profile | str | None = None,
    ) -> None:
        super().__init__(url=url, profile=profile)
        self.states = [state] if isinstance(state, str) else list(state)
        # Kept as given; preflight converts them (a bad one is refused and audited there).
        self.min_age_s: Any = min_age_s
        self.application = application
        self.user = user
        self.database = database
        self.pids: Any = list(pids) if isinstance(pids, list | tuple) else pids
        self.limit: Any = limit

    @property
    def target(self) -> str:
        return self.database_target() + "/sessions"

    def parameters(self) -> dict[str, Any]:
        return {
            "state": self.states,
            "min_age_s": self.min_age_s,
            "application": self.application,
            "user": self.user,
            "database": self.database,
            "pids": self.pids,
            "limit": self.limit,
        }

    def preflight(self) -> None:
        bad = [s for s in self.states if s not in _STATES]
        if bad or not self.states:
            raise ActionRefused(f"unknown session state(s) {bad or self.states}; use one of {', '.join(_STATES)}")
        self.min_age_s = real_number(self.min_age_s, "min_age_s", minimum=0)
        self.limit = whole_number(self.limit, "limit", minimum=1)
        if self.pids is not None:
            if not isinstance(self.pids, list):
                raise ActionRefused(f"pids={self.pids!r} is not a list of process IDs")
            self.pids = [whole_number(p, "a PID in pids", minimum=1, maximum=2**31 - 1) for p in self.pids]
        for name in ("application", "user", "database"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or "\x00" in value):
                raise ActionRefused(f"{name}={value!r} is not a name")

    @property
    def reader(self) -> Any:
        """A connection that can see every session's state and query.

        Seeing other roles' ``state``, ``query_start`` and ``query`` needs ``pg_read_all_stats``
        (``pg_signal_backend`` alone shows them as NULL). When the mitigation role lacks it, plans
        and re-checks read through the diagnostics identity (``DATABASE_URL``, ``pg_monitor``);
        only ``pg_terminate_backend`` itself uses the mitigation role.
        """
        if self.scalar("SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"):
            return self.conn
        if self._reader is None or self._reader.closed:
            from vcci_nb.config import load_profile

            prof = self._profile if isinstance(self._profile, Profile) else load_profile(self._profile)
            url = prof.connection_url("postgres")
            if not url:
                raise ActionRefused(
                    "the mitigation role cannot see other sessions' state (it lacks pg_read_all_stats) and no "
                    "diagnostics URL is set: GRANT pg_read_all_stats TO the mitigation role, or set DATABASE_URL"
                )
            self._reader = pg_connect(url)
        return self._reader

    def _own_pids(self) -> list[int]:
        pids = [int(self.conn.info.backend_pid)]
        if self._reader is not None and not self._reader.closed:
            pids.append(int(self._reader.info.backend_pid))
        return pids

    @staticmethod
    def _protection(row: dict[str, Any]) -> str | None:
        if row["self"]:
            return "this is the session doing the terminating"
        if row["backend_type"] == "walsender":
            return "replication (walsender) session"
        if row["backend_type"] != "client backend":
            return f"{row['backend_type']} process, not a client session"
        if row["superuser"]:
            return "superuser session"
        return None

    def _matches(self, row: dict[str, Any], *, any_age: bool = False) -> bool:
        if self.pids is not None and row["pid"] not in self.pids:
            return False
        if self.pids is None and row["state"] not in self.states:
            return False
        if self.pids is None and (row["age_s"] is None or (row["age_s"] < self.min_age_s and not any_age)):
            return False
        if self.application is not None and row["application"] != self.application:
            return False
        if self.user is not None and row["user"] != self.user:
            return False
        return not (self.database is not None and row["database"] != self.database)

    def plan(self) -> Plan:
        reader = self.reader
        every = self.rows(_ACTIVITY_SQL, (self._own_pids(),), conn=reader)
        rows = [r for r in every if self._matches(r)]
        # Sessions that match but are younger than the threshold: present, not yet old enough.
        young = [r for r in every if self._matches(r, any_age=True) and not self._matches(r)]
        young = [r for r in young if self._protection(r) is None]
        targets: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        for r in rows:
            view = {
                "pid": r["pid"],
                "user": r["user"],
                "application": r["application"],
                "client": r["client"],
                "database": r["database"],
                "state": r["state"] or r["backend_type"],
                "age_s": r["age_s"],
                "query": redact(r["query"] or ""),
            }
            reason = self._protection(r)
            if reason:
                skipped.append({**view, "reason": reason})
            else:
                targets.append({**view, "backend_start": r["backend_start"].isoformat()})
        if self.pids is not None and skipped:
            raise ActionRefused(
                "refusing to terminate protected sessions: "
                + "; ".join(f"pid {s['pid']} ({s['reason']})" for s in skipped)
                + ". Only ordinary client sessions can be terminated."
            )
        if len(targets) > self.limit:
            raise ActionRefused(
                f"{len(targets)} sessions match, more than limit={self.limit}; narrow the filter "
                "(application=, user=, min_age_s=) or raise limit= if that is really intended"
            )
        what = "/".join(self.states) if self.pids is None else f"pids {self.pids}"
        age = f" for ≥ {self.min_age_s:g} s" if self.pids is None else ""
        summary = f"terminate {len(targets)} {what} session(s){age}"
        if self.application:
            summary += f" of application {self.application!r}"
        if self.user:
            summary += f" of user {self.user!r}"
        if not targets and young and self.pids is None:
            oldest = max(float(r["age_s"] or 0) for r in young)
            apps = sorted({str(r["application"] or "?") for r in young})
            summary += (
                f"; {len(young)} {what} session(s) from {', '.join(apps)} are younger (oldest {oldest:.0f} s): "
                f"the {self.min_age_s:g} s threshold is not reached yet. In about {self.min_age_s - oldest:.0f} s "
                f"this step would end them, because by then they have held connection slots unused for "
                f"{self.min_age_s:g} s; plan it again then, or end them now by PID if the pool is exhausted"
            )
        return Plan(
            action=self.name,
            target=self.target,
            summary=summary,
            changes=targets,
            skipped=skipped,
            noop=not targets,
            warnings=["clients lose these connections; their open transactions roll back"] if targets else [],
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        pids = [int(c["pid"]) for c in plan.changes]
        starts = [c["backend_start"] for c in plan.changes]
        # Re-check right before terminating: same PID *and* same backend start (a PID may have been
        # reused since the plan), still an ordinary client session, not a superuser, not ours.
        still = self.rows(
            """
            SELECT a.pid
            FROM pg_stat_activity a
            JOIN unnest(%s::int[], %s::timestamptz[]) AS p(pid, started) ON p.pid = a.pid
            LEFT JOIN pg_roles r ON r.oid = a.usesysid
            WHERE a.backend_start = p.started AND a.backend_type = 'client backend'
              AND NOT (a.pid = ANY(%s)) AND NOT coalesce(r.rolsuper, false)
            """,
            (pids, starts, self._own_pids()),
            conn=self.reader,
        )
        terminated = []
        for row in still:
            if self.scalar("SELECT pg_terminate_backend(%s)", (int(row["pid"]),)):
                terminated.append(int(row["pid"]))
        gone_before = sorted(set(pids) - {int(r["pid"]) for r in still})
        return {"terminated": sorted(terminated), "already_gone": gone_before, "requested": sorted(pids)}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        pids = [int(c["pid"]) for c in plan.changes]
        starts = [c["backend_start"] for c in plan.changes]
        left: list[int] = []
        deadline = time.monotonic() + 5.0
        while True:
            left = [
                int(r["pid"])
                for r in self.rows(
                    "SELECT a.pid FROM pg_stat_activity a "
                    "JOIN unnest(%s::int[], %s::timestamptz[]) AS p(pid, started) "
                    "ON p.pid = a.pid AND a.backend_start = p.started",
                    (pids, starts),
                    conn=self.reader,
                )
            ]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        v = Verification()
        v.add(
            "sessions gone",
            not left,
            f"{len(pids) - len(left)} of {len(pids)} planned sessions are gone"
            + (f"; still there: {left}" if left else ""),
        )
        return v


class SetMaxConnections(_PostgresAction):
    """``ALTER SYSTEM SET max_connections = N`` (seed 4.1, "temporary"), then reload.

    ``max_connections`` only changes at a restart: the verification shows the new value written
    and ``pending_restart`` true. The plan warns about it so nobody waits for relief that only a
    restart brings.
    """

    name = "postgres.max_connections"

    def __init__(
        self, value: int, *, url: str | None = None, profile: Profile | str | None = None, maximum: int = 5000
    ) -> None:
        super().__init__(url=url, profile=profile)
        self.value: Any = value  # converted by preflight
        self.maximum: Any = maximum

    @property
    def target(self) -> str:
        return self.database_target() + "/setting/max_connections"

    def parameters(self) -> dict[str, Any]:
        return {"value": self.value}

    def preflight(self) -> None:
        self.maximum = whole_number(self.maximum, "maximum", minimum=10)
        self.value = whole_number(self.value, "max_connections")
        if self.value < 10 or self.value > self.maximum:
            raise ActionRefused(
                f"max_connections={self.value} is outside 10..{self.maximum}; each connection costs memory, "
                "so a very high value can stop the server from starting"
            )

    def _state(self) -> dict[str, Any]:
        row = self.rows(
            "SELECT setting::int AS current, pending_restart FROM pg_settings WHERE name = 'max_connections'"
        )[0]
        row["sessions"] = self.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        return row

    def plan(self) -> Plan:
        st = self._state()
        if self.value < int(st["sessions"]):
            raise ActionRefused(
                f"max_connections={self.value} is below the {st['sessions']} client sessions open now; "
                "after the restart clients would be refused"
            )
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"ALTER SYSTEM SET max_connections = {self.value} (now {st['current']})",
            changes=[{"setting": "max_connections", "from": st["current"], "to": self.value}],
            warnings=[
                "max_connections takes effect only after a PostgreSQL restart: after this, the setting is "
                "pending_restart until someone restarts the server",
                "on a managed database (RDS) change the parameter group instead; ALTER SYSTEM is not allowed there",
            ],
            noop=st["current"] == self.value and not st["pending_restart"],
            details={"before": st},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        from psycopg import sql

        self.conn.execute(sql.SQL("ALTER SYSTEM SET max_connections = {}").format(sql.Literal(self.value)))
        reloaded = True
        reload_error = ""
        try:
            self.conn.execute("SELECT pg_reload_conf()")
        except Exception as exc:
            reloaded = False
            reload_error = str(exc).strip().splitlines()[0]
        return {"written": self.value, "reloaded": reloaded, "reload_error": reload_error}

    def _file_setting(self) -> dict[str, Any] | None:
        """The last ``max_connections`` line of the configuration files, if this role may read them."""
        try:
            rows = self.rows(
                "SELECT sourcefile, setting, applied, error FROM pg_file_settings "
                "WHERE name = 'max_connections' ORDER BY seqno DESC LIMIT 1"
            )
        except Exception:  # pg_file_settings is superuser-only unless granted (parameters/rbac/postgres.sql)
            return None
        return rows[0] if rows else {}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        v = Verification()
        if not result.get("reloaded"):
            v.add(
                "configuration reloaded",
                False,
                f"pg_reload_conf() failed ({result.get('reload_error')}); ask a superuser to run "
                "SELECT pg_reload_conf(), then restart",
            )
            return v
        st: dict[str, Any] = {}
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            st = self._state()
            if st["pending_restart"]:
                break
            time.sleep(0.1)
        v.add(
            "new value pending restart",
            bool(st.get("pending_restart")),
            f"running value {st.get('current')}, written {self.value}; pending_restart={st.get('pending_restart')}. "
            "Restart PostgreSQL for it to apply.",
        )
        line = self._file_setting()
        if line is None:
            v.add(
                "written to postgresql.auto.conf",
                True,
                "not checked: this role may not read pg_file_settings (see parameters/rbac/postgres.sql)",
            )
        else:
            ok = bool(line) and str(line.get("sourcefile", "")).endswith("postgresql.auto.conf")
            ok = ok and str(line.get("setting")) == str(self.value)
            v.add(
                "written to postgresql.auto.conf",
                ok,
                f"last max_connections line: {line.get('setting')!r} in {line.get('sourcefile')} "
                f"({line.get('error') or 'applied' if line.get('applied') else line.get('error') or 'not applied'})",
            )
        return v


class VacuumAnalyze(_PostgresAction):
    """``VACUUM (ANALYZE)`` of one table, or of every table the role may vacuum (seed 4.1, bloat)."""

    name = "postgres.vacuum_analyze"

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
        rows = self.rows(
            """
            SELECT s.schemaname AS schema, s.relname AS table, s.n_live_tup AS live_rows,
                   s.n_dead_tup AS dead_rows, s.last_vacuum, s.last_autovacuum, s.last_analyze,
                   pg_has_role(c.relowner, 'USAGE') AS may_vacuum, s.relid, age(c.relfrozenxid)::bigint AS xid_age,
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
            {"table": f"{r['schema']}.{r['table']}", "reason": "not owned by this role (VACUUM would skip it)"}
            for r in rows
            if not r["may_vacuum"]
        ]
        if self.table is not None and not targets:
            raise ActionRefused(
                f"this role does not own {self.table!r}, so VACUUM would skip it; use the mitigation role"
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
        reenable = [
            [r["schema"], r["table"]] for r in targets if self.enable_autovacuum and not r["autovacuum_enabled"]
        ]
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"{verb} {len(targets)} table(s)"
            + (f"; re-enable autovacuum on {', '.join('.'.join(t) for t in reenable)}" if reenable else ""),
            changes=changes,
            skipped=skipped,
            noop=not targets,
            warnings=["VACUUM reads whole tables: expect extra I/O while it runs (it does not block reads or writes)"],
            details={"tables": [[r["schema"], r["table"]] for r in targets], "reenable": reenable},
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
        older = self.rows(
            "SELECT pid, usename AS user, application_name AS application, "
            "round(extract(epoch FROM now() - xact_start))::int AS xact_age_s, left(query, 120) AS query "
            "FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
            "AND datname = current_database() "
            "AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) ORDER BY xact_start LIMIT 10"
        )
        if older and not noop:
            warnings.insert(
                0,
                f"{len(older)} open transaction(s) started before the build (oldest {older[0]['xact_age_s']} s, "
                f"pid {older[0]['pid']}); the build waits for them, at most {self.wait_s:g} s "
                "(end long-running queries first with postgres.terminate if they will not finish)",
            )
        est = self.scalar("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", (self.table,))
        statement = self._statement().as_string(self.conn)
        return Plan(
            action=self.name,
            target=self.target,
            summary=(f"index {self.index_name} already exists and is valid" if noop else statement),
            changes=[{"statement": statement, "table_rows_estimate": est}],
            warnings=warnings,
            noop=noop,
            details={
                "explain_before": self._explain(),
                "invalid_leftover": found is not None and not found["valid"],
                "older_transactions": older,
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


class FinishPrepared(_PostgresAction):
    """``ROLLBACK PREPARED`` (default) or ``COMMIT PREPARED`` of one prepared transaction, by gid.

    A prepared transaction has no backend, so ``pg_terminate_backend`` cannot end it and
    ``pg_blocking_pids`` shows its waiters blocked by PID 0. PostgreSQL lets only the role that
    prepared it, or a superuser, finish it: the action does ``SET ROLE <owner>`` for exactly this
    statement (the mitigation role is a member of the application roles; ``parameters/rbac``), and
    refuses with what to grant when it is not. The plan lists the transaction's owner, database, age
    and locks, and the sessions waiting on it; the verification checks the gid is gone and nobody
    waits on it any more.
    """

    name = "postgres.rollback_prepared"

    def __init__(
        self, gid: str, *, commit: bool = False, url: str | None = None, profile: Profile | str | None = None
    ) -> None:
        super().__init__(url=url, profile=profile)
        self.gid = gid
        self.commit = bool(commit)

    @property
    def target(self) -> str:
        return self.database_target() + f"/prepared/{self.gid}"

    def parameters(self) -> dict[str, Any]:
        return {"gid": self.gid, "commit": self.commit}

    def preflight(self) -> None:
        if not isinstance(self.gid, str) or not self.gid or len(self.gid) > 200 or "\x00" in self.gid:
            raise ActionRefused(f"gid={self.gid!r} is not a prepared transaction's gid (see pg_prepared_xacts)")

    def _row(self) -> dict[str, Any] | None:
        rows = self.rows(
            """
            SELECT p.gid, p.owner, p.database, p.transaction::text AS xid, p.prepared,
                   round(extract(epoch FROM now() - p.prepared)::numeric, 1)::float AS age_s,
                   (SELECT count(*) FROM pg_locks l WHERE l.pid IS NULL AND l.granted AND l.virtualtransaction IN
                      (SELECT x.virtualtransaction FROM pg_locks x WHERE x.pid IS NULL
                          AND x.locktype = 'transactionid' AND x.transactionid = p.transaction))::int AS locks_held,
                   (SELECT count(*) FROM pg_locks w WHERE NOT w.granted AND w.locktype = 'transactionid'
                       AND w.transactionid = p.transaction)::int AS sessions_waiting,
                   pg_has_role(p.owner, 'MEMBER') AS may_set_role,
                   p.database = current_database() AS same_database
            FROM pg_prepared_xacts p WHERE p.gid = %s
            """,
            (self.gid,),
        )
        return rows[0] if rows else None

    def plan(self) -> Plan:
        row = self._row()
        verb = "COMMIT PREPARED" if self.commit else "ROLLBACK PREPARED"
        if row is None:
            raise ActionRefused(f"no prepared transaction with gid {self.gid!r} (pg_prepared_xacts); nothing to finish")
        if not row["same_database"]:
            raise ActionRefused(
                f"prepared transaction {self.gid!r} belongs to database {row['database']!r}; connect the mitigation "
                "URL to that database to finish it"
            )
        if not row["may_set_role"]:
            raise ActionRefused(
                f"only {row['owner']} (who prepared {self.gid!r}) or a superuser may finish it, and this role is not a "
                f"member of {row['owner']}: GRANT {row['owner']} TO the mitigation role (parameters/rbac/postgres.sql)"
            )
        warnings = [
            "ROLLBACK PREPARED discards the transaction's changes; make sure its coordinator (the application "
            "or transaction manager) will not try to commit it"
            if not self.commit
            else "COMMIT PREPARED makes the transaction's changes permanent; do it only when its coordinator "
            "decided to commit"
        ]
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"{verb} {self.gid!r} (owner {row['owner']}, prepared {row['age_s']:.0f} s ago, "
            f"{row['locks_held']} locks, {row['sessions_waiting']} sessions waiting)",
            changes=[
                {
                    "gid": row["gid"],
                    "statement": f"{verb} '{self.gid}'",
                    "owner": row["owner"],
                    "database": row["database"],
                    "xid": row["xid"],
                    "prepared": str(row["prepared"]),
                    "locks_held": row["locks_held"],
                    "sessions_waiting": row["sessions_waiting"],
                }
            ],
            warnings=warnings,
            destructive=not self.commit,
            details={"owner": row["owner"], "xid": row["xid"]},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        from psycopg import sql

        verb = "COMMIT PREPARED" if self.commit else "ROLLBACK PREPARED"
        self.conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(plan.details["owner"])))
        try:
            self.conn.execute(sql.SQL(verb + " {}").format(sql.Literal(self.gid)))
        finally:
            self.conn.execute("RESET ROLE")
        return {"finished": self.gid, "statement": verb}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        gone = self._row() is None
        waiting = self.scalar(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid' "
            "AND transactionid::text = %s",
            (plan.details["xid"],),
        )
        return (
            Verification()
            .add("prepared transaction gone", gone, f"pg_prepared_xacts has {'no' if gone else 'still a'} {self.gid!r}")
            .add("nobody waits on it", int(waiting or 0) == 0, f"{int(waiting or 0)} sessions waiting on its lock")
        )


def rollback_prepared(gid: str, **kwargs: Any) -> FinishPrepared:
    """``ROLLBACK PREPARED gid`` (the usual fix of an abandoned prepared transaction)."""
    return FinishPrepared(gid, commit=False, **kwargs)


class DropReplicationSlot(_PostgresAction):
    """Drop an *inactive* replication slot that retains WAL (the disk fills while it stays).

    Uses ``vcci_ops.drop_inactive_replication_slot`` (SECURITY DEFINER, ``parameters/rbac``) so the
    mitigation role needs neither REPLICATION nor superuser. Destructive: the replica or consumer
    that used the slot must be rebuilt from a new base backup afterwards.
    """

    name = "postgres.drop_replication_slot"

    def __init__(self, slot: str, *, url: str | None = None, profile: Profile | str | None = None) -> None:
        super().__init__(url=url, profile=profile)
        self.slot = slot

    @property
    def target(self) -> str:
        return self.database_target() + f"/slot/{self.slot}"

    def parameters(self) -> dict[str, Any]:
        return {"slot": self.slot}

    def preflight(self) -> None:
        _ident(self.slot, "slot")

    def _row(self) -> dict[str, Any] | None:
        rows = self.rows(
            "SELECT slot_name, slot_type, database, active, active_pid, wal_status, "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        )
        return rows[0] if rows else None

    def plan(self) -> Plan:
        row = self._row()
        if row is None:
            raise ActionRefused(f"no replication slot {self.slot!r} (pg_replication_slots)")
        if row["active"]:
            raise ActionRefused(
                f"slot {self.slot!r} is active (pid {row['active_pid']}): its consumer is connected; stop it first, "
                "or keep the slot"
            )
        mib = float(row["retained_bytes"] or 0) / 1024**2
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"drop inactive {row['slot_type']} slot {self.slot} (retains {mib:,.0f} MiB of WAL)",
            changes=[{**row, "retained_mib": round(mib, 1)}],
            warnings=[
                "the replica or consumer that used this slot cannot resume: rebuild it from a new base backup",
                "the retained WAL is removed at the next checkpoint",
            ],
            destructive=True,
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        self.conn.execute("SELECT vcci_ops.drop_inactive_replication_slot(%s)", (self.slot,))
        return {"dropped": self.slot}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        gone = self._row() is None
        return Verification().add(
            "slot gone", gone, f"pg_replication_slots {'no longer has' if gone else 'still has'} {self.slot}"
        )


def idle_in_transaction_sessions(min_age_s: float = 60, **kwargs: Any) -> TerminateSessions:
    """End sessions idle *in a transaction* for at least ``min_age_s`` (their locks and snapshot go with them)."""
    return TerminateSessions(
        state=["idle in transaction", "idle in transaction (aborted)"], min_age_s=min_age_s, **kwargs
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

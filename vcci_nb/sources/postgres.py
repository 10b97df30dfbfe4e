"""PostgreSQL diagnostics: the seed's psql checks of Phases 1, 3 and 6, read-only.

Every query runs in a READ ONLY transaction on a fresh connection named ``vcci-nb``, with
``statement_timeout`` and ``lock_timeout`` set (from the profile, capped by the call's
timeout), so a diagnostic can neither change data nor queue behind the locks it is looking at.
The connection string comes from the profile's variable (``DATABASE_URL``) or libpq's ``PG*``
variables and ``~/.pgpass``; its password is registered as a secret before any message exists.

Each ``gather_*`` returns one Evidence named ``postgres.<what>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import psycopg

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, postgres_dsn, resolve_profile
from vcci_nb.errors import SourceUnavailable
from vcci_nb.evidence import Evidence
from vcci_nb.redact import redact_url
from vcci_nb.sources._core import collect, setting_for

SOURCE = "postgres"
APPLICATION_NAME = "vcci-nb"

SQL_CONNECTIONS = """
SELECT a.usename AS role, coalesce(nullif(a.application_name, ''), '(none)') AS application,
       coalesce(host(a.client_addr), 'local') AS client, coalesce(a.state, 'unknown') AS state,
       a.datname AS database, count(*)::int AS count,
       max(extract(epoch FROM now() - a.state_change))::float8 AS oldest_state_s,
       coalesce(r.rolconnlimit, -1)::int AS role_limit
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.rolname = a.usename
WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
GROUP BY 1, 2, 3, 4, 5, r.rolconnlimit
ORDER BY count DESC, role, application"""

SQL_CONNECTION_LIMITS = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS total"""

SQL_ROLE_LIMITS = """
SELECT r.rolname AS role, r.rolconnlimit AS role_limit,
       (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname
          AND a.backend_type = 'client backend')::int AS connections
FROM pg_roles r WHERE r.rolcanlogin ORDER BY connections DESC, role"""

SQL_LONG_QUERIES = """
SELECT a.pid, a.usename AS role, a.application_name AS application, a.state,
       extract(epoch FROM now() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.xact_start END)::float8
         AS duration_s,
       a.wait_event_type, a.wait_event, left(a.query, 1000) AS query
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
  AND (a.state = 'active' OR (%(idle_tx)s AND a.state LIKE 'idle in transaction%%'))
  AND now() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.xact_start END
      > make_interval(secs => %(threshold)s)
ORDER BY duration_s DESC"""

SQL_BLOCKING = """
SELECT w.pid AS blocked_pid, bp.pid AS blocking_pid,
       w.usename AS blocked_role, w.application_name AS blocked_application,
       coalesce(b.usename, px.owner) AS blocking_role,
       CASE WHEN bp.pid = 0 THEN 'prepared transaction' ELSE b.application_name END AS blocking_application,
       CASE WHEN bp.pid = 0 THEN 'prepared' ELSE b.state END AS blocking_state,
       extract(epoch FROM now() - w.query_start)::float8 AS waiting_s,
       extract(epoch FROM now() - coalesce(b.xact_start, b.query_start, px.prepared))::float8 AS blocking_xact_s,
       w.wait_event_type AS blocked_wait, left(w.query, 500) AS blocked_query, left(b.query, 500) AS blocking_query,
       CASE WHEN bp.pid = 0 THEN true ELSE cardinality(pg_blocking_pids(b.pid)) = 0 END AS blocking_is_root,
       px.gid AS blocking_gid
FROM pg_stat_activity w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
LEFT JOIN pg_stat_activity b ON b.pid = bp.pid AND bp.pid <> 0
-- PID 0: the lock is held by a prepared transaction (no backend). Find it through the lock the
-- waiter asks for: the same object held with no PID, by the virtual transaction whose own
-- transaction ID is that of a row in pg_prepared_xacts.
LEFT JOIN LATERAL (
  SELECT p.gid, p.owner, p.prepared
  FROM pg_locks wl
  JOIN pg_locks hl ON hl.granted AND hl.pid IS NULL AND hl.locktype = wl.locktype
       AND hl.database IS NOT DISTINCT FROM wl.database AND hl.relation IS NOT DISTINCT FROM wl.relation
       AND hl.page IS NOT DISTINCT FROM wl.page AND hl.tuple IS NOT DISTINCT FROM wl.tuple
       AND hl.transactionid IS NOT DISTINCT FROM wl.transactionid
       AND hl.virtualxid IS NOT DISTINCT FROM wl.virtualxid AND hl.classid IS NOT DISTINCT FROM wl.classid
       AND hl.objid IS NOT DISTINCT FROM wl.objid AND hl.objsubid IS NOT DISTINCT FROM wl.objsubid
  JOIN pg_locks xl ON xl.pid IS NULL AND xl.locktype = 'transactionid'
       AND xl.virtualtransaction = hl.virtualtransaction
  JOIN pg_prepared_xacts p ON p.transaction = xl.transactionid
  WHERE bp.pid = 0 AND wl.pid = w.pid AND NOT wl.granted
  LIMIT 1
) px ON true
ORDER BY waiting_s DESC"""

SQL_PREPARED_XACTS = """
SELECT p.gid, p.owner, p.database, p.transaction::text AS xid, p.prepared,
       extract(epoch FROM now() - p.prepared)::float8 AS age_s, age(p.transaction)::bigint AS xid_age,
       (SELECT count(*) FROM pg_locks l
         WHERE l.pid IS NULL AND l.granted AND l.virtualtransaction IN
               (SELECT x.virtualtransaction FROM pg_locks x
                 WHERE x.pid IS NULL AND x.locktype = 'transactionid' AND x.transactionid = p.transaction))::int
         AS locks_held,
       (SELECT count(*) FROM pg_locks wl WHERE NOT wl.granted AND wl.locktype = 'transactionid'
           AND wl.transactionid = p.transaction)::int AS sessions_waiting
FROM pg_prepared_xacts p ORDER BY p.prepared"""

SQL_IDLE_IN_TRANSACTION = """
SELECT a.pid, a.usename AS role, a.application_name AS application, coalesce(host(a.client_addr), 'local') AS client,
       a.state, extract(epoch FROM now() - a.state_change)::float8 AS idle_s,
       extract(epoch FROM now() - a.xact_start)::float8 AS transaction_s,
       age(a.backend_xid)::bigint AS xid_age, age(a.backend_xmin)::bigint AS xmin_age,
       (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.granted)::int AS locks_held,
       (SELECT count(*) FROM pg_stat_activity w WHERE a.pid = ANY(pg_blocking_pids(w.pid)))::int AS sessions_blocked,
       left(a.query, 500) AS last_query
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() AND a.state LIKE 'idle in transaction%%'
  AND now() - a.state_change > make_interval(secs => %(threshold)s)
ORDER BY idle_s DESC"""

SQL_XID_AGE = """
SELECT d.datname AS database, age(d.datfrozenxid)::bigint AS xid_age, mxid_age(d.datminmxid)::bigint AS mxid_age,
       current_setting('autovacuum_freeze_max_age')::bigint AS autovacuum_freeze_max_age,
       d.datname = current_database() AS current
FROM pg_database d WHERE d.datallowconn ORDER BY xid_age DESC"""

#: What holds the xmin horizon back (VACUUM cannot freeze past it), oldest first. Run without
#: parameters, so ``%`` is literal here.
SQL_XMIN_HOLDERS = """
SELECT kind, name, age FROM (
  SELECT 'session' AS kind,
         format('pid %s (%s, %s, %s)', a.pid, coalesce(nullif(a.application_name, ''), a.usename),
                a.usename, a.state) AS name,
         greatest(age(a.backend_xid), age(a.backend_xmin))::bigint AS age
    FROM pg_stat_activity a WHERE (a.backend_xid IS NOT NULL OR a.backend_xmin IS NOT NULL)
     AND a.pid <> pg_backend_pid()
  UNION ALL
  SELECT 'prepared transaction', format('gid %L (%s)', p.gid, p.owner), age(p.transaction)::bigint
    FROM pg_prepared_xacts p
  UNION ALL
  SELECT 'replication slot', format('slot %s', s.slot_name), greatest(age(s.xmin), age(s.catalog_xmin))::bigint
    FROM pg_replication_slots s WHERE s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL
) h ORDER BY age DESC NULLS LAST LIMIT 5"""

SQL_OLDEST_TABLES = """
SELECT n.nspname || '.' || c.relname AS "table", age(c.relfrozenxid)::bigint AS xid_age
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'::xid
ORDER BY age(c.relfrozenxid) DESC LIMIT 5"""

SQL_REPLICATION_SLOTS = """
SELECT s.slot_name AS slot, s.slot_type, s.database, s.active, s.active_pid, s.wal_status,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                       s.restart_lsn)::bigint AS retained_bytes,
       age(s.xmin)::bigint AS xmin_age, age(s.catalog_xmin)::bigint AS catalog_xmin_age,
       s.safe_wal_size::bigint AS safe_wal_size
FROM pg_replication_slots s ORDER BY retained_bytes DESC NULLS LAST"""

SQL_REPLICATION = """
SELECT r.application_name AS replica, coalesce(host(r.client_addr), 'local') AS client, r.state, r.sync_state,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                       r.replay_lsn)::bigint AS replay_lag_bytes,
       extract(epoch FROM r.write_lag)::float8 AS write_lag_s, extract(epoch FROM r.flush_lag)::float8 AS flush_lag_s,
       extract(epoch FROM r.replay_lag)::float8 AS replay_lag_s,
       extract(epoch FROM now() - r.reply_time)::float8 AS since_reply_s
FROM pg_stat_replication r ORDER BY replay_lag_bytes DESC NULLS LAST"""

SQL_VACUUM = """
SELECT t.schemaname AS schema, t.relname AS "table", t.n_live_tup AS live_rows, t.n_dead_tup AS dead_rows,
       (t.n_tup_ins + t.n_tup_upd + t.n_tup_del)::bigint AS writes, t.n_mod_since_analyze AS modified_since_analyze,
       t.last_autovacuum, t.last_vacuum, t.autovacuum_count,
       extract(epoch FROM now() - greatest(t.last_autovacuum, t.last_vacuum))::float8 AS since_vacuum_s,
       coalesce((SELECT o.option_value::bool FROM pg_options_to_table(c.reloptions) o
                  WHERE o.option_name = 'autovacuum_enabled'), current_setting('autovacuum')::bool)
         AS autovacuum_enabled,
       (coalesce((SELECT o.option_value::float8 FROM pg_options_to_table(c.reloptions) o
                   WHERE o.option_name = 'autovacuum_vacuum_threshold'),
                 current_setting('autovacuum_vacuum_threshold')::float8)
        + coalesce((SELECT o.option_value::float8 FROM pg_options_to_table(c.reloptions) o
                     WHERE o.option_name = 'autovacuum_vacuum_scale_factor'),
                   current_setting('autovacuum_vacuum_scale_factor')::float8)
          * greatest(c.reltuples, 0))::bigint AS autovacuum_trigger
FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid
ORDER BY t.n_dead_tup DESC"""

SQL_LOCK_WAITS = """
SELECT l.pid, l.locktype, l.mode, l.relation::regclass::text AS relation, a.usename AS role,
       a.application_name AS application, extract(epoch FROM now() - a.query_start)::float8 AS waiting_s,
       left(a.query, 500) AS query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted ORDER BY waiting_s DESC"""

SQL_TABLES = """
SELECT n.nspname AS schema, c.relname AS "table", pg_total_relation_size(c.oid)::bigint AS total_bytes,
       pg_relation_size(c.oid)::bigint AS table_bytes, pg_indexes_size(c.oid)::bigint AS index_bytes,
       greatest(c.reltuples, 0)::bigint AS estimated_rows
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY total_bytes DESC LIMIT %(limit)s"""

SQL_STATEMENTS = """
(SELECT 'mean' AS ranked_by, s.queryid::text AS queryid, r.rolname AS role, left(s.query, 1000) AS query, s.calls,
        s.total_exec_time AS total_ms, s.mean_exec_time AS mean_ms, s.max_exec_time AS max_ms, s.rows,
        s.shared_blks_hit, s.shared_blks_read
   FROM {schema}.pg_stat_statements s LEFT JOIN pg_roles r ON r.oid = s.userid
  WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  ORDER BY s.mean_exec_time DESC LIMIT %(limit)s)
UNION ALL
(SELECT 'total', s.queryid::text, r.rolname, left(s.query, 1000), s.calls, s.total_exec_time, s.mean_exec_time,
        s.max_exec_time, s.rows, s.shared_blks_hit, s.shared_blks_read
   FROM {schema}.pg_stat_statements s LEFT JOIN pg_roles r ON r.oid = s.userid
  WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  ORDER BY s.total_exec_time DESC LIMIT %(limit)s)"""

SQL_SETTINGS = """
SELECT name, setting, unit, source, context, pending_restart, short_desc AS description
FROM pg_settings WHERE name = ANY(%(names)s) OR pending_restart ORDER BY name"""

SETTINGS: tuple[str, ...] = (
    "max_connections",
    "superuser_reserved_connections",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "max_locks_per_transaction",
    "autovacuum",
    "log_min_duration_statement",
    "shared_preload_libraries",
    "random_page_cost",
    "max_wal_size",
)

SQL_TABLE_SCANS = """
SELECT t.schemaname AS schema, t.relname AS "table", t.seq_scan, t.seq_tup_read,
       coalesce(t.idx_scan, 0) AS idx_scan, t.n_live_tup AS live_rows, t.n_dead_tup AS dead_rows,
       CASE WHEN t.seq_scan > 0 THEN t.seq_tup_read / t.seq_scan ELSE 0 END AS rows_per_seq_scan,
       pg_relation_size(t.relid)::bigint AS table_bytes,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = t.relid)::int AS indexes,
       t.last_autovacuum, t.last_vacuum, t.last_autoanalyze, t.last_analyze
FROM pg_stat_user_tables t ORDER BY t.seq_tup_read DESC"""

SQL_INDEXES = """
SELECT s.schemaname AS schema, s.relname AS "table", s.indexrelname AS index, s.idx_scan, s.idx_tup_read,
       pg_relation_size(s.indexrelid)::bigint AS index_bytes, i.indisunique AS is_unique,
       i.indisprimary AS is_primary, i.indisvalid AS is_valid, pg_get_indexdef(s.indexrelid) AS definition
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
ORDER BY s.idx_scan, index_bytes DESC"""

SQL_BLOAT = """
SELECT t.schemaname AS schema, t.relname AS "table", t.n_live_tup AS live_rows, t.n_dead_tup AS dead_rows,
       CASE WHEN t.n_live_tup + t.n_dead_tup > 0
            THEN t.n_dead_tup::float8 / (t.n_live_tup + t.n_dead_tup) ELSE 0 END AS dead_ratio,
       pg_relation_size(t.relid)::bigint AS table_bytes, t.last_autovacuum, t.last_vacuum,
       t.autovacuum_count, t.vacuum_count
FROM pg_stat_user_tables t WHERE t.n_dead_tup > 0 ORDER BY t.n_dead_tup DESC"""

SQL_MIGRATIONS = """
SELECT id, app, name, applied FROM {table} ORDER BY applied DESC, id DESC LIMIT %(limit)s"""


def _settings(profile: ProfileLike, timeout: float) -> tuple[str, int, int]:
    prof = resolve_profile(profile)
    cap_ms = max(int(timeout * 1000), 100)
    stmt = min(int(prof.get("postgres.statement_timeout_ms") or cap_ms), cap_ms)
    lock = min(int(prof.get("postgres.lock_timeout_ms") or 1000), stmt)
    return postgres_dsn(prof), stmt, lock


def _target(dsn: str) -> str:
    if "://" in dsn:
        return redact_url(dsn)
    return "the server named by libpq's PG* variables" if not dsn else "the configured PostgreSQL server"


def run_query(
    profile: ProfileLike,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    extra: Callable[[Any], dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run one diagnostic query read-only and return its rows as a frame (plus ``extra(conn)``).

    Raises whatever psycopg raises; :func:`collect` turns that into a status.
    """
    dsn, stmt_ms, lock_ms = _settings(profile, timeout)
    options = f"-c statement_timeout={stmt_ms} -c lock_timeout={lock_ms} -c default_transaction_read_only=on"
    with psycopg.connect(
        dsn,
        connect_timeout=max(round(timeout), 1),
        application_name=APPLICATION_NAME,
        options=options,
        autocommit=False,
    ) as conn:
        conn.read_only = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            cols = [d.name for d in cur.description or []]
            rows = cur.fetchall()
        more = extra(conn) if extra else {}
        conn.rollback()
    frame = pd.DataFrame.from_records(rows, columns=cols)
    return frame, more


def _gather(
    profile: ProfileLike,
    what: str,
    sql: str,
    params: dict[str, Any] | None,
    timeout: float,
    *,
    extra: Callable[[Any], dict[str, Any]] | None = None,
    post: Callable[[pd.DataFrame, dict[str, Any]], tuple[pd.DataFrame, dict[str, Any]]] | None = None,
    meta: dict[str, Any] | None = None,
) -> Evidence:
    dsn, _, _ = _settings(profile, timeout)

    def fetch() -> tuple[pd.DataFrame, dict[str, Any]]:
        frame, more = run_query(profile, sql, params, timeout=timeout, extra=extra)
        if post is not None:
            frame, more = post(frame, more)
        return frame, more

    shown = " ".join(sql.split())
    return collect(
        f"postgres.{what}",
        SOURCE,
        shown,
        fetch,
        timeout=timeout,
        target=_target(dsn),
        meta=meta,
        setting=setting_for(profile, "postgres"),
    )


def _one_row(sql: str) -> Callable[[Any], dict[str, Any]]:
    def run(conn: Any) -> dict[str, Any]:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
            names = [d.name for d in cur.description or []]
        return dict(zip(names, row or (), strict=False))

    return run


def gather_connections(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Client connections by role, application, client and state, with each role's connection limit.

    ``meta`` holds ``max_connections``, ``superuser_reserved`` and ``total`` (all client backends).
    The seed's ``SELECT count(*) FROM pg_stat_activity``, broken down so the culprit has a name.
    """
    return _gather(profile, "connections", SQL_CONNECTIONS, None, timeout, extra=_one_row(SQL_CONNECTION_LIMITS))


def gather_role_limits(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Every login role with its CONNECTION LIMIT (-1: none) and its connections now."""
    return _gather(profile, "role_limits", SQL_ROLE_LIMITS, None, timeout)


def gather_long_queries(
    profile: ProfileLike = None,
    *,
    threshold_s: float | None = None,
    include_idle_in_transaction: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """Queries active (or transactions idle) for longer than ``threshold_s`` (profile ``long_query_s``)."""
    thr = threshold_s if threshold_s is not None else resolve_profile(profile).threshold("long_query_s")
    return _gather(
        profile,
        "long_queries",
        SQL_LONG_QUERIES,
        {"threshold": float(thr), "idle_tx": include_idle_in_transaction},
        timeout,
        meta={"threshold_s": float(thr)},
    )


def gather_blocking(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Who blocks whom (``pg_blocking_pids``): one row per blocked/blocking pair."""
    return _gather(profile, "blocking", SQL_BLOCKING, None, timeout)


def gather_prepared_xacts(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Prepared (two-phase) transactions: gid, owner, age, the locks they hold and who waits on them.

    They survive their session and a restart; ``pg_terminate_backend`` cannot end them (they have
    no backend), only ``COMMIT PREPARED`` or ``ROLLBACK PREPARED`` by their owner or a superuser.
    ``meta.max_prepared_transactions`` is the server's setting (0: the feature is off).
    """
    return _gather(
        profile,
        "prepared_xacts",
        SQL_PREPARED_XACTS,
        None,
        timeout,
        extra=_one_row("SELECT current_setting('max_prepared_transactions')::int AS max_prepared_transactions"),
    )


def gather_idle_in_transaction(
    profile: ProfileLike = None, *, threshold_s: float | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> Evidence:
    """Sessions idle *in an open transaction* for longer than ``threshold_s`` (profile ``idle_in_transaction_s``).

    Unlike plain idle sessions they hold their locks and their snapshot (which stops VACUUM from
    removing dead rows) for as long as they sit there. ``meta.session_timeout`` is the server's
    ``idle_in_transaction_session_timeout`` (0: never ended by the server).
    """
    prof = resolve_profile(profile)
    thr = threshold_s if threshold_s is not None else float(prof.get("thresholds.idle_in_transaction_s") or 60)
    return _gather(
        profile,
        "idle_in_transaction",
        SQL_IDLE_IN_TRANSACTION,
        {"threshold": float(thr)},
        timeout,
        extra=_one_row("SELECT current_setting('idle_in_transaction_session_timeout') AS session_timeout"),
        meta={"threshold_s": float(thr)},
    )


def gather_xid_age(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Transaction ID age per database (wraparound danger), with ``meta.holders`` (what keeps VACUUM from
    freezing: old sessions, prepared transactions, slots) and ``meta.oldest_tables`` of this database."""

    def more(conn: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, sql in (("holders", SQL_XMIN_HOLDERS), ("oldest_tables", SQL_OLDEST_TABLES)):
            with conn.cursor() as cur:
                cur.execute(sql)
                names = [d.name for d in cur.description or []]
                out[key] = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        return out

    return _gather(profile, "xid_age", SQL_XID_AGE, None, timeout, extra=more)


def gather_replication_slots(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Replication slots: active or not, and how much WAL each keeps on disk (``retained_bytes``).

    An inactive slot (its replica or consumer gone) keeps every WAL segment written since, until
    the disk fills; ``wal_status`` says whether the server can still keep it (``lost``: it cannot).
    """
    return _gather(profile, "replication_slots", SQL_REPLICATION_SLOTS, None, timeout)


def gather_replication(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Streaming replicas of this server (``pg_stat_replication``): how far behind each replays, in bytes and time."""
    return _gather(profile, "replication", SQL_REPLICATION, None, timeout)


def gather_vacuum(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Autovacuum health per table: dead rows against the table's autovacuum trigger, whether autovacuum
    is enabled for it, and how long since it was last vacuumed."""
    return _gather(profile, "vacuum", SQL_VACUUM, None, timeout)


def gather_lock_waits(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Locks requested and not granted (``pg_locks``), with what each waiter runs."""
    return _gather(profile, "lock_waits", SQL_LOCK_WAITS, None, timeout)


def gather_sizes(profile: ProfileLike = None, *, limit: int = 20, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """The largest tables; ``meta.database_bytes`` is ``pg_database_size`` of the current database."""
    return _gather(
        profile,
        "sizes",
        SQL_TABLES,
        {"limit": int(limit)},
        timeout,
        extra=_one_row("SELECT current_database() AS database, pg_database_size(current_database()) AS database_bytes"),
    )


def gather_statements(profile: ProfileLike = None, *, limit: int = 10, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """The top of pg_stat_statements by mean and by total execution time (``ranked_by``)."""
    dsn, _, _ = _settings(profile, timeout)

    def fetch() -> tuple[pd.DataFrame, dict[str, Any]]:
        found, _ = run_query(
            profile,
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_stat_statements'",
            timeout=timeout,
        )
        if found.empty:
            raise SourceUnavailable(
                "pg_stat_statements is not installed in this database; ask a DBA to add it to "
                "shared_preload_libraries and run CREATE EXTENSION pg_stat_statements"
            )
        schema = '"' + str(found.iloc[0, 0]).replace('"', '""') + '"'
        return run_query(profile, SQL_STATEMENTS.format(schema=schema), {"limit": int(limit)}, timeout=timeout)

    shown = " ".join(SQL_STATEMENTS.format(schema="public").split())
    return collect(
        "postgres.statements",
        SOURCE,
        shown,
        fetch,
        timeout=timeout,
        target=_target(dsn),
        setting=setting_for(profile, "postgres"),
    )


def gather_settings(
    profile: ProfileLike = None, *, names: Sequence[str] = SETTINGS, timeout: float = DEFAULT_TIMEOUT_S
) -> Evidence:
    """Key settings, and every setting whose change waits for a restart (``pending_restart``)."""
    return _gather(profile, "settings", SQL_SETTINGS, {"names": list(names)}, timeout)


def gather_table_scans(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Sequential against index scans per table (``pg_stat_user_tables``), most rows read by seq scan first.

    ``meta.large_table_rows`` is the profile's size above which a sequential scan is suspect.
    """
    large = int(resolve_profile(profile).get("postgres.large_table_rows") or 100_000)
    return _gather(profile, "table_scans", SQL_TABLE_SCANS, None, timeout, meta={"large_table_rows": large})


def gather_indexes(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Every user index with its scans and size: unused indexes have ``idx_scan == 0``.

    ``meta.expected_indexes`` is the profile's ``postgres.expected_indexes`` as [table, name, columns].
    """
    prof = resolve_profile(profile)
    listed = prof.get("postgres.expected_indexes") or []
    expected = [[str(e["table"]), str(e["name"]), str(e["columns"])] for e in listed]
    return _gather(prof, "indexes", SQL_INDEXES, None, timeout, meta={"expected_indexes": expected})


def gather_bloat(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Tables with dead tuples, most first: candidates for VACUUM (seed 4.1)."""
    return _gather(profile, "bloat", SQL_BLOAT, None, timeout)


def gather_migrations(
    profile: ProfileLike = None,
    *,
    table: str = "django_migrations",
    limit: int = 20,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """The most recently applied migrations (the seed's ``showmigrations --plan | tail``)."""
    from psycopg import sql as psql

    dsn, _, _ = _settings(profile, timeout)
    ident = psql.Identifier(*table.split("."))

    def fetch() -> pd.DataFrame:
        dsn_, stmt, lock = _settings(profile, timeout)
        with psycopg.connect(
            dsn_,
            connect_timeout=max(round(timeout), 1),
            application_name=APPLICATION_NAME,
            options=f"-c statement_timeout={stmt} -c lock_timeout={lock} -c default_transaction_read_only=on",
        ) as conn:
            conn.read_only = True
            with conn.cursor() as cur:
                query = psql.SQL(SQL_MIGRATIONS.replace("{table}", "{t}")).format(t=ident)
                cur.execute(query, {"limit": int(limit)})
                cols = [d.name for d in cur.description or []]
                rows = cur.fetchall()
            conn.rollback()
        frame = pd.DataFrame.from_records(rows, columns=cols)
        if "applied" in frame:
            frame["applied"] = pd.to_datetime(frame["applied"], utc=True)
        return frame

    return collect(
        "postgres.migrations",
        SOURCE,
        " ".join(SQL_MIGRATIONS.replace("{table}", table).split()),
        fetch,
        timeout=timeout,
        target=_target(dsn),
    )


def gather_ping(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``SELECT 1``: reachable, and how long a connection plus a query takes."""
    return _gather(profile, "ping", "SELECT 1 AS ok, version() AS version", None, timeout)


#: Everything the investigation notebook asks of PostgreSQL, by evidence name.
ALL: dict[str, Callable[..., Evidence]] = {
    "postgres.connections": gather_connections,
    "postgres.role_limits": gather_role_limits,
    "postgres.long_queries": gather_long_queries,
    "postgres.blocking": gather_blocking,
    "postgres.lock_waits": gather_lock_waits,
    "postgres.sizes": gather_sizes,
    "postgres.statements": gather_statements,
    "postgres.settings": gather_settings,
    "postgres.table_scans": gather_table_scans,
    "postgres.indexes": gather_indexes,
    "postgres.bloat": gather_bloat,
    "postgres.prepared_xacts": gather_prepared_xacts,
    "postgres.idle_in_transaction": gather_idle_in_transaction,
    "postgres.xid_age": gather_xid_age,
    "postgres.replication_slots": gather_replication_slots,
    "postgres.vacuum": gather_vacuum,
    "postgres.replication": gather_replication,
    "postgres.migrations": gather_migrations,
}


def gather_all(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Evidence]:
    """Every PostgreSQL check, keyed by evidence name (one connection each; a failure stays in its entry)."""
    return {name: fn(profile, timeout=timeout) for name, fn in ALL.items()}

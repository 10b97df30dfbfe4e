"""Findings from PostgreSQL: connections, long queries, locks, indexes, scans, statements, bloat, settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vcci_nb.analysis.findings._common import (
    EXPECTED_INDEXES,
    Thresholds,
    _finding,
    _names,
    _rows,
    _usable,
    thresholds_with_defaults,
)
from vcci_nb.analysis.model import Finding
from vcci_nb.evidence import Evidence


def find_pool_exhaustion(connections: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Connections near a role's CONNECTION LIMIT (naming the application) or near max_connections."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(connections, "role", "count", "role_limit"):
        return []
    frame = connections.frame
    ratio = th["db_connections_ratio"]
    out: list[Finding] = []
    per_role = frame.groupby("role", dropna=True).agg(count=("count", "sum"), limit=("role_limit", "max"))
    for role, row in per_role.iterrows():
        limit = int(row["limit"])
        count = int(row["count"])
        if limit <= 0 or count < ratio * limit:
            continue
        mine = frame[frame["role"] == role]
        by_app = mine.groupby("application")["count"].sum().sort_values(ascending=False)
        by_state = mine.groupby("state")["count"].sum().sort_values(ascending=False)
        app, app_count = str(by_app.index[0]), int(by_app.iloc[0])
        states = ", ".join(f"{int(n)} {s}" for s, n in by_state.items())
        out.append(
            _finding(
                "db.pool_exhaustion",
                "critical" if count >= limit else "high",
                f"Role {role} holds {count} of its {limit} allowed connections ({count / limit:.0%}); "
                f"application {app} has {app_count} of them ({states}). New connections from {app} "
                "will be refused ('too many connections').",
                value=count,
                threshold=limit,
                unit="connections",
                evidence=[connections],
                details={
                    "role": role,
                    "application": app,
                    "role_limit": limit,
                    "by_application": {str(k): int(v) for k, v in by_app.items()},
                    "by_state": {str(k): int(v) for k, v in by_state.items()},
                },
            )
        )
    max_conn = connections.meta.get("max_connections")
    total = connections.meta.get("total")
    if max_conn and total is not None:
        usable = int(max_conn) - int(connections.meta.get("superuser_reserved") or 0)
        if usable > 0 and int(total) >= ratio * usable:
            top = frame.groupby("application")["count"].sum().sort_values(ascending=False)
            out.append(
                _finding(
                    "db.max_connections",
                    "critical" if int(total) >= usable else "high",
                    f"{int(total)} client connections against max_connections {int(max_conn)} "
                    f"({int(total) / usable:.0%} of the {usable} non-reserved slots); most from "
                    f"{_names(f'{a} ({int(n)})' for a, n in top.items())}.",
                    value=int(total),
                    threshold=usable,
                    unit="connections",
                    evidence=[connections],
                    details={
                        "max_connections": int(max_conn),
                        "by_application": {str(k): int(v) for k, v in top.items()},
                    },
                )
            )
    return out


def find_idle_connections(connections: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Many sessions idle for longer than ``idle_connection_s`` (seed scenario 1's kill candidates)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(connections, "state", "count", "oldest_state_s"):
        return []
    f = connections.frame
    idle = f[(f["state"] == "idle") & (f["oldest_state_s"] >= th["idle_connection_s"])]
    if idle.empty or int(idle["count"].sum()) < 5:
        return []
    n = int(idle["count"].sum())
    apps = idle.groupby("application")["count"].sum().sort_values(ascending=False)
    return [
        _finding(
            "db.idle_connections",
            "medium",
            f"{n} sessions idle, some for over {th['idle_connection_s']:g} s, from "
            f"{_names(f'{a} ({int(c)})' for a, c in apps.items())}.",
            value=n,
            unit="connections",
            evidence=[connections],
            details={"by_application": {str(k): int(v) for k, v in apps.items()}},
        )
    ]


def idle_connections_young(connections: Evidence, thresholds: Thresholds | None = None) -> str | None:
    """Idle connections that are there but younger than ``idle_connection_s``: its own state, not
    "not seen". Returns a sentence (``20 idle connections from vcci-api, oldest 15 s; the 300 s
    threshold is not reached yet``), or None when there are none or they are already old enough."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(connections, "state", "count", "oldest_state_s"):
        return None
    f = connections.frame
    idle = f[f["state"] == "idle"]
    if idle.empty or int(idle["count"].sum()) < 5 or (idle["oldest_state_s"] >= th["idle_connection_s"]).any():
        return None
    n = int(idle["count"].sum())
    apps = idle.groupby("application")["count"].sum().sort_values(ascending=False)
    oldest = float(idle["oldest_state_s"].max())
    who = _names(str(a) if len(apps) == 1 else f"{a} ({int(c)})" for a, c in apps.items())
    return (
        f"{n} idle connections from {who}, oldest {oldest:.0f} s; "
        f"the {th['idle_connection_s']:g} s threshold is not reached yet"
    )


def find_long_queries(long_queries: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Queries active (or transactions open) longer than ``long_query_s`` (seed 3.1: 5 minutes)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(long_queries, "pid", "duration_s"):
        return []
    limit = float(long_queries.meta.get("threshold_s") or th["long_query_s"])
    f = long_queries.frame[long_queries.frame["duration_s"] >= limit]
    if f.empty:
        return []
    worst = f.sort_values("duration_s", ascending=False).iloc[0]
    kill = th.get("kill_query_s", 600.0)
    return [
        _finding(
            "db.long_queries",
            "high" if float(worst["duration_s"]) >= kill else "medium",
            f"{len(f)} queries running longer than {limit:g} s; the longest (pid {int(worst['pid'])}, "
            f"{worst.get('application') or worst.get('role')}) for {float(worst['duration_s']):.0f} s: "
            f"{str(worst.get('query') or '')[:120]}",
            value=float(worst["duration_s"]),
            threshold=limit,
            unit="s",
            evidence=[long_queries],
            details={"pids": [int(p) for p in f["pid"]], "applications": sorted(set(map(str, f["application"])))},
        )
    ]


def find_lock_chains(blocking: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Sessions waiting on others' locks: the root blockers and the blocked PIDs.

    A root that is a prepared transaction (``pg_blocking_pids`` gives 0) is named by its gid: it has
    no backend, so no PID is offered for it; the fix is ``ROLLBACK PREPARED`` (or ``COMMIT PREPARED``).
    """
    if not _usable(blocking, "blocked_pid", "blocking_pid"):
        return []
    f = blocking.frame
    blocked = sorted({int(p) for p in f["blocked_pid"]})
    roots_mask = f["blocking_is_root"] if "blocking_is_root" in f else ~f["blocking_pid"].isin(f["blocked_pid"])
    roots = sorted({int(p) for p in f.loc[roots_mask, "blocking_pid"]}) or sorted({int(p) for p in f["blocking_pid"]})
    root_rows = f[f["blocking_pid"].isin(roots)]
    gids: list[str] = []
    parts: list[str] = []
    for r in _rows(
        root_rows.drop_duplicates(["blocking_pid", "blocking_gid"] if "blocking_gid" in f else "blocking_pid")
    ):
        gid = getattr(r, "blocking_gid", None)
        if int(r.blocking_pid) == 0:
            name = str(gid) if isinstance(gid, str) and gid else "(unknown gid)"
            gids.append(name)
            parts.append(
                f"prepared transaction {name!r} ({r.blocking_role}, "
                f"prepared {float(r.blocking_xact_s or 0):.0f} s ago; "
                "it has no session to terminate: ROLLBACK PREPARED after review)"
            )
        else:
            parts.append(
                f"pid {int(r.blocking_pid)} ({r.blocking_application or r.blocking_role}, {r.blocking_state}, "
                f"transaction open {float(r.blocking_xact_s or 0):.0f} s)"
            )
    wait = float(f["waiting_s"].max()) if "waiting_s" in f else float("nan")
    pids = [p for p in roots if p != 0]
    return [
        _finding(
            "db.lock_chain",
            "high" if len(blocked) >= 3 or wait >= 60 or gids else "medium",
            f"{len(blocked)} sessions blocked (pids {_names(blocked, 8)}) behind {'; '.join(parts)}; "
            f"longest wait {wait:.0f} s.",
            value=len(blocked),
            unit="sessions",
            evidence=[blocking],
            details={
                "blocking_pids": pids,
                "blocking_gids": sorted(set(gids)),
                "blocked_pids": blocked,
                "max_wait_s": wait,
            },
        )
    ]


def find_prepared_xacts(prepared: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Prepared transactions older than ``prepared_xact_s``: locks and an old XID that no session owns."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(prepared, "gid", "age_s"):
        return []
    f = prepared.frame[prepared.frame["age_s"] >= th["prepared_xact_s"]]
    if f.empty:
        return []
    waiting = int(f["sessions_waiting"].sum()) if "sessions_waiting" in f else 0
    oldest = f.sort_values("age_s", ascending=False).iloc[0]
    listed = _names(f"{r.gid!r} ({r.owner}, {r.age_s:.0f} s, {int(r.locks_held)} locks)" for r in _rows(f))
    return [
        _finding(
            "db.prepared_xacts",
            "high" if waiting else "medium",
            f"{len(f)} prepared transaction(s) left open: {listed}"
            + (f"; {waiting} session(s) wait on their locks" if waiting else "")
            + ". They have no backend (pg_terminate_backend cannot end them) and hold back VACUUM: "
            "ROLLBACK PREPARED (or COMMIT PREPARED) by gid, after review.",
            value=float(oldest["age_s"]),
            threshold=th["prepared_xact_s"],
            unit="s",
            evidence=[prepared],
            details={
                "gids": [str(g) for g in f["gid"]],
                "owners": sorted(set(map(str, f["owner"]))),
                "sessions_waiting": waiting,
            },
        )
    ]


def find_idle_in_transaction(idle_tx: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Sessions idle in an open transaction past their own (short) threshold: locks and snapshots held."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(idle_tx, "pid", "idle_s"):
        return []
    asked = idle_tx.meta.get("threshold_s")
    limit = float(asked) if asked is not None else th["idle_in_transaction_s"]
    f = idle_tx.frame[idle_tx.frame["idle_s"] >= limit]
    if f.empty:
        return []
    blocking = int(f["sessions_blocked"].sum()) if "sessions_blocked" in f else 0
    worst = f.sort_values("idle_s", ascending=False).iloc[0]
    return [
        _finding(
            "db.idle_in_transaction",
            "high" if blocking else "medium",
            f"{len(f)} session(s) idle in an open transaction for over {limit:g} s; the oldest (pid "
            f"{int(worst['pid'])}, {worst.get('application') or worst.get('role')}) for {float(worst['idle_s']):.0f} s "
            f"holding {int(worst.get('locks_held') or 0)} locks"
            + (f"; {blocking} session(s) wait on them" if blocking else "")
            + ". They keep their locks and snapshot until they end: terminate them (state 'idle in transaction').",
            value=float(worst["idle_s"]),
            threshold=limit,
            unit="s",
            evidence=[idle_tx],
            details={
                "pids": [int(p) for p in f["pid"]],
                "applications": sorted(set(map(str, f["application"]))),
                "sessions_blocked": blocking,
            },
        )
    ]


#: PostgreSQL stops assigning XIDs 3 million short of 2^31; warn well before.
XID_WRAPAROUND = 2**31


def find_xid_age(xid_age: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Transaction ID age past ``xid_age`` (wraparound danger), naming what holds VACUUM back."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(xid_age, "database", "xid_age"):
        return []
    f = xid_age.frame
    hits = f[f["xid_age"] >= th["xid_age"]]
    if hits.empty:
        return []
    worst = int(hits["xid_age"].max())
    holders = [h for h in xid_age.meta.get("holders") or [] if h.get("age") is not None]
    held = "; ".join(f"{h['kind']} {h['name']} (age {int(h['age']):,})" for h in holders[:3])
    share = worst / XID_WRAPAROUND
    return [
        _finding(
            "db.xid_age",
            "critical" if share >= 0.7 else "high" if share >= 0.25 else "medium",
            f"Transaction ID age {worst:,} in {_names(hits['database'])} ({share:.2%} of the way to wraparound, "
            f"threshold {th['xid_age']:,.0f})."
            + (f" Freezing is held back by: {held}." if held else "")
            + " End what holds the horizon, then VACUUM (FREEZE) the oldest tables.",
            value=worst,
            threshold=th["xid_age"],
            unit="transactions",
            evidence=[xid_age],
            details={
                "databases": [str(d) for d in hits["database"]],
                "holders": holders[:5],
                "oldest_tables": list(xid_age.meta.get("oldest_tables") or [])[:5],
            },
        )
    ]


def find_replication_slot_wal(slots: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Inactive replication slots keeping more than ``slot_retained_bytes`` of WAL (the disk fills)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(slots, "slot", "active", "retained_bytes"):
        return []
    f = slots.frame
    hits = f[(~f["active"].astype(bool)) & (f["retained_bytes"].fillna(0) >= th["slot_retained_bytes"])]
    lost = f[f["wal_status"].astype(str) == "lost"] if "wal_status" in f else f.iloc[0:0]
    if hits.empty and lost.empty:
        return []
    rows = hits if not hits.empty else lost
    mib = float(rows["retained_bytes"].fillna(0).max()) / 1024**2
    listed = _names(
        f"{r.slot} ({r.slot_type}, {float(r.retained_bytes or 0) / 1024**2:,.0f} MiB of WAL, {r.wal_status})"
        for r in _rows(rows)
    )
    return [
        _finding(
            "db.replication_slot_wal",
            "high",
            f"Inactive replication slot(s) {listed}: nothing consumes"
            " them, so WAL piles up until the disk is full. Bring the replica back, or drop the slot (the replica "
            "must then be rebuilt).",
            value=mib,
            threshold=th["slot_retained_bytes"] / 1024**2,
            unit="MiB",
            evidence=[slots],
            details={"slots": [str(s) for s in rows["slot"]]},
        )
    ]


def find_autovacuum_behind(vacuum: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Tables whose dead rows passed their autovacuum trigger with no vacuum since (or autovacuum off)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(vacuum, "table", "dead_rows", "autovacuum_trigger"):
        return []
    f = vacuum.frame
    over = f["dead_rows"] > f["autovacuum_trigger"]
    stale = f["since_vacuum_s"].isna() | (f["since_vacuum_s"] >= th["vacuum_stale_s"])
    off = ~f["autovacuum_enabled"].astype(bool)
    hits = f[over & (f["dead_rows"] >= th["dead_tuple_rows"]) & (stale | off)]
    if hits.empty:
        return []

    def why(r: Any) -> str:
        last = "never vacuumed" if r.since_vacuum_s != r.since_vacuum_s else f"last vacuum {r.since_vacuum_s:.0f} s ago"
        return (
            f"{r.table} ({int(r.dead_rows):,} dead rows, trigger {int(r.autovacuum_trigger):,}, {last}"
            + (", autovacuum disabled on the table" if not bool(r.autovacuum_enabled) else "")
            + ")"
        )

    return [
        _finding(
            "db.autovacuum_behind",
            "medium",
            f"Autovacuum has not kept up: {_names(why(r) for r in _rows(hits))}. VACUUM (ANALYZE) them"
            + (" and re-enable autovacuum" if bool(off[hits.index].any()) else "")
            + ".",
            value=int(hits["dead_rows"].max()),
            unit="dead rows",
            evidence=[vacuum],
            details={
                "tables": [str(t) for t in hits["table"]],
                "autovacuum_disabled": [str(t) for t in hits.loc[off[hits.index], "table"]],
            },
        )
    ]


def find_missing_indexes(
    indexes: Evidence,
    table_scans: Evidence | None = None,
    expected: Mapping[str, tuple[str, str]] | None = None,
) -> list[Finding]:
    """An index the runbook expects is absent (or invalid); the table's sequential scans are the symptom."""
    if indexes is None or not indexes.ok or "index" not in indexes.frame.columns:
        return []
    if expected is None:
        listed = indexes.meta.get("expected_indexes") or []
        expected = {str(e[0]): (str(e[1]), str(e[2])) for e in listed if len(e) == 3} or EXPECTED_INDEXES
    exp = dict(expected)
    f = indexes.frame
    out = []
    scans = table_scans.frame if _usable(table_scans, "table", "seq_scan") and table_scans is not None else None
    for table, (name, columns) in exp.items():
        row = f[f["index"] == name]
        if not row.empty and bool(row.iloc[0].get("is_valid", True)):
            continue
        known_tables = set(map(str, f["table"])) | (set(map(str, scans["table"])) if scans is not None else set())
        if table not in known_tables:
            continue  # the table is not in this database: nothing to say
        detail: dict[str, Any] = {"table": table, "index": name, "columns": columns}
        extra = ""
        if scans is not None:
            srow = scans[scans["table"] == table]
            if not srow.empty:
                s = srow.iloc[0]
                detail.update(
                    seq_scans=int(s["seq_scan"]),
                    live_rows=int(s.get("live_rows", 0) or 0),
                    seq_tup_read=int(s.get("seq_tup_read", 0) or 0),
                )
                extra = (
                    f" {table} has had {int(s['seq_scan'])} sequential scans reading {int(s['seq_tup_read']):,} rows."
                )
        state = "is invalid" if not row.empty else "is missing"
        out.append(
            _finding(
                "db.missing_index",
                "high",
                f"Index {name} on {table}({columns}) {state}: queries by tenant and date scan the whole "
                f"table.{extra} Seed scenario 4: CREATE INDEX CONCURRENTLY {name} ON {table}({columns}).",
                value=detail.get("seq_scans"),
                unit="sequential scans",
                evidence=[e for e in (indexes, table_scans) if e is not None],
                details=detail,
            )
        )
    return out


def find_seq_scans(table_scans: Evidence, thresholds: Thresholds | None = None, *, min_scans: int = 5) -> list[Finding]:
    """Large tables read mostly by full sequential scans (``large_table_rows`` from the evidence)."""
    if not _usable(table_scans, "table", "seq_scan", "seq_tup_read", "live_rows"):
        return []
    large = float(table_scans.meta.get("large_table_rows") or 100_000)
    f = table_scans.frame
    idx = f.get("idx_scan", 0)
    hits = f[
        (f["live_rows"] >= large)
        & (f["seq_scan"] >= min_scans)
        & (f["seq_tup_read"] >= 0.5 * f["live_rows"] * f["seq_scan"])
        & (f["seq_scan"] > 0.1 * idx)
    ]
    out = []
    for r in _rows(hits):
        out.append(
            _finding(
                "db.seq_scans",
                "low",
                f"{r.table} ({int(r.live_rows):,} rows) was read by {int(r.seq_scan)} full sequential scans "
                f"({int(r.seq_tup_read):,} rows) against {int(getattr(r, 'idx_scan', 0) or 0)} index scans: "
                "a query is missing an index.",
                value=int(r.seq_scan),
                unit="sequential scans",
                evidence=[table_scans],
                details={"table": r.table, "live_rows": int(r.live_rows), "seq_tup_read": int(r.seq_tup_read)},
            )
        )
    return out


def find_slow_statements(
    statements: Evidence, thresholds: Thresholds | None = None, *, min_calls: int = 3
) -> list[Finding]:
    """Statements whose mean time exceeds ``slow_statement_ms`` (pg_stat_statements, seed scenario 4)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(statements, "mean_ms", "query"):
        return []
    f = statements.frame
    f = f[
        (f.get("ranked_by", "mean") == "mean") & (f["mean_ms"] >= th["slow_statement_ms"]) & (f["calls"] >= min_calls)
    ]
    if not f.empty:
        # Maintenance and one-off loads (the schema's own INSERT ... SELECT) are not what users wait on.
        text = f["query"].astype(str).str.lstrip().str.upper()
        f = f[
            ~text.str.match(
                r"(CREATE|ALTER|DROP|ANALYZE|VACUUM|COPY|REINDEX|CLUSTER|GRANT|SET|INSERT INTO \S+ .*SELECT)"
            )
        ]
        f = f[~f["query"].astype(str).str.contains("pg_sleep", regex=False)]
    if f.empty:
        return []
    worst = f.sort_values("mean_ms", ascending=False).iloc[0]
    return [
        _finding(
            "db.slow_statements",
            "low",
            f"{len(f)} statements average over {th['slow_statement_ms']:g} ms; the slowest averages "
            f"{float(worst['mean_ms']):.0f} ms over {int(worst['calls'])} calls: {str(worst['query'])[:120]}",
            value=float(worst["mean_ms"]),
            threshold=th["slow_statement_ms"],
            unit="ms",
            evidence=[statements],
            details={"queryids": [str(q) for q in f.get("queryid", [])]},
        )
    ]


def find_bloat(bloat: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Tables with many dead tuples: VACUUM candidates (seed 4.1)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(bloat, "table", "dead_rows", "dead_ratio"):
        return []
    f = bloat.frame
    hits = f[(f["dead_ratio"] >= th["dead_tuple_ratio"]) & (f["dead_rows"] >= th["dead_tuple_rows"])]
    if hits.empty:
        return []
    return [
        _finding(
            "db.bloat",
            "low",
            f"Dead-tuple bloat in {_names(f'{r.table} ({r.dead_ratio:.0%} dead)' for r in _rows(hits))}.",
            value=float(hits["dead_ratio"].max()),
            threshold=th["dead_tuple_ratio"],
            unit="ratio",
            evidence=[bloat],
            details={"tables": [str(t) for t in hits["table"]]},
        )
    ]


def find_pending_restart(settings: Evidence) -> list[Finding]:
    """Settings changed (ALTER SYSTEM) that take effect only after a restart."""
    if not _usable(settings, "name", "pending_restart"):
        return []
    f = settings.frame[settings.frame["pending_restart"].astype(bool)]
    if f.empty:
        return []
    return [
        _finding(
            "db.pending_restart",
            "low",
            f"Settings waiting for a PostgreSQL restart: {_names(f['name'])}. They are not in effect yet.",
            evidence=[settings],
            details={"settings": [str(n) for n in f["name"]]},
        )
    ]


def find_replica_lag(replication: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Replicas replaying more than ``replica_lag_bytes`` (or ``replica_lag_s``) behind the primary."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(replication, "replica", "replay_lag_bytes"):
        return []
    f = replication.frame
    lag_s = f["replay_lag_s"].fillna(0) if "replay_lag_s" in f else 0
    hits = f[(f["replay_lag_bytes"].fillna(0) >= th["replica_lag_bytes"]) | (lag_s >= th["replica_lag_s"])]
    if hits.empty:
        return []
    listed = _names(
        f"{r.replica} ({r.state}, {float(r.replay_lag_bytes or 0) / 1024**2:,.1f} MiB behind"
        + (f", replay lag {float(r.replay_lag_s):.1f} s" if r.replay_lag_s == r.replay_lag_s and r.replay_lag_s else "")
        + ")"
        for r in _rows(hits)
    )
    return [
        _finding(
            "db.replica_lag",
            "high",
            f"Replica(s) behind the primary: {listed}. Reads from them are stale, and a failover now would "
            "lose what they have not replayed. Look at the replica's disk and CPU, the network, long queries "
            "on it that conflict with replay, or replay paused (pg_is_wal_replay_paused() on the replica).",
            value=float(hits["replay_lag_bytes"].max()) / 1024**2,
            threshold=th["replica_lag_bytes"] / 1024**2,
            unit="MiB",
            evidence=[replication],
            details={"replicas": [str(r) for r in hits["replica"]]},
        )
    ]

"""Findings: what looks wrong in the evidence, stated plainly, with the numbers behind it.

Every ``find_*`` is a pure function: Evidence (and thresholds) in, ``list[Finding]`` out. An
Evidence that is not ``ok`` gives no finding here (the notebook already shows its banner);
:func:`find_unreachable` turns unreachable sources into findings of their own, because "the
database refused us" is often the answer.

Keys are stable (``db.pool_exhaustion``, ``kube.oomkilled``); :data:`RUNBOOK` maps each to
the runbook section and notebook an engineer opens next. :func:`find_all` runs every rule
over a collection of evidence, found by its ``meta["kind"]`` (the name the gather function
gave it), so notebooks may store evidence under any name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import pandas as pd

from vcci_nb.analysis.model import SEVERITY_ORDER, Finding, Severity, sort_findings
from vcci_nb.evidence import Evidence, Window

Thresholds = Mapping[str, float]
EvidenceSet = Mapping[str, Evidence] | Iterable[Evidence]

#: The profile's thresholds (``parameters/environments/*.yaml``) when a caller passes none.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "error_ratio_5xx": 0.05,
    "latency_p95_s": 2.0,
    "long_query_s": 300.0,
    "idle_connection_s": 300.0,
    "db_connections_ratio": 0.8,
    "redis_memory_ratio": 0.9,
    "redis_slow_ms": 50.0,
    "slow_statement_ms": 1000.0,
    "cpu_ratio": 0.9,
    "memory_ratio": 0.9,
    "disk_free_ratio": 0.1,
    "restarts": 3.0,
    "dead_tuple_ratio": 0.2,
    "dead_tuple_rows": 10_000.0,
    "deploy_recent_hours": 6.0,
    "log_error_ratio": 0.05,
}

#: Indexes the runbook relies on (seed 4.2 scenario 4): table -> (index name, columns).
EXPECTED_INDEXES: dict[str, tuple[str, str]] = {
    "emissions": ("idx_emissions_tenant_date", "tenant_id, calculated_at"),
}

#: finding key -> (runbook section, notebook to open next).
RUNBOOK: dict[str, tuple[str, str]] = {
    "db.unavailable": ("3.1 Check Database; 3.4 all 500 → database connection refused", "03_investigate_database"),
    "db.pool_exhaustion": ("4.2 Scenario 1: Database Connection Pool Exhausted", "scenarios/connection_pool_exhausted"),
    "db.max_connections": ("4.2 Scenario 1; 4.1 Database Emergency Actions", "scenarios/connection_pool_exhausted"),
    "db.idle_connections": ("4.2 Scenario 1: kill idle connections", "scenarios/connection_pool_exhausted"),
    "db.long_queries": ("3.1 Long-running queries; 4.1 Kill long-running queries", "03_investigate_database"),
    "db.lock_chain": ("3.1 Database locks", "03_investigate_database"),
    "db.missing_index": ("4.2 Scenario 4: Slow Database Queries (create missing indexes)", "scenarios/slow_queries"),
    "db.seq_scans": ("4.2 Scenario 4: Slow Database Queries", "scenarios/slow_queries"),
    "db.slow_statements": ("4.2 Scenario 4: Identify slow queries", "scenarios/slow_queries"),
    "db.bloat": ("4.1 Vacuum analyze (if bloat suspected)", "03_investigate_database"),
    "db.pending_restart": ("4.1 Increase connection limit (needs a restart)", "03_investigate_database"),
    "redis.unavailable": ("3.1 Check Redis; 3.4 all 500 → Redis connection refused", "03_investigate_redis"),
    "redis.memory_pressure": ("3.1 Redis memory; 4.1 Clear Cache", "03_investigate_redis"),
    "redis.slow_commands": ("3.1 Redis slow log", "03_investigate_redis"),
    "kube.unavailable": ("1.1 kubectl get pods; check cluster access", "03_investigate_system"),
    "kube.oomkilled": ("4.2 Scenario 2: Memory Leak", "scenarios/memory_leak"),
    "kube.crashloop": ("3.4 Pods crashing (CrashLoopBackOff)", "03_investigate_logs"),
    "kube.pods_not_ready": ("1.1 Pod health", "03_investigate_system"),
    "kube.node_pressure": ("3.1 Node health", "03_investigate_system"),
    "kube.resource_saturation": ("3.4 High CPU/memory → check resource usage", "03_investigate_system"),
    "kube.bad_deploy": ("3.3 Recent deployments; 4.1 Rollback Recent Deployment", "03_investigate_changes"),
    "kube.disk_full": ("4.2 Scenario 3: Disk Space Full", "scenarios/disk_full"),
    "logs.errors": ("3.1 Check Application Logs", "03_investigate_logs"),
    "metrics.error_rate": ("3.2 Error rate", "03_investigate_metrics"),
    "metrics.latency": ("3.2 Response time (p95, p99)", "03_investigate_metrics"),
    "deps.http_down": ("3.1 External Dependencies; 4.2 Scenario 5: External API Down", "scenarios/external_api_down"),
    "deps.rabbitmq": ("3.1 Check RabbitMQ", "03_investigate_dependencies"),
    "deps.dependency_down": ("4.2 Scenario 5: External API Down", "scenarios/external_api_down"),
    "changes.recent": ("3.3 Check Recent Changes", "03_investigate_changes"),
    "alerts.firing": ("1.1 Acknowledge the Alert; 3.4 Decision Tree", "03_decision_tree"),
}  # fmt: skip


def thresholds_with_defaults(thresholds: Thresholds | None) -> dict[str, float]:
    out = dict(DEFAULT_THRESHOLDS)
    out.update({k: float(v) for k, v in (thresholds or {}).items() if isinstance(v, int | float)})
    return out


def _finding(
    key: str,
    severity: Severity,
    summary: str,
    *,
    value: float | int | str | None = None,
    threshold: float | int | str | None = None,
    unit: str = "",
    evidence: Iterable[Evidence] = (),
    details: dict[str, Any] | None = None,
) -> Finding:
    section, notebook = RUNBOOK.get(key, ("", ""))
    runbook = f"{section} — open {notebook}.ipynb" if notebook else section
    if isinstance(value, float):
        value = round(value, 4)
    return Finding(
        key=key,
        severity=severity,
        summary=summary,
        value=value,
        threshold=threshold,
        unit=unit,
        evidence=tuple(e.name for e in evidence),
        details=_plain(details or {}),
        runbook=runbook,
    )


def _plain(value: Any) -> Any:
    """JSON-friendly copies of numpy and pandas scalars (findings go into record.json)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            return _plain(value.item())
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rows(frame: pd.DataFrame) -> list[Any]:
    """Rows as attribute bags (``r.count`` is the column, unlike itertuples' tuple method)."""
    return [SimpleNamespace(**{str(k): v for k, v in rec.items()}) for rec in frame.to_dict("records")]


def _usable(ev: Evidence | None, *cols: str) -> bool:
    return ev is not None and ev.ok and not ev.frame.empty and all(c in ev.frame.columns for c in cols)


def _names(values: Iterable[Any], limit: int = 5) -> str:
    items = [str(v) for v in values]
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


# --- PostgreSQL -----------------------------------------------------------------------------------


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
    """Sessions waiting on others' locks: the blocking (root) PIDs and the blocked PIDs."""
    if not _usable(blocking, "blocked_pid", "blocking_pid"):
        return []
    f = blocking.frame
    blocked = sorted({int(p) for p in f["blocked_pid"]})
    roots_mask = f["blocking_is_root"] if "blocking_is_root" in f else ~f["blocking_pid"].isin(f["blocked_pid"])
    roots = sorted({int(p) for p in f.loc[roots_mask, "blocking_pid"]}) or sorted({int(p) for p in f["blocking_pid"]})
    root_rows = f[f["blocking_pid"].isin(roots)].drop_duplicates("blocking_pid")
    who = "; ".join(
        f"pid {int(r.blocking_pid)} ({r.blocking_application or r.blocking_role}, {r.blocking_state}, "
        f"transaction open {float(r.blocking_xact_s or 0):.0f} s)"
        for r in _rows(root_rows)
    )
    wait = float(f["waiting_s"].max()) if "waiting_s" in f else float("nan")
    return [
        _finding(
            "db.lock_chain",
            "high" if len(blocked) >= 3 or wait >= 60 else "medium",
            f"{len(blocked)} sessions blocked (pids {_names(blocked, 8)}) behind {who}; longest wait {wait:.0f} s.",
            value=len(blocked),
            unit="sessions",
            evidence=[blocking],
            details={"blocking_pids": roots, "blocked_pids": blocked, "max_wait_s": wait},
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
    exp = dict(EXPECTED_INDEXES if expected is None else expected)
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
                detail.update(seq_scans=int(s["seq_scan"]), live_rows=int(s.get("live_rows", 0) or 0),
                              seq_tup_read=int(s.get("seq_tup_read", 0) or 0))  # fmt: skip
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


# --- Redis ----------------------------------------------------------------------------------------


def find_redis_memory(info: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Used memory near maxmemory (evictions follow), from INFO memory."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(info, "memory_ratio"):
        return []
    row = info.frame.iloc[0]
    ratio = float(row["memory_ratio"])
    if not math.isfinite(ratio) or ratio < th["redis_memory_ratio"]:
        return []
    return [
        _finding(
            "redis.memory_pressure",
            "high" if ratio >= 0.98 else "medium",
            f"Redis uses {ratio:.0%} of maxmemory ({float(row['used_memory']) / 2**20:.1f} of "
            f"{float(row['maxmemory']) / 2**20:.1f} MiB, policy {row.get('maxmemory_policy')}); "
            f"{int(row.get('evicted_keys') or 0)} keys evicted so far.",
            value=ratio,
            threshold=th["redis_memory_ratio"],
            unit="ratio",
            evidence=[info],
            details={
                "used_memory": int(row["used_memory"]),
                "maxmemory": int(row["maxmemory"]),
                "evicted_keys": int(row.get("evicted_keys") or 0),
            },
        )
    ]


def find_redis_slowlog(slowlog: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Commands in SLOWLOG slower than ``redis_slow_ms`` (KEYS, DEBUG SLEEP, big values)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(slowlog, "duration_ms", "command"):
        return []
    f = slowlog.frame[slowlog.frame["duration_ms"] >= th["redis_slow_ms"]]
    if f.empty:
        return []
    cmds = f["command"].astype(str).str.split().str[0].str.upper().value_counts()
    return [
        _finding(
            "redis.slow_commands",
            "medium",
            f"{len(f)} Redis commands took over {th['redis_slow_ms']:g} ms "
            f"(slowest {float(f['duration_ms'].max()):.0f} ms): "
            f"{_names(f'{c} ×{int(n)}' for c, n in cmds.items())}. Redis is single-threaded: "
            "every client waited meanwhile.",
            value=float(f["duration_ms"].max()),
            threshold=th["redis_slow_ms"],
            unit="ms",
            evidence=[slowlog],
            details={"commands": {str(k): int(v) for k, v in cmds.items()}},
        )
    ]


# --- Kubernetes -----------------------------------------------------------------------------------


def find_oomkilled(containers: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Containers last killed for memory: which pods, how many restarts, at what limit (seed scenario 2)."""
    if not _usable(containers, "pod", "restarts"):
        return []
    f = containers.frame
    if "last_reason" in f:
        mask = f["last_reason"] == "OOMKilled"
        if "terminated_reason" in f:
            mask = mask | (f["terminated_reason"] == "OOMKilled")
        f = f[mask]
    if f.empty:
        return []
    f = f.sort_values("restarts", ascending=False)
    pods = [f"{r.pod} ({int(r.restarts)} restarts)" for r in _rows(f)]
    limit = f["memory_limit_bytes"].dropna() if "memory_limit_bytes" in f else pd.Series(dtype=float)
    lim = f", memory limit {float(limit.iloc[0]) / 2**20:.0f} MiB" if not limit.empty else ""
    return [
        _finding(
            "kube.oomkilled",
            "high",
            f"{len(f)} containers were OOMKilled: {_names(pods, 6)}{lim}.",
            value=int(f["restarts"].sum()),
            unit="restarts",
            evidence=[containers],
            details={
                "pods": [str(p) for p in f["pod"]],
                "restarts": {str(r.pod): int(r.restarts) for r in _rows(f)},
            },
        )
    ]


def find_crashloop(pods: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Pods in CrashLoopBackOff (or restarting more than ``restarts``) that are not OOMKilled."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(pods, "pod", "status", "restarts"):
        return []
    f = pods.frame
    crash = f[
        (f["status"] == "CrashLoopBackOff") | ((f["restarts"] >= th["restarts"]) & (f["ready"] < f["containers"]))
    ]
    if "last_termination_reason" in crash:
        crash = crash[crash["last_termination_reason"] != "OOMKilled"]
    if crash.empty:
        return []
    reasons = crash.get("last_termination_reason", pd.Series(dtype=object)).dropna().astype(str).value_counts()
    return [
        _finding(
            "kube.crashloop",
            "high",
            f"{len(crash)} pods crash-looping: {_names(f'{r.pod} ({int(r.restarts)} restarts)' for r in _rows(crash))}"
            + (f"; last exit: {_names(reasons.index)}" if not reasons.empty else "")
            + ". Their logs (--previous) say why.",
            value=len(crash),
            unit="pods",
            evidence=[pods],
            details={"pods": [str(p) for p in crash["pod"]]},
        )
    ]


def find_pods_not_ready(pods: Evidence, thresholds: Thresholds | None = None, *, grace_s: float = 120) -> list[Finding]:
    """Pods older than ``grace_s`` that are not Running and ready (everything ``grep -v Running`` shows)."""
    if not _usable(pods, "pod", "ready", "containers", "phase"):
        return []
    f = pods.frame
    bad = f[((f["ready"] < f["containers"]) | (f["phase"] != "Running")) & (f["phase"] != "Succeeded")]
    if "age_s" in bad:
        bad = bad[bad["age_s"].fillna(grace_s) >= grace_s]
    if bad.empty:
        return []
    share = len(bad) / max(len(f), 1)
    return [
        _finding(
            "kube.pods_not_ready",
            "critical" if share >= 0.99 else "high" if share >= 0.5 else "medium",
            f"{len(bad)} of {len(f)} pods are not ready: {_names(f'{r.pod} ({r.status})' for r in _rows(bad))}.",
            value=len(bad),
            threshold=len(f),
            unit="pods",
            evidence=[pods],
            details={"pods": [str(p) for p in bad["pod"]], "share": share},
        )
    ]


def find_node_pressure(nodes: Evidence) -> list[Finding]:
    """Nodes not Ready or under memory, disk or PID pressure."""
    if not _usable(nodes, "node", "ready"):
        return []
    f = nodes.frame
    cols = [c for c in ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable") if c in f]
    mask = ~f["ready"].astype(bool)
    for c in cols:
        mask = mask | f[c].astype(bool)
    bad = f[mask]
    if bad.empty:
        return []
    what = []
    for r in _rows(bad):
        flags = [c for c in cols if bool(getattr(r, c))] + ([] if r.ready else ["NotReady"])
        what.append(f"{r.node} ({', '.join(flags)})")
    return [
        _finding(
            "kube.node_pressure",
            "high",
            f"{len(bad)} nodes in trouble: {_names(what)}.",
            value=len(bad),
            unit="nodes",
            evidence=[nodes],
            details={"nodes": [str(n) for n in bad["node"]]},
        )
    ]


def find_resource_saturation(top_pods: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Pods using more than ``cpu_ratio``/``memory_ratio`` of their limits (kubectl top pods)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(top_pods, "pod"):
        return []
    f = top_pods.frame
    out = []
    for col, key, label in (("cpu_ratio", "cpu_ratio", "CPU"), ("memory_ratio", "memory_ratio", "memory")):
        if col not in f:
            continue
        hot = f[f[col] >= th[key]]
        if hot.empty:
            continue
        out.append(
            _finding(
                "kube.resource_saturation",
                "medium",
                f"{len(hot)} pods above {th[key]:.0%} of their {label} limit: "
                f"{_names(f'{r.pod} ({getattr(r, col):.0%})' for r in _rows(hot))}.",
                value=float(hot[col].max()),
                threshold=th[key],
                unit="ratio",
                evidence=[top_pods],
                details={"resource": label, "pods": [str(p) for p in hot["pod"]]},
            )
        )
    return out


def find_disk_full(volumes: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Volumes with less than ``disk_free_ratio`` free (seed scenario 3)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(volumes, "free_ratio"):
        return []
    f = volumes.frame[volumes.frame["free_ratio"] < th["disk_free_ratio"]]
    if f.empty:
        return []
    name_col = "persistentvolumeclaim" if "persistentvolumeclaim" in f else f.columns[0]
    return [
        _finding(
            "kube.disk_full",
            "critical" if float(f["free_ratio"].min()) < 0.02 else "high",
            f"Volumes nearly full: {_names(f'{getattr(r, name_col)} ({r.free_ratio:.1%} free)' for r in _rows(f))}. "
            "Writes will fail with 'No space left on device'.",
            value=float(f["free_ratio"].min()),
            threshold=th["disk_free_ratio"],
            unit="free ratio",
            evidence=[volumes],
            details={"volumes": [str(v) for v in f[name_col]]},
        )
    ]


def find_bad_deploy(
    rollout: Evidence,
    signatures: Evidence | None = None,
    pods: Evidence | None = None,
    *,
    window: Window | None = None,
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """A recent revision whose pods fail or whose rollout brought new error signatures.

    Recent means created within the window (or ``deploy_recent_hours`` before its end). The
    finding names the revision, its change cause and what changed, and the signatures first
    seen after it was created.
    """
    th = thresholds_with_defaults(thresholds)
    if not _usable(rollout, "revision", "created_at"):
        return []
    f = rollout.frame.sort_values("revision")
    latest = f.iloc[-1]
    created = pd.Timestamp(latest["created_at"])
    end = pd.Timestamp(window.end) if window else pd.Timestamp.now(tz="UTC")
    start = pd.Timestamp(window.start) if window else end - pd.Timedelta(hours=th["deploy_recent_hours"])
    recent_from = min(start, end - pd.Timedelta(hours=th["deploy_recent_hours"]))
    if pd.isna(created) or created < recent_from or len(f) < 2:
        return []
    new_sigs = pd.DataFrame()
    if _usable(signatures, "signature", "first_seen") and signatures is not None:
        s = signatures.frame
        new_sigs = s[pd.to_datetime(s["first_seen"], utc=True) >= created - pd.Timedelta(seconds=30)]
    failing = pd.DataFrame()
    hash_ = latest.get("pod_template_hash")
    if _usable(pods, "pod", "ready", "containers") and pods is not None and hash_:
        p = pods.frame
        mine = p[p.get("pod_template_hash", pd.Series(index=p.index, dtype=object)) == hash_]
        failing = mine[(mine["ready"] < mine["containers"]) | (mine["restarts"] > 0)]
    unavailable = int(rollout.meta.get("unavailable_replicas") or 0)
    if new_sigs.empty and failing.empty and unavailable == 0:
        return []
    prev = f.iloc[-2]
    sig_text = (
        "; new errors since: " + _names(f"{r.signature[:80]} (×{int(r.count)})" for r in _rows(new_sigs))
        if not new_sigs.empty
        else ""
    )
    fail_text = f"; {len(failing)} of its pods failing or restarting" if not failing.empty else ""
    return [
        _finding(
            "kube.bad_deploy",
            "critical" if not failing.empty and not new_sigs.empty else "high",
            f"Revision {int(latest['revision'])} of {rollout.meta.get('deployment', 'the deployment')} "
            f"({latest.get('change_cause') or 'no change cause'}) was rolled out at "
            f"{created.strftime('%H:%M UTC')}; changes from {int(prev['revision'])}: "
            f"{latest.get('changes') or 'none recorded'}{fail_text}{sig_text}. Rollback candidate: revision "
            f"{int(prev['revision'])}.",
            value=int(latest["revision"]),
            unit="revision",
            evidence=[e for e in (rollout, signatures, pods) if e is not None],
            details={
                "revision": int(latest["revision"]),
                "previous_revision": int(prev["revision"]),
                "change_cause": str(latest.get("change_cause") or ""),
                "changes": str(latest.get("changes") or ""),
                "created_at": created.isoformat(),
                "new_signatures": [str(s) for s in new_sigs.get("signature", [])],
                "failing_pods": [str(p) for p in failing.get("pod", [])],
                "unavailable_replicas": unavailable,
            },
        )
    ]


# --- logs, metrics, dependencies, changes ---------------------------------------------------------


def find_log_errors(
    signatures: Evidence, thresholds: Thresholds | None = None, *, min_count: int = 20
) -> list[Finding]:
    """The loudest error signatures, when errors stand out from the usual background.

    A healthy service logs some errors too: this needs ``min_count`` ERROR lines and, when the
    evidence says how many lines were read (``meta.lines``), a share above ``log_error_ratio``.
    """
    th = thresholds_with_defaults(thresholds)
    if not _usable(signatures, "signature", "count"):
        return []
    f = signatures.frame.sort_values("count", ascending=False)
    total = int(f["count"].sum())
    lines = int(signatures.meta.get("lines") or 0)
    if total < min_count or (lines and total / lines < th["log_error_ratio"]):
        return []
    top = f.head(3)
    return [
        _finding(
            "logs.errors",
            "medium",
            f"{total} ERROR lines in {len(f)} signatures; loudest: "
            + "; ".join(f"{str(r.signature)[:90]} (×{int(r.count)})" for r in _rows(top)),
            value=total,
            unit="lines",
            evidence=[signatures],
            details={"signatures": [str(s) for s in top["signature"]]},
        )
    ]


def _incident_values(panel: Evidence) -> tuple[pd.Series, pd.Series]:
    f = panel.frame
    if "period" in f:
        inc = f[f["period"] == "incident"]["value"]
        base = f[f["period"] == "baseline"]["value"]
    else:
        inc, base = f["value"], pd.Series(dtype=float)
    return inc.dropna(), base.dropna()


def find_metric_threshold(
    panel: Evidence,
    threshold: float,
    *,
    key: str,
    what: str,
    unit: str,
    recent_points: int = 3,
) -> list[Finding]:
    """A panel whose recent values (last ``recent_points`` of the window) exceed ``threshold``."""
    if not _usable(panel, "value"):
        return []
    inc, base = _incident_values(panel)
    if inc.empty:
        return []
    f = panel.frame
    if "timestamp" in f:
        series = f[f.get("period", "incident") == "incident"].groupby("timestamp")["value"].max().sort_index().dropna()
    else:
        series = inc
    recent = float(series.tail(recent_points).median()) if not series.empty else float("nan")
    peak = float(series.max()) if not series.empty else float("nan")
    if not math.isfinite(recent) or recent < threshold:
        return []
    base_med = float(base.median()) if not base.empty else float("nan")
    vs = f"; baseline median {base_med:.3g} {unit}" if math.isfinite(base_med) else ""
    return [
        _finding(
            key,
            "high" if recent >= 2 * threshold else "medium",
            f"{what} is {recent:.3g} {unit} now (peak {peak:.3g}) against a threshold of {threshold:g}{vs}.",
            value=recent,
            threshold=threshold,
            unit=unit,
            evidence=[panel],
            details={"peak": peak, "baseline_median": base_med},
        )
    ]


def find_error_rate(panel: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """5xx share of requests over ``error_ratio_5xx`` (panel ``error_ratio_5xx``)."""
    th = thresholds_with_defaults(thresholds)
    return find_metric_threshold(
        panel, th["error_ratio_5xx"], key="metrics.error_rate", what="The 5xx share of requests", unit="ratio"
    )


def find_latency(panel: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """p95 latency over ``latency_p95_s`` (seed: slow API responses > 2 s)."""
    th = thresholds_with_defaults(thresholds)
    return find_metric_threshold(panel, th["latency_p95_s"], key="metrics.latency", what="p95 latency", unit="s")


def find_http_down(health: Evidence) -> list[Finding]:
    """Health endpoints that did not answer 2xx/3xx (seed: curl -I .../health)."""
    if not _usable(health, "name", "up"):
        return []
    h = health.frame
    f = h[~h["up"].astype(bool)]
    if "url" in f:
        f = f[f["url"].astype(str) != ""]  # not configured is not "down"
    if f.empty:
        return []
    return [
        _finding(
            "deps.http_down",
            "high",
            f"Dependencies down: {_names(f'{r.name} ({r.result}: {str(r.detail)[:60]})' for r in _rows(f))}.",
            value=len(f),
            unit="endpoints",
            evidence=[health],
            details={"endpoints": [str(n) for n in f["name"]]},
        )
    ]


#: An alert's ``severity`` label to a finding severity (labels outside this list count as "medium").
ALERT_SEVERITY: dict[str, Severity] = {
    "critical": "critical",
    "high": "high",
    "error": "high",
    "warning": "medium",
    "medium": "medium",
    "low": "low",
    "info": "low",
}


def find_firing_alerts(alerts: Evidence) -> list[Finding]:
    """Alerts firing now; the most severe label sets the finding's severity.

    Rules fire from short rate windows, the panels average over five minutes: in the first minutes of
    a fault, a firing alert may be the only evidence of it, and triage must not read "no impact".
    """
    if not _usable(alerts, "alertname", "state"):
        return []
    f = alerts.frame[alerts.frame["state"].astype(str) == "firing"]
    if f.empty:
        return []
    levels = [ALERT_SEVERITY.get(str(s).lower(), "medium") for s in f["severity"]]
    worst = min(levels, key=lambda level: SEVERITY_ORDER[level])

    def since(ts: Any) -> str:
        return "" if pd.isna(ts) else f", since {pd.Timestamp(ts).strftime('%H:%M:%S')} UTC"

    names = _names(f"{r.alertname} ({r.severity or 'no severity'}{since(r.active_at)})" for r in _rows(f))
    return [
        _finding(
            "alerts.firing",
            worst,
            f"{len(f)} alert(s) firing: {names}.",
            value=len(f),
            unit="alerts",
            evidence=[alerts],
            details={
                "alerts": [
                    {"alertname": str(r.alertname), "severity": str(r.severity), "summary": str(r.summary)}
                    for r in _rows(f)
                ]
            },
        )
    ]


def find_dependency_metric(dependency_up: Evidence) -> list[Finding]:
    """Dependencies the application itself reports as down (``vcci_dependency_up == 0`` recently)."""
    if not _usable(dependency_up, "value", "dependency"):
        return []
    f = dependency_up.frame
    inc = f[f["period"] == "incident"] if "period" in f else f
    last = inc.sort_values("timestamp").groupby("dependency", observed=True)["value"].last()
    down = last[last < 1]
    if down.empty:
        return []
    return [
        _finding(
            "deps.dependency_down",
            "high",
            f"vcci-api reports these dependencies down: {_names(down.index)}.",
            value=len(down),
            unit="dependencies",
            evidence=[dependency_up],
            details={"dependencies": [str(d) for d in down.index]},
        )
    ]


def find_rabbitmq(overview: Evidence | None = None, queues: Evidence | None = None) -> list[Finding]:
    """RabbitMQ unreachable, or queues with a backlog and no consumers."""
    out = []
    if overview is not None and overview.status in ("unavailable", "timeout"):
        out.append(
            _finding(
                "deps.rabbitmq",
                "high",
                f"RabbitMQ's management API is {overview.status}: workers cannot take tasks. {overview.message[:160]}",
                evidence=[overview],
            )
        )
    if _usable(queues, "queue", "messages_ready", "consumers") and queues is not None:
        q = queues.frame
        stuck = q[(q["messages_ready"].fillna(0) >= 1000) & (q["consumers"].fillna(0) == 0)]
        if not stuck.empty:
            out.append(
                _finding(
                    "deps.rabbitmq",
                    "medium",
                    "Queues backing up with no consumer: "
                    + _names(f"{r.queue} ({int(r.messages_ready)})" for r in _rows(stuck))
                    + ".",
                    value=int(stuck["messages_ready"].sum()),
                    unit="messages",
                    evidence=[queues],
                )
            )
    return out


def find_recent_changes(
    rollout: Evidence | None = None,
    git_log: Evidence | None = None,
    migrations: Evidence | None = None,
    *,
    window: Window | None = None,
    hours: float = 24.0,
) -> list[Finding]:
    """What changed recently (deployments, commits, migrations): an ``info`` finding, for the timeline."""
    end = pd.Timestamp(window.end) if window else pd.Timestamp.now(tz="UTC")
    since = end - pd.Timedelta(hours=hours)
    parts: list[str] = []
    used: list[Evidence] = []
    details: dict[str, Any] = {}
    for ev, col, label in (
        (rollout, "created_at", "rollouts"),
        (git_log, "at", "commits"),
        (migrations, "applied", "migrations"),
    ):
        if ev is not None and _usable(ev, col):
            t = pd.to_datetime(ev.frame[col], utc=True)
            n = int((t >= since).sum())
            if n:
                parts.append(f"{n} {label}")
                used.append(ev)
                details[label] = n
    if not parts:
        return []
    return [
        _finding(
            "changes.recent",
            "info",
            f"In the {hours:g} h before {end.strftime('%H:%M UTC')}: {', '.join(parts)}.",
            evidence=used,
            details=details,
        )
    ]


def find_unreachable(evidence: EvidenceSet) -> list[Finding]:
    """A platform dependency we could not even reach (connection refused, nothing listening, hung).

    Only the connection-level checks count (``postgres.ping``/``postgres.connections``,
    ``redis.ping``/``redis.info``, ``kubernetes.pods``/``kubernetes.version``): one query that
    timed out on a lock says the database is busy, not that it is down.
    """
    probes = {
        "db.unavailable": ("postgres", ("postgres.ping", "postgres.connections")),
        "redis.unavailable": ("redis", ("redis.ping", "redis.info")),
        "kube.unavailable": ("kubernetes", ("kubernetes.pods", "kubernetes.version")),
    }
    out: list[Finding] = []
    for key, (source, kinds) in probes.items():
        for kind in kinds:
            ev = pick(evidence, kind)
            if ev is None or ev.status not in ("unavailable", "timeout") or "not configured" in ev.message:
                continue
            out.append(
                _finding(
                    key,
                    "critical" if source in ("postgres", "redis") else "high",
                    f"{source} is {ev.status} from here: {ev.message[:200]}",
                    evidence=[ev],
                    details={"status": ev.status},
                )
            )
            break
    return out


# --- all of them ----------------------------------------------------------------------------------


def _iter(evidence: EvidenceSet) -> list[Evidence]:
    if isinstance(evidence, Mapping):
        return [e for e in evidence.values() if isinstance(e, Evidence)]
    return [e for e in evidence if isinstance(e, Evidence)]


def pick(evidence: EvidenceSet, kind: str) -> Evidence | None:
    """The evidence of a kind (``postgres.connections``) in a collection, by ``meta.kind`` then by name."""
    items = _iter(evidence)
    for ev in items:
        if ev.meta.get("kind") == kind:
            return ev
    for ev in items:
        if ev.name == kind or (ev.name.endswith("." + kind.split(".", 1)[-1]) and ev.source in kind):
            return ev
    return None


def find_all(
    evidence: EvidenceSet, thresholds: Thresholds | None = None, *, window: Window | None = None
) -> list[Finding]:
    """Every rule over whatever evidence is present, most severe first."""

    def p(kind: str) -> Evidence | None:
        return pick(evidence, kind)

    out: list[Finding] = []
    if (ev := p("postgres.connections")) is not None:
        out += find_pool_exhaustion(ev, thresholds) + find_idle_connections(ev, thresholds)
    if (ev := p("postgres.long_queries")) is not None:
        out += find_long_queries(ev, thresholds)
    if (ev := p("postgres.blocking")) is not None:
        out += find_lock_chains(ev, thresholds)
    if (ev := p("postgres.indexes")) is not None:
        out += find_missing_indexes(ev, p("postgres.table_scans"))
    if (ev := p("postgres.table_scans")) is not None:
        out += find_seq_scans(ev, thresholds)
    if (ev := p("postgres.statements")) is not None:
        out += find_slow_statements(ev, thresholds)
    if (ev := p("postgres.bloat")) is not None:
        out += find_bloat(ev, thresholds)
    if (ev := p("postgres.settings")) is not None:
        out += find_pending_restart(ev)
    if (ev := p("redis.info")) is not None:
        out += find_redis_memory(ev, thresholds)
    if (ev := p("redis.slowlog")) is not None:
        out += find_redis_slowlog(ev, thresholds)
    oom = p("kubernetes.oomkilled") or p("kubernetes.containers")
    if oom is not None:
        out += find_oomkilled(oom, thresholds)
    if (ev := p("kubernetes.pods")) is not None:
        out += find_crashloop(ev, thresholds) + find_pods_not_ready(ev, thresholds)
    if (ev := p("kubernetes.nodes")) is not None:
        out += find_node_pressure(ev)
    if (ev := p("kubernetes.top_pods")) is not None:
        out += find_resource_saturation(ev, thresholds)
    if (ev := p("prometheus.volumes")) is not None:
        out += find_disk_full(ev, thresholds)
    if (ev := p("kubernetes.rollout_history")) is not None:
        out += find_bad_deploy(
            ev, p("kubernetes.error_signatures"), p("kubernetes.pods"), window=window, thresholds=thresholds
        )
    if (ev := p("kubernetes.error_signatures")) is not None:
        out += find_log_errors(ev, thresholds)
    if (ev := p("prometheus.error_ratio_5xx")) is not None:
        out += find_error_rate(ev, thresholds)
    if (ev := p("prometheus.latency_p95")) is not None:
        out += find_latency(ev, thresholds)
    if (ev := p("http.health")) is not None:
        out += find_http_down(ev)
    if (ev := p("prometheus.dependency_up")) is not None:
        out += find_dependency_metric(ev)
    if (ev := p("prometheus.alerts")) is not None:
        out += find_firing_alerts(ev)
    out += find_rabbitmq(p("rabbitmq.overview"), p("rabbitmq.queues"))
    out += find_recent_changes(p("kubernetes.rollout_history"), p("git.log"), p("postgres.migrations"), window=window)
    out += find_unreachable(evidence)
    return sort_findings(_dedupe(out))


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        k = (f.key, f.summary)
        if k not in seen:
            seen.add(k)
            out.append(f)
    return out

"""What every finding rule shares: thresholds, the runbook pointers, building a Finding, finding evidence."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import pandas as pd

from vcci_nb.analysis.model import Finding, Severity
from vcci_nb.evidence import Evidence

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
    "idle_in_transaction_s": 60.0,
    "prepared_xact_s": 60.0,
    "xid_age": 200_000_000.0,
    "slot_retained_bytes": 1024.0**3,
    "vacuum_stale_s": 86_400.0,
    "replica_lag_bytes": 256 * 1024.0**2,
    "replica_lag_s": 30.0,
    "deploy_recent_hours": 6.0,
    "log_error_ratio": 0.05,
}

#: Indexes the runbook relies on (seed 4.2 scenario 4): table -> (index name, columns). Empty here:
#: they are the profile's ``postgres.expected_indexes``, which ``postgres.gather_indexes`` carries
#: in its evidence's ``meta.expected_indexes`` (so a replay judges by the profile of the run).
EXPECTED_INDEXES: dict[str, tuple[str, str]] = {}

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
    "db.prepared_xacts": ("3.1 Database locks: prepared transactions (ROLLBACK PREPARED)", "03_investigate_database"),
    "db.idle_in_transaction": ("3.1 Database locks: sessions idle in transaction", "03_investigate_database"),
    "db.xid_age": ("3.1 Transaction ID age (wraparound); 4.1 Vacuum", "03_investigate_database"),
    "db.replication_slot_wal": ("3.1 Replication slots retaining WAL (disk)", "03_investigate_database"),
    "db.replica_lag": ("3.1 Replication: replica lag (stale reads, failover loss)", "03_investigate_database"),
    "db.autovacuum_behind": ("4.1 Vacuum analyze: autovacuum has not kept up", "04_mitigate_database"),
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

"""Findings: what looks wrong in the evidence, stated plainly, with the numbers behind it.

Every ``find_*`` is a pure function: Evidence (and thresholds) in, ``list[Finding]`` out. An
Evidence that is not ``ok`` gives no finding here (the notebook already shows its banner);
:func:`find_unreachable` turns unreachable sources into findings of their own, because "the
database refused us" is often the answer.

Keys are stable (``db.pool_exhaustion``, ``kube.oomkilled``); :data:`RUNBOOK` maps each to
the runbook section and notebook an engineer opens next. :func:`find_all` runs every rule
over a collection of evidence, found by its ``meta["kind"]`` (the name the gather function
gave it), so notebooks may store evidence under any name.

One module per system, mirroring :mod:`vcci_nb.sources`: ``postgres``, ``redis``, ``kube``,
``prometheus``, ``http``, ``rabbitmq``, ``logs``, ``changes``, and ``unreachable`` for sources
that could not be reached; what they share is in ``_common``. A new rule goes into its system's
module and into :func:`find_all` below.
"""

from __future__ import annotations

from vcci_nb.analysis.findings._common import (
    DEFAULT_THRESHOLDS,
    EXPECTED_INDEXES,
    RUNBOOK,
    EvidenceSet,
    Thresholds,
    _iter,
    pick,
    thresholds_with_defaults,
)
from vcci_nb.analysis.findings.changes import find_recent_changes
from vcci_nb.analysis.findings.http import find_http_down
from vcci_nb.analysis.findings.kube import (
    find_bad_deploy,
    find_crashloop,
    find_disk_full,
    find_node_pressure,
    find_oomkilled,
    find_pods_not_ready,
    find_resource_saturation,
)
from vcci_nb.analysis.findings.logs import find_log_errors
from vcci_nb.analysis.findings.postgres import (
    find_autovacuum_behind,
    find_bloat,
    find_idle_connections,
    find_idle_in_transaction,
    find_lock_chains,
    find_long_queries,
    find_missing_indexes,
    find_pending_restart,
    find_pool_exhaustion,
    find_prepared_xacts,
    find_replica_lag,
    find_replication_slot_wal,
    find_seq_scans,
    find_slow_statements,
    find_xid_age,
)
from vcci_nb.analysis.findings.prometheus import (
    ALERT_SEVERITY,
    find_dependency_metric,
    find_error_rate,
    find_firing_alerts,
    find_latency,
    find_metric_threshold,
)
from vcci_nb.analysis.findings.rabbitmq import find_rabbitmq
from vcci_nb.analysis.findings.redis import find_redis_memory, find_redis_slowlog
from vcci_nb.analysis.findings.unreachable import NOT_RUN_KEY, checks_headline, find_checks_not_run, find_unreachable
from vcci_nb.analysis.model import Finding, sort_findings
from vcci_nb.evidence import Evidence, Window

__all__ = [
    "ALERT_SEVERITY",
    "DEFAULT_THRESHOLDS",
    "EXPECTED_INDEXES",
    "NOT_RUN_KEY",
    "RUNBOOK",
    "EvidenceSet",
    "Thresholds",
    "_iter",
    "checks_headline",
    "find_all",
    "find_autovacuum_behind",
    "find_bad_deploy",
    "find_bloat",
    "find_checks_not_run",
    "find_crashloop",
    "find_dependency_metric",
    "find_disk_full",
    "find_error_rate",
    "find_firing_alerts",
    "find_http_down",
    "find_idle_connections",
    "find_idle_in_transaction",
    "find_latency",
    "find_lock_chains",
    "find_log_errors",
    "find_long_queries",
    "find_metric_threshold",
    "find_missing_indexes",
    "find_node_pressure",
    "find_oomkilled",
    "find_pending_restart",
    "find_pods_not_ready",
    "find_pool_exhaustion",
    "find_prepared_xacts",
    "find_rabbitmq",
    "find_recent_changes",
    "find_redis_memory",
    "find_redis_slowlog",
    "find_replica_lag",
    "find_replication_slot_wal",
    "find_resource_saturation",
    "find_seq_scans",
    "find_slow_statements",
    "find_unreachable",
    "find_xid_age",
    "pick",
    "thresholds_with_defaults",
]


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
    if (ev := p("postgres.prepared_xacts")) is not None:
        out += find_prepared_xacts(ev, thresholds)
    if (ev := p("postgres.idle_in_transaction")) is not None:
        out += find_idle_in_transaction(ev, thresholds)
    if (ev := p("postgres.xid_age")) is not None:
        out += find_xid_age(ev, thresholds)
    if (ev := p("postgres.replication_slots")) is not None:
        out += find_replication_slot_wal(ev, thresholds)
    if (ev := p("postgres.replication")) is not None:
        out += find_replica_lag(ev, thresholds)
    if (ev := p("postgres.vacuum")) is not None:
        out += find_autovacuum_behind(ev, thresholds)
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
    out += find_checks_not_run(evidence)
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

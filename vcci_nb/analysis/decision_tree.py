"""The seed's "Common Issue Decision Tree" (3.4), evaluated over the evidence.

The seed's tree is a question for a person ("What are you seeing?"). Here every leaf is a
hypothesis with the findings that support it and the evidence that argues against it: a leaf
whose checks ran and found nothing is ruled down, a leaf whose evidence is missing stays
"not checked" instead of silently vanishing. Hypotheses are ranked by a score from the
severity of their supporting findings, plus a bonus when the branch's symptom is observed.

    result = evaluate(evidence, thresholds)
    result.hypotheses[0]      # most likely cause, with evidence for/against and what to open next
    result.frame()            # the ranked table a notebook shows
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vcci_nb.analysis.findings import EvidenceSet, Thresholds, _iter, find_all, pick
from vcci_nb.analysis.model import Finding
from vcci_nb.evidence import Evidence, Window
from vcci_nb.story import CAUSE, role, specificity

#: What a notebook should gather so that every leaf can be judged (evidence kinds).
NEEDS: tuple[str, ...] = (
    "kubernetes.pods", "kubernetes.containers", "kubernetes.nodes", "kubernetes.top_pods",
    "kubernetes.rollout_history", "kubernetes.error_signatures", "kubernetes.events",
    "postgres.connections", "postgres.long_queries", "postgres.blocking", "postgres.indexes",
    "postgres.table_scans", "postgres.statements", "redis.ping", "redis.info", "redis.slowlog",
    "prometheus.error_ratio_5xx", "prometheus.latency_p95", "prometheus.cpu", "prometheus.memory",
    "prometheus.volumes", "prometheus.dependency_up", "http.health", "rabbitmq.overview",
)  # fmt: skip

_WEIGHT = {"critical": 1.0, "high": 0.8, "medium": 0.5, "low": 0.25, "info": 0.05}


@dataclass(frozen=True)
class Leaf:
    """One leaf of the seed's tree."""

    symptom: str
    cause: str
    check: str
    supports: tuple[str, ...]
    symptom_keys: tuple[str, ...]
    checked_by: tuple[str, ...]
    runbook: str
    notebook: str


SYMPTOM_500 = "All API requests returning 500"
SYMPTOM_SLOW = "Some API requests slow (> 2s)"
SYMPTOM_CRASH = "Pods crashing (CrashLoopBackOff)"
SYMPTOM_TENANT = "Specific tenant affected"
SYMPTOM_INTERMITTENT = "Intermittent errors"

TREE: tuple[Leaf, ...] = (
    Leaf(SYMPTOM_500, "Database connection refused", "Check database health",
         ("db.unavailable", "db.pool_exhaustion", "db.max_connections", "db.xid_age"),
         ("metrics.error_rate", "logs.errors", "db.idle_in_transaction"),
         ("postgres.connections",), "4.2 Scenario 1: Database Connection Pool Exhausted",
         "scenarios/connection_pool_exhausted"),
    Leaf(SYMPTOM_500, "Redis connection refused", "Check Redis health",
         ("redis.unavailable",), ("metrics.error_rate", "logs.errors"),
         ("redis.ping", "redis.info"), "3.1 Check Redis; 4.1 Restart Components", "03_investigate_redis"),
    Leaf(SYMPTOM_500, "Application error", "Check application logs",
         ("kube.bad_deploy", "logs.errors"), ("metrics.error_rate",),
         ("kubernetes.error_signatures",), "3.1 Check Application Logs; 4.1 Rollback Recent Deployment",
         "03_investigate_logs"),
    Leaf(SYMPTOM_SLOW, "Database queries slow", "Check slow queries, indexes",
         ("db.missing_index", "db.seq_scans", "db.slow_statements", "db.long_queries", "db.lock_chain",
          "db.prepared_xacts", "db.idle_in_transaction", "db.autovacuum_behind", "db.replica_lag"),
         ("metrics.latency", "db.bloat"),
         ("postgres.statements", "postgres.table_scans", "postgres.blocking", "postgres.prepared_xacts",
          "postgres.idle_in_transaction"),
         "4.2 Scenario 4: Slow Database Queries", "scenarios/slow_queries"),
    Leaf(SYMPTOM_SLOW, "External API timeout", "Check external dependencies",
         ("deps.http_down", "deps.dependency_down", "deps.rabbitmq"), ("metrics.latency",),
         ("http.health", "prometheus.dependency_up", "rabbitmq.overview"),
         "4.2 Scenario 5: External API Down", "scenarios/external_api_down"),
    Leaf(SYMPTOM_SLOW, "High CPU/memory", "Check resource usage",
         ("kube.resource_saturation", "kube.node_pressure", "redis.memory_pressure", "redis.slow_commands"),
         ("metrics.latency",), ("kubernetes.top_pods", "kubernetes.nodes", "redis.info"),
         "3.1 Resource usage; 4.1 Scale Up Resources", "03_investigate_system"),
    Leaf(SYMPTOM_CRASH, "OOMKilled", "Increase memory limits",
         ("kube.oomkilled",), ("kube.crashloop", "kube.pods_not_ready"),
         ("kubernetes.containers", "kubernetes.oomkilled"), "4.2 Scenario 2: Memory Leak", "scenarios/memory_leak"),
    Leaf(SYMPTOM_CRASH, "Error in logs", "Fix application bug (or roll back the release that brought it)",
         ("kube.crashloop", "kube.bad_deploy", "logs.errors"), ("kube.pods_not_ready",),
         ("kubernetes.pods", "kubernetes.error_signatures"), "3.4 → 4.1 Rollback Recent Deployment",
         "03_investigate_logs"),
    Leaf(SYMPTOM_CRASH, "Configuration error", "Check ConfigMaps/Secrets",
         ("kube.bad_deploy",), ("kube.crashloop",), ("kubernetes.rollout_history",),
         "3.3 Recent configuration changes", "03_investigate_changes"),
    Leaf(SYMPTOM_CRASH, "Disk full", "Check disk usage (seed scenario 3)",
         ("kube.disk_full", "db.replication_slot_wal"), ("kube.crashloop", "logs.errors"), ("prometheus.volumes",),
         "4.2 Scenario 3: Disk Space Full", "scenarios/disk_full"),
    Leaf(SYMPTOM_TENANT, "Data isolation, quota or tenant configuration", "Check tenant schema, limits, settings",
         (), ("logs.errors",), (), "3.4 Specific tenant affected", "03_investigate_logs"),
    Leaf(SYMPTOM_INTERMITTENT, "Network issues", "Check security groups, DNS",
         ("deps.http_down",), ("logs.errors",), ("http.health",), "3.4 Intermittent errors",
         "03_investigate_dependencies"),
    Leaf(SYMPTOM_INTERMITTENT, "Resource constraints", "Check autoscaling",
         ("kube.resource_saturation", "kube.node_pressure", "kube.disk_full"), ("logs.errors",),
         ("kubernetes.top_pods", "kubernetes.nodes"), "3.4 Intermittent errors; 4.1 Scale Up Resources",
         "03_investigate_system"),
)  # fmt: skip


@dataclass(frozen=True)
class Hypothesis:
    """One ranked leaf: what it would mean, why we think so or not, and where to go next."""

    symptom: str
    cause: str
    check: str
    score: float
    verdict: str  # likely | possible | unlikely | not checked
    evidence_for: tuple[str, ...]
    evidence_against: tuple[str, ...]
    findings: tuple[str, ...]
    runbook: str
    notebook: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "symptom": self.symptom,
            "cause": self.cause,
            "check": self.check,
            "score": round(self.score, 3),
            "verdict": self.verdict,
            "evidence_for": list(self.evidence_for),
            "evidence_against": list(self.evidence_against),
            "findings": list(self.findings),
            "runbook": self.runbook,
            "notebook": self.notebook,
        }


@dataclass
class TreeResult:
    hypotheses: list[Hypothesis]
    findings: list[Finding] = field(default_factory=list)

    @property
    def top(self) -> Hypothesis | None:
        """The most likely hypothesis, or None when nothing of medium severity or worse supports any.

        Low findings (cumulative statistics, context) rank hypotheses but do not name a cause.
        """
        best = self.hypotheses[0] if self.hypotheses else None
        return best if best is not None and best.score >= _WEIGHT["medium"] else None

    def frame(self) -> pd.DataFrame:
        rows = [
            {
                "rank": i + 1,
                "verdict": h.verdict,
                "score": round(h.score, 2),
                "symptom": h.symptom,
                "cause": h.cause,
                "for": "; ".join(h.evidence_for),
                "against": "; ".join(h.evidence_against),
                "open next": f"{h.notebook}.ipynb ({h.runbook})",
            }
            for i, h in enumerate(self.hypotheses)
        ]
        return pd.DataFrame(rows)

    def finding(self) -> Finding:
        """The top hypothesis as a finding (``tree.hypothesis``), for the incident record."""
        top = self.top
        if top is None:
            return Finding(key="tree.hypothesis", severity="info",
                           summary="No branch of the decision tree is supported by the evidence gathered.")  # fmt: skip
        return Finding(
            key="tree.hypothesis",
            severity="info",
            summary=f"Most likely: {top.symptom} → {top.cause} ({top.verdict}, score {top.score:.2f}). "
            f"Next: {top.check}; open {top.notebook}.ipynb.",
            value=round(top.score, 3),
            details={"hypotheses": [h.to_dict() for h in self.hypotheses[:5]]},
            runbook=top.runbook,
        )


def evaluate(
    evidence: EvidenceSet,
    thresholds: Thresholds | None = None,
    *,
    findings: Iterable[Finding] | None = None,
    window: Window | None = None,
) -> TreeResult:
    """Rank every leaf of the seed's tree from the evidence (and findings, computed if not given)."""
    found = list(findings) if findings is not None else find_all(evidence, thresholds, window=window)
    by_key: dict[str, list[Finding]] = {}
    for f in found:
        by_key.setdefault(f.key, []).append(f)
    items = _iter(evidence)
    hyps = [_judge(leaf, by_key, items) for leaf in TREE]
    order = {"likely": 0, "possible": 1, "unlikely": 2, "not checked": 3}
    hyps.sort(key=lambda h: (*_causal_rank(h, by_key), -h.score, order[h.verdict], h.symptom))
    return TreeResult(hypotheses=hyps, findings=found)


def _causal_rank(h: Hypothesis, by_key: Mapping[str, list[Finding]]) -> tuple[int, int]:
    """Cause above symptom: a branch that a causal finding of medium severity or worse supports
    comes first, the most specific cause first (:data:`vcci_nb.story.CAUSE_ORDER`: a
    missing index before the slow statements it causes, an OOM kill before the crash loop it
    brings); then branches only contributing findings (log errors, idle connections) support;
    then the rest, by score."""
    causal = [
        specificity(k)
        for k in h.findings
        if role(k) == CAUSE and any(_WEIGHT.get(f.severity, 0.0) >= _WEIGHT["medium"] for f in by_key.get(k, []))
    ]
    if causal:
        return (0, min(causal))
    return (1, 0) if h.findings else (2, 0)


def _judge(leaf: Leaf, by_key: Mapping[str, list[Finding]], evidence: list[Evidence]) -> Hypothesis:
    support = [f for k in leaf.supports for f in by_key.get(k, [])]
    symptom = [f for k in leaf.symptom_keys for f in by_key.get(k, [])]
    # A contributing finding (log errors, idle connections) supports a branch less than a cause does.
    score = max((_WEIGHT.get(f.severity, 0.1) * (1.0 if role(f.key) == CAUSE else 0.6) for f in support), default=0.0)
    if support:
        # More evidence and the branch's symptom raise it; a leaf that few findings support is more
        # specific than one many do (Disk full beats Resource constraints on the same disk finding).
        specific = 0.02 / max(len(leaf.supports), 1)
        score = min(1.0, score + 0.05 * (len(support) - 1) + (0.15 if symptom else 0.0) + specific)
    checked = [ev for kind in leaf.checked_by if (ev := pick(evidence, kind)) is not None]
    against: list[str] = []
    if not support:
        for ev in checked:
            if ev.ok:
                against.append(f"{ev.name}: checked, nothing wrong ({len(ev.frame.index)} rows)")
            else:
                against.append(f"{ev.name}: could not check ({ev.status})")
    evidence_for = [f"{f.key}: {f.summary}" for f in support] + [f"symptom {f.key}: {f.summary}" for f in symptom]
    if support and score >= 0.75:
        verdict = "likely"
    elif support:
        verdict = "possible"
    elif any(ev.ok for ev in checked):
        verdict = "unlikely"
    else:
        verdict = "not checked"
    return Hypothesis(
        symptom=leaf.symptom,
        cause=leaf.cause,
        check=leaf.check,
        score=score,
        verdict=verdict,
        evidence_for=tuple(evidence_for),
        evidence_against=tuple(against),
        findings=tuple(f.key for f in support),
        runbook=leaf.runbook,
        notebook=leaf.notebook,
    )

"""Pure functions from Evidence to Findings: no I/O here.

- :mod:`~vcci_nb.analysis.model`: ``Finding`` and ``FINDING_MIME`` (what notebooks emit);
- :mod:`~vcci_nb.analysis.findings`: ``find_*(evidence, thresholds) -> list[Finding]``, and
  ``find_all`` over a collection of evidence;
- :mod:`~vcci_nb.analysis.decision_tree`: the seed's 3.4 tree as ranked hypotheses (``evaluate``);
- :mod:`~vcci_nb.analysis.severity`: a suggested P0–P3 with reasons (``suggest``);
- :mod:`~vcci_nb.analysis.scenarios`, :mod:`~vcci_nb.analysis.verdict`,
  :mod:`~vcci_nb.analysis.compare`: a scenario's symptoms, runbook 6.1's resolution verdict, and
  panels compared against their baseline, each judged from evidence the notebook gathered.

Analysis reads no files, environment or network: sources gather, analysis judges, display shows
(the import-linter contracts in ``pyproject.toml`` hold it to that).
"""

from vcci_nb.analysis import decision_tree, findings, severity
from vcci_nb.analysis.decision_tree import Hypothesis, TreeResult, evaluate
from vcci_nb.analysis.findings import (
    DEFAULT_THRESHOLDS,
    EXPECTED_INDEXES,
    RUNBOOK,
    find_all,
    find_bad_deploy,
    find_bloat,
    find_crashloop,
    find_dependency_metric,
    find_disk_full,
    find_error_rate,
    find_http_down,
    find_idle_connections,
    find_latency,
    find_lock_chains,
    find_log_errors,
    find_long_queries,
    find_missing_indexes,
    find_node_pressure,
    find_oomkilled,
    find_pending_restart,
    find_pods_not_ready,
    find_pool_exhaustion,
    find_rabbitmq,
    find_recent_changes,
    find_redis_memory,
    find_redis_slowlog,
    find_resource_saturation,
    find_seq_scans,
    find_slow_statements,
    find_unreachable,
    pick,
)
from vcci_nb.analysis.model import FINDING_MIME, SEVERITY_ORDER, Finding, Severity, sort_findings
from vcci_nb.analysis.severity import SeveritySuggestion, suggest

__all__ = [
    "DEFAULT_THRESHOLDS",
    "EXPECTED_INDEXES",
    "FINDING_MIME",
    "RUNBOOK",
    "SEVERITY_ORDER",
    "Finding",
    "Hypothesis",
    "Severity",
    "SeveritySuggestion",
    "TreeResult",
    "decision_tree",
    "evaluate",
    "find_all",
    "find_bad_deploy",
    "find_bloat",
    "find_crashloop",
    "find_dependency_metric",
    "find_disk_full",
    "find_error_rate",
    "find_http_down",
    "find_idle_connections",
    "find_latency",
    "find_lock_chains",
    "find_log_errors",
    "find_long_queries",
    "find_missing_indexes",
    "find_node_pressure",
    "find_oomkilled",
    "find_pending_restart",
    "find_pods_not_ready",
    "find_pool_exhaustion",
    "find_rabbitmq",
    "find_recent_changes",
    "find_redis_memory",
    "find_redis_slowlog",
    "find_resource_saturation",
    "find_seq_scans",
    "find_slow_statements",
    "find_unreachable",
    "findings",
    "pick",
    "severity",
    "sort_findings",
    "suggest",
]

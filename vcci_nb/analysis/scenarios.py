"""Scenario notebooks (runbook 4.2): each symptom confirmed, not seen, or unknown.

Pure: a function over Evidence already gathered and the findings drawn from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from vcci_nb.analysis.findings import Thresholds, pick
from vcci_nb.analysis.findings.postgres import idle_connections_young
from vcci_nb.analysis.model import Finding
from vcci_nb.errors import ParameterError
from vcci_nb.evidence import Evidence

__all__ = ["SCENARIOS", "ScenarioCheck", "scenario_check"]


#: Runbook 4.2's scenarios: (symptom, finding keys that confirm it, evidence kinds it needs).
SCENARIOS: dict[str, tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] = {
    "connection_pool_exhausted": (
        ("Connections at or near a limit", ("db.pool_exhaustion", "db.max_connections"), ("postgres.connections",)),
        ("Idle connections held open by the application", ("db.idle_connections",), ("postgres.connections",)),
        (
            "Sessions idle in a transaction, holding connections, locks and snapshots",
            ("db.idle_in_transaction",),
            ("postgres.idle_in_transaction",),
        ),
        ("Requests failing with 5xx", ("metrics.error_rate",), ("prometheus.error_ratio_5xx",)),
        ("Errors in the application logs", ("logs.errors",), ("kubernetes.error_signatures",)),
    ),
    "memory_leak": (
        ("Containers OOMKilled", ("kube.oomkilled",), ("kubernetes.oomkilled",)),
        ("Pods restarting or not ready", ("kube.crashloop", "kube.pods_not_ready"), ("kubernetes.pods",)),
        ("Memory or CPU near the limit", ("kube.resource_saturation",), ("kubernetes.top_pods",)),
    ),
    "disk_full": (
        ("A volume nearly full", ("kube.disk_full",), ("prometheus.volumes",)),
        (
            "WAL kept by an inactive replication slot (the database's disk)",
            ("db.replication_slot_wal",),
            ("postgres.replication_slots",),
        ),
        ("Errors in the application logs", ("logs.errors",), ("kubernetes.error_signatures",)),
    ),
    "slow_queries": (
        (
            "Large tables read without their index (missing index, sequential scans)",
            ("db.missing_index", "db.seq_scans"),
            ("postgres.indexes",),
        ),
        ("Sequential scans on large tables", ("db.seq_scans",), ("postgres.table_scans",)),
        ("Statements slow on average", ("db.slow_statements",), ("postgres.statements",)),
        ("p95 latency over the threshold", ("metrics.latency",), ("prometheus.latency_p95",)),
        ("Sessions waiting on locks or long queries", ("db.lock_chain", "db.long_queries"), ("postgres.blocking",)),
        (
            "Locks held by a prepared transaction or a session idle in transaction",
            ("db.prepared_xacts", "db.idle_in_transaction"),
            ("postgres.prepared_xacts", "postgres.idle_in_transaction"),
        ),
        ("Dead rows autovacuum has not removed", ("db.autovacuum_behind", "db.bloat"), ("postgres.vacuum",)),
    ),
    "external_api_down": (
        (
            "The provider's health endpoint failing, or the application reporting it down",
            ("deps.http_down", "deps.dependency_down"),
            ("http.health",),
        ),
        ("The application reports a dependency down", ("deps.dependency_down",), ("prometheus.dependency_up",)),
        ("Requests failing with 5xx", ("metrics.error_rate",), ("prometheus.error_ratio_5xx",)),
        ("Errors in the application logs", ("logs.errors",), ("kubernetes.error_signatures",)),
    ),
}


def _young(keys: tuple[str, ...], sources: list[Evidence | None], thresholds: Thresholds | None) -> str | None:
    """A symptom whose evidence shows it, younger than its threshold (see :func:`scenario_check`)."""
    if "db.idle_connections" in keys and sources and sources[0] is not None:
        return idle_connections_young(sources[0], thresholds)
    return None


@dataclass
class ScenarioCheck:
    """The symptoms of one scenario against the evidence."""

    scenario: str
    frame: pd.DataFrame
    confirmed: int
    checked: int

    @property
    def headline(self) -> str:
        total = len(self.frame.index)
        young = int((self.frame["status"] == "present, young").sum())
        also = f"; {young} present but younger than its threshold" if young else ""
        if self.confirmed == 0:
            return (
                f"Not this scenario (so far): none of {total} symptoms confirmed ({self.checked} could be checked)"
                + also
            )
        return f"{self.confirmed} of {total} symptoms confirmed{also}"

    def finding(self) -> Finding:
        # The first symptom defines the scenario (OOMKilled for a memory leak); the others add weight.
        likely = bool(self.frame["status"].iloc[0] == "confirmed")
        title = self.scenario.replace("_", " ")
        seen = self.frame.loc[self.frame["status"] == "confirmed", "symptom"].tolist()
        return Finding(
            key=f"scenario.{self.scenario}",
            severity="high" if likely else ("medium" if self.confirmed else "info"),
            summary=(
                f"Scenario '{title}' {'is likely' if likely else 'is possible' if self.confirmed else 'is not seen'}: "
                + (", ".join(seen) if seen else "no symptom confirmed")
                + f" ({self.confirmed} of {len(self.frame.index)} symptoms)."
            ),
            value=self.confirmed,
            threshold=len(self.frame.index),
            unit="symptoms",
            details={"symptoms": json.loads(self.frame.to_json(orient="records"))},
            runbook=f"4.2 {title}",
        )


def scenario_check(
    scenario: str,
    evidence: Mapping[str, Evidence],
    findings: Iterable[Finding],
    thresholds: Thresholds | None = None,
) -> ScenarioCheck:
    """Each symptom of ``scenario``: *confirmed* (a finding shows it), *present, young* (the evidence
    shows it but not yet for as long as the threshold asks: 20 idle connections, oldest 15 s),
    *not seen* (its evidence was gathered and shows nothing), or *unknown* (its evidence is
    missing or its source failed). A check never says "not seen" above a table that shows it."""
    if scenario not in SCENARIOS:
        raise ParameterError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    by_key: dict[str, list[Finding]] = {}
    for f in findings:
        by_key.setdefault(f.key, []).append(f)
    rows = []
    for symptom, keys, kinds in SCENARIOS[scenario]:
        hits = [f for k in keys for f in by_key.get(k, [])]
        sources = [pick(evidence, kind) for kind in kinds]
        usable = all(ev is not None and ev.ok for ev in sources)
        status = "confirmed" if hits else ("not seen" if usable else "unknown")
        missing = [f"{k}: {'not gathered' if ev is None else ev.status}" for k, ev in zip(kinds, sources, strict=True)]
        because = hits[0].summary if hits else ("checked: nothing found" if usable else "; ".join(missing))
        young = _young(keys, sources, thresholds) if status == "not seen" else None
        if young:
            status, because = "present, young", young
        rows.append({"symptom": symptom, "status": status, "because": because})
    frame = pd.DataFrame(rows)
    return ScenarioCheck(
        scenario=scenario,
        frame=frame,
        confirmed=int((frame["status"] == "confirmed").sum()),
        checked=int((frame["status"] != "unknown").sum()),
    )

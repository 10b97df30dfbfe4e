"""Findings from Prometheus: thresholds on panels (5xx share, p95 latency), firing alerts, and
dependencies reported down."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from vcci_nb.analysis.findings._common import (
    Thresholds,
    _finding,
    _names,
    _rows,
    _usable,
    thresholds_with_defaults,
)
from vcci_nb.analysis.model import Finding, Severity
from vcci_nb.evidence import Evidence
from vcci_nb.numbers import fmt_value
from vcci_nb.policy import level_rank


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
    vs = f"; baseline median {fmt_value(base_med, unit)}" if math.isfinite(base_med) else ""
    return [
        _finding(
            key,
            "high" if recent >= 2 * threshold else "medium",
            f"{what} is {fmt_value(recent, unit)} now (peak {fmt_value(peak, unit)}) against a threshold of "
            f"{fmt_value(threshold, unit)}{vs}.",
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
    worst = min(levels, key=lambda level: level_rank(level))

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
    """Dependencies the application itself reports as down (the profile's ``dependency_up`` query at 0)."""
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
            f"{dependency_up.meta.get('application') or 'The application'} reports these dependencies down: "
            f"{_names(down.index)}.",
            value=len(down),
            unit="dependencies",
            evidence=[dependency_up],
            details={"dependencies": [str(d) for d in down.index]},
        )
    ]

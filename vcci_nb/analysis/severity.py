"""The seed's severity classification (P0–P3) and its triage questions (1.3), from the evidence.

The seed asks a person six questions. Those the evidence can answer are answered here, with
the reason; those it cannot (security incident, data at risk) stay ``None`` until a person
answers them (``answers=`` overrides). The suggestion is the most severe level any answer or
finding supports, with every reason listed: the commander decides, this only proposes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vcci_nb.analysis.findings import EvidenceSet, Thresholds, _iter, find_all, pick, thresholds_with_defaults
from vcci_nb.analysis.model import Finding
from vcci_nb.policy import ALERT_LEVELS as POLICY_ALERT_LEVELS
from vcci_nb.policy import CADENCE_MINUTES, DEFAULT_ALERT_LEVEL, SEVERITIES, human_minutes, severity_rank

#: The incident severities (P0 first); :data:`vcci_nb.policy.SEVERITIES`.
LEVELS: tuple[str, ...] = SEVERITIES

#: The seed's questions, in its order, with the level a "yes" implies.
QUESTIONS: dict[str, tuple[str, str]] = {
    "completely_down": ("Is the service completely down?", "P0"),
    "multiple_tenants": ("Are multiple tenants affected?", "P1"),
    "security_incident": ("Is this a security incident?", "P0"),
    "data_at_risk": ("Is data at risk?", "P0"),
    "single_tenant": ("Is a single tenant affected?", "P2"),
    "non_critical_feature": ("Is a non-critical feature down?", "P3"),
}

#: The seed's response times. The update cadence is not here: it comes from the profile's
#: ``escalation.cadence_minutes`` (see :mod:`vcci_nb.escalation`, which explains the choice), so the
#: suggestion, the messages and ``incident status`` promise the same thing.
RESPONSE: dict[str, str] = {
    "P0": "respond immediately (< 15 minutes)",
    "P1": "respond within 30 minutes",
    "P2": "respond within 2 hours",
    "P3": "next business day",
}


def response_text(level: str, profile: Any = None) -> str:
    """``respond within 30 minutes; updates every 30 minutes``: response time and configured cadence.

    ``profile`` is the run's :class:`~vcci_nb.config.Profile` (a notebook passes ``ctx.profile``);
    its ``cadence_minutes`` gives the update cadence. Without one (or given only a profile's name,
    which this layer does not read from disk) the cadence is :data:`vcci_nb.policy.CADENCE_MINUTES`.
    """
    reader = getattr(profile, "cadence_minutes", None)
    if callable(reader):
        cadence = reader(level)
    else:
        value = CADENCE_MINUTES.get(level)
        cadence = float(value) if value else None
    updates = f"updates every {human_minutes(cadence)}" if cadence else "updates as needed"
    return f"{RESPONSE[level]}; {updates}"


#: Finding key -> the level it supports on its own, and why (the seed's examples).
FINDING_LEVELS: dict[str, tuple[str, str]] = {
    "db.unavailable": ("P0", "Database unavailable (seed P0 example)"),
    "db.pool_exhaustion": ("P1", "Database connections exhausted: requests fail for every tenant"),
    "db.max_connections": ("P1", "Database connection slots nearly exhausted"),
    "db.lock_chain": ("P1", "Database performance severely degraded: sessions blocked"),
    "db.long_queries": ("P2", "Long-running queries"),
    "db.missing_index": ("P1", "Database performance severely degraded: a key index is missing"),
    # db.seq_scans and db.slow_statements are not here: their counters are cumulative since the last
    # statistics reset, so they can describe last week as well as now. They inform, they do not escalate.
    "redis.unavailable": ("P1", "Cache unavailable: every request falls through to the database"),
    "redis.memory_pressure": ("P2", "Cache memory nearly full (evictions)"),
    "redis.slow_commands": ("P2", "Slow cache commands"),
    "kube.oomkilled": ("P1", "Pods OOMKilled repeatedly (seed scenario 2)"),
    "kube.crashloop": ("P1", "Pods crash-looping"),
    "kube.bad_deploy": ("P1", "A new release is failing"),
    "kube.disk_full": ("P1", "A volume is nearly full: writes will fail"),
    "kube.node_pressure": ("P2", "Nodes under pressure"),
    "kube.resource_saturation": ("P2", "Pods near their CPU or memory limits"),
    "kube.pods_not_ready": ("P2", "Pods not ready"),
    "metrics.error_rate": ("P1", "API 5xx rate above threshold"),
    "metrics.latency": ("P2", "Slow API response times (> 2 s) (seed P2 example)"),
    "deps.http_down": ("P2", "An external dependency is down: features that need it are limited"),
    "deps.dependency_down": ("P2", "The application reports a dependency down"),
    "deps.rabbitmq": ("P2", "Background processing (RabbitMQ) impaired"),
    "logs.errors": ("P3", "Errors in application logs"),
}

#: A firing alert's ``severity`` label to the level it supports when no rule is given:
#: :data:`vcci_nb.policy.ALERT_LEVELS`. The rule in force is ``parameters/routes.yaml``'s
#: (:func:`vcci_nb.config.alert_levels` reads it; the notebook passes it in), the one serve opens
#: incidents with, so the incident's severity and triage's suggestion follow one rule.
ALERT_LEVELS: dict[str, str] = dict(POLICY_ALERT_LEVELS)

#: An alert label → level mapping and the level of labels it does not list.
AlertLevels = tuple[Mapping[str, str], str]


def alert_level(label: str, rule: AlertLevels | None = None) -> str:
    """The level an alert's severity label implies under ``rule`` (``config.alert_levels()``; None:
    :data:`vcci_nb.policy.ALERT_LEVELS` and P2): the same answer serve's routing gives."""
    if label.upper() in LEVELS:
        return label.upper()
    levels, default = rule if rule is not None else (POLICY_ALERT_LEVELS, DEFAULT_ALERT_LEVEL)
    return levels.get(label.lower(), default)


@dataclass
class SeveritySuggestion:
    """A proposed level with the reasons for it and the answers to the seed's questions."""

    level: str
    reasons: list[str]
    answers: dict[str, bool | None]
    answer_reasons: dict[str, str] = field(default_factory=dict)
    title: str = ""

    profile: Any = None

    @property
    def response(self) -> str:
        """The response time and the update cadence the profile configures for this level."""
        return response_text(self.level, self.profile)

    def answers_frame(self) -> pd.DataFrame:
        rows = []
        for key, (question, implies) in QUESTIONS.items():
            value = self.answers.get(key)
            rows.append(
                {
                    "question": question,
                    "answer": "yes" if value else "no" if value is False else "ask a person",
                    "implies": implies if value else "",
                    "because": self.answer_reasons.get(key, ""),
                }
            )
        return pd.DataFrame(rows)

    def finding(self) -> Finding:
        return Finding(
            key="triage.severity",
            severity="info",
            summary=f"Suggested severity {self.level}: {'; '.join(self.reasons[:4]) or 'no impact found'}. "
            f"{self.response.capitalize()}.",
            value=self.level,
            details={"reasons": self.reasons, "answers": self.answers, "title": self.title},
            runbook="Severity Classification; 1.3 Determine Severity",
        )


_rank = severity_rank


def suggest(
    evidence: EvidenceSet,
    thresholds: Thresholds | None = None,
    *,
    findings: Iterable[Finding] | None = None,
    answers: Mapping[str, bool | None] | None = None,
    profile: Any = None,
    alert_levels: AlertLevels | None = None,
) -> SeveritySuggestion:
    """Propose P0–P3 from the evidence, with a reason for every step up.

    Starts at P3; each finding and each "yes" raises it to the level it implies (see
    :data:`FINDING_LEVELS` and :data:`QUESTIONS`). Answers given by a person win over inferred ones.
    ``profile`` (the run's Profile) is where the wording's update cadence is read from;
    ``alert_levels`` is the alert-label rule (:func:`vcci_nb.config.alert_levels`, routes.yaml's).
    """
    th = thresholds_with_defaults(thresholds)
    found = list(findings) if findings is not None else find_all(evidence, th)
    items = _iter(evidence)
    inferred, because = _infer_answers(items, found, th)
    merged: dict[str, bool | None] = {k: inferred.get(k) for k in QUESTIONS}
    for k, v in (answers or {}).items():
        if k in QUESTIONS and v is not None:
            merged[k] = bool(v)
            because[k] = "answered by the incident commander"
    level = "P3"
    reasons: list[str] = []
    for key, value in merged.items():
        if value:
            implied = QUESTIONS[key][1]
            reasons.append(f"{QUESTIONS[key][0]} yes → {implied} ({because.get(key, '')})".replace(" ()", ""))
            if _rank(implied) < _rank(level):
                level = implied
    for f in found:
        for implied, why in _levels_of(f, alert_levels):
            reasons.append(f"{why} → {implied}")
            if _rank(implied) < _rank(level):
                level = implied
    reasons.sort(key=lambda r: _rank(r.rsplit("→ ", 1)[-1][:2]) if "→ P" in r else 9)
    title = _title(found)
    return SeveritySuggestion(
        level=level, reasons=_unique(reasons), answers=merged, answer_reasons=because, title=title, profile=profile
    )


def _levels_of(finding: Finding, rule: AlertLevels | None = None) -> list[tuple[str, str]]:
    """The levels one finding supports, each with its reason."""
    if finding.key in FINDING_LEVELS:
        return [FINDING_LEVELS[finding.key]]
    if finding.key == "alerts.firing":
        out = []
        for alert in finding.details.get("alerts") or []:
            label = str(alert.get("severity") or "")
            level = alert_level(label, rule)
            out.append((level, f"Alert {alert.get('alertname')} firing (severity={label or 'none'})"))
        return out
    return []


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _infer_answers(
    evidence: list[Any], found: list[Finding], th: Mapping[str, float]
) -> tuple[dict[str, bool | None], dict[str, str]]:
    answers: dict[str, bool | None] = dict.fromkeys(QUESTIONS)
    because: dict[str, str] = {}
    keys = {f.key for f in found}
    ratio_ev = pick(evidence, "prometheus.error_ratio_5xx")
    ratio = None
    if ratio_ev is not None and ratio_ev.ok and "value" in ratio_ev.frame:
        f = ratio_ev.frame
        inc = f[f["period"] == "incident"] if "period" in f else f
        if not inc.empty:
            ratio = float(inc.sort_values("timestamp")["value"].dropna().tail(3).median())
    pods_ev = pick(evidence, "kubernetes.pods")
    all_down = False
    if pods_ev is not None and pods_ev.ok and not pods_ev.frame.empty and "ready" in pods_ev.frame:
        api = pods_ev.frame
        all_down = bool((api["ready"] == 0).all())
    if ratio is not None and ratio >= 0.9:
        answers["completely_down"], because["completely_down"] = True, f"{ratio:.0%} of requests answer 5xx"
    elif all_down:
        answers["completely_down"], because["completely_down"] = True, "no API pod is ready"
    elif "db.unavailable" in keys:
        answers["completely_down"], because["completely_down"] = True, "the database is unreachable"
    elif ratio is not None or pods_ev is not None:
        answers["completely_down"] = False
        because["completely_down"] = f"5xx share {ratio:.1%}" if ratio is not None else "some pods are ready"
    platform_wide = keys & {"db.pool_exhaustion", "db.max_connections", "db.lock_chain", "redis.unavailable",
                            "kube.oomkilled", "kube.crashloop", "kube.bad_deploy", "db.missing_index"}  # fmt: skip
    if ratio is not None and ratio >= th["error_ratio_5xx"]:
        answers["multiple_tenants"] = True
        because["multiple_tenants"] = f"5xx share {ratio:.1%} across the API (over {th['error_ratio_5xx']:.0%})"
    elif platform_wide:
        answers["multiple_tenants"] = True
        because["multiple_tenants"] = f"a shared component is failing ({', '.join(sorted(platform_wide))})"
    dep_keys = keys & {"deps.http_down", "deps.dependency_down", "deps.rabbitmq", "redis.memory_pressure"}
    if dep_keys:
        answers["non_critical_feature"] = True
        because["non_critical_feature"] = f"degraded: {', '.join(sorted(dep_keys))}"
    return answers, because


def _title(found: list[Finding]) -> str:
    titles = {
        "db.pool_exhaustion": "Database connection pool exhausted",
        "db.unavailable": "Database unavailable",
        "kube.bad_deploy": "Failing release of {deployment}",
        "kube.oomkilled": "{deployment} pods OOMKilled",
        "kube.crashloop": "{deployment} pods crash-looping",
        "metrics.error_rate": "API returning 5xx errors",
        "db.lock_chain": "Database lock contention",
        "db.missing_index": "Slow database queries (missing index)",
        "kube.disk_full": "Disk space nearly full",
        "redis.unavailable": "Redis unavailable",
        "metrics.latency": "Slow API responses",
        "deps.http_down": "External dependency down",
    }
    for f in found:
        if f.key in titles:
            # The finding names what failed (a name from the platform, never spelled here).
            deployment = (f.details or {}).get("deployment") or "application"
            title = titles[f.key].format(deployment=deployment)
            return title[:1].upper() + title[1:]
    return "Investigating degraded service" if found else "Investigating reported issue"

"""Findings: a plain statement of what looks wrong, with the numbers and the evidence behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from vcci_nb.policy import LEVEL_ORDER, level_rank

Severity = Literal["critical", "high", "medium", "low", "info"]
#: Finding levels to their rank (critical first): :data:`vcci_nb.policy.LEVEL_ORDER`.
SEVERITY_ORDER: dict[str, int] = LEVEL_ORDER

#: MIME type of the JSON output a notebook cell emits for each finding; the runner collects it.
FINDING_MIME = "application/vnd.vcci-nb.finding+json"


@dataclass(frozen=True)
class Finding:
    """One thing the evidence shows.

    ``key`` is stable across runs (``db.pool_exhaustion``, ``kube.oomkilled``) so that records
    can be compared; ``evidence`` names the Evidence it was derived from.
    """

    key: str
    severity: Severity
    summary: str
    value: float | int | str | None = None
    threshold: float | int | str | None = None
    unit: str = ""
    evidence: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    runbook: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = list(self.evidence)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            key=data["key"],
            severity=data["severity"],
            summary=data["summary"],
            value=data.get("value"),
            threshold=data.get("threshold"),
            unit=data.get("unit", ""),
            evidence=tuple(data.get("evidence") or ()),
            details=dict(data.get("details") or {}),
            runbook=data.get("runbook", ""),
        )


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by key, so tables read top-down by what matters most."""
    return sorted(findings, key=lambda f: (level_rank(f.severity), f.key))

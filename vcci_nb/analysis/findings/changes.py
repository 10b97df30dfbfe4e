"""Findings from recent changes: rollouts, commits and migrations in or just before the window."""

from __future__ import annotations

from typing import Any

import pandas as pd

from vcci_nb.analysis.findings._common import (
    _finding,
    _usable,
)
from vcci_nb.analysis.model import Finding
from vcci_nb.evidence import Evidence, Window


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

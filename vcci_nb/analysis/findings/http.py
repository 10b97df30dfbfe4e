"""Findings from HTTP health endpoints of external dependencies."""

from __future__ import annotations

from vcci_nb.analysis.findings._common import (
    _finding,
    _names,
    _rows,
    _usable,
)
from vcci_nb.analysis.model import Finding
from vcci_nb.evidence import Evidence


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

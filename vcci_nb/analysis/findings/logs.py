"""Findings from Application logs: error signatures."""

from __future__ import annotations

from vcci_nb.analysis.findings._common import (
    Thresholds,
    _finding,
    _rows,
    _usable,
    thresholds_with_defaults,
)
from vcci_nb.analysis.model import Finding
from vcci_nb.evidence import Evidence


def find_log_errors(
    signatures: Evidence, thresholds: Thresholds | None = None, *, min_count: int = 20
) -> list[Finding]:
    """The loudest error signatures, when errors stand out from the usual background.

    A healthy service logs some errors too: this needs ``min_count`` ERROR lines and, when the
    evidence says how many lines were read (``meta.lines``), a share above ``log_error_ratio``.
    """
    th = thresholds_with_defaults(thresholds)
    if not _usable(signatures, "signature", "count"):
        return []
    f = signatures.frame.sort_values("count", ascending=False)
    total = int(f["count"].sum())
    lines = int(signatures.meta.get("lines") or 0)
    if total < min_count or (lines and total / lines < th["log_error_ratio"]):
        return []
    top = f.head(3)
    return [
        _finding(
            "logs.errors",
            "medium",
            f"{total} ERROR lines in {len(f)} signatures; loudest: "
            + "; ".join(f"{str(r.signature)[:90]} (×{int(r.count)})" for r in _rows(top)),
            value=total,
            unit="lines",
            evidence=[signatures],
            details={"signatures": [str(s) for s in top["signature"]]},
        )
    ]

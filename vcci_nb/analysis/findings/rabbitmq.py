"""Findings from RabbitMQ: the broker and its queues."""

from __future__ import annotations

from vcci_nb.analysis.findings._common import (
    _finding,
    _names,
    _rows,
    _usable,
)
from vcci_nb.analysis.model import Finding
from vcci_nb.evidence import Evidence


def find_rabbitmq(overview: Evidence | None = None, queues: Evidence | None = None) -> list[Finding]:
    """RabbitMQ unreachable, or queues with a backlog and no consumers."""
    out = []
    if overview is not None and overview.status in ("unavailable", "timeout"):
        out.append(
            _finding(
                "deps.rabbitmq",
                "high",
                f"RabbitMQ's management API is {overview.status}: workers cannot take tasks. {overview.message[:160]}",
                evidence=[overview],
            )
        )
    if _usable(queues, "queue", "messages_ready", "consumers") and queues is not None:
        q = queues.frame
        stuck = q[(q["messages_ready"].fillna(0) >= 1000) & (q["consumers"].fillna(0) == 0)]
        if not stuck.empty:
            out.append(
                _finding(
                    "deps.rabbitmq",
                    "medium",
                    "Queues backing up with no consumer: "
                    + _names(f"{r.queue} ({int(r.messages_ready)})" for r in _rows(stuck))
                    + ".",
                    value=int(stuck["messages_ready"].sum()),
                    unit="messages",
                    evidence=[queues],
                )
            )
    return out

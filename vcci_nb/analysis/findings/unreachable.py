"""Findings for the sources that could not even be reached: often the answer itself."""

from __future__ import annotations

from vcci_nb.analysis.findings._common import (
    EvidenceSet,
    _finding,
    pick,
)
from vcci_nb.analysis.model import Finding


def find_unreachable(evidence: EvidenceSet) -> list[Finding]:
    """A platform dependency we could not even reach (connection refused, nothing listening, hung).

    Only the connection-level checks count (``postgres.ping``/``postgres.connections``,
    ``redis.ping``/``redis.info``, ``kubernetes.pods``/``kubernetes.version``): one query that
    timed out on a lock says the database is busy, not that it is down.
    """
    probes = {
        "db.unavailable": ("postgres", ("postgres.ping", "postgres.connections")),
        "redis.unavailable": ("redis", ("redis.ping", "redis.info")),
        "kube.unavailable": ("kubernetes", ("kubernetes.pods", "kubernetes.version")),
    }
    out: list[Finding] = []
    for key, (source, kinds) in probes.items():
        for kind in kinds:
            ev = pick(evidence, kind)
            if ev is None or ev.status not in ("unavailable", "timeout") or "not configured" in ev.message:
                continue
            out.append(
                _finding(
                    key,
                    "critical" if source in ("postgres", "redis") else "high",
                    f"{source} is {ev.status} from here: {ev.message[:200]}",
                    evidence=[ev],
                    details={"status": ev.status},
                )
            )
            break
    return out

"""Findings for the sources that could not even be reached (often the answer itself), and for the
checks that could not run at all (so that "nothing crossed a threshold" is never said of them)."""

from __future__ import annotations

from vcci_nb.analysis.findings._common import (
    EvidenceSet,
    _finding,
    _iter,
    pick,
)
from vcci_nb.analysis.model import Finding, Severity
from vcci_nb.evidence import CAUSES, Evidence


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


#: The finding key for a source whose checks could not run.
NOT_RUN_KEY = "checks.not_run"


def find_checks_not_run(evidence: EvidenceSet) -> list[Finding]:
    """One finding per source (and cause) whose checks could not run: the source, the cause, the fix.

    ``details`` carries ``checks_failed`` (the evidence names) and ``checks_total`` (every check
    the notebook ran), so the headline can say "4 of 6 checks could not run" and say "nothing
    crossed a threshold" only of the checks that ran.
    """
    items = {ev.name: ev for ev in _iter(evidence)}
    failed = [ev for ev in items.values() if not ev.ok]
    groups: dict[tuple[str, str], list[Evidence]] = {}
    for ev in failed:
        cause = str(ev.meta.get("cause") or ("timeout" if ev.status == "timeout" else "bug"))
        groups.setdefault((ev.source, cause), []).append(ev)
    out: list[Finding] = []
    for (source, cause), evs in groups.items():
        first = evs[0]
        detail = str(first.meta.get("detail") or first.message)
        fix = str(first.meta.get("fix") or "")
        what = CAUSES.get(cause, cause)
        n = len(evs)
        summary = f"{source}: {n} check{'s' if n != 1 else ''} could not run ({what}): {detail}"
        if fix:
            summary += f". Fix: {fix}"
        level: Severity = "medium" if cause in ("not_configured", "missing") else "high"
        out.append(
            _finding(
                NOT_RUN_KEY,
                level,
                summary,
                evidence=evs,
                details={
                    "source": source,
                    "cause": cause,
                    "status": first.status,
                    "fix": fix,
                    "checks_failed": [e.name for e in evs],
                    "checks_total": len(items),
                },
            )
        )
    return out


def checks_headline(findings: list[Finding]) -> str:
    """``4 of 6 checks could not run: kubernetes (misconfigured), …`` from the not-run findings, or ""."""
    not_run = [f for f in findings if f.key == NOT_RUN_KEY]
    if not not_run:
        return ""
    failed = sum(len(f.details.get("checks_failed") or []) for f in not_run)
    total = max(int(f.details.get("checks_total") or 0) for f in not_run) or failed
    why = ", ".join(
        f"{f.details.get('source')} ({CAUSES.get(str(f.details.get('cause')), f.details.get('cause'))})"
        for f in not_run
    )
    text = f"{failed} of {total} checks could not run: {why}."
    ran = total - failed
    others = [f for f in findings if f.key != NOT_RUN_KEY and f.severity != "info"]
    if not others:
        text += f" Nothing crossed a threshold in the {ran} that ran." if ran > 0 else " Nothing could be checked."
    return text

"""One story per incident: each finding told once, causes above symptoms.

The record keeps every observation: each notebook that saw a fault adds its own finding, and a
repeated run adds it again. What a person reads (``incident show``, ``index.html``, messages,
the postmortem) goes through this module instead:

- :func:`facts` merges the record's findings into one :class:`Fact` per finding key, with the
  notebooks that saw it, when it was first and last seen and how its summary changed;
- facts are ranked cause first: a specific causal finding (``db.pool_exhaustion``,
  ``kube.oomkilled``) above what it brings with it (idle connections, log errors, restarts),
  above the symptoms a user feels (alerts, the 5xx share, latency), which belong to Detection
  and Impact, above context (recent changes, severity suggestions, verdicts);
- :func:`root_cause` picks the most specific causal fact, preferring those of the decision
  tree's most likely branch when it has one;
- :func:`story_events` collapses the timeline's finding and alert events the same way, so
  that an update says what changed since the last one in a few lines.

"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CAUSE = "cause"
CONTRIBUTING = "contributing"
SYMPTOM = "symptom"
CONTEXT = "context"

ROLE_ORDER: dict[str, int] = {CAUSE: 0, CONTRIBUTING: 1, SYMPTOM: 2, CONTEXT: 3}

#: Causal findings, most specific first: when several are present, the first one named here is
#: the likelier root cause (a missing index explains slow statements; an OOM kill explains the
#: crash loop that follows it; a bad release explains its pods' errors; a forgotten prepared
#: transaction or a replication slot explains the lock chain or the full disk behind it; a
#: transaction ID age past its threshold is the danger itself and names what holds the horizon,
#: often an idle transaction, which it outranks).
CAUSE_ORDER: tuple[str, ...] = (
    "kube.bad_deploy",
    "db.prepared_xacts",
    "db.pool_exhaustion",
    "db.max_connections",
    "db.xid_age",
    "db.idle_in_transaction",
    "kube.oomkilled",
    "db.replication_slot_wal",
    "kube.disk_full",
    "db.missing_index",
    "db.lock_chain",
    "db.autovacuum_behind",
    "db.replica_lag",
    "redis.unavailable",
    "db.unavailable",
    "deps.http_down",
    "deps.dependency_down",
    "deps.rabbitmq",
    "redis.memory_pressure",
    "db.long_queries",
    "redis.slow_commands",
    "kube.node_pressure",
    "kube.crashloop",
)

#: Findings that come with a cause and support it, but are not a cause on their own.
CONTRIBUTING_KEYS: frozenset[str] = frozenset(
    {
        "db.idle_connections",
        "db.seq_scans",
        "db.slow_statements",
        "db.bloat",
        "db.pending_restart",
        "kube.resource_saturation",
        "kube.pods_not_ready",
        "logs.errors",
        "sources.unreachable",
    }
)

#: Key prefixes of what users feel and what detected it: Detection and Impact, never a root cause.
SYMPTOM_PREFIXES: tuple[str, ...] = ("metrics.", "api.", "monitor.", "alerts.")

#: Key prefixes of context: severity suggestions, tree summaries, verdicts, scenario summaries, changes,
#: checks that could not run.
CONTEXT_PREFIXES: tuple[str, ...] = ("tree.", "triage.", "resolve.", "scenario.", "changes.", "checks.")

_SEV = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def role(key: str, severity: str = "medium") -> str:
    """``cause``, ``contributing``, ``symptom`` or ``context`` for a finding key."""
    if key.startswith(SYMPTOM_PREFIXES):
        return SYMPTOM
    if key.startswith(CONTEXT_PREFIXES) or severity == "info":
        return CONTEXT
    if key in CAUSE_ORDER:
        return CAUSE
    if key in CONTRIBUTING_KEYS:
        return CONTRIBUTING
    # An unknown key from a newer notebook: something wrong, not yet placed; rank it with the
    # contributing findings so that it is shown but never outranks a known cause.
    return CONTRIBUTING


def specificity(key: str) -> int:
    """Position in :data:`CAUSE_ORDER` (lower is more specific); for symptoms, what users feel
    (error rate, latency) before what paged (alerts); len(CAUSE_ORDER) for others."""
    try:
        return CAUSE_ORDER.index(key)
    except ValueError:
        pass
    for i, prefix in enumerate(SYMPTOM_PREFIXES):
        if key.startswith(prefix):
            return i
    return len(CAUSE_ORDER)


@dataclass
class Fact:
    """One finding key across the record: told once, with where it was seen and how it changed."""

    key: str
    severity: str
    summary: str
    role: str
    notebooks: list[str] = field(default_factory=list)
    first_at: str = ""
    last_at: str = ""
    count: int = 0
    history: list[str] = field(default_factory=list)  # distinct summaries, oldest first
    latest: dict[str, Any] = field(default_factory=dict)  # the newest finding dict itself

    @property
    def changed(self) -> bool:
        return len(self.history) > 1

    @property
    def where(self) -> str:
        return ", ".join(self.notebooks)

    def rank_key(self) -> tuple[int, int, int, str]:
        return (ROLE_ORDER[self.role], specificity(self.key), _SEV.get(self.severity, 9), self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "severity": self.severity,
            "summary": self.summary,
            "role": self.role,
            "notebooks": list(self.notebooks),
            "first_at": self.first_at,
            "last_at": self.last_at,
            "count": self.count,
            "history": list(self.history),
            "value": self.latest.get("value"),
            "threshold": self.latest.get("threshold"),
            "unit": self.latest.get("unit", ""),
            "runbook": self.latest.get("runbook", ""),
        }


def _get(f: Any, name: str, default: Any = None) -> Any:
    if isinstance(f, Mapping):
        return f.get(name, default)
    return getattr(f, name, default)


def facts(findings: Iterable[Any]) -> list[Fact]:
    """One :class:`Fact` per finding key, ranked cause first (see the module docstring).

    ``findings`` are record dicts (or :class:`~vcci_nb.analysis.model.Finding` objects). The
    fact's summary and severity are the newest observation's (what is true now); ``history``
    keeps each distinct summary in the order they were first seen.
    """
    by_key: dict[str, Fact] = {}
    ordered = sorted(
        (f for f in findings if _get(f, "key")),
        key=lambda f: str(_get(f, "at") or ""),
    )
    for f in ordered:
        key = str(_get(f, "key"))
        sev = str(_get(f, "severity") or "info")
        summary = str(_get(f, "summary") or "")
        at = str(_get(f, "at") or "")
        nb = _get(f, "notebook")
        fact = by_key.get(key)
        if fact is None:
            fact = by_key[key] = Fact(key=key, severity=sev, summary=summary, role=role(key, sev), first_at=at)
        fact.count += 1
        fact.severity, fact.summary, fact.last_at = sev, summary, at or fact.last_at
        fact.role = role(key, sev)
        fact.latest = dict(f) if isinstance(f, Mapping) else _as_dict(f)
        if summary and summary not in fact.history:
            fact.history.append(summary)
        if nb and str(nb) not in fact.notebooks:
            fact.notebooks.append(str(nb))
    return sorted(by_key.values(), key=Fact.rank_key)


def _as_dict(f: Any) -> dict[str, Any]:
    to_dict = getattr(f, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else {}


def causes(items: Sequence[Fact]) -> list[Fact]:
    return [f for f in items if f.role == CAUSE]


def symptoms(items: Sequence[Fact]) -> list[Fact]:
    return [f for f in items if f.role == SYMPTOM]


def root_cause(items: Sequence[Fact], tree: Mapping[str, Any] | None = None) -> Fact | None:
    """The most specific causal fact; among the decision tree's top branch's findings when it has any.

    Alerts, error rates and latency are never returned: they are how the incident was detected
    and what it did, not why. Nor are contributing findings (log errors, idle connections): with
    no causal finding the root cause is left to the review (:func:`leads` lists what to look at).
    """
    ranked = sorted(items, key=Fact.rank_key)
    supported = set(tree.get("findings") or []) if tree else set()
    for pool in ([f for f in ranked if f.key in supported], ranked):
        for f in pool:
            if f.role == CAUSE and f.severity != "info":
                return f
    return None


def leads(items: Sequence[Fact]) -> list[Fact]:
    """Contributing findings worth a look when no causal finding names the root cause."""
    return [f for f in sorted(items, key=Fact.rank_key) if f.role == CONTRIBUTING and f.severity != "info"]


def line(fact: Fact, *, where: bool = True) -> str:
    """One line for a person: ``[critical] summary (seen in a, b; changed: x → y)``."""
    extra: list[str] = []
    if where and fact.notebooks:
        extra.append(f"seen in {fact.where}")
    if fact.changed:
        extra.append(f"first: {fact.history[0]}")
    return f"[{fact.severity}] {fact.summary}" + (f" ({'; '.join(extra)})" if extra else "")


def story_events(
    timeline: Iterable[Mapping[str, Any]], *, since: str | None = None, skip_keys: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The timeline with each fact told once: a finding event only when its key is new or its
    summary changed, and alerts that began firing together folded into one entry.

    ``since`` (an ISO time) drops what happened at or before it, but remembers what was already
    said then, so an update lists only what changed. Each returned dict keeps ``at``, ``kind``,
    ``actor`` and ``summary`` (and ``count`` for folded alerts).
    """
    said: dict[str, str] = {}
    skip = set(skip_keys)
    out: list[dict[str, Any]] = []
    for ev in sorted(timeline, key=lambda e: str(e.get("at") or "")):
        at = str(ev.get("at") or "")
        kind = str(ev.get("kind") or "")
        data = ev.get("data") if isinstance(ev.get("data"), Mapping) else {}
        assert isinstance(data, Mapping)
        old = since is not None and at <= since
        if kind == "finding":
            key = str(data.get("key") or ev.get("summary"))
            text = _strip_where(str(ev.get("summary") or ""))
            if said.get(key) == text:
                continue
            changed = key in said
            said[key] = text
            if old or key in skip:
                continue
            summary = f"{'Changed: ' if changed else ''}{text}"
            out.append({"at": at, "kind": kind, "actor": ev.get("actor"), "summary": summary, "key": key})
            continue
        if old:
            continue
        item: dict[str, Any] = {
            "at": at,
            "kind": kind,
            "actor": ev.get("actor"),
            "summary": str(ev.get("summary") or ""),
        }
        name = firing_name(item["summary"]) if kind == "alert" else None
        if name:
            prev = next((o for o in reversed(out) if o.get("names") and _close(o["at"], at)), None)
            if prev is not None:
                if name not in prev["names"]:
                    prev["names"].append(name)
                prev["summary"] = f"{len(prev['names'])} alerts firing: {', '.join(prev['names'])}"
                continue
            item["names"] = [name]
        out.append(item)
    return out


_FIRING = re.compile(r"^(?:Alert )?(\S+) (?:began )?firing(?::.*)?$")


def firing_name(summary: str) -> str | None:
    """The alert name of an ``Alert X firing: …`` / ``X began firing`` timeline entry, else None."""
    m = _FIRING.match(summary)
    return m.group(1) if m else None


def _strip_where(summary: str) -> str:
    """A finding event's summary ends with `` (notebook)``; the fact is the same in every notebook."""
    if summary.endswith(")") and " (" in summary:
        head, _, tail = summary.rpartition(" (")
        if " " not in tail.rstrip(")") and tail.rstrip(")"):
            return head
    return summary


def _close(a: str, b: str, seconds: float = 60.0) -> bool:
    from vcci_nb.policy import maybe_time

    ta, tb = maybe_time(a), maybe_time(b)
    if ta is None or tb is None:
        return False
    return abs((tb - ta).total_seconds()) <= seconds


def repeated(text: str, items: Sequence[Fact]) -> list[str]:
    """Finding summaries that appear more than once in ``text`` (a message): should be none."""
    out = []
    for f in items:
        for summary in f.history:
            if len(summary) >= 12 and text.count(summary) > 1:
                out.append(summary)
    return out


__all__ = [
    "CAUSE",
    "CAUSE_ORDER",
    "CONTEXT",
    "CONTRIBUTING",
    "SYMPTOM",
    "Fact",
    "causes",
    "facts",
    "firing_name",
    "leads",
    "line",
    "repeated",
    "role",
    "root_cause",
    "story_events",
    "symptoms",
]

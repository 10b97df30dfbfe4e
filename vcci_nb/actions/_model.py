"""The types every guarded action speaks: its plan, its verification, its outcome.

An action first says exactly what it would change (:class:`Plan`), then, once a person has
confirmed, does it and checks the result (:class:`Verification`). The gateway wraps both in an
:class:`Outcome`, which is also what lands in the incident record. Everything here renders as a
table in a notebook and as plain JSON in ``record.json``; nothing holds a connection.
"""

from __future__ import annotations

import html
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from vcci_nb.errors import ActionRefused
from vcci_nb.redact import redact

#: How a run of an action ended.
#: ``planned``: nothing changed (dry run, or no confirmation); ``awaiting_confirmation``: a widget waits
#: for a click; ``succeeded``: executed and verified; ``unverified``: executed but the check did not pass;
#: ``failed``: the execution raised; ``refused``: unsafe, nothing was attempted.
Status = Literal["planned", "awaiting_confirmation", "succeeded", "unverified", "failed", "refused"]


def whole_number(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int, or :class:`ActionRefused` naming the parameter (called from ``preflight``).

    Constructors keep what they were given and ``preflight`` converts it, so a bad value (a PID
    of ``"12a"``) is refused through the gateway, with an audit entry, instead of a raw
    ``ValueError`` from the constructor that left no trace.
    """
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise ActionRefused(f"{name}={value!r} is not a whole number")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except ValueError:
        number = None
    if number is None:
        raise ActionRefused(f"{name}={str(value)[:40]!r} is not a whole number")
    _in_range(number, name, minimum, maximum)
    return number


def real_number(value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """``value`` as a finite float, or :class:`ActionRefused` naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise ActionRefused(f"{name}={value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise ActionRefused(f"{name}={str(value)[:40]!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ActionRefused(f"{name}={value!r} is not a finite number")
    _in_range(number, name, minimum, maximum)
    return number


def flag(value: Any, name: str) -> bool:
    """``value`` as a bool (True/False, or the strings true/false/yes/no/1/0), or :class:`ActionRefused`."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ActionRefused(f"{name}={str(value)[:40]!r} is not true or false")


def _in_range(number: float, name: str, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise ActionRefused(f"{name}={number:g} is below {minimum:g}")
    if maximum is not None and number > maximum:
        raise ActionRefused(f"{name}={number:g} is above {maximum:g}")


def _esc(value: Any) -> str:
    return html.escape(redact(str(value)))


def _table_html(rows: list[dict[str, Any]], limit: int = 50) -> str:
    if not rows:
        return ""
    cols: list[str] = []
    for row in rows:
        for key in row:
            if key not in cols:
                cols.append(key)
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_esc(row.get(c, ''))}</td>" for c in cols) + "</tr>" for row in rows[:limit])
    more = f"<p>… and {len(rows) - limit} more</p>" if len(rows) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


@dataclass
class Plan:
    """What an action would change, computed without changing anything.

    Attributes:
        action: the action's name (``k8s.scale``).
        target: what it acts on (``vcci-production/deployment/vcci-api``).
        summary: one sentence a tired engineer can check (``scale vcci-api 3 → 12``).
        changes: one row per thing that would change (a session to terminate, a key batch, a field).
        diff: a unified diff of the object, for Kubernetes actions (from a server-side dry run).
        warnings: what to know before confirming (``needs a restart``).
        skipped: rows that matched but are protected and will not be touched, with the reason.
        destructive: destroys data or capacity; needs the incident ID typed even interactively.
        noop: nothing to do (already in the intended state); executing changes nothing.
        details: anything else the action needs at execution or verification time.
    """

    action: str
    target: str
    summary: str
    changes: list[dict[str, Any]] = field(default_factory=list)
    diff: str = ""
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    destructive: bool = False
    noop: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "summary": self.summary,
            "changes": self.changes,
            "diff": self.diff,
            "warnings": self.warnings,
            "skipped": self.skipped,
            "destructive": self.destructive,
            "noop": self.noop,
            "details": self.details,
        }

    def _repr_html_(self) -> str:
        parts = [f"<p><b>Plan:</b> {_esc(self.summary)}</p>"]
        if self.destructive:
            parts.append("<p><b>Destructive:</b> type the incident ID to confirm.</p>")
        for w in self.warnings:
            parts.append(f"<p>⚠ {_esc(w)}</p>")
        parts.append(_table_html(self.changes))
        if self.diff:
            parts.append(f"<pre>{_esc(self.diff)}</pre>")
        if self.skipped:
            parts.append("<p>Protected, will not be touched:</p>" + _table_html(self.skipped))
        return "".join(parts)


@dataclass
class Check:
    """One verification check: its name, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Verification:
    """The checks run after an action, to show the intended state was reached."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> Verification:
        self.checks.append(Check(name, bool(ok), detail))
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    def _repr_html_(self) -> str:
        rows = [{"check": c.name, "ok": "✔" if c.ok else "✘", "detail": c.detail} for c in self.checks]
        return _table_html(rows)


class Action(ABC):
    """A state-changing operation that can plan, execute and verify itself.

    Subclasses never execute on their own; :func:`vcci_nb.actions.run` decides whether they may.
    ``preflight`` refuses unsafe requests before any I/O (``kube-system``, an empty pattern);
    ``plan`` may refuse too, once it has seen the live state (a superuser session, a lock-out).
    """

    #: Dotted name used in the audit entry and the CLI (``postgres.terminate``).
    name: ClassVar[str] = "action"
    #: The incident this run is for; set by the gateway before planning (Kubernetes actions put it
    #: in the ``vcci-nb/incident`` annotation, so even the dry-run diff shows it).
    incident_id: str | None = None

    def bind(self, incident_id: str) -> None:
        """Tell the action which incident it runs for (the gateway calls this first)."""
        self.incident_id = incident_id

    @property
    @abstractmethod
    def target(self) -> str:
        """What the action acts on, as a short path (``vcci-production/deployment/vcci-api``)."""

    @abstractmethod
    def parameters(self) -> dict[str, Any]:
        """The parameters as given, for the audit entry (never secrets)."""

    def preflight(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Raise :class:`~vcci_nb.errors.ActionRefused` for requests unsafe on their face."""

    def identity(self) -> str:
        """Who the action acts as on the target system (a database role, a kube context)."""
        return "unknown"

    @abstractmethod
    def plan(self) -> Plan:
        """Compute what would change, changing nothing."""

    @abstractmethod
    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        """Make the change described by ``plan``; return what was done."""

    @abstractmethod
    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        """Check that the intended state was reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections the action opened itself."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.parameters().items())
        return redact(f"{type(self).__name__}({params})")

"""The one gateway every state-changing operation goes through: plan → confirm → execute → verify → audit.

Why one gateway: Phase 4 of the runbook is where incidents get worse (the wrong deployment rolled
back, the wrong Redis flushed, the replication session killed). Putting every change behind the
same five steps means no notebook, CLI command or widget can skip the plan, the confirmation or
the audit entry.

The confirmation rules, in full:

- ``dry_run=True`` (the default everywhere) never changes anything; the plan is recorded.
- A ``confirm`` that is given but is not the incident ID is refused (a typo or the wrong incident).
- ``dry_run=False`` and ``confirm == incident_id``: executes, headless or not.
- ``dry_run=False`` without ``confirm``, in a notebook a person is looking at (``interactive``): a
  panel shows the plan and a Confirm button; the click executes. Destructive actions also need
  the incident ID typed into the panel.
- ``dry_run=False`` without ``confirm``, headless: the plan is recorded and nothing changes; a
  destructive action is refused outright (someone asked for it to run without confirming it).

Every run leaves an entry in ``record.json`` (``actions[]`` and the timeline), refusals included.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_nb import runenv
from vcci_nb.actions._model import Action, Plan, Status, Verification, _esc
from vcci_nb.errors import ActionFailed, ActionRefused, ActionRefusedWithOutcome, VcciNbError
from vcci_nb.record import IncidentRecord, default_actor, utc_iso, validate_id
from vcci_nb.redact import redact

log = logging.getLogger(__name__)

#: Exceptions of the client libraries that mean "the server refused this identity" (psycopg, redis).
_PERMISSION_ERRORS = frozenset({"InsufficientPrivilege", "NoPermissionError"})

#: Incident statuses from which a confirmed, executed action moves the incident to ``mitigating``.
_BEFORE_MITIGATING = frozenset({"investigating", "identified"})


@dataclass
class Outcome:
    """How one run of an action ended, and the audit entry it left."""

    action_id: str
    incident_id: str
    action: str
    target: str
    status: Status
    message: str
    plan: Plan | None = None
    result: dict[str, Any] = field(default_factory=dict)
    verification: Verification | None = None
    entry: dict[str, Any] = field(default_factory=dict)
    widget: Any = None

    @property
    def executed(self) -> bool:
        return self.status in ("succeeded", "unverified", "failed")

    @property
    def ok(self) -> bool:
        """True when nothing went wrong: planned as asked, or executed and verified."""
        return self.status in ("planned", "awaiting_confirmation", "succeeded")

    def _summary_html(self) -> str:
        colour = {
            "succeeded": "#1a7f37",
            "unverified": "#9a6700",
            "failed": "#cf222e",
            "refused": "#cf222e",
        }.get(self.status, "#57606a")
        parts = [
            f"<p><b style='color:{colour}'>{_esc(self.status)}</b> · {_esc(self.action)} · "
            f"{_esc(self.target)}<br>{_esc(self.message)}</p>"
        ]
        if self.plan is not None and self.widget is None:
            parts.append(self.plan._repr_html_())
        if self.verification is not None:
            parts.append("<p><b>Verification</b></p>" + self.verification._repr_html_())
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self._summary_html()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.widget is not None:
            display(self.widget.box)  # type: ignore[no-untyped-call]
        else:
            bundle = {"text/html": self._summary_html(), "text/plain": self._summary_text()}
            display(bundle, raw=True)  # type: ignore[no-untyped-call]

    def _summary_text(self) -> str:
        lines = [f"{self.status}: {self.action} {self.target}", self.message]
        if self.plan is not None:
            lines.append(f"plan: {self.plan.summary}")
            lines += [f"  ! {w}" for w in self.plan.warnings]
        if self.verification is not None:
            lines += [f"  {'ok' if c.ok else 'FAILED'} {c.name}: {c.detail}" for c in self.verification.checks]
        return redact("\n".join(lines))

    def __repr__(self) -> str:
        return redact(
            f"Outcome(action_id={self.action_id!r}, action={self.action!r}, target={self.target!r}, "
            f"status={self.status!r}, message={self.message!r})"
        )


def _interactive_default() -> bool:
    """Whether a person may be looking: ``VCCI_NB_INTERACTIVE`` (0/1), else "inside a Jupyter kernel".

    A headless papermill run is also a kernel; the panel it shows is never clicked, so it records
    the plan and changes nothing, which is what a headless run without ``confirm`` must do.
    """
    said = runenv.current().interactive
    if said is not None:
        return said
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _Run:
    """One pass of one action through the gateway, with its audit bookkeeping."""

    def __init__(self, action: Action, record: IncidentRecord, actor: str | None, dry_run: bool) -> None:
        self.action = action
        self.record = record
        self.actor = actor or default_actor()
        self.dry_run = dry_run
        self.action_id = "ACT-" + uuid.uuid4().hex[:12]
        self.requested_at = utc_iso()
        self.plan: Plan | None = None
        self._identity: str | None = None

    @property
    def incident_id(self) -> str:
        return self.record.id

    def identity(self) -> str:
        if self._identity is None:
            try:
                self._identity = self.action.identity()
            except Exception as exc:  # the identity is for the audit; never let it block one
                self._identity = f"unknown ({type(exc).__name__})"
        return self._identity

    def _target(self) -> str:
        try:
            return self.action.target
        except Exception:
            return "?"

    def audit(
        self,
        status: Status,
        message: str,
        *,
        confirmation: dict[str, Any] | None = None,
        started_at: str | None = None,
        duration_s: float | None = None,
        result: dict[str, Any] | None = None,
        verification: Verification | None = None,
    ) -> Outcome:
        message = redact(message)
        plan = self.plan
        summary = f"{self.action.name} {self._target()}"
        if plan is not None:
            summary += f": {plan.summary}"
        entry: dict[str, Any] = {
            "id": self.action_id,
            "action": self.action.name,
            "summary": summary,
            "target": self._target(),
            "parameters": _jsonable(self.action.parameters()),
            "result": status,
            "message": message,
            "actor": self.actor,
            "identity": self.identity(),
            "dry_run": self.dry_run,
            "confirmation": confirmation or {"mode": None},
            "requested_at": self.requested_at,
            "started_at": started_at,
            "finished_at": utc_iso(),
            "duration_s": None if duration_s is None else round(duration_s, 3),
            "plan": _jsonable(plan.to_dict()) if plan is not None else None,
            "details": _jsonable(result or {}),
            "verification": verification.to_dict() if verification is not None else None,
        }
        entry["at"] = entry["finished_at"]
        self.record.add_action(entry)
        log.info("%s %s %s: %s", self.incident_id, self.action.name, status, message)
        return Outcome(
            action_id=self.action_id,
            incident_id=self.incident_id,
            action=self.action.name,
            target=self._target(),
            status=status,
            message=message,
            plan=plan,
            result=result or {},
            verification=verification,
            entry=entry,
        )

    def refuse(self, message: str, confirmation: dict[str, Any] | None = None) -> ActionRefusedWithOutcome:
        outcome = self.audit("refused", message, confirmation=confirmation)
        return ActionRefusedWithOutcome(outcome.message, outcome)

    def execute(self, confirmation: dict[str, Any]) -> Outcome:
        plan = self.plan
        assert plan is not None
        started_at = utc_iso()
        t0 = time.monotonic()
        try:
            result = self.action.execute(plan, self.incident_id)
        except ActionRefused as exc:
            raise self.refuse(str(exc), confirmation) from exc
        except Exception as exc:
            if type(exc).__name__ in _PERMISSION_ERRORS:
                raise self.refuse(
                    f"{self._target()} refused {self.action.name} for {self.identity()}: "
                    f"{redact(str(exc)).strip()}. This identity may not make that change; use the mitigation one.",
                    confirmation,
                ) from exc
            message = f"{self.action.name} on {self._target()} failed: {redact(str(exc)) or type(exc).__name__}"
            outcome = self.audit(
                "failed", message, confirmation=confirmation, started_at=started_at, duration_s=time.monotonic() - t0
            )
            raise ActionFailed(outcome.message, outcome) from exc
        try:
            verification = self.action.verify(plan, result)
        except Exception as exc:
            verification = Verification().add("verification ran", False, redact(f"{type(exc).__name__}: {exc}"))
        duration = time.monotonic() - t0
        if verification.ok:
            status: Status = "succeeded"
            message = f"done and verified in {duration:.1f} s"
        else:
            status = "unverified"
            failed = "; ".join(f"{c.name}: {c.detail}" for c in verification.checks if not c.ok) or "no check ran"
            message = f"executed, but verification did not pass ({failed}); check the target before going on"
        outcome = self.audit(
            status,
            message,
            confirmation=confirmation,
            started_at=started_at,
            duration_s=duration,
            result=result,
            verification=verification,
        )
        self._mark_mitigating()
        return outcome

    def _mark_mitigating(self) -> None:
        try:
            if self.record.data.get("status") in _BEFORE_MITIGATING:
                self.record.set_status("mitigating", note=f"{self.action.name} executed", actor=self.actor)
        except VcciNbError as exc:  # the action is done and audited; a status hiccup must not hide that
            log.warning("could not set %s to mitigating: %s", self.incident_id, exc)


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy (tuples to lists, unknown objects to strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def run(
    action: Action,
    incident_id: str,
    *,
    confirm: str | None = None,
    dry_run: bool = True,
    interactive: bool | None = None,
    record: IncidentRecord | None = None,
    outputs: Path | str | None = None,
    actor: str | None = None,
) -> Outcome:
    """Plan ``action`` and, only if confirmed, execute, verify and audit it.

    Args:
        action: the action to run (``Scale("vcci-api", 12)``).
        incident_id: the open incident this is for; the audit entry goes to its record.
        confirm: the incident ID again, typed by whoever asks for the change; required headless.
        dry_run: plan only (the default). Set ``False`` to allow execution.
        interactive: show a Confirm panel when not confirmed; default: inside a Jupyter kernel
            (``VCCI_NB_INTERACTIVE=0/1`` overrides).
        record: the incident record (default: loaded from ``outputs``/``VCCI_NB_OUTPUTS``).
        outputs: where incident folders live, when ``record`` is not given.
        actor: who asks (default ``VCCI_NB_ACTOR`` or the login name).

    Returns:
        The :class:`Outcome`; its ``entry`` is the audit entry written to the record.

    Raises:
        ActionRefused: unsafe target or parameters, a wrong ``confirm``, or a destructive action asked
            to run headless without confirmation. The refusal is audited first.
        ActionFailed: planning raised (``outcome.plan`` is None: the target could not be asked), or the
            confirmed execution raised. The failure is audited first.
        RecordError: there is no such incident; nothing is planned or changed without a record.
    """
    validate_id(incident_id)
    rec = record if record is not None else IncidentRecord.load(incident_id, outputs)
    if rec.id != incident_id:
        raise ActionRefused(f"the record given is {rec.id}, not {incident_id}; pass the record of this incident")
    ctx = _Run(action, rec, actor, dry_run)
    try:
        action.bind(incident_id)
        action.preflight()
        ctx.plan = action.plan()
    except ActionRefused as exc:
        raise ctx.refuse(str(exc)) from exc
    except Exception as exc:  # the target could not be asked: nothing planned, nothing changed
        outcome = ctx.audit(
            "failed",
            f"could not plan {action.name} on {ctx._target()}: {redact(str(exc)) or type(exc).__name__}. "
            "Nothing was changed; check that the target is reachable and the identity can read it.",
        )
        raise ActionFailed(outcome.message, outcome) from exc
    plan = ctx.plan

    if confirm is not None and confirm.strip() != incident_id:
        raise ctx.refuse(
            f"confirm={confirm!r} is not this incident's ID ({incident_id}); nothing was changed. "
            "Type the ID of the incident you are mitigating.",
            {"mode": "parameter", "typed_incident_id": False},
        )
    hint = f"to execute: dry_run=False, confirm={incident_id!r}"
    if plan.noop:
        return ctx.audit("planned", f"nothing to do: {plan.summary}")
    if dry_run:
        return ctx.audit("planned", f"dry run, nothing changed; {hint}")
    if confirm is not None:
        return ctx.execute({"mode": "parameter", "typed_incident_id": True})

    if interactive is None:
        interactive = _interactive_default()
    if interactive:
        from vcci_nb.actions.widget import ConfirmPanel

        outcome = ctx.audit("awaiting_confirmation", "waiting for Confirm in the notebook; nothing changed yet")

        def on_confirm(typed: str | None) -> Outcome:
            return _confirm_from_widget(ctx, typed)

        outcome.widget = ConfirmPanel(plan, incident_id, on_confirm, require_typed_id=plan.destructive)
        return outcome
    if plan.destructive:
        raise ctx.refuse(
            f"{action.name} destroys data or capacity ({plan.summary}); headless it runs only with "
            f"confirm={incident_id!r} typed. Nothing was changed.",
            {"mode": "headless", "typed_incident_id": False},
        )
    return ctx.audit("planned", f"not confirmed, nothing changed; {hint}")


def _confirm_from_widget(ctx: _Run, typed: str | None) -> Outcome:
    """What the panel's Confirm button does: check the typed ID when needed, then execute."""
    plan = ctx.plan
    assert plan is not None
    typed_ok = typed is not None and typed.strip() == ctx.incident_id
    confirmation = {"mode": "widget", "typed_incident_id": typed_ok}
    if plan.destructive and not typed_ok:
        raise ctx.refuse(
            f"{ctx.action.name} destroys data or capacity ({plan.summary}); type the incident ID "
            f"{ctx.incident_id} in the box, then Confirm. Nothing was changed.",
            confirmation,
        )
    if typed and typed.strip() and not typed_ok:
        raise ctx.refuse(
            f"the ID typed ({typed.strip()!r}) is not {ctx.incident_id}; nothing was changed.", confirmation
        )
    return ctx.execute(confirmation)


OnConfirm = Callable[[str | None], Outcome]

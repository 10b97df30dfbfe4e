"""The Confirm panel: the plan, a Confirm button, and (for destructive actions) a box for the incident ID.

The panel only calls back into the gateway; it holds no logic of its own, so the rules are the
same with or without it. Nothing happens until the button is clicked, and a headless run never
waits for it (it just records the plan). For a destructive action the button stays disabled until
the box holds this incident's ID (the gateway checks the typed ID again on the click, so a click
that reaches the kernel anyway is refused and audited). After a successful click the button stays
disabled, so a double click cannot run the action twice; after a refusal it can be tried again.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vcci_nb.errors import VcciNbError
from vcci_nb.redact import redact

if TYPE_CHECKING:
    from vcci_nb.actions._gateway import Outcome
    from vcci_nb.actions._model import Plan

log = logging.getLogger(__name__)

#: Who wants to know when a Confirm click executed an action (the "After" charts), by their key.
_ON_EXECUTED: dict[str, Callable[[Outcome], None]] = {}


def on_executed(key: str, callback: Callable[[Outcome], None]) -> None:
    """Call ``callback(outcome)`` whenever a Confirm click executes an action (one callback per key)."""
    _ON_EXECUTED[key] = callback


def executed(outcome: Outcome) -> None:
    """What the Confirm panel calls after executing: tell every waiting chart."""
    for callback in list(_ON_EXECUTED.values()):
        try:
            callback(outcome)
        except Exception:  # a chart failing to redraw must not hide the action's result
            log.warning("after-action callback failed", exc_info=True)


class ConfirmPanel:
    """An ipywidgets panel that executes an action when its Confirm button is clicked.

    Attributes:
        box: the panel to display.
        confirm_button: the Confirm button (``confirm_button.click()`` clicks it from code).
        id_box: the text box for the incident ID, for destructive actions only (else ``None``).
        outcome: the outcome of the last click, ``None`` before any click.
    """

    def __init__(
        self,
        plan: Plan,
        incident_id: str,
        on_confirm: Callable[[str | None], Outcome],
        *,
        require_typed_id: bool,
    ) -> None:
        import ipywidgets as w

        self.incident_id = incident_id
        self._on_confirm = on_confirm
        self.outcome: Outcome | None = None
        self.plan_html = w.HTML(plan._repr_html_())
        self.id_box = (
            w.Text(
                value="",
                placeholder=incident_id,
                description="Incident ID",
                tooltip="Type the incident ID to confirm a destructive action",
            )
            if require_typed_id
            else None
        )
        self.confirm_button = w.Button(
            description="Confirm" + (" (destructive)" if require_typed_id else ""),
            button_style="danger" if require_typed_id else "warning",
            tooltip=f"Execute: {plan.summary}",
        )
        self.status_html = w.HTML(
            "<p>Nothing has changed yet. Read the plan, then Confirm.</p>"
            if self.id_box is None
            else f"<p>Nothing has changed yet. Read the plan, type <code>{html.escape(incident_id)}</code> "
            "in the box to enable Confirm.</p>"
        )
        self._done = False
        self.confirm_button.on_click(self._clicked)
        if self.id_box is not None:
            self.confirm_button.disabled = True
            self.id_box.observe(lambda _change: self._gate(), names="value")
        children: list[Any] = [self.plan_html]
        if self.id_box is not None:
            children.append(self.id_box)
        children += [self.confirm_button, self.status_html]
        self.box = w.VBox(children)

    def typed_ok(self) -> bool:
        """Whether the box holds this incident's ID (always true when no ID is asked for)."""
        return self.id_box is None or str(self.id_box.value).strip() == self.incident_id

    def _gate(self) -> None:
        """Enable Confirm only while the typed ID is this incident's (and nothing ran yet)."""
        if not self._done:
            self.confirm_button.disabled = not self.typed_ok()

    def _clicked(self, _button: Any) -> None:
        self.confirm_button.disabled = True
        self.status_html.value = "<p>Running…</p>"
        typed = self.id_box.value if self.id_box is not None else None
        try:
            self.outcome = self._on_confirm(typed)
        except VcciNbError as exc:
            outcome = getattr(exc, "outcome", None)
            if outcome is not None:
                self.outcome = outcome
            self.status_html.value = f"<p><b>{html.escape(redact(str(exc)))}</b></p>"
            # A refusal changed nothing: let the engineer fix the typed ID and try again.
            self._done = outcome is not None and outcome.status == "failed"
            self.confirm_button.disabled = self._done or not self.typed_ok()
            return
        except Exception as exc:  # a callback must never kill the kernel's comm handler
            log.exception("confirm callback failed")
            self.status_html.value = f"<p><b>Unexpected error: {html.escape(redact(str(exc)))}</b></p>"
            self._done = True
            return
        self._done = True
        self.status_html.value = self.outcome._summary_html()
        if self.outcome.executed:
            executed(self.outcome)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)  # type: ignore[no-untyped-call]

"""The interactive path: controls a person uses in JupyterLab, never needed by a headless run.

papermill has no front end, so nothing here may wait for a click: every widget is displayed and
returns at once, and the work it triggers runs only when a person presses a button. A headless run
therefore shows the widget's text fallback and carries on; the evidence-based answer the widget
starts from is always shown by the notebook itself, outside the widget.

- :func:`severity_questionnaire` — the questions of runbook 1.3 as checkboxes, pre-ticked from the
  evidence, with the suggested severity updating as the engineer answers;
- :func:`live_monitor` — 05_monitor's live refresh every N seconds with Start and Stop buttons,
  as an asyncio task on the kernel's own loop (no thread, no blocking call);
- :func:`incident_picker` — choose one of the open incidents, or open a new one, when the
  parameters cell names none; cells that planned without an incident (the ``04_mitigate_*``
  steps) are told and show their Confirm panel (:func:`when_incident_chosen`);
- :func:`declare_severity` — 01_triage's "Apply": the suggested (or questionnaire's) P-level and a
  reason, written to the incident record as its declared severity, with a timeline entry;
- :func:`send_panel` — 02_communicate's "Send": the rendered messages go out on a click (and are
  recorded with each provider's answer); nothing is sent without it;
- :func:`show_in` — run a function and show what it displays in an output widget (for redraws
  after a click, without re-running the cell).

Which kernels count as "a person is looking" is :func:`in_jupyterlab`: ``VCCI_NB_INTERACTIVE``
(0/1), else a kernel that Jupyter Server started (``JPY_SESSION_NAME``); papermill is neither.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vcci_nb import runenv

log = logging.getLogger(__name__)

__all__ = [
    "IncidentPicker",
    "LiveMonitor",
    "Questionnaire",
    "SendPanel",
    "SeverityDeclaration",
    "declare_severity",
    "in_jupyterlab",
    "incident_picker",
    "live_monitor",
    "send_panel",
    "severity_from_answers",
    "severity_questionnaire",
    "show_in",
    "when_incident_chosen",
]


def in_jupyterlab() -> bool:
    """Whether a person may click: ``VCCI_NB_INTERACTIVE`` (0/1), else a kernel Jupyter Server started.

    papermill's kernels (headless runs, ``vcci-nb run``) have no ``JPY_SESSION_NAME``; JupyterLab's do.
    """
    said = runenv.current().interactive
    if said is not None:
        return said
    if not os.environ.get("JPY_SESSION_NAME"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def output_area() -> Any:
    """An empty output widget (a place a later click draws into)."""
    return _widgets().Output()


def show_in(output: Any, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` and make what it displays (and prints) the content of ``output``; returns its result.

    ``with output:`` captures only while a cell executes; a button's callback or a refresh task runs
    between cells, so the displays are captured here and set as the widget's outputs.
    """
    from IPython.utils.capture import capture_output

    result = None
    with capture_output(display=True) as cap:
        try:
            result = fn()
        except Exception as exc:  # a callback must never kill the kernel's comm handler
            log.warning("%s failed", getattr(fn, "__name__", "callback"), exc_info=True)
            print(f"Failed: {type(exc).__name__}: {exc}")
    outs: list[dict[str, Any]] = []
    if cap.stdout:
        outs.append({"output_type": "stream", "name": "stdout", "text": cap.stdout})
    for out in cap.outputs:
        outs.append({"output_type": "display_data", "data": out.data, "metadata": out.metadata or {}})
    output.outputs = tuple(outs)
    return result


# --------------------------------------------------------------------------------------------
# The incident picker

#: Callbacks waiting for an incident to be chosen, per notebook Context (``id(ctx)``).
_CHOSEN: dict[int, list[Callable[[str], None]]] = {}


def when_incident_chosen(ctx: Any, callback: Callable[[str], None]) -> None:
    """Call ``callback(incident_id)`` when the picker of ``ctx``'s notebook chooses an incident."""
    _CHOSEN.setdefault(id(ctx), []).append(callback)


def choose_incident(ctx: Any, incident_id: str) -> None:
    """Make ``incident_id`` the notebook's incident and tell every cell that waited for one."""
    ctx.incident_id = incident_id
    for callback in list(_CHOSEN.get(id(ctx), [])):
        try:
            callback(incident_id)
        except Exception:  # one cell's failure must not stop the others
            log.warning("incident callback failed", exc_info=True)


class IncidentPicker:
    """The picker: the widget in JupyterLab, one line of text in a headless copy."""

    def __init__(self, widget: Any, dropdown: Any, status: Any) -> None:
        self.widget = widget
        self.dropdown = dropdown
        self.status = status

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _bundle(self.widget, "(Incident picker: open this notebook in JupyterLab to choose one.)", **kwargs)


def _incident_options(outputs: Any = None) -> list[tuple[str, str]]:
    from vcci_nb.record import list_records

    options = [("Choose an open incident…", "")]
    for rec in list_records(outputs, open_only=True):
        label = f"{rec.get('id')} · {rec.get('severity')} · {rec.get('status')} · {rec.get('title') or ''}"
        options.append((label[:120], str(rec.get("id"))))
    return options


def incident_picker(ctx: Any, *, outputs: Any = None, allow_open: bool = True) -> IncidentPicker:
    """A dropdown of the open incidents and "open a new one" (severity, title, button).

    Choosing sets ``ctx.incident_id`` and calls what :func:`when_incident_chosen` registered.
    Opening is an explicit click (it writes a new record and nothing else).
    """
    from vcci_nb.policy import SEVERITIES

    w = _widgets()
    dropdown = w.Dropdown(options=_incident_options(outputs), value="", description="Incident")
    dropdown.layout.width = "640px"
    status = w.HTML(value="<em>No incident yet: the cells below only preview. Choose one, or open one.</em>")

    def chosen(change: Any) -> None:
        value = change.get("new") if isinstance(change, dict) else None
        if value:
            choose_incident(ctx, str(value))
            status.value = f"<strong>Incident {html.escape(str(value))}</strong> — actions are recorded in it."

    dropdown.observe(chosen, names="value")
    rows: list[Any] = [dropdown]
    if allow_open:
        severity = w.Dropdown(options=list(SEVERITIES), value="P2", description="Severity")
        severity.layout.width = "180px"
        title = w.Text(value="", placeholder="what is wrong, in a few words", description="Title")
        title.layout.width = "420px"
        button = w.Button(description="Open a new incident", icon="plus")

        def open_new(_b: Any) -> None:
            from vcci_nb.errors import VcciNbError
            from vcci_nb.record import IncidentRecord

            try:
                record = IncidentRecord.open(severity.value, title.value, outputs=outputs, source="notebook")
            except VcciNbError as exc:
                status.value = f"<strong style='color:#cf222e'>{html.escape(str(exc))}</strong>"
                return
            dropdown.options = _incident_options(outputs)
            dropdown.value = record.id

        button.on_click(open_new)
        rows.append(w.HBox([severity, title, button]))
    rows.append(status)
    return IncidentPicker(w.VBox(rows), dropdown, status)


def _questions() -> tuple[tuple[str, str, str], ...]:
    """Runbook 1.3's questions as (key, text, level a "yes" implies), from the analysis' table."""
    from vcci_nb.analysis.severity import QUESTIONS as TABLE

    return tuple((key, text, level) for key, (text, level) in TABLE.items())


def severity_from_answers(answers: Mapping[str, bool | None]) -> tuple[str, list[str]]:
    """The most severe level any "yes" points to, and the questions that point there.

    Runbook 1.3 gives ranges (multiple tenants → P0/P1, single tenant → P1/P2, non-critical →
    P2/P3); the analysis' table picks one level per question and the engineer raises it when the
    range's worse end applies. The suggestion in :mod:`vcci_nb.analysis.severity` also weighs the
    findings; this one is only what the ticked boxes say.
    """
    yes = [(key, text, sev) for key, text, sev in _questions() if answers.get(key)]
    if not yes:
        return "P3", ["No question answered yes: treat as minor until evidence says otherwise."]
    best = min(sev for _, _, sev in yes)
    return best, [text for _, text, sev in yes if sev == best]


def _widgets() -> Any:
    import ipywidgets

    return ipywidgets


def _bundle(widget: Any, text: str, **kwargs: Any) -> Any:
    """The widget's display bundle, with a text fallback that makes sense in a headless copy."""
    got = widget._repr_mimebundle_(**kwargs)
    data, meta = got if isinstance(got, tuple) else (got, None)
    data = dict(data or {})
    data["text/plain"] = text
    return (data, meta) if meta is not None else data


class Questionnaire:
    """The severity questionnaire: shows as the widget in JupyterLab, as one line of text elsewhere."""

    def __init__(self, widget: Any, suggested: Any = None) -> None:
        self.widget = widget
        self.suggested = suggested  # the HTML label, and ``.level`` once answered (see severity_questionnaire)
        self.listeners: list[Callable[[str], None]] = []

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _bundle(
            self.widget, "(Severity questionnaire: open this notebook in JupyterLab to answer it.)", **kwargs
        )


def severity_questionnaire(
    answers: Mapping[str, bool | None] | None = None,
    *,
    reasons: Mapping[str, str] | None = None,
    on_change: Callable[[str, dict[str, bool]], None] | None = None,
) -> Questionnaire:
    """Checkboxes for runbook 1.3, pre-ticked from ``answers``; the label shows the suggested P-level.

    ``reasons`` (question key → why the evidence answered it) is shown beside each box. Returns a
    :class:`Questionnaire` (``.widget`` is the box); headless it shows as one line of text and
    nothing waits on it.
    """
    w = _widgets()
    answers = dict(answers or {})
    reasons = dict(reasons or {})
    boxes: dict[str, Any] = {}
    rows = []
    for key, text, sev in _questions():
        box = w.Checkbox(value=bool(answers.get(key)), description=f"{text} (→ {sev})", indent=False)
        box.layout.width = "420px"
        boxes[key] = box
        why = w.HTML(value=f"<small style='color:#57606a'>{reasons.get(key, '')}</small>")
        rows.append(w.HBox([box, why]))
    result = w.HTML()
    listeners: list[Callable[[str], None]] = []

    def refresh(_change: Any = None) -> None:
        current = {k: bool(b.value) for k, b in boxes.items()}
        sev, why = severity_from_answers(current)
        result.value = f"<p><strong>Suggested severity: {sev}</strong> — {'; '.join(why)}</p>"
        if _change is not None:
            if on_change is not None:
                on_change(sev, current)
            for listener in list(listeners):
                listener(sev)

    for box in boxes.values():
        box.observe(refresh, names="value")
    refresh()
    box = w.VBox([w.HTML("<p><em>Adjust the answers the evidence could not give:</em></p>"), *rows, result])
    q = Questionnaire(box, result)
    q.listeners = listeners
    return q


class SeverityDeclaration:
    """The "Apply severity" control: the widget in JupyterLab, one line of text in a headless copy."""

    def __init__(self, widget: Any, level: Any, reason: Any, button: Any, status: Any) -> None:
        self.widget = widget
        self.level = level
        self.reason = reason
        self.button = button
        self.status = status

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _bundle(
            self.widget,
            "(Declare severity: open this notebook in JupyterLab, or "
            "vcci-nb incident update ID --severity P? --reason '…')",
            **kwargs,
        )


def declare_severity(
    ctx: Any,
    suggested: str,
    *,
    questionnaire: Questionnaire | None = None,
    reason: str = "",
    outputs: Any = None,
) -> SeverityDeclaration:
    """A P-level (pre-set to ``suggested``, following the questionnaire's answers), a reason, and Apply.

    Apply writes the level as the incident's declared severity (:meth:`IncidentRecord.set_severity`:
    the record's ``severity`` and a timeline entry with who and why). The incident is ``ctx``'s at
    the time of the click, so one chosen or opened with the picker after Run All counts. Nothing is
    written without a click, and a headless run only shows a line of text.
    """
    from vcci_nb.policy import SEVERITIES

    w = _widgets()
    level = w.Dropdown(options=list(SEVERITIES), value=suggested, description="Severity")
    level.layout.width = "180px"
    why = w.Text(value=reason, placeholder="why this level (required)", description="Reason")
    why.layout.width = "520px"
    button = w.Button(description="Apply severity", button_style="primary", icon="check")
    status = w.HTML(value="<em>The record keeps its severity until you apply one, with a reason.</em>")
    if questionnaire is not None:

        def follow(sev: str) -> None:
            level.value = sev

        questionnaire.listeners.append(follow)

    def apply(_b: Any) -> None:
        from vcci_nb.errors import VcciNbError
        from vcci_nb.record import IncidentRecord

        incident = getattr(ctx, "incident_id", "") or ""
        if not incident:
            status.value = (
                "<strong style='color:#cf222e'>No incident: choose one or open one with the picker at the top, "
                "then Apply.</strong>"
            )
            return
        try:
            data = IncidentRecord.load(incident, outputs).set_severity(str(level.value), str(why.value))
        except VcciNbError as exc:
            status.value = f"<strong style='color:#cf222e'>{html.escape(str(exc))}</strong>"
            return
        status.value = (
            f"<strong>{html.escape(incident)} is now {html.escape(str(data['severity']))}</strong> — "
            f"recorded in its timeline: {html.escape(str(why.value).strip())}"
        )

    button.on_click(apply)
    box = w.VBox([w.HBox([level, why, button]), status])
    return SeverityDeclaration(box, level, why, button, status)


@dataclass
class LiveMonitor:
    """A running (or stoppable) refresh loop and the widgets that control it."""

    refresh: Callable[[], Any]
    interval_s: float
    widget: Any
    output: Any
    status: Any
    task: asyncio.Task[None] | None = None
    refreshes: int = 0

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _bundle(self.widget, "(Live refresh: open this notebook in JupyterLab and press Start.)", **kwargs)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> None:
        if self.running:
            return
        loop = asyncio.get_event_loop()
        self.task = loop.create_task(self._loop())
        self.status.value = f"Refreshing every {self.interval_s:g} s — press Stop to end."

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.task = None
        self.status.value = f"Stopped after {self.refreshes} refreshes."

    def refresh_once(self) -> None:
        show_in(self.output, self.refresh)
        self.refreshes += 1

    async def _loop(self) -> None:
        try:
            while True:
                self.refresh_once()
                stamp = datetime.now(UTC).strftime("%H:%M:%S UTC")
                self.status.value = (
                    f"Refresh {self.refreshes} at {stamp}; next in {self.interval_s:g} s — press Stop to end."
                )
                await asyncio.sleep(self.interval_s)
        except asyncio.CancelledError:
            pass


def live_monitor(refresh: Callable[[], Any], interval_s: float = 30.0, *, autostart: bool = False) -> LiveMonitor:
    """Start/Stop buttons around ``refresh`` (which displays a snapshot), run every ``interval_s``.

    Nothing runs until Start is pressed unless ``autostart``; never autostart in a notebook that
    papermill runs, because the loop would keep writing outputs into later cells.
    """
    if interval_s < 2:
        raise ValueError("interval_s must be at least 2 seconds; the sources are asked at every refresh")
    w = _widgets()
    start = w.Button(description="Start live refresh", button_style="success", icon="play")
    stop = w.Button(description="Stop", button_style="danger", icon="stop")
    status = w.HTML(value=f"<em>Live refresh is off. Press Start to refresh every {interval_s:g} s.</em>")
    output = w.Output()
    box = w.VBox([w.HBox([start, stop, status]), output])
    mon = LiveMonitor(refresh=refresh, interval_s=interval_s, widget=box, output=output, status=status)
    start.on_click(lambda _b: mon.start())
    stop.on_click(lambda _b: mon.stop())
    if autostart:
        mon.start()
    return mon


class SendPanel:
    """The Send button under 02_communicate's previews: the widget in JupyterLab, a line of text headless."""

    def __init__(self, widget: Any, button: Any, status: Any) -> None:
        self.widget = widget
        self.button = button
        self.status = status
        self.result: dict[str, Any] | None = None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _bundle(
            self.widget,
            "(Send: open this notebook in JupyterLab and press Send, or run it with send=True and dry_run=False.)",
            **kwargs,
        )


def send_panel(preview: Any, *, actor: str | None = None) -> SendPanel:
    """A Send button for ``preview`` (a :class:`vcci_nb.notify.Preview`): one click sends every message shown.

    The click is the confirmation: each message is delivered and recorded in the incident with the
    provider's answer (``Preview.send``), and the panel lists what went out and what failed. The
    button then stays disabled, so a double click cannot send twice; a failed channel is retried
    with ``vcci-nb deliveries retry``, which knows which are safe to retry.
    """
    w = _widgets()
    names = ", ".join(m.channel for m in preview.messages)
    button = w.Button(
        description=f"Send {len(preview.messages)} message(s)",
        button_style="warning",
        icon="paper-plane",
        tooltip=f"Send to {names}",
    )
    button.layout.width = "auto"
    status = w.HTML(value=f"<em>Nothing sent yet. Read the messages above, then Send to: {html.escape(names)}.</em>")
    panel = SendPanel(w.VBox([w.HBox([button, status])]), button, status)

    def send(_b: Any) -> None:
        button.disabled = True
        status.value = "<em>Sending…</em>"
        try:
            result = preview.send(send=True, actor=actor)
        except Exception as exc:  # a callback must never kill the kernel's comm handler
            from vcci_nb.redact import redact

            log.warning("sending failed", exc_info=True)
            status.value = (
                f"<strong style='color:#cf222e'>{html.escape(redact(f'{type(exc).__name__}: {exc}'))}</strong>"
            )
            button.disabled = False
            return
        panel.result = result
        rows = "".join(
            f"<li><b>{html.escape(str(d['channel']))}</b>: {html.escape(str(d['status']))}"
            + (f" — {html.escape(str(d['error']))}" if d.get("error") else "")
            + "</li>"
            for d in result["deliveries"]
        )
        sent = sum(d["status"] == "sent" for d in result["deliveries"])
        head = f"Sent {sent} of {len(result['deliveries'])} message(s); each is recorded in the incident."
        if not result["ok"]:
            head += " Retry the failed ones with <code>vcci-nb deliveries retry</code>."
        colour = "#1a7f37" if result["ok"] else "#cf222e"
        status.value = f"<strong style='color:{colour}'>{head}</strong><ul>{rows}</ul>"

    button.on_click(send)
    return panel

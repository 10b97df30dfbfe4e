"""What the ``04_mitigate_*`` notebooks call: one guarded step per cell, and the before/after chart.

:func:`step` runs an action through the gateway with the notebook's ``dry_run`` and ``confirm``
parameters and shows the outcome (plan, Confirm panel, verification). A refusal is shown, not
raised (it is already in the record and nothing changed); a source that cannot be reached is shown
as unavailable; only a confirmed action that failed while executing stops the notebook, because the
engineer must look at it before going on.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from vcci_nb.actions._gateway import Outcome, run
from vcci_nb.actions._model import Action
from vcci_nb.actions.widget import on_executed
from vcci_nb.errors import ActionFailed, ActionRefused, ActionRefusedWithOutcome, VcciNbError
from vcci_nb.evidence import Window
from vcci_nb.policy import parse_time
from vcci_nb.redact import redact

log = logging.getLogger(__name__)


def _banner(text: str, level: str, title: str) -> None:
    from vcci_nb.display import show_banner

    show_banner(text, level, title=title)


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)  # type: ignore[no-untyped-call]


def step(
    action: Action,
    ctx: Any,
    *,
    confirm: str = "",
    enabled: bool = True,
    interactive: bool | None = None,
) -> Outcome | None:
    """Plan (and, if confirmed, execute and verify) ``action`` for the notebook's incident.

    Args:
        action: the action to run.
        ctx: the notebook's :class:`vcci_nb.notebook.Context` (incident, dry_run).
        confirm: the ``confirm`` parameter: the incident ID again, to execute headless.
        enabled: the parameter that selects this step; ``False`` shows that it was skipped.
        interactive: passed to the gateway (default: a Confirm panel when in a kernel).

    Returns:
        The outcome, or ``None`` when nothing was planned (skipped, no incident, unavailable).
    """
    if not enabled:
        _banner(f"{action.name} is not selected in the parameters cell; nothing planned.", "info", "Skipped")
        return None
    if not ctx.incident_id:
        from vcci_nb import widgets

        if interactive is not False and widgets.in_jupyterlab():
            _preview(action, ctx, confirm=confirm)
            return None
        _banner(
            "Actions are recorded in an incident, and there is none: open one (`vcci-nb incident open`) and "
            "set incident_id. Nothing was planned or changed.",
            "warning",
            "No incident",
        )
        return None
    if getattr(action, "_profile", "") is None:
        # The notebook's profile (its `environment` parameter), not $VCCI_NB_PROFILE's: the names the
        # action acts on (namespace, deployment, ConfigMap, …) come from the same profile as the evidence.
        action._profile = ctx.profile  # type: ignore[attr-defined]
    try:
        outcome = run(action, ctx.incident_id, dry_run=ctx.dry_run, confirm=confirm or None, interactive=interactive)
    except ActionRefusedWithOutcome as exc:
        outcome = exc.outcome
    except ActionRefused as exc:
        _banner(str(exc), "error", "Refused")
        return None
    except ActionFailed as exc:
        if exc.outcome is not None and exc.outcome.plan is None:  # could not even plan: the target is down
            _banner(exc.outcome.message, "warning", f"{action.name}: nothing planned or changed")
            return cast(Outcome, exc.outcome)
        if exc.outcome is not None:
            _display(exc.outcome)
        raise
    except VcciNbError as exc:
        _banner(redact(str(exc)), "warning", f"{action.name} could not be planned")
        return None
    except Exception as exc:  # a server that is down: report it, keep the notebook going
        log.warning("planning %s failed", action.name, exc_info=True)
        _banner(
            redact(f"{type(exc).__name__}: {exc}"),
            "warning",
            f"{action.name}: the target is unavailable; nothing was planned or changed",
        )
        return None
    _display(outcome)
    return outcome


def _preview(action: Action, ctx: Any, *, confirm: str) -> None:
    """JupyterLab without an incident: the plan, read-only, and the Confirm panel once one is chosen.

    Planning only reads the target; nothing is recorded (there is no record to write to) and
    nothing changes. When the notebook's incident picker chooses an incident, this cell's output
    gets the gateway's own outcome for it (with ``dry_run=False``: the Confirm panel), so the
    rules are those of any other run.
    """
    from vcci_nb import widgets

    try:
        action.preflight()
        plan = action.plan()
    except ActionRefused as exc:
        _banner(str(exc), "error", f"{action.name} would be refused")
        return None
    except Exception as exc:  # the target is down: say so, keep the notebook going
        log.warning("previewing %s failed", action.name, exc_info=True)
        _banner(redact(f"{type(exc).__name__}: {exc}"), "warning", f"{action.name}: the target is unavailable")
        return None
    _banner(
        "No incident chosen: this is a read-only preview of the plan; nothing is recorded or changed. "
        "Choose the incident above (or open one): its Confirm panel then appears here.",
        "info",
        f"Preview · {action.name}",
    )
    _display(plan)
    out = widgets.output_area()
    _display(out)
    widgets.when_incident_chosen(ctx, lambda _id: widgets.show_in(out, lambda: step(action, ctx, confirm=confirm)))
    return None


def after_chart(ctx: Any, panel: str, *outcomes: Outcome | None, key: str, before_minutes: float = 30.0) -> None:
    """The "After" chart: ``panel`` from before the action to now, with each executed action marked.

    In JupyterLab the chart lives in an output widget and is drawn again, for the new window, each
    time a Confirm click executes an action of this incident, without running the cell again.
    """
    from vcci_nb import charts, widgets
    from vcci_nb.display import show_chart
    from vcci_nb.sources import prometheus

    done: list[Outcome] = [o for o in outcomes if o is not None]

    def draw() -> None:
        ran = [o for o in done if o.executed]
        window = window_since(ran[-1] if ran else None, ctx, before_minutes=before_minutes)
        ev = ctx.ask(prometheus.gather_panel, panel, key=key, window=window)
        show_chart(mark_action(charts.panel_chart(ev), *done), query=ev.query)

    if not widgets.in_jupyterlab():
        draw()
        return
    out = widgets.output_area()
    widgets.show_in(out, draw)
    _display(out)

    def redraw(outcome: Outcome) -> None:
        if outcome.incident_id != ctx.incident_id:
            return
        done.append(outcome)
        widgets.show_in(out, draw)

    on_executed(key, redraw)


def _started(outcome: Outcome | None) -> datetime | None:
    if outcome is None:
        return None
    text = outcome.entry.get("started_at") or outcome.entry.get("requested_at")
    return parse_time(str(text), name="started_at") if text else None


def window_since(outcome: Outcome | None, ctx: Any, *, before_minutes: float = 30.0) -> Window:
    """From ``before_minutes`` before the action to now, for a before/after chart; the notebook's window
    when nothing was executed."""
    at = _started(outcome) if outcome is not None and outcome.executed else None
    if at is None:
        return ctx.window  # type: ignore[no-any-return]
    now = datetime.now(UTC)
    return Window(at - timedelta(minutes=before_minutes), max(now, at + timedelta(minutes=1)))


def mark_action(fig: Any, *outcomes: Outcome | None) -> Any:
    """Draw a dashed vertical line at the moment each executed action started, labelled with its name."""
    for outcome in outcomes:
        at = _started(outcome) if outcome is not None and outcome.executed else None
        if at is None or outcome is None:
            continue
        fig.add_vline(x=at, line_dash="dash", line_color="#8250df")
        fig.add_annotation(x=at, y=1, yref="paper", text=outcome.action, showarrow=False, yanchor="bottom")
    return fig


def preview_message(ctx: Any, template: str, channels: str | list[str] = "statuspage") -> Any:
    """Show what ``template`` would say on ``channels`` for the notebook's incident; sends nothing.

    A scenario's fix often ends with telling customers (scenario 5: status page *Degraded*). The
    scenario notebook shows the exact message next to the actions so the engineer sees it before
    ``02_communicate`` sends it; sending stays there, with its own confirmation and audit.

    Returns:
        The :class:`vcci_nb.notify.Preview`, or ``None`` when there is no incident or it cannot be
        rendered (shown as a banner; the notebook goes on).
    """
    if not ctx.incident_id:
        _banner(
            "Messages are filled in from the incident record, and there is none: set incident_id to see the "
            "message. Nothing was sent.",
            "info",
            "No incident",
        )
        return None
    from vcci_nb.notify import render

    try:
        preview = render(ctx.incident_id, template, channels=channels, profile=ctx.profile)
    except VcciNbError as exc:
        _banner(redact(str(exc)), "warning", f"The {template} message could not be rendered; nothing was sent")
        return None
    _display(preview)
    return preview


def first_executed(*outcomes: Outcome | None) -> Outcome | None:
    """The earliest of ``outcomes`` that was executed (for :func:`window_since` over several steps).

    A notebook's fix section has several steps, any of which may have been skipped or only planned;
    the before/after chart should start before the first one that changed something.
    """
    done = [(at, o) for o in outcomes if o is not None and o.executed and (at := _started(o)) is not None]
    return min(done, key=lambda pair: pair[0])[1] if done else None

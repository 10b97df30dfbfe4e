"""The 04_mitigate_* notebooks in JupyterLab: preview without an incident, pick one, Confirm; the world changed."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.browser._jl import (
    JupyterLab,
    append_to_cell,
    cell,
    errors,
    open_notebook,
    output_of,
    plotly_traces,
    run_all,
    shot,
)
from vcci_nb.record import IncidentRecord

pytestmark = [pytest.mark.lab, pytest.mark.slow]

IDLE_APP = (
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'idle' "
    "AND application_name = 'vcci-api'"
)


def _idle_app_pids(url: str) -> set[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {int(r[0]) for r in conn.execute(IDLE_APP).fetchall()}


def test_database_preview_pick_incident_confirm(page: Any, jupyterlab: JupyterLab, lab: Any) -> None:
    admin = lab.env()["VCCI_ADMIN_DATABASE_URL"]
    record = IncidentRecord.open("P1", "Database connection pool exhausted", "browser-test", outputs=jupyterlab.outputs)
    with lab.fault("pool-exhaustion"):
        before = _idle_app_pids(admin)
        assert before, "the fault holds idle vcci-api sessions"
        open_notebook(page, jupyterlab, "04_mitigate_database.ipynb")
        # what a person does: allow execution, and end every idle session now (the fault's are seconds old)
        append_to_cell(page, "terminate_idle = True", "dry_run = False\nidle_s = 0")
        run_all(page)
        assert errors(page) == []

        step = cell(page, 'idle = actions.TerminateSessions("idle"')
        out = step.locator(".jp-Cell-outputArea")
        # no incident: a read-only preview of the plan, naming the sessions it would end
        assert "read-only preview" in out.inner_text()
        assert any(str(pid) in out.inner_text() for pid in before)
        assert not record.data.get("actions")
        after_cell = output_of(page, "actions.after_chart(")
        page.wait_for_function(
            "el => el.querySelectorAll('.js-plotly-plot .trace').length > 0", arg=after_cell.element_handle()
        )
        traces_before = plotly_traces(after_cell)
        marks_before = after_cell.locator(".js-plotly-plot .shapelayer path").count()

        # the incident picker at the top lists the open incidents
        picker = page.locator(".widget-dropdown", has_text="Incident").first.locator("select")
        labels = picker.locator("option").all_inner_texts()
        label = next(t for t in labels if t.startswith(record.id))
        picker.select_option(label=label)

        # the gateway's Confirm panel for this incident: the plan again, recorded as awaiting a click
        confirm = out.get_by_role("button", name="Confirm", exact=True)
        confirm.wait_for()
        waiting = IncidentRecord.load(record.id, jupyterlab.outputs).data["actions"]
        assert [e["result"] for e in waiting] == ["awaiting_confirmation"]
        assert before <= _idle_app_pids(admin), "nothing changed before the click"
        confirm.scroll_into_view_if_needed()
        shot(page, "mitigate-confirm")

        confirm.click()
        out.get_by_text("succeeded").first.wait_for(timeout=120_000)

        assert not (before & _idle_app_pids(admin)), "the planned sessions are gone from PostgreSQL"
        entries = IncidentRecord.load(record.id, jupyterlab.outputs).data["actions"]
        done = [e for e in entries if e["action"] == "postgres.terminate" and e["result"] == "succeeded"]
        assert len(done) == 1
        assert done[0]["confirmation"]["mode"] == "widget"

        # the After chart redrew on its own, with the action's line
        page.wait_for_function(
            "([el, n]) => el.querySelectorAll('.js-plotly-plot .shapelayer path').length > n",
            arg=[after_cell.element_handle(), marks_before],
            timeout=120_000,
        )
        assert plotly_traces(after_cell) >= traces_before > 0
        assert "postgres.terminate" in after_cell.inner_text()

"""01_triage in JupyterLab: no incident, Run All, findings and drawn charts; open one, declare its severity."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser._jl import JupyterLab, cell, errors, open_notebook, output_of, plotly_traces, run_all, shot
from vcci_nb.record import IncidentRecord, list_records

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_triage_open_an_incident_and_declare_its_severity(page: Any, jupyterlab: JupyterLab) -> None:
    known = {r["id"] for r in list_records(jupyterlab.outputs)}
    open_notebook(page, jupyterlab, "01_triage.ipynb")
    # code one click away: the imports start collapsed, their first line showing
    imports = page.locator(".jp-Notebook .jp-CodeCell").filter(
        has=page.locator(".jp-InputPlaceholder", has_text="from vcci_nb import charts")
    )
    assert imports.count() == 1
    run_all(page)
    assert errors(page) == []

    # the findings, as a table and as cards, and the 5xx share and p95 latency as drawn Plotly charts
    found = output_of(page, "findings = record_findings(")
    assert "Suggested severity:" in found.inner_text()
    assert found.locator("table").count() >= 1
    charts = output_of(page, "show_chart(charts.panel_chart(ratio)")
    page.wait_for_function(
        "el => el.querySelectorAll('.js-plotly-plot .trace').length >= 2", arg=charts.element_handle()
    )
    assert charts.locator(".js-plotly-plot").count() == 2
    assert plotly_traces(charts) >= 2

    # no incident yet: Apply says so and writes nothing
    decl = output_of(page, "declaration = declare_severity(")
    apply = decl.get_by_role("button", name="Apply severity")
    reason = decl.locator(".widget-text input").first
    reason.fill("every request fails")
    apply.click()
    decl.get_by_text("No incident: choose one or open one").wait_for()
    assert {r["id"] for r in list_records(jupyterlab.outputs)} == known

    # the picker at the top: open a new one (P3, a title), which becomes this notebook's incident
    picker = output_of(page, "ctx = setup(")
    picker.locator(".widget-dropdown", has_text="Severity").locator("select").select_option("P3")
    picker.locator(".widget-text input").fill("Checkout answers 500")
    picker.get_by_role("button", name="Open a new incident").click()
    picker.get_by_text("actions are recorded in it").wait_for()
    new = [r for r in list_records(jupyterlab.outputs) if r["id"] not in known]
    assert len(new) == 1
    record = IncidentRecord.load(str(new[0]["id"]), jupyterlab.outputs)
    assert record.data["severity"] == "P3" and record.data["title"] == "Checkout answers 500"

    # ticking "completely down" raises the suggestion to P0, and the declaration follows it
    level = decl.locator(".widget-dropdown", has_text="Severity").locator("select")
    questions = output_of(page, "questionnaire = severity_questionnaire(")
    box = questions.locator(".widget-checkbox", has_text="completely down").locator("input")
    if box.is_checked():  # the evidence already said so: untick and tick again
        box.uncheck()
    box.check()
    questions.get_by_text("Suggested severity: P0").wait_for()
    page.wait_for_function("el => el.value === 'P0'", arg=level.element_handle())
    decl.scroll_into_view_if_needed()
    apply.click()
    decl.get_by_text(f"{record.id} is now P0").wait_for()

    data = IncidentRecord.load(record.id, jupyterlab.outputs).data
    assert data["severity"] == "P0"
    assert data["severity_declared"]["reason"] == "every request fails"
    assert any(
        e["summary"].startswith("Severity declared P0 (P3 → P0)") and e["data"].get("declared")
        for e in data["timeline"]
    )
    # ... and one click shows them (they ran with Run All like every other cell)
    imports.locator(".jp-InputPlaceholder .jp-Placeholder-content").click()
    shown = cell(page, "from vcci_nb.sources import")
    shown.wait_for()
    assert shown.locator(".jp-InputPrompt").first.inner_text().strip() == "[2]:"

    cell(page, "findings = record_findings(").scroll_into_view_if_needed()
    shot(page, "triage-findings")
    charts.scroll_into_view_if_needed()
    shot(page, "triage-charts")

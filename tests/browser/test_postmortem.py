"""07_postmortem in JupyterLab: the report as formatted Markdown (headings, tables), with its chart."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser._jl import JupyterLab, append_to_cell, cell, errors, open_notebook, output_of, run_all, shot
from vcci_nb.record import IncidentRecord

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_postmortem_renders_markdown_and_its_chart(page: Any, jupyterlab: JupyterLab) -> None:
    record = IncidentRecord.open("P1", "Checkout answers 500", "browser-test", outputs=jupyterlab.outputs)
    record.set_status("identified", note="connection pool exhausted", actor="browser-test")
    record.set_status("resolved", note="pool raised", actor="browser-test")
    open_notebook(page, jupyterlab, "07_postmortem.ipynb")
    append_to_cell(page, "dry_run = True  # this notebook only reads", f'incident_id = "{record.id}"')
    run_all(page)
    assert errors(page) == []

    summary = output_of(page, 'sections.get("Incident Summary"')
    # Markdown rendered: headings and tables in the DOM, no "## " or "| --- |" left as text
    headings = summary.locator(".jp-RenderedMarkdown h2").all_inner_texts()
    assert any("Incident Summary" in h for h in headings)
    assert any("Impact Analysis" in h for h in headings)
    assert "## " not in summary.inner_text()
    assert summary.locator(".jp-RenderedMarkdown strong", has_text="Severity").count() >= 1
    # the impact chart: the 5xx share over the incident, drawn (an SVG with a line in it)
    chart = summary.locator(".jp-RenderedSVG")
    assert chart.count() == 1
    assert chart.locator("img, svg").first.bounding_box()["height"] > 50

    timeline = output_of(page, 'sections.get("Timeline"')
    assert timeline.locator(".jp-RenderedMarkdown h2", has_text="Timeline").count() == 1
    rows = timeline.locator(".jp-RenderedMarkdown table tr")
    assert rows.count() >= 3  # header, opened, the status changes
    assert "connection pool exhausted" in timeline.inner_text()
    assert "|" not in timeline.locator(".jp-RenderedMarkdown").first.inner_text()

    cell(page, 'sections.get("Incident Summary"').scroll_into_view_if_needed()
    shot(page, "postmortem")
    assert (record.folder / "postmortem.md").exists()

    # the record's own page, as a reader opens it from the incident folder
    index = record.folder / "index.html"
    assert index.exists()
    page.goto(index.as_uri())
    page.get_by_text(record.id).first.wait_for()
    assert "Checkout answers 500" in page.inner_text("body")
    shot(page, "record-index")

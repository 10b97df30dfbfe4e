"""05_monitor in JupyterLab: Start, at least two refreshes, Stop, and nothing refreshes after Stop."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.browser._jl import JupyterLab, append_to_cell, cell, errors, open_notebook, run_all, shot

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_start_refreshes_and_stop_stops(page: Any, jupyterlab: JupyterLab) -> None:
    open_notebook(page, jupyterlab, "05_monitor.ipynb")
    append_to_cell(page, "refresh_s = 30", "refresh_s = 2")
    run_all(page)
    assert errors(page) == []
    state = jupyterlab.outputs / ".monitor" / "lab-vcci-production.json"
    assert state.exists()
    panel = cell(page, "live_monitor(")
    status = panel.locator(".widget-html").first
    assert "Live refresh is off" in status.inner_text()

    panel.get_by_role("button", name="Start live refresh").click()
    page.wait_for_function(
        "el => /Refresh [2-9]\\d* at/.test(el.textContent)", arg=status.element_handle(), timeout=120_000
    )
    # each refresh is a snapshot the engineer sees: the pods and panels table in the widget's output
    assert panel.locator(".widget-output table").count() >= 1
    panel.scroll_into_view_if_needed()
    shot(page, "monitor-live")
    panel.get_by_role("button", name="Stop").click()
    page.wait_for_function("el => /Stopped after \\d+ refreshes/.test(el.textContent)", arg=status.element_handle())
    stopped = status.inner_text()
    saved = json.loads(state.read_text())
    time.sleep(6)  # three refresh intervals: none may come
    assert status.inner_text() == stopped
    assert json.loads(state.read_text()) == saved

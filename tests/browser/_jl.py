"""Driving JupyterLab as a person does: open a notebook, edit a cell, Run All, read what shows."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("VCCI_NB_SCREENSHOTS") or ROOT / "tests" / "browser" / "screenshots")


class JupyterLab:
    """A running JupyterLab: its URL, token, records folder and REST helpers."""

    def __init__(self, url: str, token: str, outputs: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.token = token
        self.outputs = outputs
        self.proc = proc
        self.log = log

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        r = requests.request(
            method, f"{self.url}{path}", headers={"Authorization": f"token {self.token}"}, timeout=30, **kwargs
        )
        r.raise_for_status()
        return r.json() if r.content else None

    def open_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def shut_down_kernels(self) -> None:
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")


def open_notebook(page: Any, server: JupyterLab, name: str) -> None:
    page.goto(server.open_url(name))
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for()
    wait_idle(page)


def wait_idle(page: Any, timeout_s: float = 240) -> None:
    """A kernel is connected and idle: the status bar says "Python 3 (ipykernel) | Idle" (the toolbar's
    indicator alone says idle before any kernel is there)."""
    page.wait_for_function(
        r"""() => {
            const el = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
            const bar = [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.textContent).join('|');
            return el !== null && el.getAttribute('data-status') === 'idle' && /\(ipykernel\) \| Idle/.test(bar);
        }""",
        timeout=timeout_s * 1000,
    )


def cell(page: Any, text: str) -> Any:
    """The code or Markdown cell whose source holds ``text``."""
    return page.locator(".jp-Notebook .jp-Cell").filter(has=page.locator(".jp-InputArea", has_text=text)).first


def append_to_cell(page: Any, text: str, line: str) -> None:
    """Click into the cell holding ``text``, go to its end and type a new last line."""
    editor = cell(page, text).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.type(line)
    page.keyboard.press("Escape")


def menu(page: Any, *path: str) -> None:
    page.get_by_role("menuitem", name=path[0], exact=True).click()
    for name in path[1:]:
        page.get_by_role("menuitem", name=name).first.click()


def run_all(page: Any, timeout_s: float = 300) -> None:
    """Run ▸ Run All Cells, then wait until every code cell shown has its execution count (and the kernel is idle)."""
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(
        r"""() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            // a collapsed cell (jupyter.source_hidden) shows a placeholder prompt that never gets a count
            const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt:not(.jp-Placeholder-prompt)')];
            return prompts.length > 0 && prompts.every(p => /\[\d+\]/.test(p.textContent));
        }""",
        timeout=timeout_s * 1000,
    )
    wait_idle(page)


def output_of(page: Any, text: str) -> Any:
    """The output area of the cell holding ``text``."""
    return cell(page, text).locator(".jp-Cell-outputArea")


def errors(page: Any) -> list[str]:
    """Tracebacks shown in any output area."""
    texts = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    return [str(t) for t in texts if "Traceback" in t]


def plotly_traces(scope: Any) -> int:
    """Drawn Plotly traces (SVG groups), not just the chart divs."""
    return int(scope.locator(".js-plotly-plot .trace").count())


def shot(page: Any, name: str, target: Any = None) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    (target or page).screenshot(path=str(path))
    return path

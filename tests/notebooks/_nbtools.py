"""Helpers the notebook tests share: run a notebook with papermill, read its findings back,
export it to HTML, and count the charts headless Chromium actually draws."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from vcci_nb.analysis.model import FINDING_MIME

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

#: Every network the browser could try is closed: no proxy answers, no name resolves.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--window-size=1000,600",
    "--virtual-time-budget=8000",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def run_notebook(
    rel: str | Path,
    out: Path,
    parameters: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    timeout: int = 120,
) -> dict[str, Any]:
    """Execute a notebook with papermill (as the runner and an alert would) and return it as JSON.

    papermill runs the kernel in this process's environment, so the lab's variables are applied
    around the call.
    """
    import papermill

    src = Path(rel) if Path(rel).is_absolute() else NOTEBOOKS / rel
    saved = dict(os.environ)
    try:
        if env:
            os.environ.update(env)
        papermill.execute_notebook(
            str(src),
            str(out),
            parameters=parameters or {},
            kernel_name="python3",
            progress_bar=False,
            request_save_on_cell_execute=False,
            execution_timeout=timeout,
            cwd=str(src.parent),
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return json.loads(out.read_text())


def findings(nb: dict[str, Any]) -> list[dict[str, Any]]:
    """Every finding the notebook emitted, read back from its outputs as the runner reads them."""
    found: list[dict[str, Any]] = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            if FINDING_MIME in data:
                found.append(data[FINDING_MIME])
    return found


def output_text(nb: dict[str, Any]) -> str:
    """All text/plain and text/html of the outputs, for checking what a reader sees."""
    parts: list[str] = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append("".join(output.get("text", "")))
            if output.get("output_type") == "error":
                parts.append(f"{output.get('ename')}: {output.get('evalue')}")
            data = output.get("data") or {}
            for mime in ("text/plain", "text/html"):
                value = data.get(mime)
                if value:
                    parts.append("".join(value) if isinstance(value, list) else str(value))
    return "\n".join(parts)


def errors(nb: dict[str, Any]) -> list[str]:
    return [
        f"{o.get('ename')}: {o.get('evalue')}"
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def export_html(ipynb: Path, record_folder: Path | None = None) -> Path:
    """The HTML copy exactly as the runner writes it into an incident folder (plotly.js once, in assets/)."""
    import nbformat

    from vcci_nb.runner.html import export_html as runner_export

    html = ipynb.with_suffix(".html")
    runner_export(nbformat.read(ipynb, as_version=4), html, record_folder=record_folder or ipynb.parent)
    return html


def count_drawn_charts(html: Path) -> int:
    """Open the page in headless Chromium with every network closed and count the Plotly charts drawn.

    Counted in the rendered DOM: each drawn chart has a ``div.plot-container.plotly`` that plotly.js
    creates at draw time, holding an ``svg.main-svg``. The page source has neither.
    """
    browser = chromium()
    if browser is None:
        raise RuntimeError("Chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", html.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
    parts = re.split(r'<div class="plot-container plotly"', proc.stdout)
    # parts[0] is the page before the first chart; each later part starts inside one drawn chart.
    return sum(1 for part in parts[1:] if '<svg class="main-svg"' in part.split("plot-container plotly", 1)[0])


def chart_outputs(nb: dict[str, Any]) -> int:
    """How many Plotly charts the notebook emitted."""
    return sum(
        1
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if "application/vnd.plotly.v1+json" in (o.get("data") or {})
    )

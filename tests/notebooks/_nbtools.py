"""Helpers the notebook tests share: run a notebook with papermill, read its findings back,
export it to HTML, and count the charts headless Chromium actually draws."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vcci_nb.analysis.model import FINDING_MIME

RunNb = Callable[..., dict[str, Any]]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

#: The diagnostic notebooks this part of the project owns; all must exist.
DIAGNOSTIC = [
    "01_triage.ipynb",
    "03_investigate_system.ipynb",
    "03_investigate_logs.ipynb",
    "03_investigate_database.ipynb",
    "03_investigate_redis.ipynb",
    "03_investigate_dependencies.ipynb",
    "03_investigate_metrics.ipynb",
    "03_investigate_changes.ipynb",
    "03_decision_tree.ipynb",
    "05_monitor.ipynb",
    "06_resolve.ipynb",
    "scenarios/connection_pool_exhausted.ipynb",
    "scenarios/memory_leak.ipynb",
    "scenarios/disk_full.ipynb",
    "scenarios/slow_queries.ipynb",
    "scenarios/external_api_down.ipynb",
]

#: Which lab variables a fault needs before a test of it means anything.
FAULT_NEEDS: dict[str, tuple[str, ...]] = {
    "pool-exhaustion": ("DATABASE_URL",),
    "lock-contention": ("DATABASE_URL",),
    "long-queries": ("DATABASE_URL",),
    "slow-queries": ("DATABASE_URL",),
    "redis-memory": ("REDIS_URL",),
    "redis-slow": ("REDIS_URL",),
    "redis-down": ("REDIS_URL",),
    "oomkill": ("KUBECONFIG",),
    "crashloop": ("KUBECONFIG",),
    "bad-deploy": ("KUBECONFIG",),
    "disk-full": ("KUBECONFIG", "PROMETHEUS_URL"),
    "dependency-down": ("RABBITMQ_URL",),
    "external-down": ("EXTERNAL_API_URL",),
    "error-spike": ("PROMETHEUS_URL",),
    "latency-spike": ("PROMETHEUS_URL",),
}


def require(env: dict[str, str], *names: str) -> None:
    """Skip (naming what is missing) when the lab does not provide a source yet."""
    missing = [n for n in names if not env.get(n)]
    if missing:
        pytest.skip(f"the lab does not provide {', '.join(missing)}")


def require_fault(env: dict[str, str], fault: str) -> None:
    from vcci_lab import FAULTS, PRESETS

    names = list(PRESETS.get(fault, (fault,)))
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        pytest.skip(f"the lab has no fault {unknown}")
    require(env, *sorted({v for n in names for v in FAULT_NEEDS.get(n, ())}))


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


def panel_now(panel: str, *, worst_over: str = "", least_over: str = "") -> float | None:
    """A profile panel's value now, straight from Prometheus (the lab's env must be applied).

    With ``worst_over`` ("2m") the maximum over that span, as a resolve verdict would read it;
    with ``least_over`` the minimum (has it stayed up for that long?).
    """
    from vcci_nb.sources import prometheus

    query, _ = prometheus.panel_query(None, panel)
    if worst_over:
        query = f"max_over_time(({query})[{worst_over}:15s])"
    if least_over:
        query = f"min_over_time(({query})[{least_over}:15s])"
    ev = prometheus.gather_instant(None, query)
    if not ev.ok or ev.frame.empty:
        return None
    return float(ev.frame["value"].max())


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, every: float = 3.0) -> None:
    """Poll until ``predicate()`` holds; fail naming ``what`` when it never does."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def settle_metrics(env: dict[str, str], *, worst_over: str = "", margin: float = 0.8, timeout: float = 480) -> None:
    """Wait until the lab's 5xx share and p95 (5-minute rates) are back under their thresholds.

    A live metric fault (error-spike, latency-spike) injected by an earlier test stays in the
    5-minute rate windows for a while after it is healed; a "healthy lab" check must not read it.
    ``margin`` scales the thresholds (5 %, 2 s): a value decaying through a threshold would still
    trip a notebook's "median of the last points" a moment later. With ``worst_over`` covering the
    notebook's own window, no margin is needed.
    """
    if not env.get("PROMETHEUS_URL"):
        return
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        wait_for(
            lambda: (
                (panel_now("error_ratio_5xx", worst_over=worst_over) or 0) < 0.05 * margin
                and (panel_now("latency_p95", worst_over=worst_over) or 0) < 2.0 * margin
            ),
            timeout,
            "the lab's 5xx share and p95 to settle under their thresholds",
            every=10,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)


def volumes_min_free() -> float | None:
    """The smallest free share of any volume, as the disk_full scenario reads it."""
    from vcci_nb.sources import prometheus

    ev = prometheus.gather_volumes(None)
    if not ev.ok or ev.frame.empty or "free_ratio" not in ev.frame:
        return None
    return float(ev.frame["free_ratio"].min())

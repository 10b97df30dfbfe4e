""" "Run All" as a person would (nbval), and the executed notebooks as HTML that draws offline.

nbval runs each committed notebook top to bottom with its defaults against the lab, in lax mode:
every cell must run without an error, and the cells tagged ``nbval-check-output`` (whose output is
deterministic, such as the "open next" links) must match the output of the headless papermill run
of the same notebook. Then each papermill-executed notebook is exported to HTML exactly as the
runner does it, opened in headless Chromium with every network closed, and the Plotly charts drawn
in the rendered DOM are counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _nbtools import DIAGNOSTIC, NOTEBOOKS, chart_outputs, chromium, count_drawn_charts, export_html

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]


def _with_reference_outputs(rel: str, executed: dict[str, Any], out: Path) -> int:
    """A copy of the committed notebook whose checked cells carry the papermill run's outputs."""
    clean = json.loads((NOTEBOOKS / rel).read_text())
    by_id = {c.get("id"): c for c in executed["cells"]}
    checked = 0
    for cell in clean["cells"]:
        if "nbval-check-output" in (cell.get("metadata", {}).get("tags") or []):
            ref = by_id[cell["id"]]
            cell["outputs"] = ref.get("outputs", [])
            cell["execution_count"] = 1
            checked += 1
    out.write_text(json.dumps(clean))
    return checked


@pytest.mark.parametrize("rel", DIAGNOSTIC)
def test_run_all_with_defaults_under_nbval(
    rel: str, healthy: Callable[[str], Any], lab_env: dict[str, str], tmp_path: Path
) -> None:
    _, executed = healthy(rel)
    copy = tmp_path / Path(rel).name
    checked = _with_reference_outputs(rel, executed, copy)
    env = {**os.environ, **lab_env, "VCCI_NB_OUTPUTS": str(tmp_path / "outputs")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--nbval-lax",
            "--nbval-current-env",
            "--nbval-cell-timeout=120",
            str(copy),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, f"{checked} checked cells\n" + proc.stdout[-4000:] + proc.stderr[-2000:]


def test_nbval_would_catch_a_changed_output(
    healthy: Callable[[str], Any], lab_env: dict[str, str], tmp_path: Path
) -> None:
    """Control: a checked cell whose reference differs fails, so the check above can fail."""
    rel = "01_triage.ipynb"
    _, executed = healthy(rel)
    copy = tmp_path / "triage.ipynb"
    assert _with_reference_outputs(rel, executed, copy) >= 1
    nb = json.loads(copy.read_text())
    for cell in nb["cells"]:
        if "nbval-check-output" in (cell.get("metadata", {}).get("tags") or []):
            for output in cell["outputs"]:
                if "text/plain" in output.get("data", {}):
                    output["data"]["text/plain"] = "- 99_nowhere.ipynb — a notebook that does not exist"
    copy.write_text(json.dumps(nb))
    env = {**os.environ, **lab_env, "VCCI_NB_OUTPUTS": str(tmp_path / "outputs")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--nbval-lax",
         "--nbval-current-env", str(copy)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0 and "99_nowhere" in proc.stdout


@pytest.mark.parametrize("rel", DIAGNOSTIC)
def test_exported_html_draws_every_chart_offline(rel: str, healthy: Callable[[str], Any], tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed")
    path, nb = healthy(rel)
    record = tmp_path / "INC-20260106-001"
    record.mkdir()
    ipynb = record / f"01_{Path(rel).stem}.ipynb"
    ipynb.write_text(path.read_text())
    html = export_html(ipynb, record)
    expected = chart_outputs(nb)
    assert count_drawn_charts(html) == expected, f"{rel}: {expected} charts emitted"

"""The other two ways in: ``vcci-nb action`` from a shell, and the Confirm panel in a real Jupyter kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
import redis
from nbclient import NotebookClient

from vcci_nb.record import IncidentRecord

pytestmark = pytest.mark.lab


@pytest.fixture
def keys(lab_env: dict[str, str]) -> Any:
    r = redis.Redis.from_url(lab_env["VCCI_MITIGATION_REDIS_URL"], decode_responses=True)
    r.mset({f"cache:ui-test:{i}": "x" for i in range(30)})
    yield r
    left = list(r.scan_iter("cache:ui-test:*"))
    if left:
        r.unlink(*left)
    r.close()


def _count(r: Any) -> int:
    return sum(1 for _ in r.scan_iter("cache:ui-test:*"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``vcci-nb action ...`` in a real process (the entry point, argument parsing, exit codes)."""
    return subprocess.run(
        [sys.executable, "-m", "vcci_nb", "action", *args], capture_output=True, text=True, env=os.environ, timeout=60
    )


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same command in this process (each process start costs seconds on a busy machine)."""
    from vcci_nb.cli import main

    rc = main(["action", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_plan_then_run_with_confirmation(
    keys: Any, record: IncidentRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--incident", record.id, "-p", "pattern=cache:ui-test:*"]
    plan = _cli("plan", "redis.clear_pattern", *common)
    assert plan.returncode == 0, plan.stderr
    assert "UNLINK 30 key(s)" in plan.stdout and _count(keys) == 30

    rc, out, _ = _main(capsys, "run", "redis.clear_pattern", *common)
    assert rc == 0 and "not confirmed" in out and _count(keys) == 30

    rc, _, err = _main(capsys, "run", "redis.clear_pattern", *common, "--confirm", "INC-20000101-001")
    assert rc == 2 and "not this incident's ID" in err and _count(keys) == 30

    rc, _, err = _main(capsys, "run", "redis.clear_pattern", "--incident", record.id, "-p", "pattern=*")
    assert rc == 2 and "destroys data" in err

    done = _cli("run", "redis.clear_pattern", *common, "--confirm", record.id)
    assert done.returncode == 0, done.stderr
    assert "ok  keys gone" in done.stdout and _count(keys) == 0
    results = [e["result"] for e in record.data["actions"]]
    assert results == ["planned", "planned", "refused", "refused", "succeeded"]

    rc, _, err = _main(capsys, "plan", "k8s.scale", "--incident", record.id, "-p", "replicas")
    assert rc == 2 and "is not KEY=VALUE" in err


def _kernel_run(cells: list[str], cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def test_widget_in_a_kernel_click_performs_the_action_and_no_click_changes_nothing(
    keys: Any, record: IncidentRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VCCI_NB_INTERACTIVE")  # let the gateway see it is in a kernel
    setup = (
        "from vcci_nb import actions\n"
        f"out = actions.run(actions.ClearCachePattern('cache:ui-test:*'), {record.id!r}, dry_run=False)\n"
        "out"
    )
    nb = _kernel_run([setup, "print(out.status, out.widget is not None)"], tmp_path)
    assert "awaiting_confirmation True" in nb.cells[1].outputs[0]["text"]
    widget_views = [o for o in nb.cells[0].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget_views, nb.cells[0].outputs  # the panel was displayed
    assert _count(keys) == 30  # without the click nothing happens

    nb = _kernel_run([setup, "out.widget.confirm_button.click()\nprint(out.widget.outcome.status)"], tmp_path)
    assert nb.cells[1].outputs[0]["text"].strip() == "succeeded"
    assert _count(keys) == 0
    entries = record.data["actions"]
    assert [e["result"] for e in entries] == ["awaiting_confirmation", "awaiting_confirmation", "succeeded"]
    assert entries[-1]["confirmation"]["mode"] == "widget"

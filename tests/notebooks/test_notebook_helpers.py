"""vcci_nb.notebook and vcci_nb.widgets: what a reader and the runner see from the helpers.

These run without the lab: the helpers' behaviour (validation, banners, finding outputs,
offline charts, never crashing on a broken source) does not depend on a server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from _nbtools import chart_outputs, chromium, count_drawn_charts, export_html, findings, run_notebook
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from nbformat.v4 import new_code_cell, new_notebook

from vcci_nb import Evidence, EvidenceStore, Finding, ParameterError
from vcci_nb.analysis.model import FINDING_MIME
from vcci_nb.notebook import (
    evidence_name,
    parse_time,
    record_findings,
    setup,
    show_evidence,
    show_table,
)
from vcci_nb.redact import register_secret
from vcci_nb.widgets import declare_severity, live_monitor, severity_from_answers, severity_questionnaire

NOW = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def shell() -> Iterator[None]:
    InteractiveShell.instance()
    yield


def _outputs(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[dict[str, Any]]]:
    with capture_output() as cap:
        result = fn(*args, **kwargs)
    return result, [o.data for o in cap.outputs]


# -- setup -------------------------------------------------------------------------------------


def test_setup_defaults_to_the_last_hour_and_the_profile_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VCCI_NB_INCIDENT_ID", raising=False)
    ctx, out = _outputs(setup, now=NOW)
    assert ctx.window.end == NOW and ctx.window.start == NOW - timedelta(hours=1)
    assert ctx.baseline.end == ctx.window.start and ctx.baseline.start == NOW - timedelta(hours=2)
    assert ctx.namespace == "vcci-production" and ctx.environment == "lab" and ctx.dry_run
    assert "vcci-production" in out[0]["text/plain"] and "(none yet)" in out[0]["text/plain"]


def test_setup_takes_relative_and_iso_windows_and_threshold_overrides() -> None:
    ctx = setup(window_start="now-3h", window_end="2026-01-06T14:00:00Z", now=NOW, show=False, long_query_s=60)
    assert ctx.window.end == datetime(2026, 1, 6, 14, 0, tzinfo=UTC)
    assert ctx.window.start == NOW - timedelta(hours=3)
    assert ctx.threshold("long_query_s") == 60.0
    assert ctx.threshold("latency_p95_s") == 2.0  # from the profile
    assert ctx.thresholds()["long_query_s"] == 60.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace": "default; rm -rf /"}, "not a valid Kubernetes namespace"),
        ({"window_start": "yesterday-ish"}, "is not a time"),
        ({"window_start": "now", "window_end": "now-1h"}, "must be before window_end"),
        ({"window_start": "now-30d"}, "longer than 7 days"),
        ({"incident_id": "INC 1; import os"}, "not an incident ID"),
        ({"long_query_s": "300"}, "must be a number"),
    ],
)
def test_setup_refuses_bad_parameters_with_a_message_that_says_what_to_do(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        setup(now=NOW, show=False, **kwargs)


def test_parse_time_reads_the_forms_the_parameters_cell_documents() -> None:
    assert parse_time("", NOW) is None
    assert parse_time("now", NOW) == NOW
    assert parse_time("-90m", NOW) == NOW - timedelta(minutes=90)
    assert parse_time("2026-01-06T10:00:00", NOW) == datetime(2026, 1, 6, 10, tzinfo=UTC)


# -- evidence ----------------------------------------------------------------------------------


def test_show_evidence_shows_the_table_and_the_exact_query() -> None:
    ev = Evidence(
        name="postgres.long",
        source="postgres",
        query="SELECT pid FROM pg_stat_activity",
        frame=pd.DataFrame({"pid": [7, 42], "duration_s": [10.0, 900.0]}),
    )
    _, out = _outputs(show_evidence, ev, "Long queries", sort_by="duration_s")
    html = out[0]["text/html"]
    assert "SELECT pid FROM pg_stat_activity" in html
    assert html.index("<td>42</td>") < html.index("<td>7</td>"), "sorted by what matters most"


@pytest.mark.parametrize("status", ["unavailable", "forbidden", "timeout", "error"])
def test_a_source_that_failed_shows_a_banner_not_a_table(status: str) -> None:
    ev = Evidence(name="redis.ping", source="redis", query="PING", status=status, message="redis said no")  # type: ignore[arg-type]
    _, out = _outputs(show_evidence, ev)
    assert f"vcci-status-{status}" in out[0]["text/html"]
    assert out[0]["text/plain"].startswith(f"[{status.upper()}]") and "redis said no" in out[0]["text/plain"]


def test_a_canary_secret_in_a_table_or_query_is_never_shown() -> None:
    register_secret("canary-nb-7Qx2")
    ev = Evidence(
        name="pg",
        source="postgres",
        query="postgresql://vcci:canary-nb-7Qx2@db/x",
        frame=pd.DataFrame({"query": ["ALTER ROLE x PASSWORD 'canary-nb-7Qx2'"]}),
    )
    _, out = _outputs(show_evidence, ev)
    _, out2 = _outputs(show_table, ev.frame, "raw")
    _, out3 = _outputs(record_findings, [Finding(key="k", severity="low", summary="pw canary-nb-7Qx2")])
    assert "canary-nb-7Qx2" not in json.dumps(out + out2 + out3)


def test_gather_turns_a_crashing_function_into_error_evidence_and_keeps_it() -> None:
    ctx = setup(now=NOW, show=False, store=EvidenceStore())

    def broken(profile: object) -> Evidence:
        raise RuntimeError("boom")

    ev = ctx.ask(broken, key="x.broken")
    assert ev.status == "error" and "boom" in ev.message and ctx.evidence["x.broken"] is ev


def test_ask_passes_profile_namespace_and_window_and_names_the_evidence(tmp_path: Path) -> None:
    ctx = setup(now=NOW, show=False, store=EvidenceStore(save_to=tmp_path))
    seen: dict[str, Any] = {}

    def gather_things(profile: Any, panel: str, window: Any, *, namespace: str = "") -> Evidence:
        seen.update(profile=profile.name, panel=panel, window=window, namespace=namespace)
        return Evidence(name="whatever", source="test", query="q", frame=pd.DataFrame({"a": [1]}))

    gather_things.__module__ = "vcci_nb.sources.things"
    ev = ctx.ask(gather_things, "cpu")
    assert seen == {"profile": "lab", "panel": "cpu", "window": ctx.window, "namespace": "vcci-production"}
    assert ev.name == "things.things" and (tmp_path / "things.things.json").exists()
    from vcci_nb.sources import git, kube

    assert evidence_name(kube.gather_pods) == "kubernetes.pods" and evidence_name(git.gather_git_log) == "git.log"
    # A replay reads the frozen copy back without calling the source.
    replay = setup(now=NOW, show=False, store=EvidenceStore(replay_from=str(tmp_path)))
    again = replay.ask(lambda profile: (_ for _ in ()).throw(AssertionError("called")), key="things.things")
    assert again.ok and list(again.frame["a"]) == [1]


# -- findings ----------------------------------------------------------------------------------


def test_record_findings_emits_one_finding_output_each_most_severe_first() -> None:
    import numpy as np

    items = [
        Finding(key="redis.memory", severity="low", summary="memory fine-ish", value=np.float64(0.5)),
        {"key": "db.lock_chain", "severity": "critical", "summary": "PID 42 blocks 3 sessions", "value": 42},
    ]
    result, out = _outputs(record_findings, items)
    emitted = [o[FINDING_MIME] for o in out if FINDING_MIME in o]
    assert [f["key"] for f in emitted] == ["db.lock_chain", "redis.memory"]
    assert emitted[1]["value"] == 0.5 and isinstance(emitted[1]["value"], float)
    assert Finding.from_dict(emitted[0]) == result[0]
    assert "1 critical, 1 low" in out[0]["text/plain"]


def test_no_findings_says_so_and_emits_nothing_for_the_runner() -> None:
    _, out = _outputs(record_findings, [])
    assert not any(FINDING_MIME in o for o in out)
    assert "none" in out[0]["text/plain"]


# -- widgets -----------------------------------------------------------------------------------


def test_severity_follows_the_runbook_questions() -> None:
    assert severity_from_answers({"completely_down": True, "single_tenant": True})[0] == "P0"
    assert severity_from_answers({"multiple_tenants": True})[0] == "P1"
    assert severity_from_answers({"single_tenant": True})[0] == "P2"
    assert severity_from_answers({})[0] == "P3"


def test_questionnaire_updates_its_suggestion_when_a_box_is_ticked() -> None:
    box = severity_questionnaire({"multiple_tenants": True}).widget
    result = box.children[-1]
    assert "P1" in result.value
    first_row = box.children[1]
    first_row.children[0].value = True  # "Is the service completely down?"
    assert "P0" in result.value


def test_declared_severity_follows_the_questionnaire_and_apply_writes_the_record(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from vcci_nb.record import IncidentRecord

    ctx = SimpleNamespace(incident_id="")
    q = severity_questionnaire({"single_tenant": True})
    decl = declare_severity(ctx, "P2", questionnaire=q, outputs=tmp_path)
    decl.reason.value = "checkout is down for everyone"
    decl.button.click()  # no incident yet: nothing is written
    assert "No incident" in decl.status.value and not list(tmp_path.iterdir())
    record = IncidentRecord.open("P3", "Checkout answers 500", outputs=tmp_path)
    ctx.incident_id = record.id  # what the picker does when one is chosen or opened
    q.widget.children[1].children[0].value = True  # "completely down?" → P0
    assert decl.level.value == "P0"
    decl.button.click()
    data = IncidentRecord.load(record.id, tmp_path).data
    assert data["severity"] == "P0" and data["severity_declared"]["reason"] == "checkout is down for everyone"
    assert data["timeline"][-1]["summary"] == "Severity declared P0 (P3 → P0): checkout is down for everyone"
    decl.reason.value = " "
    decl.button.click()  # a reason is required: the record keeps P0 and the widget says why
    assert "reason" in decl.status.value and IncidentRecord.load(record.id, tmp_path).data["severity"] == "P0"


def test_live_monitor_does_nothing_until_started() -> None:
    calls: list[int] = []
    mon = live_monitor(lambda: calls.append(1), interval_s=5)
    assert not mon.running and calls == []
    mon.refresh_once()
    assert calls == [1]
    with pytest.raises(ValueError, match="at least 2 seconds"):
        live_monitor(lambda: None, interval_s=0.5)


# -- in a real kernel, exported to HTML, opened in a browser with no network ------------------


def _chart_notebook(path: Path) -> None:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        new_code_cell("n = 3", metadata={"tags": ["parameters"]}),
        new_code_cell(
            "import plotly.graph_objects as go\n"
            "from vcci_nb import Finding\n"
            "from vcci_nb.notebook import record_findings, show_chart"
        ),
        new_code_cell(
            "for i in range(n):\n    show_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, i, 2])), query='up')"
        ),
        new_code_cell("record_findings([Finding(key='t.k', severity='high', summary='PID 42 blocks')])"),
    ]
    nbformat.write(nb, path)


@pytest.mark.slow
def test_charts_draw_offline_in_exported_html_and_findings_read_back(tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed")
    src = tmp_path / "charts.ipynb"
    _chart_notebook(src)
    record = tmp_path / "INC-20260106-001"
    record.mkdir()
    out = record / "01_charts.ipynb"
    nb = run_notebook(src, out, {"n": 3})
    assert [f["key"] for f in findings(nb)] == ["t.k"]
    assert chart_outputs(nb) == 3
    assert "plotly.js v" not in out.read_text(), "no notebook carries its own copy of plotly.js"
    html = export_html(out, record)
    assert count_drawn_charts(html) == 3
    # Control: without the folder's one plotly.js nothing can draw, so the count really is of drawn charts.
    (record / "assets" / "plotly.min.js").unlink()
    assert count_drawn_charts(html) == 0


def test_tables_print_numbers_as_a_person_reads_them() -> None:
    frame = pd.DataFrame({"panel": ["p95 latency", "memory"], "window mean": [0.5823075, 2.120187e10]})
    _, out = _outputs(show_table, frame, "Window against baseline")
    html, text = out[0]["text/html"], out[0]["text/plain"]
    for shown in (html, text):
        assert "0.5823" in shown and "21,201,870,000" in shown
        assert "e-01" not in shown and "e+10" not in shown


def test_setup_on_an_existing_incident_uses_its_own_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JupyterLab on an incident (window left empty): 30 min before its first alert to its resolution."""
    from datetime import UTC, datetime, timedelta

    from vcci_nb.notebook import setup
    from vcci_nb.policy import iso
    from vcci_nb.record import IncidentRecord

    monkeypatch.setenv("VCCI_NB_OUTPUTS", str(tmp_path))
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    rec = IncidentRecord.open("P2", "x", outputs=tmp_path)
    rec.add_alert({"status": "firing", "startsAt": iso(began), "labels": {}})
    rec.set_status("resolved")
    rec.update(lambda d: d.update(resolved_at=iso(began + timedelta(minutes=40))))
    ctx = setup(rec.id, "lab", show=False)
    assert ctx.window.start == began - timedelta(minutes=30)
    assert ctx.window.end == began + timedelta(minutes=40)
    # a window given by hand wins, and an incident without a record falls back to the last hour
    assert setup(rec.id, "lab", window_start="now-2h", show=False).window.start > began
    other = setup("INC-20990101-001", "lab", show=False)
    assert timedelta(minutes=59) < other.window.end - other.window.start <= timedelta(hours=1)

"""Numbers at a glance: the same readable form in findings, tables, charts and the CLI."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from vcci_nb import numbers
from vcci_nb.analysis.findings import find_error_rate, find_latency
from vcci_nb.charts import legend_name, timeseries_chart
from vcci_nb.display import _frame_html
from vcci_nb.evidence import Evidence


def test_values_read_as_percentages_durations_and_binary_bytes() -> None:
    assert numbers.fmt_value(0.0714, "ratio") == "7.1 %"
    assert numbers.fmt_value(0.05, "ratio") == "5 %"
    assert numbers.fmt_value(68500.0, "s") == "19 h 1 min"
    assert numbers.fmt_value(2.4, "s") == "2.4 s"
    assert numbers.fmt_value(1503238553, "bytes") == "1.4 GiB"
    assert numbers.fmt_value(20, "connections") == "20 connections"
    assert numbers.human_duration(15) == "15 s" and numbers.human_duration(3 * 86400 + 7200) == "3 d 2 h"


def _panel(values: list[float], name: str) -> Evidence:
    ts = pd.date_range("2026-01-06T14:00Z", periods=len(values), freq="1min")
    frame = pd.DataFrame({"timestamp": ts, "value": values, "period": "incident", "series": "{}"})
    return Evidence(name=name, source="prometheus", query="q", frame=frame, meta={"kind": name})


def test_metric_findings_say_7_1_percent_not_0_0714_ratio() -> None:
    f = find_error_rate(_panel([0.0714] * 5, "prometheus.error_ratio_5xx"))[0]
    assert "is 7.1 % now (peak 7.1 %) against a threshold of 5 %" in f.summary and "ratio" not in f.summary
    lat = find_latency(_panel([2.4] * 5, "prometheus.latency_p95"))[0]
    assert "is 2.4 s now" in lat.summary


def test_tables_format_by_column_and_hide_the_minor_columns() -> None:
    frame = pd.DataFrame(
        {"pod": ["vcci-api-1"], "age_s": [68500.0], "memory_bytes": [1503238553], "cpu_ratio": [0.25]}
        | {f"extra_{i}": [i] for i in range(10)}
    )
    html, text = _frame_html(frame, 30)
    assert "19 h 1 min" in text and "1.4 GiB" in text and "25 %" in text and "6.85e+04" not in text
    assert "all 14 columns</summary>" in html and "(6 more columns: extra_4" in text


def test_a_single_series_legend_is_named_not_braces() -> None:
    assert legend_name("{}", "5xx share") == "5xx share"
    assert legend_name('{dependency="ecoinvent"}', "up") == "dependency=ecoinvent"
    frame = _panel([0.1, 0.2], "x").frame
    fig = timeseries_chart(frame, title="5xx share of requests", unit="ratio")
    assert [t.name for t in fig.data] == ["5xx share of requests"]


def test_cli_plan_lines_and_hint() -> None:
    from vcci_nb.cli.action import _cli_hint, _row_text

    assert _row_text({"": "now", "revision": 5, "images": "vcci-api:2.15.0"}) == (
        "now: revision=5, images=vcci-api:2.15.0"
    )
    assert _row_text({"pid": 7, "age_s": 15.0}) == "pid=7, age_s=15 s"
    args = argparse.Namespace(name="k8s.rollout_undo", incident="INC-20260106-001", param=["deployment=vcci-api"])
    assert _cli_hint(args) == (
        "vcci-nb action run k8s.rollout_undo --incident INC-20260106-001 -p deployment=vcci-api "
        "--confirm INC-20260106-001"
    )


def test_index_html_draws_the_slis_with_the_alerts_marked_offline(tmp_path: Any) -> None:
    from vcci_nb.record import IncidentRecord

    rec = IncidentRecord.open("P1", "API returning 500 errors", outputs=tmp_path)
    ts = pd.date_range("2026-01-06T14:00Z", periods=30, freq="1min")
    for panel, values in (("error_ratio_5xx", [0.01] * 10 + [0.09] * 20), ("latency_p95", [0.3] * 30)):
        frame = pd.DataFrame({"timestamp": ts, "value": values, "period": "incident"})
        ev = Evidence(name=f"prometheus.{panel}", source="prometheus", query=f"q_{panel}", frame=frame,
                      meta={"kind": f"prometheus.{panel}", "panel": panel})  # fmt: skip
        ev.save(rec.folder / "evidence" / "03_investigate_metrics")
    rec.add_alert({"status": "firing", "startsAt": "2026-01-06T14:10:00Z",
                   "labels": {"alertname": "VcciApiHighErrorRate"}})  # fmt: skip
    page = (rec.folder / "index.html").read_text()
    assert "<h2>Service level</h2>" in page and page.count("<polyline") == 2
    assert "5xx share of requests" in page and ">9 %<" in page  # the axis reads percentages
    assert "VcciApiHighErrorRate began firing" in page  # the alert, marked on the charts
    assert "<script" not in page.split("<h2>Service level</h2>")[1].split("<h2>Findings</h2>")[0]

"""Pure pieces of the data layer: Prometheus answers to frames, windows and steps, log signatures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from vcci_nb.errors import ParameterError, SourceError
from vcci_nb.sources.logs import group_signatures, parse_lines, signatures_of
from vcci_nb.sources.prometheus import matrix_to_frame, parse_query_response
from vcci_nb.sources.window import baseline_window, choose_step, incident_window, parse_time

NOW = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)


def _matrix(result: list[dict[str, object]]) -> bytes:
    doc = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return json.dumps(doc, separators=(",", ":")).encode()


def test_matrix_bytes_parse_to_the_same_frame_as_the_general_path() -> None:
    result = [
        {
            "metric": {"__name__": "x", "pod": f"p{i}", "status": "500"},
            "values": [[1.7e9 + 15 * j, str(j * 0.25)] for j in range(7)],
        }
        for i in range(3)
    ]
    result.append({"metric": {"job": "a"}, "values": [[1.7e9, "NaN"], [1.7e9 + 15, "+Inf"]]})
    fast = parse_query_response(_matrix(result))
    slow = matrix_to_frame(result)
    pd.testing.assert_frame_equal(fast, slow)
    assert len(fast) == 23
    assert str(fast["timestamp"].dt.tz) == "UTC"
    assert fast.loc[fast["job"] == "a", "value"].isna().sum() == 1
    assert np.isinf(fast.loc[fast["job"] == "a", "value"]).sum() == 1
    assert set(fast["pod"].dropna()) == {"p0", "p1", "p2"}
    assert fast["series"].iloc[0] == 'x{pod="p0",status="500"}'


def test_vector_and_errors() -> None:
    sample = {"metric": {"a": "b"}, "value": [1.7e9, "3"]}
    vec = {"status": "success", "data": {"resultType": "vector", "result": [sample]}}
    frame = parse_query_response(json.dumps(vec).encode())
    assert frame["value"].tolist() == [3.0] and frame["a"].tolist() == ["b"]
    bad = {"status": "error", "errorType": "bad_data", "error": 'parse error at char 5: unexpected "}"'}
    with pytest.raises(SourceError, match="rejected the query: bad_data"):
        parse_query_response(json.dumps(bad).encode())
    empty = parse_query_response(_matrix([]))
    assert empty.empty and list(empty.columns)[:3] == ["timestamp", "value", "series"]


def test_window_defaults_baseline_and_step() -> None:
    w = incident_window(now=NOW)
    assert w.end == NOW and w.end - w.start == timedelta(hours=1)
    b = baseline_window(w)
    assert b.end == w.start and b.end - b.start == w.end - w.start
    assert incident_window("now-30m", "now", now=NOW).start == NOW - timedelta(minutes=30)
    assert incident_window("2026-01-06T14:30:00Z", "2026-01-06T15:15:00Z").start.hour == 14
    # A few hundred points, on a readable step; never below the scrape interval.
    assert choose_step(w) == 15
    assert choose_step(incident_window(minutes=6 * 60, now=NOW)) == 30
    assert choose_step(incident_window(minutes=7 * 24 * 60, now=NOW)) == 900
    with pytest.raises(ParameterError, match="must be before"):
        incident_window("now", "now-1h", now=NOW)
    with pytest.raises(ParameterError, match="is not a time"):
        parse_time("yesterday afternoon")


def test_log_lines_are_parsed_with_kubernetes_and_application_timestamps() -> None:
    frame = parse_lines(
        [
            "2026-01-06T14:30:00.123456789Z 2026-01-06T14:30:00.120Z ERROR vcci.db request_id=ab12 boom",
            "2026-01-06 14:31:00,500 WARN  celery.worker retry",
            '{"level": "error", "msg": "json log 42"}',
            "no level, no time",
        ]
    )
    assert frame["level"].tolist() == ["ERROR", "WARNING", "ERROR", ""]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2026-01-06T14:30:00.123456789Z")
    assert frame["timestamp"].iloc[1] == pd.Timestamp("2026-01-06T14:31:00.5Z")
    assert pd.isna(frame["timestamp"].iloc[3])


def test_signatures_mask_ids_numbers_uuids_and_hex_but_keep_words() -> None:
    sigs = signatures_of(
        [
            "ERROR vcci.db request_id=d1dbfd70 tenant=acme-corp QueryCanceled after 5000ms pid 4411",
            "ERROR vcci.db request_id=99aa0b12 tenant=globex QueryCanceled after 10000ms pid 17",
            "ERROR job 3f2b1c9e-8d7a-4e6f-9a0b-1c2d3e4f5a6b failed at 0xdeadbeef on 10.0.3.4:5432",
            "ERROR KeyError: 'scope3_category'",
        ]
    ).tolist()
    assert sigs[0] == sigs[1], sigs
    assert "tenant=<v>" in sigs[0] and "acme" not in sigs[0]
    assert "<uuid>" in sigs[2] and "<hex>" in sigs[2] and "<ip>" in sigs[2]
    assert "scope3_category" in sigs[3]


def test_group_signatures_counts_first_and_last_seen() -> None:
    base = pd.Timestamp("2026-01-06T14:00:00Z")
    lines = []
    for i in range(30):
        at = (base + pd.Timedelta(seconds=i)).isoformat()
        lines.append(f"{at} ERROR vcci.db tenant=t{i % 5} timeout after {i}ms")
    for i in range(5):
        lines.append(f"{(base + pd.Timedelta(minutes=5, seconds=i)).isoformat()} ERROR migration 0042 not applied")
    lines += [f"{base.isoformat()} INFO fine {i}" for i in range(100)]
    logs = parse_lines(lines)
    logs["pod"] = ["a", "b"] * (len(logs) // 2) + ["a"] * (len(logs) % 2)
    groups = group_signatures(logs)
    assert groups["count"].tolist() == [30, 5]
    top = groups.iloc[0]
    assert top["first_seen"] == base and top["last_seen"] == base + pd.Timedelta(seconds=29)
    assert top["pods"] == 2
    assert "timeout after <n>" in top["signature"]
    assert groups.iloc[1]["first_seen"] == base + pd.Timedelta(minutes=5)


def _alert(name: str, state: str, severity: str, namespace: str | None, at: str) -> dict[str, object]:
    labels = {"alertname": name, "severity": severity, "service": "vcci-api"}
    if namespace is not None:
        labels["namespace"] = namespace
    notes = {"summary": f"{name} summary"}
    return {"labels": labels, "annotations": notes, "state": state, "activeAt": at, "value": "0.3"}


def test_alerts_keep_the_namespace_and_unlabelled_ones_and_only_firing_ones_make_a_finding() -> None:
    from vcci_nb.analysis.findings import find_firing_alerts
    from vcci_nb.analysis.severity import suggest
    from vcci_nb.evidence import Evidence
    from vcci_nb.sources.prometheus import alerts_to_frame

    raw = [
        _alert("HighLatency", "firing", "warning", "vcci-production", "2026-01-06T14:58:01.5Z"),
        _alert("NodeDown", "pending", "critical", None, "2026-01-06T14:59:00Z"),
        _alert("OtherTeam", "firing", "critical", "billing", "2026-01-06T14:50:00Z"),
    ]
    frame = alerts_to_frame(raw, "vcci-production")
    assert list(frame["alertname"]) == ["HighLatency", "NodeDown"]  # firing first, then pending
    assert str(frame.loc[0, "active_at"]) == "2026-01-06 14:58:01.500000+00:00"
    assert frame.loc[0, "labels"] == "service=vcci-api" and frame.loc[0, "summary"] == "HighLatency summary"
    ev = Evidence(name="prometheus.alerts", source="prometheus", query="GET /api/v1/alerts", frame=frame)
    found = find_firing_alerts(ev)
    # The pending critical one is not firing yet: it does not count, and OtherTeam's is not ours.
    assert [(f.key, f.severity, f.value) for f in found] == [("alerts.firing", "medium", 1)]
    assert found[0].summary == "1 alert(s) firing: HighLatency (warning, since 14:58:01 UTC)."
    assert suggest({}, findings=found).level == "P2"
    empty = alerts_to_frame([], "vcci-production")
    assert empty.empty and "alertname" in empty.columns
    assert find_firing_alerts(Evidence(name="prometheus.alerts", source="prometheus", query="", frame=empty)) == []


def test_alerts_from_a_prometheus_that_is_down_are_unavailable_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from vcci_nb.sources.prometheus import gather_alerts

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{port}")
    ev = gather_alerts("lab", timeout=2)
    assert ev.status == "unavailable", (ev.status, ev.message)

"""Charts: titles and units, the incident window shaded, thresholds drawn, at most 5,000 points a trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from vcci_nb import charts
from vcci_nb.evidence import Evidence, Window

END = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
WINDOW = Window(END - timedelta(hours=1), END)


def _series(n: int, *, spike_at: int | None = None, pods: int = 1) -> pd.DataFrame:
    ts = pd.date_range(WINDOW.start, WINDOW.end, periods=n, tz="UTC")
    frames = []
    rng = np.random.default_rng(7)
    for p in range(pods):
        values = rng.random(n) * 0.01
        if spike_at is not None:
            values[spike_at] = 5.0
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": ts,
                    "value": values,
                    "pod": f"pod-{p}",
                    "period": "incident",
                    "offset_s": (ts - ts[0]).total_seconds(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _shapes(fig: object) -> list[str]:
    return [s.type for s in fig.layout.shapes]  # type: ignore[attr-defined]


def test_a_million_points_become_at_most_5000_and_the_spike_survives() -> None:
    frame = _series(1_000_000, spike_at=123_457)
    fig = charts.timeseries_chart(frame, title="5xx share of requests", unit="ratio", window=WINDOW, threshold=0.05)
    assert charts.trace_points(fig) == [5000]
    assert max(fig.data[0].y) == 5.0, "MinMaxLTTB keeps the extreme that plain striding would drop"
    title, x, y = charts.titles(fig)
    assert title == "5xx share of requests" and x == "time (UTC)" and y == "share (0–1)"
    assert "rect" in _shapes(fig) and "line" in _shapes(fig)
    texts = [a.text for a in fig.layout.annotations]
    assert "incident window" in texts and any("threshold 0.05" in t for t in texts)


def test_many_series_are_each_downsampled_and_capped() -> None:
    frame = _series(20_000, pods=15)
    fig = charts.resource_chart(frame, resource="memory", window=WINDOW)
    assert len(fig.data) == 12 and max(charts.trace_points(fig)) <= 5000
    assert charts.titles(fig)[2] == "bytes"
    assert fig.layout.legend.title.text == "top 12 of 15 series"


def test_baseline_is_overlaid_on_the_window() -> None:
    inc = _series(240)
    base = inc.copy()
    base["period"] = "baseline"
    base["timestamp"] = base["timestamp"] - pd.Timedelta(hours=1)
    frame = pd.concat([inc, base], ignore_index=True)
    frame["pod"] = None
    fig = charts.timeseries_chart(frame, title="p95 latency", unit="s", window=WINDOW, threshold=2.0)
    names = [t.name for t in fig.data]
    assert names[-1].startswith("baseline")
    assert pd.Timestamp(fig.data[-1].x[0]).tz_localize("UTC") == pd.Timestamp(WINDOW.start)


def test_panel_chart_from_failed_evidence_says_so_and_does_not_crash() -> None:
    ev = Evidence(name="prometheus.cpu", source="prometheus", query="q", status="timeout", message="slow",
                  meta={"title": "CPU per pod", "unit": "cores"})  # fmt: skip
    fig = charts.panel_chart(ev, WINDOW)
    assert charts.titles(fig)[0] == "CPU per pod — timeout"
    assert any(a.text == "no data in this window" for a in fig.layout.annotations)


def test_connections_stacked_by_state_against_limits() -> None:
    frame = pd.DataFrame(
        {
            "role": ["vcci_app", "vcci_app", "vcci_diag"],
            "application": ["vcci-api", "vcci-api", "vcci-nb"],
            "state": ["idle", "active", "active"],
            "count": [18, 2, 1],
            "role_limit": [20, 20, -1],
        }
    )
    ev = Evidence(name="postgres.connections", source="postgres", query="q", frame=frame, meta={"max_connections": 50})
    fig = charts.connections_evidence_chart(ev, role="vcci_app")
    assert fig.layout.barmode == "stack"
    assert {t.name for t in fig.data} == {"idle", "active"}
    lines = [s.y0 for s in fig.layout.shapes if s.type == "line"]
    assert sorted(lines) == [20, 50]
    assert charts.titles(fig) == ("PostgreSQL connections by state", "application", "connections")


def test_lock_graph_has_a_node_per_session_and_an_arrow_per_wait() -> None:
    blocking = pd.DataFrame(
        {
            "blocking_pid": [100, 100, 200],
            "blocked_pid": [200, 300, 400],
            "waiting_s": [10.0, 9.0, 3.0],
            "blocking_state": ["idle in transaction", "idle in transaction", "active"],
        }
    )
    fig = charts.lock_graph_chart(blocking)
    nodes = fig.data[0]
    assert sorted(nodes.text) == ["pid 100", "pid 200", "pid 300", "pid 400"]
    pos = dict(zip(nodes.text, nodes.x, strict=True))
    assert pos["pid 100"] == 0 and pos["pid 200"] == 1 and pos["pid 400"] == 2
    assert sum(1 for a in fig.layout.annotations if a.showarrow) == 3
    assert charts.titles(fig)[0] == "Lock chain: who blocks whom"


def test_slowlog_and_signature_timeline() -> None:
    slow = pd.DataFrame(
        {
            "at": pd.date_range(WINDOW.start, periods=6, freq="5min", tz="UTC"),
            "duration_ms": [120, 130, 0.1, 125, 900, 0.2],
            "command": ["DEBUG SLEEP 0.12", "DEBUG SLEEP 0.12", "GET k", "DEBUG SLEEP 0.12", "KEYS cache:*", "PING"],
        }
    )
    fig = charts.slowlog_chart(slow, threshold_ms=50, window=WINDOW)
    assert {t.name for t in fig.data} == {"DEBUG", "GET", "KEYS", "PING"}
    assert charts.titles(fig)[2] == "duration (ms)"
    logs = pd.DataFrame(
        {
            "timestamp": pd.date_range(WINDOW.start, periods=300, freq="10s", tz="UTC"),
            "level": ["ERROR"] * 200 + ["INFO"] * 100,
            "message": [f"ERROR vcci.db tenant=t{i % 7} QueryCanceled after {i}ms" for i in range(200)] + ["ok"] * 100,
        }
    )
    fig = charts.signatures_timeline_chart(logs, WINDOW)
    assert len(fig.data) == 1 and "QueryCanceled" in fig.data[0].name
    assert sum(fig.data[0].y) == 200
    assert charts.titles(fig)[2].startswith("error lines per")


@pytest.mark.parametrize("n", [0, 1, 4999, 5000, 5001])
def test_downsample_bounds(n: int) -> None:
    x = pd.date_range("2026-01-01", periods=n, freq="s", tz="UTC")
    xs, ys = charts.downsample(x, np.arange(n, dtype=float))
    assert len(xs) == len(ys) == min(n, 5000)
    if n:
        assert ys[0] == 0 and ys[-1] == n - 1


def test_show_emits_the_plotly_bundle_the_runner_draws_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """``charts.show`` goes through the notebook helper: the Plotly JSON MIME bundle (which the
    runner's HTML export draws with one stored plotly.js), never ``fig.show()``."""
    import IPython.display

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False, **kw: shown.append(obj))
    fig = charts.error_rate_chart(_series(100_000), WINDOW, threshold=0.05)
    charts.show(fig, query="sum(rate(http_requests_total[5m]))")
    bundles = [b for b in shown if isinstance(b, dict)]
    plotly = [b for b in bundles if "application/vnd.plotly.v1+json" in b]
    assert len(plotly) == 1
    payload = plotly[0]["application/vnd.plotly.v1+json"]
    assert payload["layout"]["title"]["text"] == "5xx share of requests"
    assert len(payload["data"][0]["x"]) <= 5000
    assert any("sum(rate(http_requests_total[5m]))" in str(b.get("text/plain", "")) for b in bundles)


def test_lock_graph_names_a_prepared_transaction_by_gid_not_pid_0() -> None:
    import pandas as pd

    from vcci_nb import charts

    f = pd.DataFrame(
        [
            {"blocked_pid": 5, "blocking_pid": 0, "blocking_gid": "recalc-7", "blocking_role": "vcci_worker",
             "blocking_state": "prepared", "waiting_s": 3.0, "blocking_is_root": True},
            {"blocked_pid": 6, "blocking_pid": 5, "blocking_gid": None, "blocking_role": "vcci_worker",
             "blocking_state": "active", "waiting_s": 2.0, "blocking_is_root": False},
        ]
    )  # fmt: skip
    trace = charts.lock_graph_chart(f).data[0]
    assert "prepared recalc-7" in trace.text and "pid 0" not in trace.text
    assert any("ROLLBACK PREPARED" in h for h in trace.hovertext)

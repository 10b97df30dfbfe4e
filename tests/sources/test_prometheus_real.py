"""Prometheus sources against a real Prometheus with known, backfilled history.

The fixture writes three hours of OpenMetrics (a steady API whose 5xx rate jumps 30 minutes
ago, a dependency that goes down, a volume that fills up), backfills it with promtool and starts
prometheus on a free port. Queries, the baseline, the step and the panels are then checked
against numbers we know, and the findings against the spike.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from vcci_nb.analysis import find_all, find_dependency_metric, find_disk_full, find_error_rate
from vcci_nb.charts import panel_chart, titles, trace_points
from vcci_nb.evidence import Window
from vcci_nb.sources import prometheus

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(not (PROMETHEUS and PROMTOOL), reason="prometheus/promtool not installed")

HOURS = 3
STEP = 15
SPIKE_MIN_AGO = 30


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def _history(now: int) -> str:
    start = now - HOURS * 3600
    start -= start % STEP
    spike = now - SPIKE_MIN_AGO * 60
    lines = ["# TYPE http_requests counter"]
    ok = err = 0.0
    samples_ok, samples_err = [], []
    for t in range(start, now - 60, STEP):
        ok += 10 * STEP
        err += (5.0 if t >= spike else 0.1) * STEP
        samples_ok.append((t, ok))
        samples_err.append((t, err))
    for t, v in samples_ok:
        lines.append(f'http_requests_total{{job="vcci-api",namespace="vcci-production",status="200"}} {v} {t}')
    for t, v in samples_err:
        lines.append(f'http_requests_total{{job="vcci-api",namespace="vcci-production",status="500"}} {v} {t}')
    lines.append("# TYPE vcci_dependency_up gauge")
    for dep in ("postgres", "external-api"):
        for t, _ in samples_ok:
            up = 0 if dep == "external-api" and t >= spike else 1
            lines.append(f'vcci_dependency_up{{job="vcci-api",dependency="{dep}"}} {up} {t}')
    pvc = 'namespace="vcci-production",persistentvolumeclaim="vcci-api-data"'
    lines.append("# TYPE kubelet_volume_stats_available_bytes gauge")
    for t, _ in samples_ok:
        lines.append(f"kubelet_volume_stats_available_bytes{{{pvc}}} {(2 if t >= spike else 40) * 2**30} {t}")
    lines.append("# TYPE kubelet_volume_stats_capacity_bytes gauge")
    for t, _ in samples_ok:
        lines.append(f"kubelet_volume_stats_capacity_bytes{{{pvc}}} {100 * 2**30} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("prom")
    now = int(time.time())
    (tmp / "history.om").write_text(_history(now))
    data = tmp / "data"
    subprocess.run(
        [str(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", str(tmp / "history.om"), str(data)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (tmp / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    port = _free_port()
    argv = [str(PROMETHEUS), f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={data}"]
    argv += [f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d"]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if requests.get(url + "/-/ready", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def prom_env(prom: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PROMETHEUS_URL", prom)
    return prom


def _window(minutes: int = 60) -> Window:
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    return Window(end - timedelta(minutes=minutes), end)


def test_range_query_with_baseline_and_step(prom_env: str) -> None:
    w = _window(60)
    ev = prometheus.gather_range(
        "lab", 'sum by (status) (rate(http_requests_total{job="vcci-api"}[5m]))', w, name="prometheus.rates"
    )
    assert ev.ok, ev.message
    f = ev.frame
    assert ev.meta["step_s"] == 15 and "[step=15s]" in ev.query
    assert set(f["period"]) == {"incident", "baseline"}
    assert set(f["status"]) == {"200", "500"}
    inc = f[(f["period"] == "incident") & (f["status"] == "200")]
    assert inc["timestamp"].min() >= w.start and inc["timestamp"].max() <= w.end
    assert inc["value"].median() == pytest.approx(10, rel=0.05)
    base = f[(f["period"] == "baseline") & (f["status"] == "500")]
    assert base["timestamp"].max() <= w.start
    assert base["value"].median() == pytest.approx(0.1, rel=0.1)
    # The baseline overlays the window: same offsets.
    assert base["offset_s"].max() == pytest.approx(inc["offset_s"].max(), abs=15)


def test_instant_query(prom_env: str) -> None:
    at = _window(10)
    ev = prometheus.gather_instant("lab", 'vcci_dependency_up{job="vcci-api"}', at=at)
    assert ev.ok, ev.message
    assert dict(zip(ev.frame["dependency"], ev.frame["value"], strict=True)) == {"postgres": 1.0, "external-api": 0.0}


def test_bad_promql_is_an_error_that_quotes_prometheus(prom_env: str) -> None:
    ev = prometheus.gather_instant("lab", "sum(rate(http_requests_total[5m]")
    assert ev.status == "error"
    assert "rejected the query" in ev.message and "bad_data" in ev.message


def test_error_ratio_panel_finding_and_chart(prom_env: str) -> None:
    w = _window(60)
    ev = prometheus.gather_panel("lab", "error_ratio_5xx", w)
    assert ev.ok, ev.message
    assert ev.name == "prometheus.error_ratio_5xx"
    assert ev.meta["title"] == "5xx share of requests" and ev.meta["threshold"] == 0.05
    findings = find_error_rate(ev)
    assert len(findings) == 1
    f = findings[0]
    # 5 errors/s against 10 ok/s: a third of requests.
    assert float(f.value) == pytest.approx(1 / 3, rel=0.05)  # type: ignore[arg-type]
    assert f.details["baseline_median"] == pytest.approx(0.1 / 10.1, rel=0.1)
    fig = panel_chart(ev, w)
    title, _, y = titles(fig)
    assert title == "5xx share of requests" and y == "share (0–1)"
    assert max(trace_points(fig)) <= 5000
    assert any(s.type == "rect" for s in fig.layout.shapes) and any(s.type == "line" for s in fig.layout.shapes)
    # Before the spike the same panel is quiet.
    early = Window(w.start - timedelta(hours=1), w.start - timedelta(minutes=5))
    assert find_error_rate(prometheus.gather_panel("lab", "error_ratio_5xx", early, baseline=False)) == []


def test_dependency_up_and_volumes(prom_env: str) -> None:
    ev = prometheus.gather_dependency_up("lab", _window(60))
    assert ev.ok, ev.message
    down = find_dependency_metric(ev)
    assert down and down[0].details["dependencies"] == ["external-api"]
    vols = prometheus.gather_volumes("lab")
    assert vols.ok, vols.message
    assert vols.frame.loc[0, "persistentvolumeclaim"] == "vcci-api-data"
    assert vols.frame.loc[0, "free_ratio"] == pytest.approx(0.02)
    full = find_disk_full(vols)
    assert full and full[0].key == "kube.disk_full" and "vcci-api-data" in full[0].summary
    assert {f.key for f in find_all([ev, vols])} >= {"deps.dependency_down", "kube.disk_full"}


def test_every_named_panel_of_the_profile_is_valid_promql(prom_env: str) -> None:
    """Metrics the lab does not have here give empty frames, but no panel may be rejected by Prometheus."""
    evs = prometheus.gather_panels("lab", _window(30), baseline=False)
    assert set(evs) == set(prometheus.panel_names("lab"))
    bad = {name: ev.message for name, ev in evs.items() if not ev.ok}
    assert not bad, bad


def test_many_samples_parse_to_the_same_frame(tmp_path: Path) -> None:
    """The raw-bytes path gives the same frame as the general one at scale (speed: tests/bench/bench_data.py)."""
    import json

    from vcci_nb.sources.prometheus import matrix_to_frame, parse_query_response

    result = [
        {"metric": {"pod": f"p{i}"}, "values": [[1.7e9 + 15 * j, f"{(i * j) % 97 / 7:.6g}"] for j in range(10_000)]}
        for i in range(20)
    ]
    body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}, separators=(",", ":"))
    fast = parse_query_response(body.encode())
    assert len(fast) == 200_000
    sample = matrix_to_frame(result[:3])
    assert fast.head(30_000)["value"].tolist() == sample["value"].tolist()

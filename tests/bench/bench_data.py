"""Benchmark: the data layer's three heavy paths, each against a naive baseline in the same run.

Run as a script (not collected by pytest)::

    .venv/bin/python tests/bench/bench_data.py [--runs 5] [--pods 5000] [--json out.json]

1. **1,000,000 Prometheus samples to a DataFrame** (100 series x 10,000 points).
   - ``bytes``: ``parse_query_response(body)`` - the answer's sample arrays cut out and parsed by
     pyarrow's CSV reader, straight from the HTTP body (what ``gather_range`` does);
   - ``arrays``: ``matrix_to_frame(result)`` - from an already-parsed JSON result, through numpy;
   - baseline ``naive``: ``json.loads`` then one dict per sample, ``pd.DataFrame(rows)``;
   - baseline ``prometheus-api-client``: ``json.loads`` then its ``MetricRangeDataFrame`` (the
     library's own result-to-DataFrame path; why vcci-nb's Prometheus client is its own, README).
   The target (< 0.2 s) is about building the frame; JSON decoding of the 38 MB body is reported
   separately because the bytes path does not need most of it.
2. **Listing and analysing 5,000 pods from the emulator**: ``gather_workload`` (pods, containers and
   OOMKilled from one list) + the pod findings, through the emulator the lab runs
   (``python -m vcci_lab.kube --pods N``).
   Baseline: the official client's typed ``list_namespaced_pod`` (model objects) and the same frame
   built from the models.
3. **Grouping 100,000 log lines into signatures**: ``parse_lines`` + ``group_signatures`` (pyarrow
   RE2 kernels). Baseline: a Python loop with ``re`` per line and a dict of counts.

Medians over ``--runs`` runs, ours and the baseline alternating; ratios are baseline / ours (higher is
better for us). The machine's load average is printed with each result: on a shared 2-core box the
absolute times move with the load, the ratios much less.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def median_time(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(ours: Callable[[], Any], baseline: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Medians of ours and the baseline measured alternately, so that a load change on a shared
    machine hits both alike and the ratio stays honest."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        for fn, out in ((ours, a), (baseline, b)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


# --- 1. Prometheus ---------------------------------------------------------------------------------


def bench_prometheus(runs: int) -> dict[str, Any]:
    from vcci_nb.sources.prometheus import matrix_to_frame, parse_query_response

    rng = random.Random(1)
    result = [
        {
            "metric": {"__name__": "http_requests_total", "pod": f"vcci-api-{i}", "status": "500", "job": "vcci-api"},
            "values": [[1.7e9 + 15 * j, repr(rng.random())] for j in range(10_000)],
        }
        for i in range(100)
    ]
    body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}, separators=(",", ":"))
    raw = body.encode()

    def naive() -> pd.DataFrame:
        parsed = json.loads(raw)["data"]["result"]
        rows = [{**s["metric"], "timestamp": float(t), "value": float(v)} for s in parsed for t, v in s["values"]]
        frame = pd.DataFrame(rows)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
        return frame

    check = parse_query_response(raw)
    assert len(check) == 1_000_000
    t_bytes, t_naive = interleaved(lambda: parse_query_response(raw), naive, runs)
    t_arrays, t_json = interleaved(lambda: matrix_to_frame(result), lambda: json.loads(raw), runs)

    def library() -> pd.DataFrame:
        from prometheus_api_client import MetricRangeDataFrame

        return MetricRangeDataFrame(json.loads(raw)["data"]["result"])

    assert len(library()) == 1_000_000
    t_bytes2, t_library = interleaved(lambda: parse_query_response(raw), library, runs)
    return {
        "workload": "1,000,000 Prometheus samples -> DataFrame",
        "body_mb": round(len(raw) / 1e6, 1),
        "ours_bytes_s": round(t_bytes, 3),
        "ours_from_parsed_result_s": round(t_arrays, 3),
        "json_loads_only_s": round(t_json, 3),
        "baseline_naive_s": round(t_naive, 3),
        "baseline_prometheus_api_client_s": round(t_library, 3),
        "ratio_naive_over_bytes": round(t_naive / t_bytes, 1),
        "ratio_prometheus_api_client_over_bytes": round(t_library / t_bytes2, 1),
        "ratio_naive_over_json_plus_arrays": round(t_naive / (t_json + t_arrays), 1),
        "target_s": 0.2,
    }


# --- 2. 5,000 pods -----------------------------------------------------------------------------------


def _start_emulator(pods: int, tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    import requests

    from vcci_lab.kube import write_kubeconfig

    proc = subprocess.Popen(
        [sys.executable, "-m", "vcci_lab.kube", "--port", "0", "--pods", str(pods), "--dir", str(tmp / "k")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().strip().rsplit(" ", 1)[-1]
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(url + "/readyz", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    return proc, write_kubeconfig(tmp / "kubeconfig", url, None, None)


def bench_pods(runs: int, pods: int) -> dict[str, Any]:
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    from vcci_nb.analysis import find_crashloop, find_oomkilled, find_pods_not_ready
    from vcci_nb.sources import kube

    with tempfile.TemporaryDirectory() as d:
        proc, kc = _start_emulator(pods, Path(d))
        os.environ["KUBECONFIG"] = str(kc)
        os.environ["VCCI_NB_PROFILE"] = "lab"
        try:

            def ours() -> int:
                evs = kube.gather_workload("lab", timeout=30)
                pods_ev, conts = evs["kubernetes.pods"], evs["kubernetes.containers"]
                assert pods_ev.ok and conts.ok, (pods_ev.message, conts.message)
                find_oomkilled(conts)
                find_crashloop(pods_ev)
                find_pods_not_ready(pods_ev)
                return len(pods_ev.frame)

            def naive() -> int:
                api = kclient.CoreV1Api(kconfig.new_client_from_config(config_file=str(kc), persist_config=False))
                rows = []
                items = api.list_namespaced_pod("vcci-production", _request_timeout=30).items
                for p in items:
                    css = p.status.container_statuses or []
                    rows.append(
                        {
                            "pod": p.metadata.name,
                            "phase": p.status.phase,
                            "restarts": sum(cs.restart_count for cs in css),
                            "ready": sum(1 for cs in css if cs.ready),
                            "last": [cs.last_state.terminated.reason for cs in css if cs.last_state.terminated],
                        }
                    )
                api.api_client.close()
                return len(pd.DataFrame(rows))

            n = ours()
            t_ours, t_naive = interleaved(ours, naive, runs)
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "workload": f"list and analyse {n} pods from the emulator",
        "pods_in_namespace": n,
        "ours_s": round(t_ours, 3),
        "baseline_typed_client_s": round(t_naive, 3),
        "ratio": round(t_naive / t_ours, 1),
        "target_s": 3.0,
    }


# --- 3. log signatures ---------------------------------------------------------------------------------

TEMPLATES = (
    "ERROR vcci.db request_id={r} tenant={t} QueryCanceled: canceling statement due to statement timeout after {n}ms",
    "ERROR django.request request_id={r} tenant={t} Internal Server Error: /api/v1/emissions/calculate "
    "ValueError: unknown scope3 category {n} for supplier {m}",
    "INFO  gunicorn.access GET /api/v1/emissions?tenant={t} 200 {n}ms",
    "WARN  vcci.memory worker memory high pid={n} rss=3.{n}GiB limit=4.00GiB",
    "ERROR vcci.integrations.ecoinvent request_id={r} tenant={t} ExternalAPIError: provider returned 503 "
    "after 3 retries (elapsed {n}ms) trace {u}",
)


def bench_logs(runs: int) -> dict[str, Any]:
    from vcci_nb.sources.logs import group_signatures, parse_lines

    rng = random.Random(3)
    tenants = ["acme-corp", "globex", "initech", "umbrella", "hooli"]
    base = pd.Timestamp("2026-01-06T14:00:00Z")
    lines = []
    for i in range(100_000):
        tpl = rng.choice(TEMPLATES)
        msg = tpl.format(r=uuid.UUID(int=rng.getrandbits(128)).hex[:12], t=rng.choice(tenants), n=rng.randint(1, 9999),
                         m=rng.randint(1000, 99999), u=uuid.UUID(int=rng.getrandbits(128)))  # fmt: skip
        lines.append(f"{(base + pd.Timedelta(milliseconds=37 * i)).isoformat()} {msg}")

    def ours() -> pd.DataFrame:
        frame = parse_lines(lines)
        return group_signatures(frame)

    ts_re = re.compile(r"^(\S+)\s+(.*)$")
    level_re = re.compile(r"\b(ERROR|WARN|INFO|DEBUG|CRITICAL)\b")
    masks = [
        (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
        (re.compile(r"\b(tenant|request_id|pid)=\S+"), r"\1=<v>"),
        (re.compile(r"\b\d+(?:\.\d+)?\w*\b"), "<n>"),
    ]

    def naive() -> pd.DataFrame:
        groups: dict[str, dict[str, Any]] = {}
        for line in lines:
            m = ts_re.match(line)
            assert m
            ts, rest = pd.Timestamp(m.group(1)), m.group(2)
            lv = level_re.search(rest)
            if not lv or lv.group(1) != "ERROR":
                continue
            sig = rest
            for pat, rep in masks:
                sig = pat.sub(rep, sig)
            g = groups.setdefault(sig, {"count": 0, "first": ts, "last": ts})
            g["count"] += 1
            g["first"] = min(g["first"], ts)
            g["last"] = max(g["last"], ts)
        return pd.DataFrame([{"signature": k, **v} for k, v in groups.items()])

    sigs = ours()
    t_ours, t_naive = interleaved(ours, naive, runs)
    return {
        "workload": "100,000 log lines -> error signatures",
        "signatures": len(sigs),
        "error_lines": int(sigs["count"].sum()),
        "ours_s": round(t_ours, 3),
        "baseline_python_re_s": round(t_naive, 3),
        "ratio": round(t_naive / t_ours, 1),
        "target_s": 1.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--only", choices=["prometheus", "pods", "logs"], action="append")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results = []
    todo = args.only or ["prometheus", "pods", "logs"]
    if "prometheus" in todo:
        results.append(bench_prometheus(args.runs))
    if "pods" in todo:
        results.append(bench_pods(args.runs, args.pods))
    if "logs" in todo:
        results.append(bench_logs(args.runs))
    load = os.getloadavg()
    for r in results:
        r["load_average_1m_at_end"] = round(load[0], 1)
        r["cpus"] = os.cpu_count()
        print(json.dumps(r))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

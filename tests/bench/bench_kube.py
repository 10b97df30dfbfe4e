"""Benchmark: the Kubernetes emulator with 5,000 pods against the default 12.

Run as a script (not collected by pytest)::

    .venv/bin/python tests/bench/bench_kube.py [--pods 5000] [--runs 15]

It starts two emulators the way the lab does (``python -m vcci_lab.kube``, one with 12 pods in
vcci-production, one with ``--pods``), then times, for each, the requests the runbook's commands make:
a full pod list (JSON), a label-selector list, a field-selector list, the Table that ``kubectl get pods``
asks for, a pod-metrics list (``kubectl top pods``), and ``kubectl get pods`` itself end to end. It
reports medians and the ratio of each to the same request against the 12-pod emulator, measured in the
same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

NS = "vcci-production"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def start(pods: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vcci_lab.kube", "--port", "0", "--pods", str(pods), "--dir", str(tmp / f"k{pods}")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().strip().rsplit(" ", 1)[-1]
    for _ in range(400):
        try:
            if requests.get(url + "/readyz", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    return proc, url


def median_time(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm up (first serialisation of each object is cached afterwards)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cases(url: str, kubeconfig: Path) -> dict[str, Callable[[], object]]:
    s = requests.Session()

    def get(path: str, accept: str = "application/json", **params: str) -> Callable[[], object]:
        def run() -> object:
            r = s.get(url + path, params=params, headers={"Accept": accept}, timeout=60)
            r.raise_for_status()
            return r.content

        return run

    def kubectl() -> object:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        return subprocess.run(["/usr/bin/kubectl", "get", "pods", "-n", NS], env=env, capture_output=True, check=True)

    return {
        "list all pods (JSON)": get(f"/api/v1/namespaces/{NS}/pods"),
        "label selector app=vcci-api": get(f"/api/v1/namespaces/{NS}/pods", labelSelector="app=vcci-api"),
        "field selector status.phase!=Running": get(
            f"/api/v1/namespaces/{NS}/pods", fieldSelector="status.phase!=Running"
        ),
        "Table (kubectl get pods, one page of 500)": get(f"/api/v1/namespaces/{NS}/pods", TABLE, limit="500"),
        "pod metrics (kubectl top pods)": get(f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods"),
        "kubectl get pods (all pages, end to end)": kubectl,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from vcci_lab.kube import write_kubeconfig

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        small, small_url = start(12, tmp)
        t_small = time.perf_counter() - t0
        t0 = time.perf_counter()
        big, big_url = start(args.pods, tmp)
        t_big = time.perf_counter() - t0
        try:
            kc_small = write_kubeconfig(tmp / "small.kubeconfig", small_url, None, None)
            kc_big = write_kubeconfig(tmp / "big.kubeconfig", big_url, None, None)
            n_small = len(requests.get(f"{small_url}/api/v1/namespaces/{NS}/pods", timeout=30).json()["items"])
            n_big = len(requests.get(f"{big_url}/api/v1/namespaces/{NS}/pods", timeout=60).json()["items"])
            print(f"emulators: {n_small} pods (ready in {t_small:.2f} s) and {n_big} pods (ready in {t_big:.2f} s)")
            print(f"median of {args.runs} runs each\n")
            print(f"{'request':44} {'12 pods':>10} {f'{n_big} pods':>11} {'ratio':>7}")
            results = {}
            small_cases, big_cases = cases(small_url, kc_small), cases(big_url, kc_big)
            for name in small_cases:
                a = median_time(small_cases[name], args.runs)
                b = median_time(big_cases[name], args.runs)
                results[name] = {"small_s": a, "big_s": b, "ratio": b / a}
                print(f"{name:44} {a * 1000:8.1f}ms {b * 1000:9.1f}ms {b / a:6.1f}x")
            size = len(requests.get(f"{big_url}/api/v1/namespaces/{NS}/pods", timeout=60).content)
            print(f"\nfull JSON list of {n_big} pods: {size / 1e6:.1f} MB")
            for label, p in (("12 pods", small), (f"{n_big} pods", big)):
                status = Path(f"/proc/{p.pid}/status").read_text().splitlines()
                rss = next(line for line in status if line.startswith("VmRSS"))
                print(f"emulator memory with {label}: {int(rss.split()[1]) / 1024:.0f} MiB RSS")
            print(json.dumps({"pods": n_big, "results": results}, indent=None))
        finally:
            for p in (small, big):
                p.terminate()
                p.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The lab's fake vcci-api and fake external data provider (standard library only).

Run as ``python _fakeapi.py --dir LAB --api-port A --external-port E``: by path, not ``-m``, so it
does not import the vcci_nb package (pandas) and stays small. It serves:

- vcci-api ``/metrics``: ``http_requests_total``, ``http_request_duration_seconds``, the database
  pool, cache hits and misses, ``vcci_dependency_up`` — continuing the counters of the backfilled
  history (same model, same labels, read from ``<lab>/run/model.json``), so a live ``rate()``
  joins the history without a reset. ``/health`` answers 503 when a dependency is down.
- the external provider's ``/health``: 200, or 503 after a delay while ``external-down`` or
  ``dependency-down`` is in force.

The faults in force are read from ``<lab>/run/faults.json``. The same model generates the
backfilled history (:func:`history`), so the live and the past series look alike.
"""

from __future__ import annotations

import argparse
import hmac
import json
import math
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

try:
    from vcci_lab.flavour import DEFAULT, Flavour
    from vcci_lab.flavour import get as get_flavour
except ImportError:  # run by path: the package is not importable, its directory is on sys.path
    from flavour import DEFAULT, Flavour  # type: ignore[no-redef]
    from flavour import get as get_flavour  # type: ignore[no-redef]

ROUTES: list[tuple[str, float, float]] = [
    # route, share of traffic, median latency (s)
    ("/api/v1/emissions", 0.45, 0.11),
    ("/api/v1/suppliers", 0.20, 0.07),
    ("/api/v1/calculations", 0.15, 0.30),
    ("/api/v1/reports", 0.10, 0.55),
    ("/health", 0.10, 0.004),
]
DB_ROUTES = {"/api/v1/emissions", "/api/v1/suppliers", "/api/v1/calculations", "/api/v1/reports"}
TENANTS: list[tuple[str, float]] = [
    ("acme", 0.30),
    ("globex", 0.20),
    ("initech", 0.15),
    ("umbrella", 0.15),
    ("hooli", 0.10),
    ("stark", 0.10),
]
STATUSES = ("200", "404", "500", "503")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BASE_RPS = 60.0
POOL_SIZE = 10


def diurnal(t: float) -> float:
    """Traffic shape over a day: low at night (UTC), a peak in the European afternoon."""
    hour = (t % 86400) / 3600.0
    return 1.0 + 0.45 * math.sin(2 * math.pi * (hour - 8.0) / 24.0)


def noise(t: float, key: int, amp: float = 0.08) -> float:
    """Smooth deterministic noise (sum of incommensurate sines) so the series look measured."""
    return 1.0 + amp * (math.sin(t / 97.0 + key) * 0.6 + math.sin(t / 311.0 + 2.1 * key) * 0.4)


def status_mix(route: str, faults: set[str]) -> dict[str, float]:
    mix = {"200": 0.977, "404": 0.015, "500": 0.005, "503": 0.003}
    if route == "/health":
        mix = {"200": 1.0, "404": 0.0, "500": 0.0, "503": 0.0}
    errs = 0.0
    if "error-spike" in faults and route != "/health":
        errs = max(errs, 0.25)
    if "pool-exhaustion" in faults and route in DB_ROUTES:
        errs = max(errs, 0.30)
    if "redis-down" in faults and route in DB_ROUTES:
        errs = max(errs, 0.12)
    if ({"external-down", "dependency-down"} & faults) and route == "/api/v1/calculations":
        errs = max(errs, 0.40)
    if errs:
        mix = {"200": (1 - errs) * 0.985, "404": (1 - errs) * 0.015, "500": errs * 0.6, "503": errs * 0.4}
    return mix


def latency_median(route: str, base: float, faults: set[str]) -> float:
    m = base
    if "latency-spike" in faults and route != "/health":
        m *= 14.0
    if "slow-queries" in faults and route in ("/api/v1/emissions", "/api/v1/reports"):
        m *= 6.0
    if "pool-exhaustion" in faults and route in DB_ROUTES:
        m *= 4.0
    if ({"external-down", "dependency-down"} & faults) and route == "/api/v1/calculations":
        m = max(m, 4.0)
    return m


def lognormal_cdf(x: float, median: float, sigma: float = 0.7) -> float:
    if x <= 0:
        return 0.0
    return 0.5 * (1 + math.erf((math.log(x) - math.log(median)) / (sigma * math.sqrt(2))))


class Model:
    """Counters and gauges of vcci-api, advanced in time for a set of pods and faults."""

    def __init__(
        self, pods: list[str], instance: str, state: dict[str, Any] | None = None, flavour: Flavour = DEFAULT
    ) -> None:
        self.flavour = flavour
        self.pods = pods
        self.instance = instance
        s = state or {}
        self.requests: dict[str, float] = dict(s.get("requests", {}))
        self.hist: dict[str, float] = dict(s.get("hist", {}))
        self.cache: dict[str, float] = dict(s.get("cache", {}))
        self.t: float = float(s.get("t", 0.0))
        self._label_cache: dict[tuple[str, str], tuple[str, str]] = {}

    def state(self) -> dict[str, Any]:
        return {"requests": self.requests, "hist": self.hist, "cache": self.cache, "t": self.t}

    def advance(self, t: float, faults: set[str], dt: float | None = None) -> None:
        if dt is None:
            dt = max(0.0, t - self.t) if self.t else 0.0
        self.t = t
        if dt <= 0:
            return
        spike = 3.0 if "error-spike" in faults else 1.0
        total = BASE_RPS * diurnal(t) * spike
        npods = max(1, len(self.pods))
        for pi, pod in enumerate(self.pods):
            for ri, (route, share, base) in enumerate(ROUTES):
                rps = total * share / npods * noise(t, pi * 7 + ri)
                mix = status_mix(route, faults)
                for status in STATUSES:
                    if mix[status] <= 0 and route == "/health":
                        continue
                    for tenant, tshare in TENANTS:
                        key = f"{pod}|{route}|{status}|{tenant}"
                        self.requests[key] = self.requests.get(key, 0.0) + rps * mix[status] * tshare * dt
                if route == "/health":  # probes are not instrumented with the latency histogram
                    continue
                med = latency_median(route, base, faults) * noise(t, 31 + ri, 0.05)
                n = rps * dt
                hkey = f"{pod}|{route}"
                for le in BUCKETS:
                    k = f"{hkey}|{le}"
                    self.hist[k] = self.hist.get(k, 0.0) + n * lognormal_cdf(le, med)
                self.hist[f"{hkey}|+Inf"] = self.hist.get(f"{hkey}|+Inf", 0.0) + n
                self.hist[f"{hkey}|sum"] = self.hist.get(f"{hkey}|sum", 0.0) + n * med * math.exp(0.7**2 / 2)
            lookups = total / npods * 0.7 * dt
            hit = 0.0 if "redis-down" in faults else 0.92 * noise(t, 50 + pi, 0.02)
            self.cache[f"{pod}|hits"] = self.cache.get(f"{pod}|hits", 0.0) + lookups * hit
            self.cache[f"{pod}|misses"] = self.cache.get(f"{pod}|misses", 0.0) + lookups * (1 - hit)

    def pool(self, t: float, faults: set[str]) -> dict[str, tuple[float, float]]:
        out = {}
        for pi, pod in enumerate(self.pods):
            if "pool-exhaustion" in faults:
                in_use = float(POOL_SIZE)
            else:
                spike = 1.8 if "error-spike" in faults else 1.0
                in_use = min(POOL_SIZE, round(3.5 * diurnal(t) * spike * noise(t, 70 + pi, 0.25)))
            out[pod] = (in_use, POOL_SIZE - in_use)
        return out

    def _labels(self, kind: str, key: str) -> tuple[str, str]:
        """(family, label string) of a series, built once: the history asks for them 400,000 times."""
        cached = self._label_cache.get((kind, key))
        if cached is not None:
            return cached
        fl = self.flavour
        # job and instance first: the live /metrics drops them (Prometheus adds its own on scrape).
        base = f'job="{fl.job}",instance="{self.instance}",namespace="{fl.namespace}"'
        parts = key.split("|")
        if kind == "req":
            pod, route, status, tenant = parts
            out = (
                fl.requests_metric,
                f'{base},pod="{pod}",route="{route}",{fl.status_label}="{status}",{fl.tenant_label}="{tenant}"',
            )
        elif kind == "sum" or kind == "count":
            pod, route = parts[:2]
            out = (f"{fl.duration_metric}_{kind}", f'{base},pod="{pod}",route="{route}"')
        elif kind == "bucket":
            pod, route, le = parts
            out = (f"{fl.duration_metric}_bucket", f'{base},pod="{pod}",route="{route}",le="{le}"')
        elif kind == "pool":
            pod, state = parts
            out = (fl.pool_metric, f'{base},pod="{pod}",state="{state}"')
        elif kind == "poolsize":
            out = (fl.pool_size_metric, f'{base},pod="{parts[0]}"')
        elif kind == "cache":
            pod, what = parts
            out = (fl.cache_hits_metric if what == "hits" else fl.cache_misses_metric, f'{base},pod="{pod}"')
        else:
            out = (fl.dependency_metric, f'{base},{fl.dependency_label}="{parts[0]}"')
        self._label_cache[(kind, key)] = out
        return out

    def samples(self, t: float, faults: set[str], deps: dict[str, int]) -> Iterator[tuple[str, str, float]]:
        """(family, labels, value) for every series at time ``t`` (after :meth:`advance`)."""
        lab = self._labels
        for key, v in self.requests.items():
            yield (*lab("req", key), round(v, 3))
        for key, v in self.hist.items():
            if key.endswith("|sum"):
                yield (*lab("sum", key), round(v, 3))
                continue
            yield (*lab("bucket", key), round(v, 3))
            if key.endswith("|+Inf"):
                yield (*lab("count", key), round(v, 3))
        for pod, (in_use, idle) in self.pool(t, faults).items():
            yield (*lab("pool", f"{pod}|in_use"), in_use)
            yield (*lab("pool", f"{pod}|idle"), idle)
            yield (*lab("poolsize", pod), float(POOL_SIZE))
        for key, v in self.cache.items():
            yield (*lab("cache", key), round(v, 3))
        for dep, up in deps.items():
            yield (*lab("dep", dep), float(up))


def _ordered(samples: list[tuple[str, str, float]]) -> dict[str, list[tuple[str, float]]]:
    fams: dict[str, list[tuple[str, float]]] = {}
    for fam, labels, v in samples:
        fams.setdefault(fam, []).append((labels, v))
    return fams


def history(
    pods: list[str], instance: str, start: float, end: float, step: float, out: Any, flavour: Flavour = DEFAULT
) -> dict[str, Any]:
    """Write OpenMetrics history of the model from ``start`` to ``end``; return the model state.

    Families are not interleaved and each series' samples are in time order (what promtool
    wants); series are written one after the other, so each label string is written per sample
    but built only once.
    """
    m = Model(pods, instance, flavour=flavour)
    deps = {"postgres": 1, "redis": 1, "rabbitmq": 1, "external-api": 1}
    series: dict[tuple[str, str], list[str]] = {}
    t = start
    first = True
    while t <= end:
        m.advance(t, set(), dt=0.0 if first else step)
        first = False
        ts = f" {t:.3f}\n"
        for fam, labels, v in m.samples(t, set(), deps):
            points = series.get((fam, labels))
            if points is None:
                points = series[(fam, labels)] = []
            points.append(f"{v}{ts}")
        t += step
    families: dict[str, list[tuple[str, list[str]]]] = {}
    for (fam, labels), points in series.items():
        families.setdefault(fam, []).append((labels, points))
    for fam, members in families.items():
        out.write(f"# TYPE {fam} unknown\n")
        for labels, points in members:
            prefix = f"{fam}{{{labels}}} "
            out.writelines(prefix + p for p in points)
    return m.state()


# --- the live server ----------------------------------------------------------------------------


class Live:
    def __init__(self, lab_dir: Path, flavour: Flavour = DEFAULT) -> None:
        self.dir = lab_dir
        self.flavour = flavour
        self.lock = threading.Lock()
        model = json.loads((lab_dir / "run" / "model.json").read_text())
        self.ports: dict[str, int] = model.get("ports", {})
        self.model = Model(model["pods"], model["instance"], model.get("state"), flavour)
        self._faults: set[str] = set()
        self._faults_mtime = -1
        self._deps: dict[str, int] = {}
        self._deps_at = 0.0

    def faults(self) -> set[str]:
        """The faults in force, re-read whenever the lab rewrites the file (a stat per request)."""
        path = self.dir / "run" / "faults.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return set()
        if mtime != self._faults_mtime:
            try:
                self._faults = set(json.loads(path.read_text())["faults"])
                self._faults_mtime = mtime
            except (OSError, ValueError, KeyError):
                pass
        return self._faults

    def deps(self) -> dict[str, int]:
        now = time.monotonic()
        if now - self._deps_at > 1.0:
            out = {}
            for dep, key in (("postgres", "postgres"), ("redis", "redis"), ("rabbitmq", "rabbitmq")):
                port = self.ports.get(key)
                out[dep] = int(port is not None and _tcp_up(port))
            out["external-api"] = 0 if {"external-down", "dependency-down"} & self.faults() else 1
            self._deps, self._deps_at = out, now
        return self._deps

    def metrics(self) -> str:
        with self.lock:
            faults = self.faults()
            t = time.time()
            self.model.advance(t, faults)
            fams = _ordered(list(self.model.samples(t, faults, self.deps())))
        lines = []
        for fam, series in fams.items():
            lines.append(f"# TYPE {fam} untyped")
            lines.extend(f"{fam}{{{labels.split(',', 2)[2]}}} {v}" for labels, v in series)
        return "\n".join(lines) + "\n"


def _tcp_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def _handler(live: Live, kind: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "vcci-api/lab" if kind == "api" else "external-data-provider/lab"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, code: int, body: str, ctype: str = "application/json") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            """Bearer token of the lab (``VCCI_LAB_API_TOKEN``); 401 like the real API without it."""
            want = os.environ.get("VCCI_LAB_API_TOKEN") or ""
            got = self.headers.get("Authorization") or ""
            if not want or not hmac.compare_digest(got.encode(), f"Bearer {want}".encode()):
                self._send(401, json.dumps({"error": "authentication required"}))
                return False
            return True

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if kind != "api" or path != "/api/v1/calculations/preview":
                self._send(404, json.dumps({"error": "not found"}))
                return
            if not self._authorized():
                return
            try:
                body = json.loads(raw or b"{}")
                kg = float(body["quantity"]) * float(body["emission_factor"])
            except (ValueError, KeyError, TypeError):
                self._send(422, json.dumps({"error": "quantity and emission_factor (numbers) are required"}))
                return
            if "error-spike" in live.faults():
                self._send(500, json.dumps({"error": "calculation engine failed"}))
                return
            self._send(200, json.dumps({"kgco2e": round(kg, 6), "method": "activity x factor"}))

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            faults = live.faults()
            if kind == "external":
                if path in ("/health", "/healthz", "/"):
                    if {"external-down", "dependency-down"} & faults:
                        time.sleep(1.5)
                        self._send(503, json.dumps({"status": "unavailable", "error": "upstream timeout"}))
                    else:
                        self._send(200, json.dumps({"status": "ok"}))
                    return
                self._send(404, json.dumps({"error": "not found"}))
                return
            if path == "/metrics":
                self._send(200, live.metrics(), "text/plain; version=0.0.4; charset=utf-8")
                return
            if path.startswith("/api/v1/tenants/") and path.endswith("/emissions"):
                if not self._authorized():
                    return
                if "pool-exhaustion" in faults:
                    self._send(
                        503, json.dumps({"error": f'FATAL: too many connections for role "{live.flavour.app_role}"'})
                    )
                    return
                tenant = path.split("/")[4]
                rows = [{"scope": 3, "category": c, "kgco2e": round(1000 / (i + 1), 2)}
                        for i, c in enumerate(("purchased_goods", "transport", "business_travel"))]  # fmt: skip
                self._send(200, json.dumps({"tenant_id": tenant, "data": rows}))
                return
            if path in ("/health", "/healthz", "/api/v1/health"):
                deps = live.deps()
                down = [d for d, up in deps.items() if not up]
                critical = [d for d in down if d in ("postgres", "redis")] or (
                    ["postgres"] if "pool-exhaustion" in faults else []
                )
                body = {"status": "unhealthy" if critical else ("degraded" if down else "ok"), "dependencies": deps}
                if "pool-exhaustion" in faults:
                    body["error"] = f'FATAL: too many connections for role "{live.flavour.app_role}"'
                self._send(503 if critical else 200, json.dumps(body))
                return
            self._send(404, json.dumps({"error": "not found"}))

    return Handler


def main() -> int:
    p = argparse.ArgumentParser(description="the lab's fake vcci-api and external data provider")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--api-port", type=int, required=True)
    p.add_argument("--external-port", type=int, required=True)
    p.add_argument("--flavour", default="default", help="the names of the platform (vcci_lab.flavour)")
    args = p.parse_args()
    live = Live(args.dir, get_flavour(args.flavour))
    api = ThreadingHTTPServer(("127.0.0.1", args.api_port), _handler(live, "api"))
    ext = ThreadingHTTPServer(("127.0.0.1", args.external_port), _handler(live, "external"))
    api.daemon_threads = ext.daemon_threads = True
    threading.Thread(target=ext.serve_forever, daemon=True).start()
    api.serve_forever()
    return 0


if __name__ == "__main__":
    random.seed(0)
    raise SystemExit(main())

# ruff: noqa: E501, S311  (log templates read best on one line; randomness is simulation, not crypto)
"""Container logs, generated on demand from a pod's history rather than stored.

Each container instance (one per restart) has a start, maybe an end, and a mode (healthy, OOM-prone,
crashing, broken release). Its lines are a deterministic function of (pod uid, instance, line index),
so ``tailLines`` on a pod that has run for days costs only the lines asked for, and a repeated request
returns the same text, as the kubelet would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import random
from dataclasses import dataclass

from vcci_lab.flavour import get as get_flavour
from vcci_lab.kube._util import rfc3339_nano

#: The flavour's names (one per emulator process, from ``VCCI_LAB_FLAVOUR``; see ``_common``).
_FLAVOUR = get_flavour(os.environ.get("VCCI_LAB_FLAVOUR"))
API, WORKER, NS = _FLAVOUR.api, _FLAVOUR.worker, _FLAVOUR.namespace

TENANTS = (
    "acme-corp",
    "globex",
    "initech",
    "umbrella",
    "stark-industries",
    "wayne-enterprises",
    "hooli",
    "soylent",
    "tyrell",
    "cyberdyne",
    "wonka-industries",
    "aperture-science",
)
ROUTES = (
    ("GET", "/api/v1/emissions"),
    ("GET", "/api/v1/emissions/summary"),
    ("POST", "/api/v1/emissions/calculate"),
    ("GET", "/api/v1/suppliers"),
    ("GET", "/api/v1/reports/scope3"),
    ("POST", "/api/v1/uploads"),
    ("GET", "/health"),
)
MAX_LINES = 50_000  # what a 10 MiB kubelet log rotation keeps, roughly


@dataclass
class Instance:
    """One run of a container: from start to (maybe) termination."""

    number: int
    started_at: float
    mode: str  # ok | oom | crash | baddeploy | error
    finished_at: float | None = None
    reason: str | None = None
    exit_code: int | None = None
    #: a local process's log file (a Job's pod), or None: the lines are generated
    log_path: str | None = None
    message: str | None = None


def _fmt(ts: float) -> str:
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def _hex(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _startup(app: str, image: str, ts: float) -> list[tuple[float, str]]:
    version = image.rsplit(":", 1)[-1]
    if app == WORKER:
        lines = [
            "INFO  celery.worker Connected to amqp://vcci@rabbitmq.vcci-production.svc:5672//",
            "INFO  celery.worker mingle: searching for neighbors",
            "INFO  celery.worker mingle: all alone",
            f"INFO  celery.worker {WORKER}@{version} ready. concurrency=8 (prefork)",
        ]
    else:
        lines = [
            f"INFO  gunicorn.error Starting gunicorn 22.0.0 ({API} {version})",
            "INFO  gunicorn.error Listening at: http://0.0.0.0:8000 (1)",
            "INFO  gunicorn.error Using worker: gthread",
            "INFO  vcci.startup Database pool initialised size=20 host=vcci-postgres.vcci-production.svc",
            "INFO  vcci.startup Redis cache connected url=redis://vcci-redis.vcci-production.svc:6379/0",
            "INFO  gunicorn.error Booting worker with pid: 8",
        ]
    return [(ts + 0.05 * i, line) for i, line in enumerate(lines)]


def _crash_tail(app: str, mode: str, ts: float, seed: str) -> list[tuple[float, str]]:
    rng = random.Random(seed)
    if mode == "baddeploy":
        lines = [
            "INFO  vcci.startup Checking database migrations",
            "ERROR vcci.startup Migration emissions.0042_scope3_category_split is not applied; "
            "refusing to start (expected schema 0042, found 0041)",
            "Traceback (most recent call last):",
            '  File "/app/vcci/startup.py", line 88, in check_migrations',
            "    raise SchemaMismatch(expected, found)",
            "vcci.startup.SchemaMismatch: expected 0042_scope3_category_split, found 0041_supplier_country_index",
            f"ERROR gunicorn.error Worker (pid:{rng.randint(7, 30)}) exited with code 3",
            "ERROR gunicorn.error Reason: App failed to load.",
        ]
    elif app == WORKER:
        lines = [
            f"ERROR celery.worker consumer: Cannot connect to amqp://vcci@rabbitmq.vcci-production.svc:5672//: "
            f"[Errno 111] Connection refused. Trying again in {rng.choice([2, 4, 6])}.00 seconds",
            "ERROR celery.worker Unrecoverable error: OperationalError('[Errno 111] Connection refused')",
        ]
    else:
        lines = [
            "ERROR vcci.startup Database connection failed: connection to server at "
            '"vcci-postgres.vcci-production.svc" (10.100.23.7), port 5432 failed: FATAL:  '
            "remaining connection slots are reserved for non-replication superuser connections",
            "Traceback (most recent call last):",
            '  File "/app/vcci/db/pool.py", line 57, in connect',
            "    conn = psycopg.connect(self.dsn, connect_timeout=5)",
            "psycopg.OperationalError: connection failed: FATAL:  remaining connection slots are reserved",
            f"ERROR gunicorn.error Worker (pid:{rng.randint(7, 30)}) exited with code 3",
            "ERROR gunicorn.error Shutting down: Master",
            "ERROR gunicorn.error Reason: Worker failed to boot.",
        ]
    n = len(lines)
    return [(ts - 0.02 * (n - i), line) for i, line in enumerate(lines)]


def _oom_tail(ts: float, limit_gib: float, seed: str) -> list[tuple[float, str]]:
    rng = random.Random(seed)
    out: list[tuple[float, str]] = []
    for i in range(3):
        rss = limit_gib * (0.9 + 0.03 * i)
        out.append(
            (
                ts - 3 + i,
                f"WARN  vcci.memory worker memory high pid={rng.randint(8, 40)} rss={rss:.2f}GiB "
                f"limit={limit_gib:.2f}GiB cache_entries={rng.randint(180_000, 260_000)}",
            )
        )
    rid = _hex(rng, 12)
    tenant = rng.choice(TENANTS)
    for i, line in enumerate(
        (
            f"ERROR django.request request_id={rid} tenant={tenant} Internal Server Error: /api/v1/reports/scope3",
            "Traceback (most recent call last):",
            '  File "/app/vcci/reports/scope3.py", line 214, in build_report',
            "    rows = list(self._cache.materialise(tenant_id, period))",
            "MemoryError",
            f"ERROR vcci.memory worker out of memory pid={rng.randint(8, 40)} rss={limit_gib * 0.99:.2f}GiB "
            f"limit={limit_gib:.2f}GiB: the kernel OOM killer will stop this container",
        )
    ):
        out.append((ts - 0.4 + 0.05 * i, line))
    return out


def _periodic(app: str, mode: str, seed: str, k: int, ts: float, limit_gib: float) -> str:
    h = hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest()
    rng = random.Random(int.from_bytes(h, "big"))
    roll = rng.random()
    rid = _hex(rng, 12)
    tenant = rng.choice(TENANTS)
    if app == WORKER:
        if roll < 0.015:
            return (
                f"WARN  celery.app.trace task_id={_hex(rng, 8)}-{_hex(rng, 4)} tenant={tenant} "
                f"Task vcci.tasks.recalculate_supplier_emissions raised unexpected: "
                f"SupplierDataError('supplier {rng.randint(1000, 99999)} has no activity data for {rng.choice(['2026-Q2', '2026-Q3'])}')"
            )
        if roll < 0.06:
            return (
                f"WARN  celery.worker task_id={_hex(rng, 8)}-{_hex(rng, 4)} tenant={tenant} "
                f"Task vcci.tasks.import_supplier_file retry in {rng.choice([10, 30, 60])}s: S3 throttled"
            )
        task = rng.choice(
            ["recalculate_supplier_emissions", "import_supplier_file", "refresh_emission_factors", "send_report"]
        )
        return (
            f"INFO  celery.app.trace task_id={_hex(rng, 8)}-{_hex(rng, 4)} tenant={tenant} "
            f"Task vcci.tasks.{task} succeeded in {rng.uniform(0.05, 12):.3f}s"
        )
    if mode == "oom" and roll < 0.08:
        return (
            f"WARN  vcci.memory worker memory high pid={rng.randint(8, 40)} "
            f"rss={limit_gib * rng.uniform(0.8, 0.95):.2f}GiB limit={limit_gib:.2f}GiB"
        )
    # A healthy vcci-api logs no ERROR lines: a client's bad input is a 400 and a WARN.
    if roll < 0.006:
        return (
            f"WARN  django.request request_id={rid} tenant={tenant} Bad Request: /api/v1/emissions/calculate "
            f"unknown scope3 category {rng.randint(16, 99)} for supplier {rng.randint(1000, 99999)}"
        )
    if roll < 0.04:
        return (
            f"WARN  vcci.db request_id={rid} tenant={tenant} slow query duration_ms={rng.randint(1000, 4000)} "
            f"table=emissions rows={rng.randint(1000, 200000)}"
        )
    if roll < 0.06:
        return f"WARN  vcci.cache request_id={rid} tenant={tenant} cache miss key=cache:emissions:{tenant}:{rng.randint(1, 15)}"
    if roll < 0.1:
        return f"INFO  vcci.cache request_id={rid} tenant={tenant} cache hit key=cache:emissions:{tenant}:{rng.randint(1, 15)}"
    method, path = rng.choice(ROUTES)
    status = 200 if method == "GET" else rng.choice([200, 201, 202])
    return (
        f"INFO  vcci.api.request request_id={rid} tenant={tenant} method={method} path={path} "
        f"status={status} duration_ms={int(rng.lognormvariate(3.8, 0.6))}"
    )


def _disk_hit(since: float | None, app: str, seed: str, k: int, ts: float) -> bool:
    if since is None or ts < since or app != API:
        return False
    return hashlib.blake2b(f"disk:{seed}:{k}".encode(), digest_size=2).digest()[0] < 40  # about 1 line in 6


def _disk_full_line(seed: str, k: int) -> str:
    rng = random.Random(f"disk:{seed}:{k}")
    rid = _hex(rng, 12)
    tenant = rng.choice(TENANTS)
    if rng.random() < 0.5:
        return (
            f"ERROR vcci.reports request_id={rid} tenant={tenant} OSError: [Errno 28] No space left on device: "
            f"'/var/log/vcci/exports/{tenant}-scope3-{rng.randint(1000, 9999)}.csv'"
        )
    return (
        f"ERROR django.request request_id={rid} tenant={tenant} Internal Server Error: /api/v1/uploads "
        "OSError: [Errno 28] No space left on device"
    )


#: vcci-api's log lines while one of the lab's non-Kubernetes faults is in force, about one
#: request line in three: the errors a user of the platform would find in ``kubectl logs``.
def _fault_line(name: str, seed: str, k: int) -> str | None:
    rng = random.Random(f"{name}:{seed}:{k}")
    rid, tenant = _hex(rng, 12), rng.choice(TENANTS)
    head = f"request_id={rid} tenant={tenant}"
    if name == "pool-exhaustion":
        return (
            f"ERROR vcci.db {head} OperationalError: connection pool exhausted: connection to server at "
            '"vcci-postgres.vcci-production.svc" (10.100.23.7), port 5432 failed: FATAL:  too many connections '
            'for role "vcci_app"'
        )
    if name in ("slow-queries", "long-queries", "lock-contention"):
        return (
            f"ERROR vcci.db {head} QueryCanceled: canceling statement due to statement timeout after "
            f"{rng.choice([5000, 10000])}ms (table emissions)"
        )
    if name in ("external-down", "dependency-down"):
        return (
            f"ERROR vcci.integrations.ecoinvent {head} ExternalAPIError: provider returned 503 after 3 retries "
            f"(elapsed {rng.randint(2000, 9000)}ms)"
        )
    if name == "redis-down":
        return (
            f"ERROR vcci.cache {head} ConnectionError: Error 111 connecting to vcci-redis.vcci-production.svc:6379. "
            "Connection refused."
        )
    return None


def _in_fault(
    windows: dict[str, list[tuple[float, float | None]]] | None, app: str, seed: str, k: int, ts: float
) -> str | None:
    if not windows or app != API:
        return None
    for name in sorted(windows):
        active = any(start <= ts and (end is None or ts < end) for start, end in windows[name])
        if active and hashlib.blake2b(f"flag:{name}:{seed}:{k}".encode(), digest_size=2).digest()[0] < 85:
            line = _fault_line(name, seed, k)
            if line is not None:
                return line
    return None


def render(
    *,
    app: str,
    image: str,
    uid: str,
    inst: Instance,
    now: float,
    tail: int | None,
    since: float | None,
    timestamps: bool,
    limit_bytes: int | None,
    limit_gib: float,
    disk_full_since: float | None = None,
    windows: dict[str, list[tuple[float, float | None]]] | None = None,
) -> str:
    """The text ``GET .../log`` returns for one container instance.

    ``disk_full_since``: while the log volume is full, some requests fail writing to it, as the
    runbook's "No space left on device" symptom says. ``windows``: the lab's other faults and
    when they were in force; while one is, some requests log the error it causes.
    """
    seed = f"{uid}:{inst.number}"
    end = inst.finished_at if inst.finished_at is not None else now
    head = _startup(app, image, inst.started_at)
    closing: list[tuple[float, str]] = []
    period = 3.0 if app == WORKER else 1.5
    base = inst.started_at + 0.5
    if inst.mode in ("crash", "baddeploy") and inst.finished_at is not None:
        closing = _crash_tail(app, inst.mode, end, seed)
        n = 0
    elif inst.mode == "error" and inst.finished_at is not None:
        closing = _crash_tail(app, "crash", end, seed)
        n = max(0, int((end - 5 - base) / period))
    elif inst.mode in ("crash", "baddeploy"):
        n = 0
    else:
        n = max(0, int((end - base) / period) + 1)
        if inst.mode == "oom" and inst.finished_at is not None:
            closing = _oom_tail(end, limit_gib, seed)
            n = max(0, int((end - 4 - base) / period))
    first = max(0, n - MAX_LINES)
    if first > 0:
        head = []
    if since is not None:
        first = max(first, math.ceil((since - base) / period))
    if tail is not None:
        first = max(first, n - tail)
    lines = [x for x in head if since is None or x[0] >= since]
    for k in range(first, n):
        ts = base + k * period
        if _disk_hit(disk_full_since, app, seed, k, ts):
            lines.append((ts, _disk_full_line(seed, k)))
        elif (faulty := _in_fault(windows, app, seed, k, ts)) is not None:
            lines.append((ts, faulty))
        else:
            lines.append((ts, _periodic(app, inst.mode, seed, k, ts, limit_gib)))
    lines += [x for x in closing if since is None or x[0] >= since]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    out: list[str] = []
    for ts, text in lines:
        body = f"{_fmt(ts)} {text}"
        out.append(f"{rfc3339_nano(ts)} {body}" if timestamps else body)
    data = "".join(line + "\n" for line in out)
    if limit_bytes is not None:
        data = data.encode()[:limit_bytes].decode(errors="ignore")
    return data

"""A fault holder: a small process that keeps a fault alive (connections, locks, slow commands).

Run as ``python -m vcci_lab._holder KIND READY_FILE``; connection strings come from the
environment (``VCCI_LAB_APP_DSN``, ``VCCI_LAB_WORKER_DSN``, ``VCCI_LAB_REDIS_URL``), never from the
command line, where ``ps`` would show them. The lab starts it in its own session and records its
PID; killing the process group ends the fault, and the server sees the connections close.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _ready(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def _forever() -> None:
    while True:
        signal.pause()


def pool_exhaustion(ready: Path) -> None:
    """Open idle vcci-api connections until PostgreSQL refuses one for the role's limit."""
    import psycopg

    dsn = os.environ["VCCI_LAB_APP_DSN"]
    conns = []
    refusal = ""
    for _ in range(500):
        try:
            conns.append(psycopg.connect(dsn, application_name="vcci-api", autocommit=True, connect_timeout=5))
        except psycopg.OperationalError as exc:
            refusal = str(exc).strip().splitlines()[-1]
            break
    if not refusal:
        raise SystemExit("pool-exhaustion: the server never refused a connection")
    for c in conns:  # a realistic last statement for each idle session
        c.execute("SELECT id, slug FROM tenants WHERE id = 1")
    _ready(ready, {"connections": len(conns), "refusal": refusal})
    _forever()


def lock_contention(ready: Path) -> None:
    """One transaction idle while holding row locks; two sessions waiting on it."""
    import psycopg

    dsn = os.environ["VCCI_LAB_WORKER_DSN"]
    holder = psycopg.connect(dsn, application_name="vcci-worker", connect_timeout=5)
    holder.execute("UPDATE tenants SET plan = plan WHERE id = 1")
    holder.execute("SELECT id FROM suppliers WHERE tenant_id = 1 FOR UPDATE")
    # The holder now sits "idle in transaction" with its row locks.

    def wait(n: int) -> None:
        c = psycopg.connect(dsn, application_name="vcci-worker", autocommit=True, connect_timeout=5)
        c.execute("SET lock_timeout = 0")
        c.execute("SET statement_timeout = 0")
        with contextlib.suppress(psycopg.Error):
            c.execute(f"UPDATE tenants SET name = name WHERE id = 1 /* recalc job {n} */")

    threads = [threading.Thread(target=wait, args=(n,), daemon=True) for n in (1, 2, 3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    _ready(ready, {"holder_pid": holder.info.backend_pid, "waiters": len(threads)})
    _forever()


def long_queries(ready: Path) -> None:
    """Queries that stay active for as long as the fault lasts (they sleep inside the server)."""
    import psycopg

    dsn = os.environ["VCCI_LAB_WORKER_DSN"]
    pids: list[int] = []

    def run(tenant: int) -> None:
        c = psycopg.connect(dsn, application_name="vcci-worker", autocommit=True, connect_timeout=5)
        c.execute("SET statement_timeout = 0")
        pids.append(c.info.backend_pid)
        # Suppliers, not emissions: a query holding emissions would block slow-queries' DROP INDEX.
        with contextlib.suppress(psycopg.Error):
            c.execute(
                "SELECT s.country, count(*) FROM suppliers s, pg_sleep(86400) "
                f"WHERE s.tenant_id = {tenant} GROUP BY s.country /* supplier annual report */"
            )

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in (1, 2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(pids) < len(threads) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    _ready(ready, {"backend_pids": pids})
    _forever()


def redis_slow(ready: Path) -> None:
    """Slow commands, again and again, so SLOWLOG keeps filling while the fault lasts."""
    import redis

    r = redis.Redis.from_url(os.environ["VCCI_LAB_REDIS_URL"], socket_timeout=10)
    for _ in range(3):
        r.execute_command("DEBUG", "SLEEP", "0.12")  # type: ignore[no-untyped-call]
    r.keys("cache:emissions:1*")
    _ready(ready, {"slowlog_len": int(r.slowlog_len())})
    while True:
        time.sleep(2)
        try:
            r.execute_command("DEBUG", "SLEEP", "0.12")  # type: ignore[no-untyped-call]
        except redis.RedisError:
            time.sleep(1)


KINDS = {
    "pool-exhaustion": pool_exhaustion,
    "lock-contention": lock_contention,
    "long-queries": long_queries,
    "redis-slow": redis_slow,
}


def main(argv: list[str]) -> int:
    kind, ready = argv[1], Path(argv[2])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    KINDS[kind](ready)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

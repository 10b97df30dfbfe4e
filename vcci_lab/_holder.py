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

#: The flavour's names (vcci_lab.flavour), passed by the lab; the default flavour's otherwise.
APP_NAME = os.environ.get("VCCI_LAB_APP_NAME") or "vcci-api"
WORKER_APP_NAME = os.environ.get("VCCI_LAB_WORKER_APP_NAME") or "vcci-worker"
CACHE_PREFIX = os.environ.get("VCCI_LAB_CACHE_PREFIX") or "cache:emissions:"


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
            conns.append(psycopg.connect(dsn, application_name=APP_NAME, autocommit=True, connect_timeout=5))
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
    holder = psycopg.connect(dsn, application_name=WORKER_APP_NAME, connect_timeout=5)
    holder.execute("UPDATE tenants SET plan = plan WHERE id = 1")
    holder.execute("SELECT id FROM suppliers WHERE tenant_id = 1 FOR UPDATE")
    # The holder now sits "idle in transaction" with its row locks.

    def wait(n: int) -> None:
        c = psycopg.connect(dsn, application_name=WORKER_APP_NAME, autocommit=True, connect_timeout=5)
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
        c = psycopg.connect(dsn, application_name=WORKER_APP_NAME, autocommit=True, connect_timeout=5)
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
    r.keys(f"{CACHE_PREFIX}1*")
    _ready(ready, {"slowlog_len": int(r.slowlog_len())})
    while True:
        time.sleep(2)
        try:
            r.execute_command("DEBUG", "SLEEP", "0.12")  # type: ignore[no-untyped-call]
        except redis.RedisError:
            time.sleep(1)


def prepared_xact(ready: Path) -> None:
    """A transaction PREPAREd (two-phase commit) by the worker while holding a row lock, and sessions
    waiting on that lock. The prepared transaction has no backend: ending this process leaves it in
    place (the heal rolls it back), and pg_blocking_pids() shows its blocker as PID 0."""
    import psycopg

    dsn = os.environ["VCCI_LAB_WORKER_DSN"]
    gid = os.environ.get("VCCI_LAB_GID") or f"vcci-recalc-{os.getpid()}"
    with psycopg.connect(dsn, application_name=WORKER_APP_NAME, autocommit=True, connect_timeout=5) as c:
        c.execute("BEGIN")
        c.execute("UPDATE tenants SET plan = plan WHERE id = 2 /* recalc batch, two-phase */")
        c.execute(f"PREPARE TRANSACTION '{gid}'")

    def wait(n: int) -> None:
        w = psycopg.connect(dsn, application_name=WORKER_APP_NAME, autocommit=True, connect_timeout=5)
        w.execute("SET lock_timeout = 0")
        w.execute("SET statement_timeout = 0")
        with contextlib.suppress(psycopg.Error):
            w.execute(f"UPDATE tenants SET name = name WHERE id = 2 /* tenant sync {n} */")

    threads = [threading.Thread(target=wait, args=(n,), daemon=True) for n in (1, 2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    _ready(ready, {"gid": gid, "waiters": len(threads)})
    _forever()


def idle_in_transaction(ready: Path) -> None:
    """An application session that opened a transaction, read, and went idle in it: it holds its
    locks (AccessShare on tenants, suppliers) and its snapshot for as long as it stays."""
    import psycopg

    c = psycopg.connect(os.environ["VCCI_LAB_APP_DSN"], application_name=APP_NAME, connect_timeout=5)
    c.execute("SELECT id, slug FROM tenants WHERE id = 3")
    c.execute("SELECT count(*) FROM suppliers WHERE tenant_id = 3")
    _ready(ready, {"backend_pid": c.info.backend_pid})
    _forever()


def xid_age(ready: Path) -> None:
    """An old transaction that holds an XID (so VACUUM cannot freeze past it), then many XIDs
    consumed by short transactions: the database's transaction ID age climbs and stays up."""
    import psycopg

    burn = int(os.environ.get("VCCI_LAB_XIDS", "150000"))
    holder = psycopg.connect(os.environ["VCCI_LAB_WORKER_DSN"], application_name=WORKER_APP_NAME, connect_timeout=5)
    xid = holder.execute("SELECT txid_current()").fetchone()[0]  # type: ignore[index]
    with psycopg.connect(os.environ["VCCI_LAB_ADMIN_DSN"], autocommit=True, connect_timeout=5) as admin:
        admin.execute(
            "CREATE OR REPLACE PROCEDURE pg_temp.burn_xids(n int) LANGUAGE plpgsql AS $$ "
            "BEGIN FOR i IN 1..n LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$"
        )
        admin.execute("SET statement_timeout = 0")
        admin.execute("CALL pg_temp.burn_xids(%s)", (burn,))
    _ready(ready, {"backend_pid": holder.info.backend_pid, "held_xid": int(xid), "xids_consumed": burn})
    _forever()


KINDS = {
    "pool-exhaustion": pool_exhaustion,
    "lock-contention": lock_contention,
    "long-queries": long_queries,
    "redis-slow": redis_slow,
    "prepared-xact": prepared_xact,
    "idle-in-transaction": idle_in_transaction,
    "xid-age": xid_age,
}


def main(argv: list[str]) -> int:
    kind, ready = argv[1], Path(argv[2])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    KINDS[kind](ready)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

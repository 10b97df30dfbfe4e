"""Faults: each produces the real symptom in a real server, and its heal removes it.

A fault that must stay alive (held connections, locks, sleeping queries, repeated slow commands)
is kept by a holder process (:mod:`vcci_lab._holder`) whose PID is recorded in the lab's state,
so ``heal`` and ``down`` can end it. Faults of the Kubernetes API go through the emulator's
lab-only admin endpoints. The fake vcci-api reads ``<lab>/run/faults.json`` to change its live
metrics and health.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcci_lab import _procs, _redis
from vcci_lab._components import Ctx
from vcci_nb.errors import LabError

log = logging.getLogger(__name__)

Info = dict[str, Any]

#: Run by path, not ``-m``: importing the vcci_nb package pulls in pandas (0.6 s, 100 MB) per holder.
HOLDER = Path(__file__).with_name("_holder.py")


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    inject: Callable[[Ctx], Info]
    heal: Callable[[Ctx, Info], None]
    #: Components this fault stops; ``up`` leaves them stopped while the fault is in force.
    stops: tuple[str, ...] = ()


# --- shared helpers -----------------------------------------------------------------------------


def _pg_url(ctx: Ctx, role: str) -> str:
    """A DSN for one of the lab's roles (named as in the default flavour; the URL has the flavour's)."""
    fl = ctx.flavour
    return f"postgresql://{fl.login_role(role)}:{ctx.secrets[role]}@{_procs.HOST}:{ctx.ports['postgres']}/{fl.database}"


def _admin(ctx: Ctx) -> Any:
    from vcci_lab import _postgres

    return _postgres.admin_connect(Path(ctx.state["pg_root"]), ctx.ports["postgres"], ctx.flavour.database)


def _holder(ctx: Ctx, kind: str, timeout: float = 30.0) -> Info:
    """Start a holder process and wait until it says the fault is in place."""
    ready = ctx.dir / "run" / f"{kind}.ready"
    ready.unlink(missing_ok=True)
    env = {
        "VCCI_LAB_APP_DSN": _pg_url(ctx, "vcci_app"),
        "VCCI_LAB_WORKER_DSN": _pg_url(ctx, "vcci_worker"),
        "VCCI_LAB_REDIS_URL": f"redis://default:{ctx.secrets['redis_default']}@{_procs.HOST}:{ctx.ports['redis']}/0",
        "VCCI_LAB_ADMIN_DSN": _pg_url(ctx, "postgres"),
        "VCCI_LAB_APP_NAME": ctx.flavour.app_name,
        "VCCI_LAB_WORKER_APP_NAME": ctx.flavour.worker_app_name,
        "VCCI_LAB_CACHE_PREFIX": ctx.flavour.cache_prefix,
    }
    log_path = ctx.log_path(f"fault-{kind}")
    proc = _procs.spawn(f"{kind} holder", [sys.executable, str(HOLDER), kind, str(ready)], log_path, env=env)
    try:
        _procs.wait_until(f"{kind} holder", ready.exists, timeout=timeout, proc=proc, log_path=log_path)
    except LabError:
        _procs.stop_group(proc.pid, None)
        raise
    info: Info = json.loads(ready.read_text())
    return {"pid": proc.pid, "start_time": _procs.pid_start_time(proc.pid), "detail": info}


def _stop_holder(_ctx: Ctx, info: Info) -> None:
    if info.get("pid"):
        _procs.stop_group(int(info["pid"]), info.get("start_time"), timeout=5)


def _flag(_ctx: Ctx) -> Info:
    """Faults the fake vcci-api acts on by itself; ``refresh_flags`` tells it."""
    return {}


def _unflag(_ctx: Ctx, _info: Info) -> None:
    return None


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pool_inject(ctx: Ctx) -> Info:
    return _holder(ctx, "pool-exhaustion")


def _lock_inject(ctx: Ctx) -> Info:
    info = _holder(ctx, "lock-contention")
    with _admin(ctx) as conn:  # wait until the waiters really wait
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
            if row and row[0] >= 2:
                break
            time.sleep(0.05)
    return info


def _long_inject(ctx: Ctx) -> Info:
    return _holder(ctx, "long-queries")


def _long_heal(ctx: Ctx, info: Info) -> None:
    """Stop the holder and end its queries now (a backend inside pg_sleep notices a gone client
    only at the next client_connection_check_interval)."""
    _stop_holder(ctx, info)
    pids = [int(p) for p in info.get("detail", {}).get("backend_pids", [])]
    if pids:
        with _admin(ctx) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s) AND application_name = %s",
                (pids, ctx.flavour.worker_app_name),
            )


def _prepared_inject(ctx: Ctx) -> Info:
    info = _holder(ctx, "prepared-xact")
    with _admin(ctx) as conn:  # wait until the waiters really wait on the prepared transaction's lock
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
            if row and row[0] >= 2:
                break
            time.sleep(0.05)
    return info


def _prepared_heal(ctx: Ctx, info: Info) -> None:
    """Stop the waiters, then roll back the prepared transaction (if the runbook's fix has not already)."""
    _stop_holder(ctx, info)
    gid = str(info.get("detail", {}).get("gid") or "")
    with _admin(ctx) as conn:
        for (found,) in conn.execute("SELECT gid FROM pg_prepared_xacts WHERE gid = %s OR gid LIKE 'vcci-recalc-%%'",
                                     (gid,)).fetchall():  # fmt: skip
            conn.execute(f"ROLLBACK PREPARED '{found}'")


def _xid_age_inject(ctx: Ctx) -> Info:
    return _holder(ctx, "xid-age", timeout=120.0)


def _xid_age_heal(ctx: Ctx, info: Info) -> None:
    """End the old transaction, then freeze every database so that its age is back where it was."""
    import psycopg

    _stop_holder(ctx, info)
    with _admin(ctx) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datallowconn").fetchall()]
    for name in names:
        with psycopg.connect(_pg_url(ctx, "postgres").rsplit("/", 1)[0] + "/" + name, autocommit=True) as conn:
            conn.execute("SET statement_timeout = 0")
            conn.execute("VACUUM (FREEZE)")


def _replica_lag_inject(ctx: Ctx) -> Info:
    """A streaming standby whose replay is paused while the primary keeps writing: it falls behind."""
    from vcci_lab import _postgres

    root = Path(ctx.state["pg_root"])
    sport = _procs.PortAllocator().get()
    proc, sroot = _postgres.start_standby(root, ctx.ports["postgres"], sport, ctx.log_path("postgres-standby"))
    info: Info = {"pid": proc.pid, "start_time": _procs.pid_start_time(proc.pid), "detail": {"port": sport}}
    try:
        with _postgres.standby_connect(sroot, sport) as standby:
            standby.execute("SELECT pg_wal_replay_pause()")
        with _admin(ctx) as conn:
            conn.execute("SET statement_timeout = 0")
            conn.execute("DROP TABLE IF EXISTS lab_replica_ballast")
            conn.execute(
                "CREATE TABLE lab_replica_ballast AS SELECT g, md5(g::text) AS h FROM generate_series(1, 100000) g"
            )
            conn.execute("DROP TABLE lab_replica_ballast")
            deadline = time.monotonic() + 20
            lag = 0
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT pg_wal_lsn_diff(sent_lsn, replay_lsn)::bigint FROM pg_stat_replication "
                    "WHERE application_name = 'vcci-replica-1'"
                ).fetchone()
                lag = int(row[0] or 0) if row else 0
                if lag > 1024 * 1024:
                    break
                time.sleep(0.2)
        info["detail"]["replay_lag_bytes"] = lag
    except Exception:
        _stop_holder(ctx, info)
        raise
    return info


def _replica_lag_heal(ctx: Ctx, info: Info) -> None:
    import shutil

    if info.get("pid"):
        _procs.stop_group(int(info["pid"]), info.get("start_time"), sig=2, timeout=20)
    shutil.rmtree(Path(ctx.state["pg_root"]) / "standby", ignore_errors=True)


SLOT = "vcci_replica_1"


def _wal_slot_inject(ctx: Ctx) -> Info:
    """A physical slot whose replica has gone away (reserve_wal): every WAL byte written since stays on disk."""
    with _admin(ctx) as conn:
        if not conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (SLOT,)).fetchone():
            conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (SLOT,))
        # about 40 MB of WAL from a throwaway table, as a day's writes would make
        conn.execute("SET statement_timeout = 0")
        conn.execute("DROP TABLE IF EXISTS lab_wal_ballast")
        conn.execute("CREATE TABLE lab_wal_ballast AS SELECT g, md5(g::text) AS h FROM generate_series(1, 400000) g")
        conn.execute("DROP TABLE lab_wal_ballast")
        conn.execute("SELECT pg_switch_wal()")
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (SLOT,),
        ).fetchone()
    return {"detail": {"slot": SLOT, "retained_bytes": int(row[0]) if row else 0}}


def _wal_slot_heal(ctx: Ctx, _info: Info) -> None:
    with _admin(ctx) as conn:
        if conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (SLOT,)).fetchone():
            conn.execute("SELECT pg_drop_replication_slot(%s)", (SLOT,))
        conn.execute("CHECKPOINT")


def _dead_tuples_inject(ctx: Ctx) -> Info:
    """Autovacuum switched off on a busy table (suppliers), which then takes 12 full updates: dead tuples pile up."""
    with _admin(ctx) as conn, _admin(ctx) as snapshot:
        conn.execute("SET lock_timeout = '15s'")
        conn.execute("ALTER TABLE suppliers SET (autovacuum_enabled = false)")
        # A snapshot held during the updates, so that page pruning cannot remove (and uncount) the
        # dead versions while they are made: the count is the same on every run.
        snapshot.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        snapshot.execute("SELECT count(*) FROM suppliers")
        for _ in range(12):
            conn.execute("UPDATE suppliers SET name = name")
        snapshot.execute("ROLLBACK")
        conn.execute("SELECT pg_stat_force_next_flush()")
    return {"detail": {"table": "suppliers"}}


def _dead_tuples_heal(ctx: Ctx, _info: Info) -> None:
    with _admin(ctx) as conn:
        conn.execute("SET lock_timeout = '15s'")
        conn.execute("ALTER TABLE suppliers RESET (autovacuum_enabled)")
        conn.execute("VACUUM (ANALYZE) suppliers")


def _index_sql(ctx: Ctx) -> str:
    """The runbook's index under the flavour's name (a valid identifier: the flavour says so)."""
    return f"CREATE INDEX IF NOT EXISTS {ctx.flavour.index_name} ON emissions (tenant_id, calculated_at)"


def _ddl(ctx: Ctx, statement: str) -> None:
    """Run DDL on emissions, failing clearly instead of queueing forever behind someone's lock."""
    import psycopg

    with _admin(ctx) as conn:
        conn.execute("SET lock_timeout = '15s'")
        try:
            conn.execute(statement)
            conn.execute("ANALYZE emissions")
        except psycopg.errors.LockNotAvailable as exc:
            raise LabError(
                f"could not run {statement.split(' ON ')[0]!r}: a session holds a lock on emissions. "
                "Look at pg_locks / pg_stat_activity, heal the fault that holds it, and try again."
            ) from exc


def _slow_inject(ctx: Ctx) -> Info:
    _ddl(ctx, f"DROP INDEX IF EXISTS {ctx.flavour.index_name}")
    # The application keeps asking its usual tenant queries; now they scan the whole table.
    import psycopg

    times = []
    with psycopg.connect(_pg_url(ctx, "vcci_app"), application_name=ctx.flavour.app_name, autocommit=True) as app:
        for tenant in (1, 3, 7, 12, 20, 1, 3, 7):
            t = time.monotonic()
            app.execute(
                "SELECT date_trunc('month', calculated_at) AS month, sum(kgco2e) FROM emissions "
                "WHERE tenant_id = %s AND calculated_at >= now() - interval '90 days' GROUP BY 1 ORDER BY 1",
                (tenant,),
            ).fetchall()
            times.append(time.monotonic() - t)
    return {"detail": {"query_seconds": round(max(times), 3)}}


def _slow_heal(ctx: Ctx, _info: Info) -> None:
    _ddl(ctx, _index_sql(ctx))


# --- Redis --------------------------------------------------------------------------------------


def _redis_client(ctx: Ctx) -> Any:
    return _redis.client(
        ctx.ports["redis"], {"redis_default": ctx.secrets["redis_default"], "redis_diag": ctx.secrets["redis_diag"]}
    )


def _redis_memory_inject(ctx: Ctx) -> Info:
    """Ballast keys until used memory is about 95 % of maxmemory (the alert fires at 90 %)."""
    r = _redis_client(ctx)
    try:
        maxmem = int(r.config_get("maxmemory")["maxmemory"])
        chunk = 512 * 1024
        i = 0
        while True:
            used = int(r.info("memory")["used_memory"])
            if used >= 0.95 * maxmem or i > 400:
                break
            r.set(f"{ctx.flavour.cache_prefix}ballast:{i}", os.urandom(chunk // 2).hex())
            i += 1
        return {"detail": {"ballast_keys": i, "used_memory": used, "maxmemory": maxmem}}
    finally:
        r.close()


def _redis_memory_heal(ctx: Ctx, _info: Info) -> None:
    r = _redis_client(ctx)
    try:
        keys = list(r.scan_iter(f"{ctx.flavour.cache_prefix}ballast:*", count=1000))
        if keys:
            r.delete(*keys)
        r.memory_purge()
    finally:
        r.close()


def _redis_slow_inject(ctx: Ctx) -> Info:
    return _holder(ctx, "redis-slow")


def _redis_slow_heal(ctx: Ctx, info: Info) -> None:
    _stop_holder(ctx, info)
    r = _redis_client(ctx)
    try:
        r.slowlog_reset()
    finally:
        r.close()


def _stop_component(ctx: Ctx, name: str) -> Info:
    from vcci_lab import _components

    spec = next(s for s in _components.specs() if s.name == name)
    entry = ctx.state["components"].pop(name, {})
    if entry.get("pid"):
        _procs.stop_group(int(entry["pid"]), entry.get("start_time"), sig=spec.stop_signal, timeout=spec.stop_timeout)
    return {"detail": {"stopped": name}}


def _start_component(ctx: Ctx, name: str) -> None:
    from vcci_lab import _components

    if _procs.is_ours(ctx.entry(name).get("pid"), ctx.entry(name).get("start_time")):
        return
    spec = next(s for s in _components.specs() if s.name == name)
    entry = spec.start(ctx)
    ctx.state["components"][name] = entry


def _redis_down_inject(ctx: Ctx) -> Info:
    return _stop_component(ctx, "redis")


def _redis_down_heal(ctx: Ctx, _info: Info) -> None:
    _start_component(ctx, "redis")


# --- RabbitMQ and the external API --------------------------------------------------------------


def _dependency_inject(ctx: Ctx) -> Info:
    if "rabbitmq" in ctx.state["components"]:
        return _stop_component(ctx, "rabbitmq")
    return {}


def _dependency_heal(ctx: Ctx, _info: Info) -> None:
    from vcci_lab import _components

    if any(s.name == "rabbitmq" for s in _components.specs()):
        _start_component(ctx, "rabbitmq")


# --- Kubernetes (through the emulator's admin API) ----------------------------------------------


def _kube_call(ctx: Ctx, method: str, path: str, body: Any = None) -> Any:
    port = ctx.ports.get("kube")
    if not port or "kube" not in ctx.state["components"]:
        raise LabError("the Kubernetes API emulator is not running in this lab; run `vcci-nb lab up` again.")
    req = urllib.request.Request(
        f"http://{_procs.HOST}:{port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None),
        headers={"Authorization": f"Bearer {ctx.secrets['kube_admin']}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            body = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise LabError(f"the Kubernetes emulator refused {method} {path}: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise LabError(f"the Kubernetes emulator did not answer {method} {path}: {exc}") from exc
    try:
        return json.loads(body) if body else {}
    except ValueError:
        return {}


def _kube_fault(name: str) -> tuple[Callable[[Ctx], Info], Callable[[Ctx, Info], None]]:
    def inject(ctx: Ctx) -> Info:
        return {"detail": _kube_call(ctx, "POST", f"/_lab/faults/{name}")}

    def heal(ctx: Ctx, _info: Info) -> None:
        _kube_call(ctx, "DELETE", f"/_lab/faults/{name}")

    return inject, heal


# --- the registry -------------------------------------------------------------------------------

FAULTS: dict[str, Fault] = {}


def _add(f: Fault) -> None:
    FAULTS[f.name] = f


_add(
    Fault(
        "pool-exhaustion",
        "idle vcci-api connections up to vcci_app's connection limit; new app connections fail",
        _pool_inject,
        _stop_holder,
    )
)
_add(
    Fault(
        "lock-contention", "a transaction idle while holding row locks; sessions wait on it", _lock_inject, _stop_holder
    )
)
_add(Fault("long-queries", "queries that stay active for as long as the fault lasts", _long_inject, _long_heal))
_add(
    Fault("slow-queries", "the (tenant_id, calculated_at) index dropped: tenant queries scan", _slow_inject, _slow_heal)
)
_add(
    Fault(
        "prepared-xact",
        "a two-phase transaction PREPAREd with a row lock on tenants, and sessions waiting on it (no backend to kill)",
        _prepared_inject,
        _prepared_heal,
    )
)
_add(
    Fault(
        "idle-in-transaction",
        "a vcci-api session idle in an open transaction, holding its locks and snapshot",
        lambda ctx: _holder(ctx, "idle-in-transaction"),
        _stop_holder,
    )
)
_add(
    Fault(
        "xid-age",
        "150,000 transaction IDs consumed behind an old transaction that holds its XID (freezing cannot catch up)",
        _xid_age_inject,
        _xid_age_heal,
    )
)
_add(Fault("wal-slot", "a physical replication slot with no replica, retaining WAL", _wal_slot_inject, _wal_slot_heal))
_add(
    Fault(
        "replica-lag",
        "a streaming standby (pg_basebackup) whose replay is paused while the primary writes: replica lag",
        _replica_lag_inject,
        _replica_lag_heal,
    )
)
_add(
    Fault(
        "dead-tuples",
        "autovacuum disabled on suppliers, then many updates: dead tuples pile up on a busy table",
        _dead_tuples_inject,
        _dead_tuples_heal,
    )
)
_add(Fault("redis-memory", "Redis used memory at about 95% of maxmemory", _redis_memory_inject, _redis_memory_heal))
_add(
    Fault(
        "redis-slow", "slow commands in SLOWLOG, repeated while the fault lasts", _redis_slow_inject, _redis_slow_heal
    )
)
_add(Fault("redis-down", "Redis stopped", _redis_down_inject, _redis_down_heal, stops=("redis",)))
for _name, _summary in (
    ("oomkill", "vcci-api pods OOMKilled, with restarts and events"),
    ("crashloop", "vcci-api pods in CrashLoopBackOff with error logs"),
    ("bad-deploy", "a new vcci-api revision whose pods fail and log errors"),
    ("disk-full", "the vcci-api-data volume nearly full (metrics and df)"),
):
    _inj, _heal = _kube_fault(_name)
    _add(Fault(_name, _summary, _inj, _heal))
_add(
    Fault(
        "dependency-down",
        "RabbitMQ stopped and the external data provider's /health failing",
        _dependency_inject,
        _dependency_heal,
        stops=("rabbitmq",),
    )
)
_add(Fault("external-down", "only the external data provider's /health failing (timeouts, 503)", _flag, _unflag))
_add(Fault("error-spike", "a traffic spike with many 5xx answers in vcci-api's live metrics", _flag, _unflag))
_add(Fault("latency-spike", "vcci-api's live request latency over 2 s at p95", _flag, _unflag))

#: The seed's 4.2 scenarios and its example incident, as combinations of faults.
PRESETS: dict[str, tuple[str, ...]] = {
    "connection_pool_exhausted": ("pool-exhaustion", "error-spike"),
    "memory_leak": ("oomkill",),
    "disk_full": ("disk-full",),
    "slow_queries": ("slow-queries", "long-queries", "latency-spike"),
    "external_api_down": ("external-down", "latency-spike"),
    "example_incident": ("error-spike", "pool-exhaustion"),
}

PRESET_SUMMARIES: dict[str, str] = {
    "connection_pool_exhausted": "seed 4.2 scenario 1: 'too many connections' with 5xx errors",
    "memory_leak": "seed 4.2 scenario 2: pods OOMKilled repeatedly",
    "disk_full": "seed 4.2 scenario 3: 'no space left on device'",
    "slow_queries": "seed 4.2 scenario 4: missing index, long queries, slow API",
    "external_api_down": "seed 4.2 scenario 5: timeouts calling the external data provider",
    "example_incident": "the seed's example incident: pool exhaustion during a traffic spike",
}


def expand(name: str) -> list[str]:
    """The faults a fault or preset name stands for; a LabError listing the valid names otherwise."""
    if name in FAULTS:
        return [name]
    if name in PRESETS:
        return list(PRESETS[name])
    raise LabError(
        f"unknown fault {name!r}. Faults: {', '.join(FAULTS)}. Presets: {', '.join(PRESETS)}. "
        "Run `vcci-nb lab inject` with no argument to see what each does."
    )


def stopped_by_faults(state: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for name in state.get("faults", {}):
        if name in FAULTS:
            out.update(FAULTS[name].stops)
    return out


def refresh_flags(ctx: Ctx) -> None:
    """Tell the fake vcci-api which faults are in force (it polls this file), and the Kubernetes
    emulator too, so that vcci-api's pod logs show the errors those faults cause."""
    path = ctx.dir / "run" / "faults.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"faults": sorted(ctx.state["faults"]), "at": time.time()}))
    os.replace(tmp, path)
    if "kube" in ctx.state["components"]:
        with contextlib.suppress(LabError):
            _kube_call(ctx, "PUT", "/_lab/flags", {"faults": sorted(ctx.state["faults"])})


def stop_holders(ctx: Ctx) -> None:
    for info in ctx.state["faults"].values():
        with contextlib.suppress(Exception):
            _stop_holder(ctx, info)


def baseline(ctx: Ctx) -> None:
    """Put data back the way ``up`` made it: index present, cache seeded, slowlog empty, cluster reset."""
    _ddl(ctx, _index_sql(ctx))
    _prepared_heal(ctx, {})
    _wal_slot_heal(ctx, {})
    _dead_tuples_heal(ctx, {})
    _redis_memory_heal(ctx, {})
    _redis.seed(
        ctx.ports["redis"],
        {"redis_default": ctx.secrets["redis_default"], "redis_diag": ctx.secrets["redis_diag"]},
        prefix=ctx.flavour.cache_prefix,
    )
    if "kube" in ctx.state["components"]:
        with contextlib.suppress(LabError):
            _kube_call(ctx, "POST", "/_lab/reset")

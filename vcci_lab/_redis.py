"""Redis for the lab: ACL users, thousands of ``cache:emissions:*`` keys, slowlog and maxmemory."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

from vcci_lab import _procs

MAXMEMORY_BYTES = 64 * 1024 * 1024
CACHE_KEYS = 5000
SLOWLOG_SLOWER_THAN_US = 10_000

#: What the diagnostics user may run: read-only inspection, never KEYS, FLUSH* or a write.
DIAG_COMMANDS = [
    "ping",
    "info",
    "slowlog|get",
    "slowlog|len",
    "client|list",
    "scan",
    "type",
    "memory|usage",
    "dbsize",
    "ttl",
    "pttl",
    "strlen",
    "hlen",
    "llen",
    "scard",
    "zcard",
    "hello",
    "command",
]


def write_config(redis_dir: Path, port: int, passwords: dict[str, str], diag_user: str = "vcci-diag") -> Path:
    """redis.conf with the ACL users (mode 0600: it holds their passwords)."""
    redis_dir.mkdir(parents=True, exist_ok=True)
    diag = " ".join(f"+{c}" for c in DIAG_COMMANDS)
    conf = f"""# Written by vcci-nb lab; regenerated on every start.
bind {_procs.HOST}
port {port}
protected-mode yes
daemonize no
dir {redis_dir}
save ""
appendonly no
maxmemory {MAXMEMORY_BYTES}
maxmemory-policy allkeys-lru
slowlog-log-slower-than {SLOWLOG_SLOWER_THAN_US}
slowlog-max-len 256
enable-debug-command local
latency-monitor-threshold 50
loglevel notice
user default on >{passwords["redis_default"]} ~* &* +@all
user {diag_user} on >{passwords["redis_diag"]} ~* resetchannels -@all {diag}
"""
    path = redis_dir / "redis.conf"
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(conf)
    return path


def start(
    redis_dir: Path, port: int, log_path: Path, passwords: dict[str, str], diag_user: str = "vcci-diag"
) -> subprocess.Popen[bytes]:
    conf = write_config(redis_dir, port, passwords, diag_user)
    proc = _procs.spawn("redis", [_procs.find_binary("redis-server"), str(conf)], log_path)
    _procs.wait_until("redis", lambda: bool(client(port, passwords).ping()), timeout=15, proc=proc, log_path=log_path)
    return proc


def client(port: int, passwords: dict[str, str], timeout: float = 2.0) -> Any:
    import redis

    return redis.Redis(
        host=_procs.HOST,
        port=port,
        username="default",
        password=passwords["redis_default"],
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )


def seed(port: int, passwords: dict[str, str], prefix: str = "cache:emissions:") -> int:
    """Fill the cache the way the API does: per-tenant emissions summaries with TTLs, under the
    flavour's key ``prefix``."""
    r = client(port, passwords, timeout=10)
    rng = random.Random(7)  # noqa: S311 - sample data
    pipe = r.pipeline(transaction=False)
    for i in range(CACHE_KEYS):
        tenant = 1 + int(50 * rng.random() ** 2)
        year = 2024 + i % 3
        payload = json.dumps(
            {
                "tenant_id": tenant,
                "year": year,
                "category": 1 + i % 15,
                "kgco2e": round(rng.random() * 1e6, 2),
                "rows": [round(rng.random() * 1e3, 3) for _ in range(rng.randint(5, 60))],
            }
        )
        pipe.set(f"{prefix}{tenant}:{year}:{i}", payload, ex=rng.randint(1800, 21600))
    for tenant in range(1, 51):
        pipe.hset(
            f"{prefix}summary:{tenant}",
            mapping={f"cat{c}": round(rng.random() * 1e5, 1) for c in range(1, 16)},
        )
        pipe.zadd(f"{prefix}top-suppliers:{tenant}", {f"supplier-{s}": rng.random() for s in range(20)})
    for _ in range(40):
        pipe.set(f"session:{rng.getrandbits(64):016x}", "{}", ex=3600)
    pipe.rpush("queue:recalculate", *[f"tenant:{t}" for t in range(1, 13)])
    pipe.execute()
    r.slowlog_reset()
    r.close()
    return CACHE_KEYS

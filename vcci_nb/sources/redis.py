"""Redis: the seed's redis-cli checks (PING, INFO memory, SLOWLOG GET), plus hit rate, clients and big keys.

Only read commands the diagnostics ACL user may run: PING, INFO, SLOWLOG GET, CLIENT LIST,
SCAN, TYPE, MEMORY USAGE, DBSIZE. Big keys are *sampled* with SCAN, never KEYS, so a Redis that
is already struggling is not made worse. Each ``gather_*`` returns ``redis.<what>``.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import redis

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, redis_url, resolve_profile
from vcci_nb.evidence import Evidence
from vcci_nb.redact import redact, redact_url
from vcci_nb.sources._core import collect, not_configured, setting_for

SOURCE = "redis"

MEMORY_FIELDS: tuple[str, ...] = (
    "used_memory", "used_memory_rss", "used_memory_peak", "maxmemory", "maxmemory_policy",
    "mem_fragmentation_ratio", "evicted_keys", "expired_keys", "keyspace_hits", "keyspace_misses",
    "connected_clients", "blocked_clients", "rejected_connections", "instantaneous_ops_per_sec", "redis_version",
    "uptime_in_seconds",
)  # fmt: skip


def _client(url: str, timeout: float) -> Any:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
        decode_responses=True,
        # No client_name: CLIENT SETNAME is a write the diagnostics ACL user may not run.
    )


def _gather(profile: ProfileLike, what: str, call: str, build: Any, timeout: float, **meta: Any) -> Evidence:
    name = f"redis.{what}"
    url = redis_url(profile)
    if not url:
        return not_configured(name, SOURCE, "REDIS_URL is not set", query=call)

    def fetch() -> Any:
        client = _client(url, timeout)
        try:
            return build(client)
        finally:
            client.close()

    return collect(
        name,
        SOURCE,
        call,
        fetch,
        timeout=timeout,
        target=redact_url(url),
        meta=meta or None,
        setting=setting_for(profile, "redis"),
    )


def gather_ping(profile: ProfileLike = None, *, samples: int = 5, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``redis-cli ping``, ``samples`` times: round-trip latency in milliseconds (min, median, max)."""

    def build(client: Any) -> pd.DataFrame:
        lat = []
        for _ in range(max(samples, 1)):
            t0 = time.perf_counter()
            client.ping()
            lat.append((time.perf_counter() - t0) * 1000)
        s = pd.Series(lat)
        return pd.DataFrame([{"pong": True, "min_ms": s.min(), "median_ms": s.median(), "max_ms": s.max()}])

    return _gather(profile, "ping", "PING", build, timeout)


def gather_info(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``INFO``: memory (used, peak, maxmemory, fragmentation), evictions, hits/misses and hit rate, clients.

    One row; ``memory_ratio`` is used/maxmemory (NaN when no maxmemory), ``hit_rate`` is
    hits/(hits+misses) since the server started.
    """

    def build(client: Any) -> pd.DataFrame:
        info: dict[str, Any] = client.info("all")
        row = {k: info.get(k) for k in MEMORY_FIELDS}
        used = float(info.get("used_memory") or 0)
        maxmem = float(info.get("maxmemory") or 0)
        hits = float(info.get("keyspace_hits") or 0)
        misses = float(info.get("keyspace_misses") or 0)
        row["memory_ratio"] = used / maxmem if maxmem else float("nan")
        row["hit_rate"] = hits / (hits + misses) if hits + misses else float("nan")
        row["keys"] = sum(int(v.get("keys", 0)) for k, v in info.items() if k.startswith("db") and isinstance(v, dict))
        return pd.DataFrame([row])

    return _gather(profile, "info", "INFO (memory, stats, clients, keyspace)", build, timeout)


def gather_slowlog(profile: ProfileLike = None, *, count: int = 25, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``SLOWLOG GET``: the slowest recent commands, with duration in ms and client (arguments redacted)."""

    def build(client: Any) -> pd.DataFrame:
        entries = client.slowlog_get(count)
        rows = []
        for e in entries:
            command = e.get("command")
            if isinstance(command, bytes):
                command = command.decode("utf-8", "replace")
            rows.append(
                {
                    "id": e.get("id"),
                    "at": pd.Timestamp(int(e.get("start_time") or 0), unit="s", tz="UTC"),
                    "duration_ms": float(e.get("duration") or 0) / 1000.0,
                    "command": redact(str(command or ""))[:300],
                    "client": e.get("client_address"),
                    "client_name": e.get("client_name"),
                }
            )
        return pd.DataFrame(rows, columns=["id", "at", "duration_ms", "command", "client", "client_name"])

    return _gather(profile, "slowlog", f"SLOWLOG GET {count}", build, timeout)


def gather_clients(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``CLIENT LIST`` grouped by client name and user: how many, oldest, idlest, blocked."""

    def build(client: Any) -> pd.DataFrame:
        rows = client.client_list()
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame(columns=["name", "user", "clients", "max_age_s", "max_idle_s", "blocked"])
        for col in ("age", "idle", "name", "user", "flags"):
            if col not in frame:
                frame[col] = ""
        for col in ("age", "idle"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
        frame["blocked"] = frame["flags"].astype(str).str.contains("b")
        frame["name"] = frame["name"].fillna("").replace("", "(none)")
        out = frame.groupby(["name", "user"], as_index=False).agg(
            clients=("id", "size"), max_age_s=("age", "max"), max_idle_s=("idle", "max"), blocked=("blocked", "sum")
        )
        return out.sort_values("clients", ascending=False).reset_index(drop=True)

    return _gather(profile, "clients", "CLIENT LIST", build, timeout)


def gather_big_keys(
    profile: ProfileLike = None,
    *,
    pattern: str | None = None,
    sample: int = 2000,
    top: int = 20,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """The biggest keys among up to ``sample`` keys found with SCAN (MATCH the profile's cache pattern).

    SCAN walks the keyspace in small batches and never blocks the server as KEYS would;
    MEMORY USAGE is asked in one pipeline. ``meta.sampled`` says how many keys were looked at.
    """
    pat = pattern or resolve_profile(profile).names.cache_pattern

    def build(client: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        deadline = time.monotonic() + timeout * 0.8
        keys: list[str] = []
        cursor = 0
        while True:
            cursor, batch = client.scan(cursor=cursor, match=pat, count=500)
            keys.extend(batch)
            if cursor == 0 or len(keys) >= sample or time.monotonic() > deadline:
                break
        keys = keys[:sample]
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.memory_usage(k)
            pipe.type(k)
        answers = pipe.execute() if keys else []
        frame = pd.DataFrame(
            {"key": keys, "bytes": answers[0::2], "type": answers[1::2]}, columns=["key", "bytes", "type"]
        )
        frame["bytes"] = pd.to_numeric(frame["bytes"], errors="coerce")
        frame = frame.sort_values("bytes", ascending=False).head(top).reset_index(drop=True)
        return frame, {"sampled": len(keys), "pattern": pat, "complete": cursor == 0}

    return _gather(profile, "big_keys", f"SCAN 0 MATCH {pat} COUNT 500 (+ MEMORY USAGE), up to {sample} keys",
                   build, timeout)  # fmt: skip


def gather_all(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Evidence]:
    """Every Redis check, keyed by evidence name."""
    return {
        "redis.ping": gather_ping(profile, timeout=timeout),
        "redis.info": gather_info(profile, timeout=timeout),
        "redis.slowlog": gather_slowlog(profile, timeout=timeout),
        "redis.clients": gather_clients(profile, timeout=timeout),
        "redis.big_keys": gather_big_keys(profile, timeout=timeout),
    }

"""Findings from Redis: memory pressure and the slow log."""

from __future__ import annotations

import math

from vcci_nb.analysis.findings._common import (
    Thresholds,
    _finding,
    _names,
    _usable,
    thresholds_with_defaults,
)
from vcci_nb.analysis.model import Finding
from vcci_nb.evidence import Evidence


def find_redis_memory(info: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Used memory near maxmemory (evictions follow), from INFO memory."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(info, "memory_ratio"):
        return []
    row = info.frame.iloc[0]
    ratio = float(row["memory_ratio"])
    if not math.isfinite(ratio) or ratio < th["redis_memory_ratio"]:
        return []
    return [
        _finding(
            "redis.memory_pressure",
            "high" if ratio >= 0.98 else "medium",
            f"Redis uses {ratio:.0%} of maxmemory ({float(row['used_memory']) / 2**20:.1f} of "
            f"{float(row['maxmemory']) / 2**20:.1f} MiB, policy {row.get('maxmemory_policy')}); "
            f"{int(row.get('evicted_keys') or 0)} keys evicted so far.",
            value=ratio,
            threshold=th["redis_memory_ratio"],
            unit="ratio",
            evidence=[info],
            details={
                "used_memory": int(row["used_memory"]),
                "maxmemory": int(row["maxmemory"]),
                "evicted_keys": int(row.get("evicted_keys") or 0),
            },
        )
    ]


def find_redis_slowlog(slowlog: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Commands in SLOWLOG slower than ``redis_slow_ms`` (KEYS, DEBUG SLEEP, big values)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(slowlog, "duration_ms", "command"):
        return []
    f = slowlog.frame[slowlog.frame["duration_ms"] >= th["redis_slow_ms"]]
    if f.empty:
        return []
    cmds = f["command"].astype(str).str.split().str[0].str.upper().value_counts()
    return [
        _finding(
            "redis.slow_commands",
            "medium",
            f"{len(f)} Redis commands took over {th['redis_slow_ms']:g} ms "
            f"(slowest {float(f['duration_ms'].max()):.0f} ms): "
            f"{_names(f'{c} ×{int(n)}' for c, n in cmds.items())}. Redis is single-threaded: "
            "every client waited meanwhile.",
            value=float(f["duration_ms"].max()),
            threshold=th["redis_slow_ms"],
            unit="ms",
            evidence=[slowlog],
            details={"commands": {str(k): int(v) for k, v in cmds.items()}},
        )
    ]

"""Numbers a person reads at a glance: 7.1 %, 19 h 2 min, 1.4 GiB, never 0.0714 ratio or 6.85e+04 s.

One place for notebooks (tables, finding cards), findings' summaries, HTML, messages and the
postmortem, so that a value reads the same everywhere. A leaf: standard library only.
"""

from __future__ import annotations

import math
import re

#: Units that are a share of one (shown as percentages).
RATIO_UNITS = frozenset({"ratio", "share", "fraction"})
#: Units that are seconds (shown as human durations).
SECOND_UNITS = frozenset({"s", "sec", "second", "seconds"})
#: Units that are bytes (shown in binary units).
BYTE_UNITS = frozenset({"b", "byte", "bytes"})

_DURATION_COLUMN = re.compile(r"(_s|_seconds|^seconds)$")
_MS_COLUMN = re.compile(r"_ms$")
_BYTES_COLUMN = re.compile(r"(bytes$|^used_memory|^maxmemory$)")
_RATIO_COLUMN = re.compile(r"(^|_)(ratio|share)$")


def _finite(value: object) -> float | None:
    try:
        n = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return n if math.isfinite(n) else None


def percent(value: object) -> str:
    """``0.0714`` → ``7.1 %``; ``0.00012`` → ``0.012 %``; ``1`` → ``100 %``."""
    n = _finite(value)
    if n is None:
        return "?"
    p = n * 100
    if p == 0:
        return "0 %"
    if abs(p) >= 10:
        return f"{p:.0f} %"
    if abs(p) >= 0.1:
        return f"{p:.1f} %".replace(".0 %", " %")
    return f"{p:.2g} %"


def human_duration(seconds: object) -> str:
    """``2.4`` → ``2.4 s``; ``68500`` → ``19 h 2 min``; ``3 * 86400`` → ``3 d 0 h``."""
    n = _finite(seconds)
    if n is None:
        return "?"
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 10:
        return f"{sign}{n:.2g} s" if n < 1 else f"{sign}{n:.1f} s".replace(".0 s", " s")
    if n < 60:
        return f"{sign}{n:.0f} s"
    minutes, secs = divmod(round(n), 60)
    if minutes < 60:
        return f"{sign}{minutes} min {secs} s" if secs and minutes < 10 else f"{sign}{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours} h"


def human_bytes(value: object) -> str:
    """``1503238553`` → ``1.4 GiB``; ``?`` when unknown (a title must never fail)."""
    n = _finite(value)
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def plain(value: float) -> str:
    """Other numbers: 0.5823, 2383, 21,201,870,000; never 5.823075e-01."""
    if value != value:  # NaN
        return ""
    if abs(value) >= 1e5:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def fmt_value(value: object, unit: str = "") -> str:
    """A value with its unit, the way a person reads it (see the module docstring)."""
    if value is None or value == "":
        return ""
    u = unit.strip().lower()
    n = _finite(value) if not isinstance(value, bool) else None
    if n is None:
        return f"{value} {unit}".strip()
    if u in RATIO_UNITS:
        return percent(n)
    if u in SECOND_UNITS:
        return human_duration(n)
    if u in BYTE_UNITS:
        return human_bytes(n)
    text = plain(n) if isinstance(value, float) else (f"{int(n):,}" if abs(n) >= 1e5 else str(value))
    return f"{text} {unit}".strip()


def column_kind(name: str) -> str:
    """How a table column's numbers read: ``duration``, ``bytes``, ``ratio`` or ``plain`` (by its name)."""
    low = name.lower()
    if _RATIO_COLUMN.search(low) and "fragmentation" not in low:
        return "ratio"
    if _DURATION_COLUMN.search(low):
        return "duration"
    if _MS_COLUMN.search(low):
        return "ms"
    if _BYTES_COLUMN.search(low):
        return "bytes"
    return "plain"


def fmt_cell(column: str, value: object) -> object:
    """A table cell: durations, bytes and ratios by the column's name; others unchanged."""
    if isinstance(value, bool) or _finite(value) is None:
        return value
    kind = column_kind(column)
    if kind == "duration":
        return human_duration(value)
    if kind == "ms":
        return human_duration(float(value) / 1000)  # type: ignore[arg-type]
    if kind == "bytes":
        return human_bytes(value)
    if kind == "ratio":
        return percent(value)
    return value


__all__ = [
    "column_kind",
    "fmt_cell",
    "fmt_value",
    "human_bytes",
    "human_duration",
    "percent",
    "plain",
]

"""The incident window, the baseline before it, and the step of a range query.

An engineer compares "now" with "before": every range query runs twice, over the incident
window and over a baseline of the same length that ends where the window starts, with the
same step so the two series line up. The step is chosen from the window so that a series has
a few hundred points: enough to see a spike, small enough to chart and well under
Prometheus' 11,000-points-per-series limit.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from vcci_nb.errors import ParameterError
from vcci_nb.evidence import Window, utcnow
from vcci_nb.policy import window_bound

#: Steps we round up to, in seconds: readable on an axis and aligned with scrape intervals.
NICE_STEPS_S: tuple[int, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


TimeLike = datetime | str | float | int | None


def parse_time(value: TimeLike, *, now: datetime | None = None) -> datetime | None:
    """Parse a notebook time parameter (the grammar of :func:`vcci_nb.policy.window_bound`):
    a datetime, ISO-8601 text, ``now``/``now-30m``/``-30m``, or Unix seconds."""
    return window_bound(value, now or utcnow())


def incident_window(
    start: TimeLike = None,
    end: TimeLike = None,
    *,
    minutes: float = 60.0,
    now: datetime | None = None,
) -> Window:
    """The window to look at: ``start``..``end``, defaulting to the last ``minutes`` before now.

    Raises ParameterError when the window is empty or reversed, naming both ends.
    """
    now = now or utcnow()
    end_dt = parse_time(end, now=now) or now
    start_dt = parse_time(start, now=now) or (end_dt - timedelta(minutes=minutes))
    if start_dt >= end_dt:
        raise ParameterError(
            f"window_start ({start_dt.isoformat()}) must be before window_end ({end_dt.isoformat()}); "
            "fix the notebook parameters"
        )
    return Window(start_dt.astimezone(UTC), end_dt.astimezone(UTC))


def baseline_window(window: Window, *, factor: float = 1.0, gap: timedelta = timedelta(0)) -> Window:
    """A window ``factor`` times as long as ``window`` that ends ``gap`` before it starts."""
    length = (window.end - window.start) * factor
    end = window.start - gap
    return Window(end - length, end)


def choose_step(window: Window, *, target_points: int = 720, min_step_s: float = 15.0) -> float:
    """Seconds between points so that ``window`` has about ``target_points`` (rounded up to a nice step)."""
    seconds = (window.end - window.start).total_seconds()
    raw = max(seconds / max(target_points, 1), min_step_s)
    for nice in NICE_STEPS_S:
        if nice >= raw:
            return float(nice)
    return float(math.ceil(raw / 86400) * 86400)


def window_minutes(window: Window) -> float:
    return (window.end - window.start).total_seconds() / 60.0

"""Panels compared: each panel's incident window against its baseline (03_investigate_metrics).

Pure: a function over Evidence already gathered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from vcci_nb.evidence import Evidence

__all__ = ["compare_panels"]


def compare_panels(panels: Mapping[str, Evidence]) -> Evidence:
    """One row per panel: mean and peak in the incident window and in the baseline, and the change.

    Series of a panel are summed per timestamp first (a per-pod panel compares as its total).
    """
    rows = []
    for name, ev in panels.items():
        row: dict[str, Any] = {"panel": str(ev.meta.get("title") or name), "unit": str(ev.meta.get("unit") or "")}
        if not ev.ok or ev.frame.empty or "value" not in ev.frame:
            row["note"] = f"{ev.status}: {ev.message}" if not ev.ok else "no data"
            rows.append(row)
            continue
        frame = ev.frame
        for period in ("incident", "baseline"):
            part = frame[frame["period"] == period] if "period" in frame else (frame if period == "incident" else None)
            if part is None or part.empty:
                continue
            series = part.groupby("timestamp")["value"].sum() if "timestamp" in part else part["value"]
            series = pd.to_numeric(series, errors="coerce").dropna()
            label = "window" if period == "incident" else "baseline"
            row[f"{label} mean"] = float(series.mean()) if not series.empty else None
            row[f"{label} peak"] = float(series.max()) if not series.empty else None
        now_mean, before_mean = row.get("window mean"), row.get("baseline mean")
        if now_mean is not None and before_mean not in (None, 0):
            row["change"] = f"{(now_mean - before_mean) / abs(before_mean):+.0%}"
        row["note"] = ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    queries = "; ".join(f"{k}: {ev.query}" for k, ev in panels.items())
    first = next(iter(panels.values()), None)
    return Evidence(
        name="prometheus.panels_compared",
        source="prometheus",
        query=queries,
        frame=frame,
        window=first.window if first else None,
        meta={"kind": "prometheus.panels_compared"},
    )

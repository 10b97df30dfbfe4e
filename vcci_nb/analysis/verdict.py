"""Runbook 6.1's verdict, judged from evidence already gathered: resolved, or not yet, with reasons.

Pure: the notebook gathers (:func:`vcci_nb.notebook.resolution_verdict`), this judges.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vcci_nb.analysis.model import Finding
from vcci_nb.evidence import Evidence

__all__ = ["RESOLUTION_PANELS", "Verdict", "judge_resolution", "panel_worst", "pod_ready"]

#: The panels runbook 6.1 wants under their thresholds: (panel, threshold name, label).
RESOLUTION_PANELS: tuple[tuple[str, str, str], ...] = (
    ("error_ratio_5xx", "error_ratio_5xx", "5xx share"),
    ("latency_p95", "latency_p95_s", "p95 latency (s)"),
)


@dataclass
class Verdict:
    """Runbook 6.1's verdict: resolved only when every check passed."""

    resolved: bool
    checks: pd.DataFrame
    reasons: list[str]

    @property
    def label(self) -> str:
        return "resolved" if self.resolved else "not yet"

    def finding(self) -> Finding:
        return Finding(
            key="resolve.verdict",
            severity="info" if self.resolved else "high",
            summary=("Resolved: " if self.resolved else "Not yet resolved: ") + "; ".join(self.reasons),
            value=self.label,
            evidence=tuple(str(e) for e in self.checks.get("evidence", pd.Series(dtype=str))),
            details={"checks": json.loads(self.checks.to_json(orient="records", default_handler=str))},
            runbook="6.1 Verify Resolution",
        )


def panel_worst(ev: Evidence) -> float | None:
    if not ev.ok or ev.frame.empty or "value" not in ev.frame:
        return None
    frame = ev.frame
    if "period" in frame:
        frame = frame[frame["period"] == "incident"]
    series = frame.groupby("timestamp")["value"].sum() if "timestamp" in frame else frame["value"]
    series = pd.to_numeric(series, errors="coerce").dropna()
    series = series[series.map(math.isfinite)]
    return float(series.max()) if not series.empty else None


def pod_ready(pods: pd.DataFrame) -> pd.Series:
    """Which pods are ready: every container ready (``ready`` counts ready containers) and Running."""
    if pods.empty or "ready" not in pods:
        return pd.Series(False, index=pods.index)
    ready = pd.to_numeric(pods["ready"], errors="coerce").fillna(0)
    total = pd.to_numeric(pods.get("containers", ready), errors="coerce").fillna(0)
    running = pods["phase"].eq("Running") if "phase" in pods else pd.Series(True, index=pods.index)
    return (ready >= total) & (total > 0) & running


def judge_resolution(
    pods: Evidence,
    panels: Mapping[str, tuple[Evidence, float]],
    smoke: Evidence,
    *,
    stable_minutes: float,
    api_smoke: Evidence | None = None,
) -> Verdict:
    """Check runbook 6.1 over the last ``stable_minutes``: pods ready now, each of
    :data:`RESOLUTION_PANELS` (``panels`` maps the panel to its evidence and threshold) under its
    threshold for the whole time, and the smoke checks (health endpoints) answering.

    A check that could not be made (a source down, no data) counts against resolving: "we could
    not see" is not "it is fine". Every check and its reason is in the table.
    """
    rows: list[dict[str, Any]] = []

    def check(name: str, ok: bool | None, detail: str, evidence: str) -> None:
        rows.append({"check": name, "result": "pass" if ok else ("unknown" if ok is None else "fail"),
                     "detail": detail, "evidence": evidence})  # fmt: skip

    if pods.ok and not pods.frame.empty:
        ready = pod_ready(pods.frame)
        bad = pods.frame.loc[~ready, "pod"].astype(str).tolist() if "pod" in pods.frame else []
        check(
            "every pod running and ready",
            not bad,
            f"{int(ready.sum())} of {len(ready)} ready" + (f"; not ready: {', '.join(bad[:5])}" if bad else ""),
            pods.name,
        )
    else:
        check("every pod running and ready", None, pods.message or "no pods found", pods.name)
    for panel, _threshold_name, label in RESOLUTION_PANELS:
        if panel not in panels:
            continue
        ev, limit = panels[panel]
        worst = panel_worst(ev)
        check(
            f"{label} under {limit:g} for {stable_minutes:g} min",
            None if worst is None else worst < limit,
            (ev.message or "no data in the window") if worst is None else f"worst {worst:.3g}",
            ev.name,
        )
    if smoke.ok and "up" in smoke.frame:
        frame = smoke.frame
        if "url" in frame:
            frame = frame[frame["url"].astype(str) != ""]
        down = frame.loc[~frame["up"].astype(bool), "name"].astype(str).tolist() if "name" in frame else []
        check("smoke checks answer", not down and not frame.empty,
              "all healthy" if not down else f"failing: {', '.join(down)}", smoke.name)  # fmt: skip
    else:
        check("smoke checks answer", None, smoke.message or "no health endpoints configured", smoke.name)
    if api_smoke is not None:
        if api_smoke.ok and "up" in api_smoke.frame and not api_smoke.frame.empty:
            failing = api_smoke.frame.loc[~api_smoke.frame["up"].astype(bool)]
            detail = "; ".join(f"{r['name']}: {r['detail'] or r['result']}" for r in failing.to_dict("records"))
            names = ", ".join(map(str, api_smoke.frame["name"]))
            check(f"API smoke tests pass ({names})", failing.empty,
                  "all passed" if failing.empty else f"failing: {detail}", api_smoke.name)  # fmt: skip
        else:
            check("API smoke tests pass", None, api_smoke.message or "no smoke checks", api_smoke.name)
    table = pd.DataFrame(rows)
    failed = table[table["result"] != "pass"]
    resolved = failed.empty
    reasons = (
        [f"{r.check}: {r.detail}" for r in failed.itertuples()]
        if not resolved
        else [f"all {len(table)} checks passed over the last {stable_minutes:g} minutes"]
    )
    return Verdict(resolved=resolved, checks=table, reasons=reasons)

"""The Post-Incident Report (seed 7.2), drafted from the incident record.

What the record can state, it states: dates, durations, the merged timeline, the measured
response times, late updates, missed escalations, mitigations that failed verification, and
the impact measured from Prometheus over the incident window. What needs people (the root
cause, lessons, owners of action items) is prefilled as a draft and marked so. The report is
written into the incident folder as ``postmortem.md`` and a self-contained ``postmortem.html``
(no network: the chart is inline SVG), linking the executed notebooks next to it.

Impact. Over the window W from the incident's start (first alert, or detection) to its
resolution, at the end of the window::

    failed share = sum(increase(ERRORS[W])) / sum(increase(REQUESTS[W]))
    affected tenants = values of TENANT with sum by (TENANT)(increase(ERRORS[W])) > 0

REQUESTS, ERRORS and TENANT are the profile's ``prometheus.series`` (requests, errors_5xx,
tenant_label): the lab's ``http_requests_total{job="vcci-api"}`` with ``status=~"5.."``, another
platform's own counter and label (``code``, say).

``increase`` extrapolates to the window edges, as every Prometheus dashboard does; the figure is
the one an engineer gets by running the same query.
"""

from __future__ import annotations

import html
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ConfigError
from vcci_nb.policy import RESPONSE_MINUTES, incident_start
from vcci_nb.policy import maybe_time as _t
from vcci_nb.redact import redact, redact_url

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_FINDING_PRIORITY = {"critical": "P0", "high": "P1", "medium": "P2", "low": "P3", "info": "P3"}


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(max(0.0, seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min" + (f" {sec:02d} s" if sec else "")
    return f"{sec} s"


def _offset(at: datetime, start: datetime) -> str:
    s = int((at - start).total_seconds())
    sign = "-" if s < 0 else "+"
    s = abs(s)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{sign}{h:d}:{m:02d}:{sec:02d}"


def _hm(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S") if at else "—"


# --- Prometheus ------------------------------------------------------------------------------


def _prom_query(base: str, query: str, at: datetime, timeout: float = 10.0) -> pd.DataFrame:
    from vcci_nb.sources.prometheus import query_url

    return query_url(base.rstrip("/"), "/api/v1/query", {"query": query, "time": f"{at.timestamp():.3f}"}, timeout)


def _prom_range(
    base: str, query: str, start: datetime, end: datetime, step: float, timeout: float = 10.0
) -> list[tuple[float, float]]:
    from vcci_nb.sources.prometheus import query_url

    params = {"query": query, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}", "step": f"{step:g}"}
    frame = query_url(base.rstrip("/"), "/api/v1/query_range", params, timeout)
    if frame.empty or "value" not in frame:
        return []
    first = frame if "series" not in frame else frame[frame["series"] == frame["series"].iloc[0]]
    first = first[first["value"].notna()]
    return [(ts.timestamp(), float(v)) for ts, v in zip(first["timestamp"], first["value"], strict=True)]


def _first_value(frame: pd.DataFrame) -> float | None:
    return float(frame["value"].iloc[0]) if len(frame.index) else None


@dataclass(frozen=True)
class ImpactSeries:
    """The request counter the impact is measured on, from the profile (``prometheus.series``):
    all requests, the 5xx part, and the label naming the tenant."""

    requests: str
    errors_5xx: str
    tenant_label: str

    @classmethod
    def from_profile(cls, prof: Profile) -> ImpactSeries:
        return cls(
            requests=prof.query("requests"),
            errors_5xx=prof.query("errors_5xx"),
            tenant_label=str(prof.require("prometheus.series.tenant_label")),
        )


def impact_queries(series: ImpactSeries, window_s: int) -> dict[str, str]:
    """The PromQL behind the impact figures (shown in the report, so anyone can re-run them)."""
    req, err, tenant = series.requests, series.errors_5xx, series.tenant_label
    w = f"[{window_s}s]"
    return {
        "failed_share": f"sum(increase({err}{w})) / sum(increase({req}{w}))",
        "failed": f"sum(increase({err}{w}))",
        "total": f"sum(increase({req}{w}))",
        "tenants_failed": f"sum by ({tenant}) (increase({err}{w})) > 0",
        "tenants_total": f"count(sum by ({tenant}) (increase({req}{w})) > 0)",
        "ratio_series": f"sum(rate({err}[1m])) / sum(rate({req}[1m]))",
    }


def measure_impact(base: str | None, series: ImpactSeries, start: datetime, end: datetime) -> dict[str, Any]:
    """Impact over [start, end] from Prometheus; ``status`` is ``unavailable`` when it cannot be asked."""
    window_s = max(60, math.ceil((end - start).total_seconds()))
    queries = impact_queries(series, window_s)
    out: dict[str, Any] = {"window_s": window_s, "at": end.isoformat(), "queries": queries}
    if not base:
        return {
            **out,
            "status": "unavailable",
            "message": "no Prometheus URL (set PROMETHEUS_URL or pass prometheus_url); impact left to fill in",
        }
    out["prometheus"] = redact_url(base)
    try:
        share = _prom_query(base, queries["failed_share"], end)
        failed = _prom_query(base, queries["failed"], end)
        total = _prom_query(base, queries["total"], end)
        tenants = _prom_query(base, queries["tenants_failed"], end)
        tenants_total = _prom_query(base, queries["tenants_total"], end)
    except Exception as exc:  # any failure to ask is reported, never raised: the rest of the report stands
        return {
            **out,
            "status": "unavailable",
            "message": redact(f"Prometheus at {redact_url(base)} could not be asked: {exc}"),
        }
    share_v = _first_value(share)
    if share_v is not None and math.isnan(share_v):
        share_v = None
    label = series.tenant_label
    affected = sorted(str(t) for t in tenants[label]) if label in tenants else ["?"] * len(tenants.index)
    out.update(
        {
            "status": "ok",
            "failed_share": share_v,
            "failed_requests": _first_value(failed) or 0.0,
            "total_requests": _first_value(total) or 0.0,
            "affected_tenants": affected,
            "tenants_total": int(_first_value(tenants_total) or 0),
        }
    )
    try:
        pad = timedelta(seconds=max(300, window_s // 4))
        step = max(15.0, (end - start + 2 * pad).total_seconds() / 200)
        out["series"] = _prom_range(base, queries["ratio_series"], start - pad, end + pad, step)
    except Exception as exc:  # the chart is a nicety
        log.info("no error-ratio series for the chart: %s", exc)
        out["series"] = []
    return out


#: How far before the first alert the postmortem looks for the SLI's first crossing (minutes).
ONSET_LOOKBACK_MINUTES = 120.0


def sli_onset(
    base: str | None,
    profile: Profile,
    alert_start: datetime,
    end: datetime,
    *,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """When the SLI first crossed its threshold in the breach the incident is about.

    The SLI is the profile's ``postmortem.sli_panel`` (default ``error_ratio_5xx``) with its
    threshold (``postmortem.sli_threshold``, else the panel's threshold in ``thresholds:``). Prometheus
    is searched from ``postmortem.onset_lookback_minutes`` (default 120) before the first alert to
    the end; the breach is the run of samples above the threshold that holds the alert's start (or
    the first one after it), and its first sample is the onset. ``at`` is None when there is none.
    """
    from vcci_nb.sources.prometheus import panel_query

    panel = str(profile.get("postmortem.sli_panel") or "error_ratio_5xx")
    lookback = float(profile.get("postmortem.onset_lookback_minutes") or ONSET_LOOKBACK_MINUTES)
    out: dict[str, Any] = {"panel": panel, "lookback_minutes": lookback, "at": None}
    try:
        query, info = panel_query(profile, panel)
    except ConfigError as exc:
        return {**out, "status": "unavailable", "message": str(exc)}
    threshold = profile.get("postmortem.sli_threshold")
    threshold = float(threshold) if threshold is not None else info.get("threshold")
    out.update({"query": query, "title": info.get("title", panel), "threshold": threshold})
    if threshold is None:
        return {**out, "status": "unavailable", "message": f"no threshold for the SLI panel {panel!r}"}
    if not base:
        return {**out, "status": "unavailable", "message": "no Prometheus URL"}
    search_from = alert_start - timedelta(minutes=lookback)
    step = max(15.0, (end - search_from).total_seconds() / 1000)
    try:
        points = _prom_range(base, query, search_from, end, step, timeout)
    except Exception as exc:  # reported, never raised: the alert's start stands in
        return {**out, "status": "unavailable", "message": redact(f"Prometheus could not be asked: {exc}")}
    runs: list[list[tuple[float, float]]] = []
    for ts, value in points:
        if value > float(threshold) and math.isfinite(value):
            if runs and ts - runs[-1][-1][0] <= step * 1.5:
                runs[-1].append((ts, value))
            else:
                runs.append([(ts, value)])
    anchor = alert_start.timestamp()
    holding = [r for r in runs if r[0][0] <= anchor + step and r[-1][0] >= anchor - step]
    after = [r for r in runs if r[0][0] > anchor]
    chosen = holding[0] if holding else (after[0] if after else None)
    out["status"] = "ok"
    if chosen is not None:
        out["at"] = datetime.fromtimestamp(chosen[0][0], UTC)
    return out


# --- the report ------------------------------------------------------------------------------


@dataclass
class Postmortem:
    """A drafted Post-Incident Report. Shows itself in a notebook."""

    incident_id: str
    markdown: str
    html: str
    markdown_path: Path
    html_path: Path
    impact: dict[str, Any]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    response: dict[str, float | None] = field(default_factory=dict)
    related: list[dict[str, Any]] = field(default_factory=list)
    #: The drafted root cause (a story fact's dict: key, summary, notebooks, ...), or None.
    root_cause: dict[str, Any] | None = None
    #: The impact chart (inline SVG: the SLI over the incident, its moments marked), "" when not measured.
    chart_svg: str = ""

    def _repr_markdown_(self) -> str:
        return self.markdown

    def _repr_html_(self) -> str:
        """The report's body (chart included) for a notebook output; the file has the full page."""
        start = self.html.find("<body>")
        end = self.html.rfind("</body>")
        return self.html[start + len("<body>") : end] if start >= 0 and end > start else self.html

    def __str__(self) -> str:
        return self.markdown


def merged_timeline(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Alerts, runs, findings, actions, notifications, escalations and status changes, sorted by time.

    The record's timeline holds most; alerts' own start times (``startsAt``, when the condition
    began, before anyone was told) and notebook runs the runner did not log as events are added.
    """
    items: list[dict[str, Any]] = []
    for ev in data.get("timeline") or []:
        at = _t(ev.get("at"))
        if at is None:
            continue
        summary = str(ev.get("summary", ""))
        d = ev.get("data") or {}
        if ev.get("kind") in {"notification", "escalation"} and d.get("dry_run"):
            continue  # a draft nobody received is not part of what happened
        item = {"at": at, "kind": ev.get("kind"), "actor": ev.get("actor"), "summary": summary}
        if ev.get("kind") == "finding" and d.get("key"):
            item["key"] = d["key"]
        items.append(item)
    for alert in data.get("alerts") or []:
        at = _t(alert.get("startsAt") or alert.get("starts_at"))
        if at is not None:
            name = (alert.get("labels") or {}).get("alertname") or "alert"
            items.append({"at": at, "kind": "alert", "actor": "prometheus", "summary": f"{name} began firing"})
    if not any(i["kind"] == "run" for i in items):
        for nb in data.get("notebooks") or []:
            if (at := _t(nb.get("started_at"))) is not None:
                items.append({"at": at, "kind": "run", "actor": "runner", "summary": f"Notebook {nb['name']} started"})
            if (at := _t(nb.get("finished_at"))) is not None:
                items.append(
                    {
                        "at": at,
                        "kind": "run",
                        "actor": "runner",
                        "summary": f"Notebook {nb['name']} {nb.get('status')}"
                        + (f": {nb['error']}" if nb.get("error") else ""),
                    }
                )
    order = {"alert": 0, "status": 1, "run": 2, "finding": 3, "action": 4, "notification": 5, "escalation": 6}
    items.sort(key=lambda i: (i["at"], order.get(str(i["kind"]), 9)))
    return items


def told_once(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The merged timeline as a person reads it: a finding only when it is new or its summary
    changed (every notebook that saw it adds an entry to the record), and alerts that began
    firing within a minute of each other in one row. Bookkeeping a reader does not need is left
    out: each notebook that succeeded (its run's "finished: N/N succeeded" says so), ``serve``'s
    echo of a bundle the runner's own entry already names, and changes to context findings."""
    from vcci_nb.story import CONTEXT, _strip_where, role

    said: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for item in items:
        if item["kind"] == "run" and _BOOKKEEPING.match(str(item["summary"])):
            continue
        if item["kind"] == "finding":
            key = str(item.get("key") or item["summary"])
            text = _strip_where(str(item["summary"]))
            if said.get(key) == text or (key in said and role(key, text.partition("]")[0].strip("[")) == CONTEXT):
                continue
            prefix = "Changed: " if key in said else ""
            said[key] = text
            out.append({**item, "summary": prefix + text})
            continue
        name = _firing_name(item) if item["kind"] == "alert" else None
        prev = out[-1] if out else None
        if name and prev is not None and prev.get("names") and (item["at"] - prev["at"]).total_seconds() <= 60:
            if name not in prev["names"]:
                prev["names"].append(name)
            elif len(prev["names"]) == 1 and ": " in str(item["summary"]) and ": " not in str(prev["summary"]):
                # one alert told twice (its start, then Alertmanager's notice): one row, with the annotation
                prev["summary"] = f"{name} began firing: {str(item['summary']).split(': ', 1)[1]}"
            n = len(prev["names"])
            if n > 1:
                prev["summary"] = f"{n} alerts began firing ({', '.join(prev['names'])})"
            continue
        if name:
            item = {**item, "names": [name]}
        out.append(item)
    return out


_BOOKKEEPING = re.compile(r"^(\S+ succeeded in [\d.]+ s|Started bundle '.*|Bundle '.*' succeeded \(exit 0\).*)$")


def _firing_name(item: dict[str, Any]) -> str | None:
    """The alert name of a "began firing" / "Alert X firing" row (the record has both for one alert)."""
    from vcci_nb.story import firing_name

    return firing_name(str(item.get("summary") or ""))


def response_times(data: dict[str, Any], start: datetime) -> dict[str, float | None]:
    """Seconds: detect (start → detected), then acknowledge/identify/mitigate/resolve from detection."""
    detected = _t(data.get("detected_at")) or _t(data.get("created_at"))
    mitigated = _t(data.get("mitigated_at"))
    if mitigated is None:
        ok = [t for a in data.get("actions") or [] if a.get("result") == "succeeded" and (t := _t(a.get("at")))]
        mitigated = min(ok) if ok else None
    resolved = _t(data.get("resolved_at")) or _t(data.get("closed_at"))

    def since(at: datetime | None) -> float | None:
        return (at - detected).total_seconds() if at and detected else None

    return {
        "detect": (detected - start).total_seconds() if detected else None,
        "acknowledge": since(_t(data.get("acknowledged_at"))),
        "identify": since(_t(data.get("identified_at"))),
        "mitigate": since(mitigated),
        "resolve": since(resolved),
    }


def related_incidents(data: dict[str, Any], outputs: Path | str | None) -> list[dict[str, Any]]:
    """Earlier incidents under ``outputs`` that share finding keys with this one, most overlap first."""
    from vcci_nb.record import list_records

    keys = {str(f.get("key")) for f in data.get("findings") or []} - {"checks.not_run"}
    if not keys:
        return []
    created = data.get("created_at") or ""
    out = []
    for other in list_records(outputs):
        if other.get("id") == data["id"] or (other.get("created_at") or "") > created:
            continue
        shared = sorted(keys & {str(f.get("key")) for f in other.get("findings") or []})
        if shared:
            out.append(
                {
                    "id": other["id"],
                    "title": other.get("title"),
                    "severity": other.get("severity"),
                    "created_at": other.get("created_at"),
                    "shared": shared,
                }
            )
    out.sort(key=lambda r: (-len(r["shared"]), r["created_at"] or ""), reverse=False)
    return out


def _facts(
    data: dict[str, Any], profile: Profile, start: datetime, resp: dict[str, float | None], now: datetime
) -> tuple[list[str], list[str]]:
    from vcci_nb import escalation

    good: list[str] = []
    bad: list[str] = []
    sev = str(data["severity"])
    alerted = bool(data.get("alerts"))
    if resp["detect"] is not None and alerted:  # without an alert, detection is the opening: nothing to judge
        (good if resp["detect"] <= 300 else bad).append(
            f"Detection {_dur(resp['detect'])} after the problem began"
            + ("" if resp["detect"] <= 300 else " (more than 5 minutes: check alert thresholds and `for:`)")
        )
    if resp["acknowledge"] is not None and (alerted or resp["acknowledge"] > 0):
        limit = RESPONSE_MINUTES.get(sev, 30) * 60
        (good if resp["acknowledge"] <= limit else bad).append(
            f"Acknowledged {_dur(resp['acknowledge'])} after detection "
            f"({'within' if resp['acknowledge'] <= limit else 'beyond'} the {sev} response time of {_dur(limit)})"
        )
    history = escalation.update_history(data, profile, now)
    late = [u for u in history if u["late_minutes"] > 0]
    sent = [u for u in history if u["sent_at"]]
    for u in late:
        due = _t(u["due_at"])
        if u["sent_at"]:
            bad.append(
                f"Update #{u['number']} was {u['late_minutes']:g} min late "
                f"(due {_hm(due)}, sent {_hm(_t(u['sent_at']))})"
            )
        else:
            bad.append(f"Update #{u['number']} was due {_hm(due)} and never sent")
    if sent and not late:
        good.append(f"Stakeholder updates on time ({len(sent)} sent)")
    drafts = [n for n in data.get("notifications") or [] if n.get("status") == "dry_run"]
    if not sent and drafts:
        bad.append(f"No update was actually sent ({len(drafts)} dry-run draft(s) only)")
    for n in data.get("notifications") or []:
        if n.get("status") == "failed":
            bad.append(f"Notification via {n.get('channel')} failed at {_hm(_t(n.get('at')))}: {n.get('error')}")
    for e in escalation.escalations(data, profile, now):
        if e["missed"]:
            bad.append(
                f"Escalation to {e['label']} was due at {_hm(e['due_at'])} ({'; '.join(e['reasons'])}) and was not made"
            )
        elif e["done"] and e["due"] and (e["late_minutes"] or 0) > 5:
            bad.append(f"Escalation to {e['label']} came {e['late_minutes']:g} min after it was due")
        elif e["done"]:
            good.append(f"Escalated to {e['label']} at {_hm(e['done_at'])}")
    for a in data.get("actions") or []:
        result = a.get("result")
        name = a.get("summary") or a.get("action") or "action"
        if result == "succeeded":
            good.append(f"Mitigation verified: {name}")
        elif result in {"unverified", "failed"}:
            bad.append(
                f"Mitigation {'did not pass verification' if result == 'unverified' else 'failed'}: {name}"
                + (f" ({a.get('message')})" if a.get("message") else "")
            )
    for nb in data.get("notebooks") or []:
        if nb.get("status") in {"failed", "timed_out"}:
            bad.append(f"Notebook {nb['name']} {nb['status']}" + (f": {nb.get('error')}" if nb.get("error") else ""))
    return good, bad


def _svg_chart(
    series: list[tuple[float, float]], start: datetime, end: datetime, marks: list[tuple[datetime, str]]
) -> str:
    """A small inline SVG line chart of the 5xx share, with the incident window shaded."""
    if len(series) < 2:
        return ""
    w, h, pad = 760, 220, 40
    xs = [p[0] for p in series]
    x0, x1 = min(xs), max(xs)
    ymax = max(0.05, max(p[1] for p in series) * 1.1)

    def x(ts: float) -> float:
        return pad + (ts - x0) / max(1e-9, x1 - x0) * (w - 2 * pad)

    def y(v: float) -> float:
        return h - pad - v / ymax * (h - 2 * pad)

    pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in series)
    sx, ex = x(max(x0, start.timestamp())), x(min(x1, end.timestamp()))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        'aria-label="Share of requests failing with 5xx over the incident">',
        f'<rect x="{sx:.1f}" y="{pad}" width="{max(0.0, ex - sx):.1f}" height="{h - 2 * pad}" fill="#fde2e2"/>',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#888"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#888"/>',
        f'<polyline fill="none" stroke="#b00" stroke-width="1.5" points="{pts}"/>',
        f'<text x="{pad - 4}" y="{pad + 4}" font-size="10" text-anchor="end">{ymax:.0%}</text>',
        f'<text x="{pad - 4}" y="{h - pad}" font-size="10" text-anchor="end">0%</text>',
        f'<text x="{pad}" y="{h - pad + 14}" font-size="10">{datetime.fromtimestamp(x0, UTC):%H:%M} UTC</text>',
        f'<text x="{w - pad}" y="{h - pad + 14}" font-size="10" text-anchor="end">'
        f"{datetime.fromtimestamp(x1, UTC):%H:%M} UTC</text>",
        f'<text x="{w / 2}" y="14" font-size="12" text-anchor="middle">5xx share of requests (1 min rate)</text>',
    ]
    for at, label in marks:
        if x0 <= at.timestamp() <= x1:
            mx = x(at.timestamp())
            parts.append(
                f'<line x1="{mx:.1f}" y1="{pad}" x2="{mx:.1f}" y2="{h - pad}" stroke="#06a" stroke-dasharray="3,3"/>'
            )
            parts.append(f'<text x="{mx + 2:.1f}" y="{pad + 10}" font-size="9" fill="#06a">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def decision_tree_hypothesis(findings: list[Any]) -> dict[str, Any] | None:
    """The seed's decision tree (3.4) ranked over the record's findings: the most likely leaf, or None.

    Only findings are available after the fact (the evidence stays in the notebooks), so leaves
    are judged by the findings that support them.
    """
    try:
        from vcci_nb.analysis.decision_tree import evaluate

        result = evaluate([], findings=[f for f in findings if f.key != "tree.hypothesis"])
    except Exception as exc:  # the report stands without it
        log.info("decision tree not evaluated: %s", exc)
        return None
    top = result.top
    return top.to_dict() if top is not None else None


def _tree_runbook(tree: dict[str, Any] | None, key: str) -> str:
    if tree and key in tree.get("findings", []):
        return f"Runbook: {tree['runbook']}"
    return ""


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|!~])")


def _md_escape(text: Any) -> str:
    """Record text (alert summaries, titles, notes) as literal Markdown: one line, no live markup.

    Alert annotations are written by whoever can fire an alert; unescaped, ``![t](http://host/x.png)``
    became an ``<img>`` that called out when the report was opened, and ``[x](url)`` a link.
    """
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def build(
    record_id: str,
    outputs: Path | str | None = None,
    prometheus_url: str | None = None,
    *,
    profile: Profile | str | None = None,
    now: datetime | None = None,
    write: bool = True,
) -> Postmortem:
    """Draft the Post-Incident Report for ``record_id`` and write it into the incident folder."""
    from vcci_nb import story
    from vcci_nb.analysis.model import Finding
    from vcci_nb.record import IncidentRecord

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    record = IncidentRecord.load(record_id, outputs)
    data = record.data
    now = now or datetime.now(UTC)

    start = incident_start(data)
    resolved = _t(data.get("resolved_at")) or _t(data.get("closed_at"))
    end = resolved or now
    sev = str(data["severity"])
    resp = response_times(data, start)
    if prometheus_url is None:
        var = (prof.get("connections.prometheus") or {}).get("url_env", "PROMETHEUS_URL")
        from vcci_nb.config import env_secret

        prometheus_url = env_secret(str(var))
    # Impact runs from when the SLI first crossed its threshold if that was before the first alert
    # (a fault often starts minutes before its alert fires), else from the first alert or detection.
    onset = sli_onset(prometheus_url, prof, start, end)
    impact_start = start
    if onset.get("at") is not None and onset["at"] < start:
        impact_start = onset["at"]
        start_how = (
            f"{impact_start:%H:%M:%S} UTC, when the SLI ({onset['title']}) first crossed its threshold "
            f"{onset['threshold']:g}, {_dur((start - impact_start).total_seconds())} before the first alert "
            f"(searched {onset['lookback_minutes']:g} min back in Prometheus: `{onset['query']}`)"
        )
    elif onset.get("status") == "ok":
        start_how = (
            f"{start:%H:%M:%S} UTC, the first alert or detection: the SLI ({onset['title']}) did not cross "
            f"{onset['threshold']:g} earlier in the {onset['lookback_minutes']:g} min searched"
        )
    else:
        start_how = (
            f"{start:%H:%M:%S} UTC, the first alert or detection (the SLI's first crossing could not be "
            f"searched: {onset.get('message', 'unknown')})"
        )
    impact = measure_impact(prometheus_url, ImpactSeries.from_profile(prof), impact_start, end)
    impact["start_used"] = impact_start.isoformat()
    impact["start_how"] = start_how
    impact["onset"] = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in onset.items()}
    timeline = merged_timeline(data)
    findings: list[Finding] = []
    for f in data.get("findings") or []:
        try:
            findings.append(Finding.from_dict(f))
        except (KeyError, TypeError):
            continue
    # One fact per finding key, causes above symptoms: the root cause and the first action item
    # come from the most specific causal finding (preferring the decision tree's top branch);
    # alerts, error rates and latency are how it was detected and what it did (Detection, Impact);
    # checks that could not run (checks.not_run) are context: they say what we could not see.
    tree = decision_tree_hypothesis(findings)
    facts = story.facts(data.get("findings") or [])
    root = story.root_cause(facts, tree)
    explaining = [f for f in facts if f.role in (story.CAUSE, story.CONTRIBUTING) and f.severity != "info"]
    if root is not None:
        explaining = [root] + [f for f in explaining if f is not root]
    top_unique = explaining[:3]
    detected = [f for f in facts if f.role == story.SYMPTOM and f.severity != "info"]
    good, bad = _facts(data, prof, start, resp, now)
    related = related_incidents(data, record.outputs)

    # --- markdown ---------------------------------------------------------------------------
    md: list[str] = [f"# Post-Incident Report: {data['id']}", ""]
    if resolved is None:
        md += [f"> **DRAFT — the incident is still {data['status']}**; figures run to {now:%Y-%m-%d %H:%M UTC}.", ""]
    md += ["> Drafted by vcci-nb from the incident record. Sections marked DRAFT need a person to confirm.", ""]
    md += [
        "## Incident Summary",
        f"- **Title**: {_md_escape(data['title'])}",
        f"- **Date**: {start:%Y-%m-%d}",
        f"- **Duration**: {_dur((end - start).total_seconds())} ({start:%H:%M} - {end:%H:%M} UTC, "
        "first alert or detection to resolution)",
        f"- **Severity**: {sev}",
        f"- **Incident Commander**: {_md_escape(data.get('commander') or 'unassigned')}",
    ]
    if impact["status"] == "ok":
        share = impact["failed_share"]
        tenants = impact["affected_tenants"]
        md.append(
            f"- **Impact**: {share:.1%} of API requests failing ({impact['failed_requests']:.0f} of "
            f"{impact['total_requests']:.0f}), affecting {len(tenants)} of {impact['tenants_total']} tenants"
            if share is not None
            else "- **Impact**: no requests recorded in the window"
        )
    else:
        md.append(f"- **Impact**: _not measured: {impact['message']}_")
    md.append(f"- **Impact measured from**: {impact['start_how']}")
    if detected:
        md.append(f"- **Detection**: {_md_escape('; '.join(f.summary for f in detected[:3]))}")
    if root is not None:
        md.append(f"- **Root Cause** (DRAFT, confirm): {_md_escape(root.summary)} (`{root.key}`)")
        if tree:
            md.append(
                f"- **Decision tree** (DRAFT): {tree['symptom']} → {tree['cause']} ({tree['verdict']}); "
                f"runbook {tree['runbook']}"
            )
    else:
        hints = story.leads(facts)[:2]
        md.append(
            "- **Root Cause** (DRAFT): _no causal finding recorded (only symptoms); to be determined in the review_"
            + (f"; leads: {_md_escape('; '.join(f.summary for f in hints))}" if hints else "")
        )
    if data.get("resolution"):
        md.append(f"- **Resolution**: {_md_escape(data['resolution'])}")
    md.append("")

    md += [
        "## Timeline",
        f"All times UTC; offsets from the start ({start:%Y-%m-%d %H:%M:%S}).",
        "",
        "| time | offset | kind | what | who |",
        "|---|---|---|---|---|",
    ]
    for item in told_once(timeline):
        md.append(
            f"| {_hm(item['at'])} | {_offset(item['at'], start)} | {item['kind']} | "
            f"{_md_escape(item['summary'])} | {_md_escape(item.get('actor') or '')} |"
        )
    md.append("")

    md += [
        "## Measured Response",
        "| measure | time | from |",
        "|---|---|---|",
        f"| time to detect | {_dur(resp['detect'])} | start of the problem |",
        f"| time to acknowledge | {_dur(resp['acknowledge'])} | detection |",
        f"| time to identify | {_dur(resp['identify'])} | detection |",
        f"| time to mitigate | {_dur(resp['mitigate'])} | detection |",
        f"| time to resolve | {_dur(resp['resolve'])} | detection |",
        "",
    ]

    md += [
        "## Root Cause Analysis",
        "**DRAFT — prefilled from the top findings; confirm or correct.**",
        "",
        "### What Happened",
    ]
    if top_unique:
        for f in top_unique:
            seen = f"; seen in {f.where}" if f.notebooks else ""
            md.append(f"- [{f.severity}] {_md_escape(f.summary)} — `{f.key}` ({f.role}{_md_escape(seen)})")
    else:
        md.append("- _to be completed_")
    if tree:
        md.append(
            f"- Decision tree (seed 3.4): {tree['symptom']} → {tree['cause']}, {tree['verdict']} "
            f"(score {tree['score']}); next check: {tree['check']}"
        )
    md += [
        "",
        "### Why It Happened",
        "- _to be completed in the review_",
        "",
        "### Contributing Factors",
        "- _to be completed in the review_",
        "",
    ]

    md += ["## Impact Analysis"]
    for f in detected:
        md.append(f"- **Symptom**: {_md_escape(f.summary)} — `{f.key}`")
    if impact["status"] == "ok" and impact["failed_share"] is not None:
        tenants = impact["affected_tenants"]
        shown = ", ".join(tenants[:20]) + (f" and {len(tenants) - 20} more" if len(tenants) > 20 else "")
        md += [
            f"- **Customer Impact**: {len(tenants)} tenant(s) received 5xx responses "
            f"({impact['failed_share']:.1%} failure rate over the window){': ' + shown if tenants else ''}",
            f"- **Measured by**: `{impact['queries']['failed_share']}` at {impact['at']} on {impact.get('prometheus')}",
        ]
    else:
        md.append(f"- **Customer Impact**: _{impact.get('message', 'not measured')}_")
    md += [
        "- **Revenue Impact**: _to be completed (SLA credits)_",
        "- **Reputation Impact**: _to be completed (support tickets)_",
        "",
    ]

    md += [
        "## What Went Well",
        *([f"- ✓ {_md_escape(g)}" for g in good] or ["- ✓ _to be completed_"]),
        "",
        "## What Didn't Go Well",
        *([f"- ✗ {_md_escape(b)}" for b in bad] or ["- ✗ _to be completed_"]),
        "",
    ]

    md += ["## Action Items", "_Proposed from the findings and the facts above; assign owners and dates._", ""]
    due_base = (resolved or now).date()
    n = 0
    for f in [f for f in top_unique if f.role == story.CAUSE]:
        n += 1
        pr = _FINDING_PRIORITY.get(f.severity, "P2")
        due = due_base + timedelta(days=7 if pr in {"P0", "P1"} else 30)
        runbook = str(f.latest.get("runbook") or "")
        md += [
            f"{n}. **[{pr}] Prevent recurrence: {_md_escape(f.summary)}** (Owner: @TBD, Due: {due:%Y-%m-%d})",
            f"   - {_md_escape(runbook or _tree_runbook(tree, f.key) or 'Decide the long-term fix for ' + f.key)}",
        ]
    if any("Update #" in b or "Escalation" in b for b in bad):
        n += 1
        md += [
            f"{n}. **[P2] Keep the communication cadence** (Owner: @TBD, "
            f"Due: {due_base + timedelta(days=14):%Y-%m-%d})",
            "   - Review why updates or escalations were late; consider `vcci-nb serve` reminders",
        ]
    if n == 0:
        md.append("1. **[P2] _to be completed_** (Owner: @TBD, Due: YYYY-MM-DD)")
    md += ["", "## Lessons Learned", "- _to be completed in the review meeting_", ""]

    md += ["## Related Incidents"]
    if related:
        for r in related:
            md.append(
                f"- {r['id']}: {_md_escape(r['title'])} ({r['severity']}, {str(r['created_at'])[:10]}) — shares "
                + ", ".join(f"`{k}`" for k in r["shared"])
            )
    else:
        md.append("- None found under outputs/ with the same findings")
    md.append("")

    nbs = data.get("notebooks") or []
    if nbs:
        md += ["## Executed Notebooks"]
        for nb in nbs:
            link = nb.get("html") or nb.get("path")
            md.append(
                f"- [{_md_escape(nb['name'])}]({link}) — {nb.get('status')}"
                if link
                else f"- {_md_escape(nb['name'])} — {nb.get('status')}"
            )
        md.append("")
    markdown = redact("\n".join(md))

    # --- html -------------------------------------------------------------------------------
    import mistune

    body = mistune.create_markdown(escape=True, plugins=["table"])(markdown)
    assert isinstance(body, str)
    marks = [
        (t, lbl)
        for t, lbl in (
            (impact_start if impact_start < start else None, "SLI crossed"),
            (_t(data.get("detected_at")), "detected"),
            (_t(data.get("identified_at")), "identified"),
            (_t(data.get("mitigated_at")), "mitigated"),
            (resolved, "resolved"),
        )
        if t is not None
    ]
    chart = _svg_chart(impact.get("series") or [], impact_start, end, marks)
    if chart:
        body = body.replace("<h2>Timeline</h2>", f"<figure>{chart}</figure>\n<h2>Timeline</h2>", 1)
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Post-Incident Report {html.escape(data['id'])}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222;padding:0 1em}"
        "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.25em .5em;"
        "text-align:left;vertical-align:top;font-size:.92em}blockquote{background:#fff8e1;margin:0;"
        "padding:.3em 1em;border-left:4px solid #e0a800}code{background:#f3f3f3}</style></head><body>\n"
        f"{body}\n<p><a href='index.html'>incident page</a> · <a href='record.json'>record.json</a></p>"
        "</body></html>\n"
    )
    page = redact(page)
    md_path = record.folder / "postmortem.md"
    html_path = record.folder / "postmortem.html"
    if write:
        from vcci_nb.record import atomic_write_text

        atomic_write_text(md_path, markdown, what="postmortem")
        atomic_write_text(html_path, page, what="postmortem")
    return Postmortem(
        data["id"],
        markdown,
        page,
        md_path,
        html_path,
        impact,
        timeline=timeline,
        response=resp,
        related=related,
        root_cause=root.to_dict() if root is not None else None,
        chart_svg=chart or "",
    )


__all__ = [
    "ConfigError",
    "ImpactSeries",
    "Postmortem",
    "build",
    "impact_queries",
    "measure_impact",
    "merged_timeline",
    "response_times",
]

"""``index.html``: the incident's one-page view of ``record.json``, rewritten after every write.

Pure rendering (a record's data, and optionally its folder for the latest SLI series, in; HTML
out): :mod:`vcci_nb.record` writes it next to ``record.json`` and re-exports what the CLI shows
(``format_duration``, ``severity_text``, ``truncated_text``).
"""

from __future__ import annotations

import contextlib
import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vcci_nb.errors import RecordError
from vcci_nb.policy import parse_time

_SEV_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def truncated_text(group: dict[str, Any]) -> str:
    """``Alertmanager left out 3 alerts of this group`` when its notification was cut (max_alerts), else ""."""
    n = group.get("truncatedAlerts") or 0
    if not isinstance(n, int) or n <= 0:
        return ""
    return (
        f"Alertmanager left out {n} alert{'s' if n != 1 else ''} of this group "
        "(max_alerts); the record does not hold them: see Alertmanager for the whole group"
    )


def severity_text(data: dict[str, Any]) -> str:
    """``declared P1 (by alice: …); triage suggests P2``: what the severity is, who set it, what triage thinks."""
    declared = data.get("severity_declared") or {}
    text = f"declared {data['severity']}"
    if declared.get("level") == data["severity"]:
        text += f" (by {declared.get('actor') or 'unknown'}: {declared.get('reason') or 'no reason given'})"
    elif data.get("source") == "alertmanager":
        text += " (from the alert's severity label)"
    suggested = data.get("suggested_severity") or {}
    if suggested.get("level"):
        text += f"; triage suggests {suggested['level']}"
        if suggested["level"] != data["severity"]:
            text += " (differs: the declared one rules escalation and updates)"
    else:
        text += "; no triage suggestion yet"
    return text


def _severity_line(data: dict[str, Any]) -> str:
    e = html.escape
    suggested = data.get("suggested_severity") or {}
    reasons = "; ".join(str(r) for r in (suggested.get("reasons") or [])[:4])
    title = f" title='{e(reasons, quote=True)}'" if reasons else ""
    return f"<span id='severity'{title}>severity {e(severity_text(data))}</span> ·"


def _contacts_html(data: dict[str, Any]) -> str:
    """Who to call and the links (re-opened on the incident's own window once it is resolved)."""
    c = data.get("contacts") or {}
    if not c:
        return ""
    e = html.escape
    from vcci_nb.contacts import describe, fill
    from vcci_nb.policy import incident_start, maybe_time

    end = maybe_time(data.get("resolved_at")) or maybe_time(data.get("closed_at"))
    links = c.get("links") or []
    if end is not None and c.get("link_templates"):
        start = incident_start(data)
        links = [
            {**t, "url": fill(str(t["url"]), start=start, end=end, namespace=str(c.get("namespace") or ""),
                              incident_id=str(data["id"]))}
            for t in c["link_templates"]
        ]  # fmt: skip
    who = []
    if c.get("on_call"):
        who.append("on call " + " · ".join(e(str(v)) for v in c["on_call"].values() if v))
    if c.get("hotline"):
        who.append(f"hotline <a href='tel:{e(str(c['hotline']), quote=True)}'>{e(str(c['hotline']))}</a> (24/7)")
    rota = c.get("rota") or {}
    if rota.get("url"):
        who.append(f"<a href='{e(str(rota['url']), quote=True)}'>{e(str(rota.get('name') or 'on-call rota'))}</a>")
    items = "".join(f"<li>{e(describe(x))}</li>" for x in c.get("emergency") or [])
    link_items = " · ".join(
        f"<a href='{e(str(ln['url']), quote=True)}'>{e(str(ln['name']))}</a>" for ln in links if ln.get("url")
    )
    return (
        "<h2>Contacts and links</h2>"
        + (f"<p id='contacts'>{' · '.join(who)}</p>" if who else "")
        + (f"<ul>{items}</ul>" if items else "")
        + (f"<p id='links'>{link_items}</p>" if link_items else "")
    )


#: The SLI charts on the incident page: (panel, title, unit).
SLI_CHARTS: tuple[tuple[str, str, str], ...] = (
    ("error_ratio_5xx", "5xx share of requests", "ratio"),
    ("latency_p95", "p95 latency", "s"),
)


def _latest_series(folder: Path, panel: str) -> dict[str, Any] | None:
    """The newest ``evidence/*/prometheus.<panel>.series.json`` a notebook saved, or None."""
    found = sorted((folder / "evidence").glob(f"*/*{panel}.series.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in found:
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(body, dict) and body.get("points"):
            return body
    return None


def _sli_svg(title: str, unit: str, points: list[list[Any]], alerts: list[tuple[datetime, str, bool]]) -> str:
    """An inline SVG line chart with the alerts marked (orange: began firing; green: resolved)."""
    from vcci_nb.numbers import fmt_value

    e = html.escape
    pts = []
    for t, v in points:
        with contextlib.suppress(ValueError, TypeError, RecordError):
            if float(v) == float(v):
                pts.append((parse_time(str(t)), float(v)))
    if len(pts) < 2:
        return ""
    w, h, left, pad = 640, 170, 64, 22
    t0, t1 = pts[0][0].timestamp(), pts[-1][0].timestamp()
    t1 = t1 if t1 > t0 else t0 + 1
    hi = max(v for _, v in pts) or 1.0

    def x(t: float) -> float:
        return left + (w - left - 10) * (t - t0) / (t1 - t0)

    def y(v: float) -> float:
        return h - pad - (h - 2 * pad) * v / hi

    line = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in pts)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' aria-label='{e(title)}'>",
        f"<text x='{left}' y='14' font-size='12' font-weight='bold'>{e(title)}</text>",
        f"<line x1='{left}' y1='{h - pad}' x2='{w - 10}' y2='{h - pad}' stroke='#999'/>",
        f"<text x='{left - 4}' y='{y(hi) + 4:.1f}' font-size='10' text-anchor='end'>{e(fmt_value(hi, unit))}</text>",
        f"<text x='{left - 4}' y='{h - pad + 4}' font-size='10' text-anchor='end'>{e(fmt_value(0.0, unit))}</text>",
        f"<text x='{left}' y='{h - 4}' font-size='10'>{e(pts[0][0].strftime('%H:%M'))} UTC</text>",
        f"<text x='{w - 10}' y='{h - 4}' font-size='10' text-anchor='end'>{e(pts[-1][0].strftime('%H:%M'))}</text>",
        f"<polyline fill='none' stroke='#b00' stroke-width='1.5' points='{line}'/>",
    ]
    for at, name, firing in alerts:
        ts = at.timestamp()
        if not t0 <= ts <= t1:
            continue
        color = "#d60" if firing else "#070"
        parts.append(
            f"<line x1='{x(ts):.1f}' y1='{pad}' x2='{x(ts):.1f}' y2='{h - pad}' stroke='{color}' "
            f"stroke-dasharray='3,3'><title>{e(name)} {'began firing' if firing else 'resolved'}</title></line>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _sli_html(data: dict[str, Any], folder: Path | None) -> str:
    """The incident's SLIs over its window, alerts marked; drawn offline from the saved evidence."""
    if folder is None:
        return ""
    alerts: list[tuple[datetime, str, bool]] = []
    for a in data.get("alerts") or []:
        name = str((a.get("labels") or {}).get("alertname") or "alert")
        for key, firing in (("startsAt", True), ("endsAt", False)):
            value = a.get(key)
            if value and not str(value).startswith("0001"):
                with contextlib.suppress(ValueError, RecordError):
                    alerts.append((parse_time(str(value)), name, firing))
    charts = []
    for panel, title, unit in SLI_CHARTS:
        body = _latest_series(folder, panel)
        if body is not None:
            svg = _sli_svg(title, unit, body["points"], sorted(set(alerts)))
            if svg:
                query = html.escape(str(body.get("query") or ""))
                charts.append(f"<figure>{svg}<figcaption><code>{query}</code></figcaption></figure>")
    if not charts:
        return ""
    return (
        "<h2>Service level</h2><p><small>Dashed lines: alerts began firing (orange) or resolved (green).</small></p>"
        + "".join(charts)
    )


def render_index(data: dict[str, Any], now: datetime | None = None, folder: Path | None = None) -> str:
    """A self-contained HTML page for the incident folder: no network, relative links only.

    With ``folder``, the page also draws the incident's SLIs (5xx share, p95 latency) from the
    series the notebooks saved under ``evidence/``, with the alerts marked (inline SVG)."""
    e = html.escape
    now = now or datetime.now(UTC)
    created = parse_time(data["created_at"])
    end = data.get("closed_at") or data.get("resolved_at")
    finished = parse_time(end) if end else None
    duration = format_duration(((finished or now) - created).total_seconds())
    live = finished is None

    # The record keeps every finding of every notebook; the page shows each one once, with the
    # notebooks that raised it and how it changed, causes first (vcci_nb.story).
    from vcci_nb import story

    titles = {story.CAUSE: "Cause", story.CONTRIBUTING: "Comes with it", story.SYMPTOM: "Detection and impact",
              story.CONTEXT: "Context"}  # fmt: skip
    by_role: dict[str, list[story.Fact]] = {}
    for fact in story.facts(data.get("findings", [])):
        by_role.setdefault(fact.role, []).append(fact)
    finding_html = []
    for role_name, facts in by_role.items():
        items = "".join(
            f"<li><span class='sev-{e(f.severity)}'>[{e(f.severity)}]</span> <b>{e(f.summary)}</b> "
            f"<code>{e(f.key)}</code>"
            + (f" <i>seen in {e(f.where)}</i>" if f.notebooks else "")
            + (f" <small>(first: {e(f.history[0])})</small>" if f.changed else "")
            + "</li>"
            for f in facts
        )
        finding_html.append(f"<h3>{e(titles.get(role_name, role_name))} ({len(facts)})</h3><ul>{items}</ul>")
    rows = []
    for ev in story.story_events(data.get("timeline", [])):
        rows.append(
            f"<tr class='k-{e(str(ev['kind']))}'><td>{e(str(ev['at']))}</td><td>{e(str(ev['kind']))}</td>"
            f"<td>{e(str(ev.get('actor') or ''))}</td><td>{e(str(ev['summary']))}</td></tr>"
        )
    nb_rows = []
    for nb in data.get("notebooks", []):
        path = nb.get("path")
        htm = nb.get("html")
        nb_rows.append(
            f"<tr><td>{e(nb['name'])}</td><td class='st-{e(nb['status'])}'>{e(nb['status'])}</td>"
            f"<td>{e(nb.get('started_at') or '')}</td><td>{e(nb.get('finished_at') or '')}</td>"
            f"<td>{f'<a href={chr(34)}{e(htm)}{chr(34)}>HTML</a>' if htm else ''}</td>"
            f"<td>{f'<a href={chr(34)}{e(path)}{chr(34)}>notebook</a>' if path else ''}</td>"
            f"<td><pre>{e(nb.get('error') or '')}</pre></td></tr>"
        )
    group_rows = []
    for g in data.get("alert_groups") or []:
        how = "opened the incident" if g.get("role") == "opened" else f"joined: {g.get('reason') or ''}"
        left_out = truncated_text(g)
        group_rows.append(
            f"<tr><td>{e(str(g.get('name') or g.get('group_key')))}"
            + (f"<br><b class='truncated'>{e(left_out)}</b>" if left_out else "")
            + "</td>"
            f"<td class='st-{e(str(g.get('status')))}'>{e(str(g.get('status')))}</td>"
            f"<td>{e(str(g.get('joined_at') or ''))}</td><td>{e(how)}</td>"
            f"<td><code>{e(str(g.get('group_key')))}</code></td></tr>"
        )
    groups_html = (
        "<h2>Alert groups</h2><table><tr><th>group</th><th>status</th><th>since</th><th>how</th>"
        f"<th>Alertmanager group key</th></tr>{''.join(group_rows)}</table>"
        if group_rows
        else ""
    )
    contacts_html = _contacts_html(data)
    attachments = "".join(
        f"<li><a href='{e(str(a.get('path')), quote=True)}'>{e(str(a.get('name')))}</a> "
        f"{e(str(a.get('kind') or ''))}</li>"
        for a in data.get("attachments") or []
    )
    attachments_html = f"<h2>Attachments</h2><ul>{attachments}</ul>" if attachments else ""
    script = (
        "<script>(function(){var c=new Date(" + json.dumps(data["created_at"]) + ");"
        "function f(){var s=Math.max(0,Math.floor((Date.now()-c)/1000)),d=Math.floor(s/86400),"
        "h=Math.floor(s%86400/3600),m=Math.floor(s%3600/60);document.getElementById('dur').textContent="
        "(d?d+'d '+h+'h '+m+'m':h?h+'h '+m+'m':m+'m '+(s%60)+'s')+' (live)';}f();setInterval(f,1000);})();</script>"
        if live
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(data["id"])} {e(data["title"])}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}}
table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}}
.sev{{display:inline-block;padding:.1em .6em;border-radius:.3em;color:#fff;background:#b00}}
.sev-critical{{color:#b00}}.sev-high{{color:#d60}}.sev-medium{{color:#a80}}.sev-low{{color:#06a}}.sev-info{{color:#666}}
.st-failed,.st-timed_out,.st-firing{{color:#b00;font-weight:bold}}.st-succeeded,.st-resolved{{color:#070}}
pre{{white-space:pre-wrap;margin:0;font-size:.85em}}
</style></head><body>
<h1>{e(data["id"])}: {e(data["title"])}</h1>
<p><span class="sev">{e(data["severity"])}</span> status <b id="status">{e(data["status"])}</b> ·
{_severity_line(data)}
commander {e(data.get("commander") or "unassigned")} · opened {e(data["created_at"])} ·
duration <span id="dur">{e(duration)}</span></p>
{f"<p><b>Resolution:</b> {e(data['resolution'])}</p>" if data.get("resolution") else ""}
{groups_html}
{contacts_html}
{_sli_html(data, folder)}
<h2>Findings</h2>
{"".join(finding_html) or "<p>No findings yet.</p>"}
<h2>Notebooks</h2>
<table><tr><th>notebook</th><th>status</th><th>started</th><th>finished</th><th></th><th></th><th>error</th></tr>
{"".join(nb_rows)}</table>
<h2>Timeline</h2>
<table><tr><th>time (UTC)</th><th>kind</th><th>actor</th><th>what</th></tr>
{"".join(rows)}</table>
{attachments_html}
<p><a href="record.json">record.json</a> · <a href="evidence/">evidence/</a></p>
{script}
</body></html>
"""

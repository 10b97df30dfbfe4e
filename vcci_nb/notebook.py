"""What a runbook notebook calls between its prose: set-up, gathering, and the names it shows with.

A notebook stays thin (a parameters cell, then one-line calls), so the conventions every
notebook shares live here:

- :func:`setup` turns the parameters cell's values into a :class:`Context` (profile, namespace,
  incident window and baseline, evidence store), validating them with messages an on-call
  engineer can act on;
- :meth:`Context.gather` asks one source through the evidence store (live, saved for the record,
  or replayed from a frozen record) and never lets an exception stop the notebook;
- :func:`ask_many` / :func:`ask_kinds` gather several at once, :func:`resolution_verdict` and
  :func:`monitor_snapshot` gather what their judgement needs.

The notebook gathers; analysis judges (:mod:`vcci_nb.analysis`: scenario checks, verdicts, panel
comparisons, findings); :mod:`vcci_nb.display` shows (tables, banners, charts, finding cards).
Their names are re-exported here so that a notebook imports everything from one place.

Nothing here blocks: widgets live in :mod:`vcci_nb.widgets` and are never needed headless.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from vcci_nb import runenv
from vcci_nb.analysis.compare import compare_panels
from vcci_nb.analysis.model import Finding
from vcci_nb.analysis.scenarios import SCENARIOS, ScenarioCheck, scenario_check
from vcci_nb.analysis.verdict import RESOLUTION_PANELS, Verdict, judge_resolution, pod_ready
from vcci_nb.config import Profile, load_profile
from vcci_nb.display import (
    PLOTLY_MIME,
    _display,
    _esc,
    banners_for_failures,
    figure_json,
    fmt_time,
    human_bytes,
    record_findings,
    show_banner,
    show_chart,
    show_evidence,
    show_failures,
    show_markdown,
    show_next,
    show_table,
    show_verdict,
)
from vcci_nb.errors import ConfigError, ParameterError
from vcci_nb.evidence import Evidence, EvidenceStore, Window
from vcci_nb.kubeapi import is_dns1123_label
from vcci_nb.policy import maybe_time
from vcci_nb.policy import window_bound as parse_time
from vcci_nb.sources.registry import gatherers

log = logging.getLogger(__name__)

__all__ = [
    "PLOTLY_MIME",
    "SCENARIOS",
    "Context",
    "ScenarioCheck",
    "Verdict",
    "ask_kinds",
    "ask_many",
    "compare_panels",
    "derive",
    "evidence_name",
    "figure_json",
    "gatherers",
    "human_bytes",
    "monitor_snapshot",
    "noisiest_pod",
    "open_incident",
    "parse_time",
    "pod_ready",
    "record_findings",
    "resolution_verdict",
    "rows_where",
    "scenario_check",
    "setup",
    "show_banner",
    "show_chart",
    "show_contacts",
    "show_evidence",
    "show_failures",
    "show_markdown",
    "show_next",
    "show_table",
    "show_verdict",
]

_DEFAULT_WINDOW = timedelta(hours=1)


# --------------------------------------------------------------------------------------------
# Parameters → Context


@dataclass
class Context:
    """Everything a notebook's cells share: who, where, when, and where evidence goes."""

    incident_id: str
    profile: Profile
    namespace: str
    window: Window
    baseline: Window
    dry_run: bool
    store: EvidenceStore
    overrides: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Evidence] = field(default_factory=dict)

    @property
    def environment(self) -> str:
        return self.profile.name

    @property
    def mode(self) -> str:
        """``live``, ``live, saving evidence`` or ``replay`` — shown in the header."""
        if self.store.replay_from is not None:
            return f"replaying frozen evidence from {self.store.replay_from}"
        if self.store.save_to is not None:
            return f"live, saving evidence to {self.store.save_to}"
        return "live"

    def threshold(self, name: str, default: float | None = None) -> float:
        """A threshold from the parameters cell if set there, else from the profile."""
        if name in self.overrides:
            return self.overrides[name]
        try:
            return self.profile.threshold(name)
        except ConfigError:
            if default is not None:
                return default
            raise

    def thresholds(self) -> dict[str, float]:
        """All thresholds of the profile with the notebook's overrides applied."""
        base = {k: float(v) for k, v in (self.profile.get("thresholds") or {}).items() if _is_number(v)}
        base.update(self.overrides)
        return base

    def ask(self, fn: Callable[..., Evidence], /, *args: Any, key: str = "", **kwargs: Any) -> Evidence:
        """Call a gather function with what the context knows, through the evidence store.

        Gather functions take the profile first; ``namespace``, ``window`` and ``baseline`` are
        passed when the function accepts them and the cell did not. The evidence gets the name
        the source gives it (:func:`evidence_name`) unless ``key`` says otherwise; use a key when
        one notebook asks the same function twice with different arguments.
        """
        name = key or evidence_name(fn)
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        known = {"namespace": self.namespace, "window": self.window, "baseline": self.baseline}
        for pname, value in known.items():
            if pname in params and pname not in kwargs:
                kwargs[pname] = value
        first = next(iter(params), "")
        if first == "profile" and "profile" not in kwargs:
            args = (self.profile, *args)
        return self.gather(name, fn, *args, **kwargs)

    def gather(self, name: str, fn: Callable[..., Evidence], /, *args: Any, **kwargs: Any) -> Evidence:
        """Ask one source through the evidence store; a failure becomes an Evidence, never an exception.

        The store saves what was gathered into the incident record in a live run, and in a
        replay returns the frozen evidence without calling ``fn`` at all.
        """
        started = time.perf_counter()

        def call() -> Evidence:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # a broken source must never stop the notebook
                log.warning("gathering %s raised %s", name, type(exc).__name__, exc_info=True)
                return Evidence(
                    name=name,
                    source=getattr(fn, "__module__", "vcci_nb").rsplit(".", 1)[-1],
                    query=getattr(fn, "__qualname__", name),
                    status="error",
                    message=f"{type(exc).__name__}: {exc}. This is a fault in vcci_nb, not in the system "
                    "being checked; report it with this message. The rest of the notebook still runs.",
                    window=self.window,
                    elapsed_s=time.perf_counter() - started,
                )
            if not isinstance(result, Evidence):
                return Evidence(
                    name=name,
                    source="vcci_nb",
                    query=getattr(fn, "__qualname__", name),
                    status="error",
                    message=f"{getattr(fn, '__qualname__', fn)!s} returned {type(result).__name__}, not Evidence.",
                )
            return result

        try:
            ev = self.store.gather(name, call)
        except Exception as exc:  # saving or loading frozen evidence failed: still keep going
            log.warning("evidence store failed for %s", name, exc_info=True)
            ev = Evidence(
                name=name,
                source="evidence-store",
                query=name,
                status="error",
                message=f"could not save or load the evidence ({type(exc).__name__}: {exc}); check the disk "
                "under the incident folder. The rest of the notebook still runs.",
            )
        self.evidence[name] = ev
        return ev


def evidence_name(fn: Callable[..., Any]) -> str:
    """The name a source module gives the evidence of ``fn``: ``<SOURCE>.<what>``.

    ``kube.gather_pods`` → ``kubernetes.pods``, ``git.gather_git_log`` → ``git.log``. The store
    needs the name before the call (a replay never calls), so it is derived from the function.
    """
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    source = str(getattr(module, "SOURCE", "") or (getattr(fn, "__module__", "") or "vcci_nb").rsplit(".", 1)[-1])
    what = getattr(fn, "__name__", "call").removeprefix("gather_").removeprefix(f"{source}_")
    return f"{source}.{what}"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _incident_window(incident: str, profile: Profile, now: datetime) -> tuple[datetime, datetime] | None:
    """The incident's own window (``policy.incident_window``) when its record exists, else None."""
    from vcci_nb.errors import VcciNbError
    from vcci_nb.policy import WINDOW_LEAD_MINUTES, incident_window
    from vcci_nb.record import IncidentRecord

    try:
        data = IncidentRecord.load(incident).data
        lead = float(profile.get("incident.window_lead_minutes") or WINDOW_LEAD_MINUTES)
    except (VcciNbError, OSError, TypeError, ValueError):
        return None
    start, end, _why = incident_window(data, lead_minutes=lead, now=now)
    return start, end


def setup(
    incident_id: str = "",
    environment: str = "",
    namespace: str = "",
    window_start: str | datetime | None = "",
    window_end: str | datetime | None = "",
    dry_run: bool = True,
    *,
    now: datetime | None = None,
    store: EvidenceStore | None = None,
    show: bool = True,
    **thresholds: float | int | None,
) -> Context:
    """Turn the parameters cell into a Context and show a one-table header.

    Empty values take their defaults: the incident from ``VCCI_NB_INCIDENT_ID``, the profile
    from ``VCCI_NB_PROFILE`` (else ``lab``), the namespace from the profile, and the window the
    last hour. Thresholds passed as keywords override the profile's; ``None`` keeps the profile's.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    incident = (incident_id or runenv.current().incident_id or "").strip()
    if incident and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", incident):
        raise ParameterError(f"incident_id={incident!r} is not an incident ID; use the form INC-20260106-001.")
    profile = load_profile(environment or None)
    ns = (namespace or profile.namespace).strip()
    if not is_dns1123_label(ns):
        raise ParameterError(
            f"namespace={ns!r} is not a valid Kubernetes namespace (lower-case letters, digits and '-', "
            "at most 63 characters); use e.g. 'vcci-production'."
        )
    end = parse_time(window_end, now, name="window_end") or now
    start = parse_time(window_start, now, name="window_start") or (end - _DEFAULT_WINDOW)
    if incident and not window_start and not window_end and (own := _incident_window(incident, profile, now)):
        start, end = own  # JupyterLab on an existing incident: its own window, as `vcci-nb run` uses
    if start >= end:
        raise ParameterError(
            f"window_start ({start.isoformat()}) must be before window_end ({end.isoformat()}); "
            "leave both empty for the last hour."
        )
    if end - start > timedelta(days=7):
        raise ParameterError("the window is longer than 7 days; narrow it to the incident (for example the last 6 h).")
    overrides: dict[str, float] = {}
    for key, value in thresholds.items():
        if value is None:
            continue
        if not _is_number(value) or not math.isfinite(float(value)):
            raise ParameterError(f"threshold {key}={value!r} must be a number.")
        overrides[key] = float(value)
    length = end - start
    ctx = Context(
        incident_id=incident,
        profile=profile,
        namespace=ns,
        window=Window(start, end),
        baseline=Window(start - length, start),
        dry_run=bool(dry_run),
        store=store or EvidenceStore.from_env(),
        overrides=overrides,
    )
    if show:
        _show_header(ctx)
        if not incident:
            _offer_incident_picker(ctx)
    return ctx


def _offer_incident_picker(ctx: Context) -> None:
    """In JupyterLab, a notebook without an incident offers the open ones and "open a new one"."""
    from vcci_nb import widgets

    if widgets.in_jupyterlab():
        from IPython.display import display

        display(widgets.incident_picker(ctx))  # type: ignore[no-untyped-call]


def _show_header(ctx: Context) -> None:
    minutes = (ctx.window.end - ctx.window.start).total_seconds() / 60
    rows = [
        ("Incident", ctx.incident_id or "(none yet)"),
        ("Environment", ctx.environment),
        ("Namespace", ctx.namespace),
        ("Window", f"{fmt_time(ctx.window.start)} → {fmt_time(ctx.window.end)} ({minutes:.0f} min)"),
        ("Baseline", f"{fmt_time(ctx.baseline.start)} → {fmt_time(ctx.baseline.end)}"),
        ("Evidence", ctx.mode),
        ("Dry run", "yes: nothing is changed" if ctx.dry_run else "NO: confirmed actions will run"),
    ]
    if ctx.overrides:
        rows.append(("Thresholds set here", ", ".join(f"{k}={v:g}" for k, v in sorted(ctx.overrides.items()))))
    body = "".join(f"<tr><th style='text-align:left'>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    text = "\n".join(f"{k:>20}: {v}" for k, v in rows)
    _display({"text/html": f"<table class='vcci-header'>{body}</table>", "text/plain": text})


# --------------------------------------------------------------------------------------------
# Asking many sources at once, and evidence derived from evidence


def ask_many(
    ctx: Context,
    calls: Mapping[str, Callable[..., Evidence] | tuple[Callable[..., Evidence], Mapping[str, Any]]],
    *,
    show: bool = True,
    workers: int = 12,
) -> dict[str, Evidence]:
    """Ask several sources concurrently (each under its own timeout); show one status table.

    ``calls`` maps an evidence name to a gather function, or to ``(function, keyword arguments)``.
    Sources are independent and mostly waiting on the network, so a handful of threads cuts the
    wait to the slowest source instead of the sum of them all.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(item: tuple[str, Any]) -> tuple[str, Evidence]:
        key, spec = item
        fn, kwargs = (spec[0], dict(spec[1])) if isinstance(spec, tuple) else (spec, {})
        return key, ctx.ask(fn, key=key, **kwargs)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls) or 1))) as pool:
        results = dict(pool.map(one, list(calls.items())))
    if show:
        rows = [
            {
                "evidence": key,
                "source": ev.source,
                "status": ev.status,
                "rows": len(ev.frame.index),
                "seconds": round(ev.elapsed_s, 2),
            }
            for key, ev in results.items()
        ]
        frame = pd.DataFrame(rows)
        show_table(frame, f"Gathered {len(rows)} pieces of evidence", sort_by="status", ascending=True)
        banners_for_failures(results.values())
    return results


def derive(
    ctx: Context,
    name: str,
    ev: Evidence,
    fn: Callable[[pd.DataFrame], pd.DataFrame],
    *,
    note: str = "",
) -> Evidence:
    """New evidence computed from ``ev``'s frame, keeping its provenance (and its failure, if it failed).

    For a view of evidence already gathered (one pod's lines out of all the logs) without asking
    the source again.
    """
    if not ev.ok:
        out = Evidence(
            name=name,
            source=ev.source,
            query=ev.query,
            status=ev.status,
            message=ev.message,
            window=ev.window,
            collected_at=ev.collected_at,
            elapsed_s=ev.elapsed_s,
            meta=dict(ev.meta),
        )
    else:
        try:
            frame = fn(ev.frame)
            status, message = "ok", ""
        except Exception as exc:  # a bad view must not stop the notebook
            log.warning("deriving %s failed", name, exc_info=True)
            frame, status, message = pd.DataFrame(), "error", f"could not derive {name}: {type(exc).__name__}: {exc}"
        out = Evidence(
            name=name,
            source=ev.source,
            query=ev.query + (f"  → {note}" if note else ""),
            status=status,  # type: ignore[arg-type]
            message=message,
            frame=frame,
            window=ev.window,
            collected_at=ev.collected_at,
            elapsed_s=ev.elapsed_s,
            meta={**ev.meta, "derived_from": ev.name},
        )
    ctx.evidence[name] = out
    return out


def rows_where(**equals: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A :func:`derive` function keeping the rows whose columns equal the given values."""

    def pick(frame: pd.DataFrame) -> pd.DataFrame:
        mask = pd.Series(True, index=frame.index)
        for col, value in equals.items():
            if col in frame.columns:
                mask &= frame[col] == value
        return frame[mask].reset_index(drop=True)

    return pick


# --------------------------------------------------------------------------------------------
# Who to call and where to look (seed "Quick Reference")


def show_contacts(ctx: Context) -> dict[str, Any]:
    """The profile's on-call, hotline, emergency contacts and links opened on the incident window.

    Kept in the incident record too (``contacts``), so messages and ``index.html`` show them. A
    contacts section that is wrong (a secret in a link) is a banner, never an exception.
    """
    from vcci_nb import contacts
    from vcci_nb.errors import RecordError
    from vcci_nb.record import IncidentRecord

    record = None
    end = None
    if ctx.incident_id:
        try:
            record = IncidentRecord.load(ctx.incident_id)
            end = maybe_time(record.data.get("resolved_at")) or maybe_time(record.data.get("closed_at"))
        except RecordError as exc:
            show_banner(str(exc), "warning", title="No record")
    try:
        kept = contacts.for_record(
            ctx.profile, start=ctx.window.start, end=end, namespace=ctx.namespace, incident_id=ctx.incident_id
        )
    except ConfigError as exc:
        show_banner(str(exc), "error", title="Contacts and links")
        return {}
    if record is not None:
        try:
            record.set_contacts(kept)
        except RecordError as exc:
            show_banner(str(exc), "warning", title="Contacts not recorded")
    who = [
        {"who": "On call", "how": " · ".join(str(v) for v in kept["on_call"].values() if v)},
        {"who": "Rota", "how": " · ".join(str(v) for v in kept["rota"].values() if v)},
        {"who": "Hotline (24/7)", "how": kept["hotline"]},
        *({"who": c.get("role") or c.get("name"), "how": contacts.describe(c)} for c in kept["emergency"]),
    ]
    rows = [r for r in who if r["how"]]
    if rows:
        show_table(pd.DataFrame(rows), "Who to call")
    if kept["links"]:
        items = "".join(
            f"<li><a href='{_esc(ln['url'])}' target='_blank'>{_esc(ln['name'])}</a></li>" for ln in kept["links"]
        )
        text = "\n".join(f"- {ln['name']}: {ln['url']}" for ln in kept["links"])
        _display({"text/html": f"<p><strong>Links (on this incident's window)</strong></p><ul>{items}</ul>",
                  "text/plain": "Links (on this incident's window)\n" + text})  # fmt: skip
    return kept


# --------------------------------------------------------------------------------------------
# The incident record (runbook 1.4)


def open_incident(ctx: Context, severity: str, title: str, *, commander: str | None = None) -> Any:
    """Join the incident named in the parameters, or open one — only when ``dry_run`` is False.

    An alert-started run already has its record (the runner passes its ID), so this joins it and
    shows where it stands. Run by hand with ``dry_run=True``, it says what it would open and
    opens nothing. A record that cannot be read or written is shown as a banner, never raised.
    """
    from vcci_nb.errors import RecordError
    from vcci_nb.record import IncidentRecord

    try:
        if ctx.incident_id:
            record = IncidentRecord.load(ctx.incident_id)
            data = record.data
            show_table(
                pd.DataFrame(
                    [
                        {
                            "incident": data.get("id"),
                            "severity": data.get("severity"),
                            "status": data.get("status"),
                            "title": data.get("title"),
                            "commander": data.get("commander") or "",
                            "opened": data.get("created_at"),
                        }
                    ]
                ),
                "Joined the incident record",
            )
            if data.get("severity") and data.get("severity") != severity:
                show_banner(
                    f"The evidence suggests {severity}; the record says {data.get('severity')}. The record keeps "
                    "the commander's call: note the evidence with "
                    f'`vcci-nb incident update {record.id} --note "evidence suggests {severity}"` if it matters.',
                    "info",
                )
            return record
        if ctx.dry_run:
            show_banner(
                f"Dry run: would open a {severity} incident titled “{title}”. Set dry_run = False and run this cell "
                f'again, or run `vcci-nb incident open --severity {severity} --title "{title}"`.',
                "info",
                title="No record opened",
            )
            return None
        record = IncidentRecord.open(severity, title, commander, source="notebook")
        ctx.incident_id = record.id
        show_banner(f"Opened {record.id} ({severity}): {title}. Its record is {record.folder}.", "ok", title=record.id)
        return record
    except (RecordError, OSError) as exc:
        show_banner(f"{exc}", "error", title="Incident record")
        return None


# --------------------------------------------------------------------------------------------
# 05_monitor: one snapshot, with trends against the previous one


#: What a monitor snapshot measures: (label, panel or pods field, lower is better, threshold name).
MONITOR_METRICS: tuple[tuple[str, str, bool | None, str], ...] = (
    ("API pods ready", "pods.ready", False, ""),
    ("API pods not ready", "pods.not_ready", True, ""),
    ("container restarts (total)", "pods.restarts", True, ""),
    ("5xx share of requests", "error_ratio_5xx", True, "error_ratio_5xx"),
    ("p95 latency (s)", "latency_p95", True, "latency_p95_s"),
    ("database pool in use", "db_connections", True, ""),
    ("cache hit rate", "cache_hit_rate", False, ""),
)


@dataclass
class Snapshot:
    """One monitor snapshot: the table shown, and findings for what is over its threshold."""

    frame: pd.DataFrame
    taken_at: datetime
    previous_at: datetime | None
    findings: list[Finding] = field(default_factory=list)


def _monitor_state_path(ctx: Context) -> Path:
    from vcci_nb.record import outputs_dir

    base = outputs_dir()
    if ctx.incident_id:
        return base / ctx.incident_id / "monitor" / f"{ctx.namespace}.json"
    return base / ".monitor" / f"{ctx.environment}-{ctx.namespace}.json"


def _arrow(now: float | None, before: float | None, lower_is_better: bool | None) -> str:
    if now is None or before is None or not (math.isfinite(now) and math.isfinite(before)):
        return ""
    scale = max(abs(before), abs(now), 1e-9)
    if abs(now - before) / scale < 0.05:
        return "→ steady"
    up = now > before
    if lower_is_better is None:
        return "↑" if up else "↓"
    worse = up if lower_is_better else not up
    return ("↑ worse" if up else "↓ worse") if worse else ("↑ better" if up else "↓ better")


def monitor_snapshot(ctx: Context, *, minutes: float = 15.0, save: bool = True) -> Snapshot:
    """Pods and the key panels now, compared with the previous snapshot of the same incident.

    The previous values live in the incident folder (``monitor/NAMESPACE.json``), so each run of
    05_monitor — headless or a refresh in JupyterLab — shows its trend against the last one.
    Panels are read as their worst value over the last ``minutes`` (``max_over_time``), so a
    spike between two snapshots is not missed.
    """
    from vcci_nb.sources import kube, prometheus

    now = datetime.now(UTC)
    values: dict[str, float | None] = {}
    pods = ctx.ask(kube.gather_pods, key="monitor.pods")
    if pods.ok and not pods.frame.empty:
        frame = pods.frame
        ready = pod_ready(frame)
        values["pods.ready"] = float(ready.sum())
        values["pods.not_ready"] = float((~ready).sum())
        values["pods.restarts"] = float(frame["restarts"].sum()) if "restarts" in frame else None
    for _label, field_name, _lower, _thr in MONITOR_METRICS:
        if field_name.startswith("pods."):
            continue
        try:
            query, _info = prometheus.panel_query(ctx.profile, field_name)
        except ConfigError:
            continue
        worst = "min" if field_name == "cache_hit_rate" else "max"
        ev = ctx.ask(
            prometheus.gather_instant,
            f"{worst}_over_time(({query})[{int(minutes)}m:30s])",
            key=f"monitor.{field_name}",
        )
        values[field_name] = float(ev.frame["value"].sum()) if ev.ok and not ev.frame.empty else None
    banners_for_failures(ctx.evidence[k] for k in ctx.evidence if k.startswith("monitor."))
    path = _monitor_state_path(ctx)
    previous: dict[str, Any] = {}
    replay = ctx.store.replay_from is not None
    try:
        if path.exists():
            previous = json.loads(path.read_text())
    except (OSError, ValueError):
        previous = {}
    before_values: dict[str, Any] = previous.get("values") or {}
    rows = []
    found: list[Finding] = []
    for label, field_name, lower, thr_name in MONITOR_METRICS:
        value = values.get(field_name)
        before = before_values.get(field_name)
        threshold = ctx.threshold(thr_name) if thr_name else None
        over = threshold is not None and value is not None and value > threshold
        rows.append(
            {
                "metric": label,
                "now": value,
                "previous": before,
                "trend": _arrow(value, before, lower),
                "threshold": threshold,
                "state": "unknown" if value is None else ("OVER" if over else "ok"),
            }
        )
        if over:
            found.append(
                Finding(
                    key=f"monitor.{field_name}",
                    severity="high",
                    summary=f"{label} is {value:.3g}, over its threshold of {threshold:g}"
                    + (f" ({_arrow(value, before, lower)} since the last snapshot)" if before is not None else ""),
                    value=value,
                    threshold=threshold,
                    evidence=(f"monitor.{field_name}",),
                    runbook="05_monitor",
                )
            )
    previous_at = maybe_time(previous.get("taken_at"))
    table = pd.DataFrame(rows)
    since = f" (previous: {fmt_time(previous_at)})" if previous_at else " (first snapshot: no trend yet)"
    show_table(table, f"Snapshot at {fmt_time(now)}{since}")
    if save and not replay:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"taken_at": now.isoformat(), "values": values}))
            os.replace(tmp, path)
        except OSError as exc:
            show_banner(f"could not keep this snapshot for the next comparison: {exc}", "warning")
    return Snapshot(frame=table, taken_at=now, previous_at=previous_at, findings=found)


# --------------------------------------------------------------------------------------------
# Small readers for prose and titles


def noisiest_pod(logs: Evidence) -> str:
    """The pod with the most ERROR-or-worse lines in ``logs`` (else the first pod; else "")."""
    frame = logs.frame
    if not logs.ok or frame.empty or "pod" not in frame:
        return ""
    if "level" in frame:
        errors = frame[frame["level"].isin(["ERROR", "CRITICAL"])]
        if not errors.empty:
            return str(errors["pod"].value_counts().idxmax())
    return str(frame["pod"].iloc[0])


# --------------------------------------------------------------------------------------------
# Gathering by evidence kind (what the decision tree needs)


def ask_kinds(ctx: Context, kinds: Iterable[str], *, show: bool = True) -> dict[str, Evidence]:
    """Gather every listed evidence kind at once (see :func:`ask_many`); unknown kinds are named in a banner."""
    table = gatherers()
    wanted = list(dict.fromkeys(kinds))
    unknown = [k for k in wanted if k not in table]
    if unknown:
        show_banner(f"no gather function is known for {', '.join(unknown)}; those checks are skipped.", "warning")
    return ask_many(ctx, {k: table[k] for k in wanted if k in table}, show=show)


# --------------------------------------------------------------------------------------------
# 06_resolve: resolved, or not yet — with reasons


def resolution_verdict(ctx: Context, *, stable_minutes: float) -> Verdict:
    """Gather what runbook 6.1 needs over the last ``stable_minutes`` and judge it
    (:func:`vcci_nb.analysis.verdict.judge_resolution`): pods ready now, 5xx share and p95 under
    their thresholds for the whole time, and the smoke checks (health endpoints) answering.
    """
    from vcci_nb.sources import http, kube, prometheus

    end = ctx.window.end
    stable = Window(end - timedelta(minutes=float(stable_minutes)), end)
    pods = ctx.evidence.get("kubernetes.pods") or ctx.ask(kube.gather_pods)
    panels: dict[str, tuple[Evidence, float]] = {}
    for panel, threshold_name, _label in RESOLUTION_PANELS:
        ev = ctx.ask(prometheus.gather_panel, panel, window=stable, baseline=False, key=f"resolve.{panel}")
        panels[panel] = (ev, ctx.threshold(threshold_name))
    smoke = ctx.evidence.get("http.health") or ctx.ask(http.gather_health)
    api_smoke = None
    if ctx.profile.get("smoke.checks"):
        api_smoke = ctx.evidence.get("http.smoke") or ctx.ask(http.gather_smoke)
    return judge_resolution(pods, panels, smoke, stable_minutes=stable_minutes, api_smoke=api_smoke)

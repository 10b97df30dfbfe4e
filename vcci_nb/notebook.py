"""What a runbook notebook calls between its prose: set-up, evidence tables, charts and findings.

A notebook stays thin (a parameters cell, then one-line calls), so the conventions every
notebook shares live here:

- :func:`setup` turns the parameters cell's values into a :class:`Context` (profile, namespace,
  incident window and baseline, evidence store), validating them with messages an on-call
  engineer can act on;
- :meth:`Context.gather` asks one source through the evidence store (live, saved for the record,
  or replayed from a frozen record) and never lets an exception stop the notebook;
- :func:`show_evidence` renders a table with the exact query beside it, and a banner when the
  source was unavailable, forbidden, timed out or failed;
- :func:`show_chart` emits a Plotly figure as ``application/vnd.plotly.v1+json``, which JupyterLab
  draws and which the runner's HTML export draws offline with one plotly.js per incident folder;
- :func:`record_findings` shows findings as cards and emits each as a display output of MIME
  :data:`~vcci_nb.analysis.model.FINDING_MIME`, which the runner collects into the record.

Nothing here blocks: widgets live in :mod:`vcci_nb.widgets` and are never needed headless.
"""

from __future__ import annotations

import contextlib
import html
import inspect
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from vcci_nb.analysis.model import FINDING_MIME, SEVERITY_ORDER, Finding, sort_findings
from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ConfigError, ParameterError
from vcci_nb.evidence import Evidence, EvidenceStore, Window
from vcci_nb.redact import redact

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
    "human_bytes",
    "monitor_snapshot",
    "noisiest_pod",
    "open_incident",
    "parse_time",
    "record_findings",
    "resolution_verdict",
    "rows_where",
    "scenario_check",
    "setup",
    "show_banner",
    "show_chart",
    "show_evidence",
    "show_failures",
    "show_next",
    "show_table",
    "show_verdict",
]

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_RELATIVE = re.compile(r"^\s*(?:now)?\s*(?:(?P<sign>[-+])\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[smhd]))?\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DEFAULT_WINDOW = timedelta(hours=1)

_STATUS_STYLE = {
    "ok": ("#1a7f37", "#dafbe1"),
    "unavailable": ("#9a6700", "#fff8c5"),
    "forbidden": ("#9a6700", "#fff8c5"),
    "timeout": ("#9a6700", "#fff8c5"),
    "error": ("#cf222e", "#ffebe9"),
}
_SEVERITY_STYLE = {
    "critical": ("#ffffff", "#cf222e"),
    "high": ("#ffffff", "#bc4c00"),
    "medium": ("#3b2300", "#f2cc60"),
    "low": ("#0a3069", "#ddf4ff"),
    "info": ("#24292f", "#eaeef2"),
}
_WHAT_TO_DO = {
    "unavailable": "The source did not answer. Check it is up and reachable from here (`vcci-nb check`); "
    "the rest of this notebook still runs on what could be gathered.",
    "forbidden": "The identity used here may not read this. Check the diagnostics role or token in the profile.",
    "timeout": "The source took too long to answer. It may be overloaded: that can be the incident itself.",
    "error": "Gathering failed. The message says why; the rest of this notebook still runs.",
}


# --------------------------------------------------------------------------------------------
# Display plumbing (IPython is imported lazily so the module imports anywhere)


def _display(bundle: Mapping[str, Any]) -> None:
    from IPython.display import display

    display(dict(bundle), raw=True)  # type: ignore[no-untyped-call]


def _esc(value: object) -> str:
    return html.escape(redact(str(value)), quote=True)


# --------------------------------------------------------------------------------------------
# Parameters → Context


def parse_time(value: str | datetime | None, now: datetime, *, name: str = "time") -> datetime | None:
    """Read a window bound: ``""``/None (unset), ISO-8601, ``now``, ``now-2h`` or ``-30m``.

    Naive times are taken as UTC, because alerts and the record speak UTC.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if not text:
        return None
    rel = _RELATIVE.match(text)
    if rel and (text.lower().startswith("now") or rel["sign"]):
        if not rel["sign"]:
            return now
        delta = timedelta(seconds=float(rel["num"]) * _UNIT_SECONDS[rel["unit"].lower()])
        return now - delta if rel["sign"] == "-" else now + delta
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ParameterError(
            f"{name}={text!r} is not a time. Use ISO-8601 in UTC (2026-01-06T14:30:00Z), "
            "'now', or a time relative to now such as 'now-2h' or '-30m'."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
    incident = (incident_id or os.environ.get("VCCI_NB_INCIDENT_ID") or "").strip()
    if incident and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", incident):
        raise ParameterError(f"incident_id={incident!r} is not an incident ID; use the form INC-20260106-001.")
    profile = load_profile(environment or None)
    ns = (namespace or profile.namespace).strip()
    if not _DNS1123.match(ns):
        raise ParameterError(
            f"namespace={ns!r} is not a valid Kubernetes namespace (lower-case letters, digits and '-', "
            "at most 63 characters); use e.g. 'vcci-production'."
        )
    end = parse_time(window_end, now, name="window_end") or now
    start = parse_time(window_start, now, name="window_start") or (end - _DEFAULT_WINDOW)
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
    return ctx


def _fmt_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _show_header(ctx: Context) -> None:
    minutes = (ctx.window.end - ctx.window.start).total_seconds() / 60
    rows = [
        ("Incident", ctx.incident_id or "(none yet)"),
        ("Environment", ctx.environment),
        ("Namespace", ctx.namespace),
        ("Window", f"{_fmt_time(ctx.window.start)} → {_fmt_time(ctx.window.end)} ({minutes:.0f} min)"),
        ("Baseline", f"{_fmt_time(ctx.baseline.start)} → {_fmt_time(ctx.baseline.end)}"),
        ("Evidence", ctx.mode),
        ("Dry run", "yes: nothing is changed" if ctx.dry_run else "NO: confirmed actions will run"),
    ]
    if ctx.overrides:
        rows.append(("Thresholds set here", ", ".join(f"{k}={v:g}" for k, v in sorted(ctx.overrides.items()))))
    body = "".join(f"<tr><th style='text-align:left'>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    text = "\n".join(f"{k:>20}: {v}" for k, v in rows)
    _display({"text/html": f"<table class='vcci-header'>{body}</table>", "text/plain": text})


# --------------------------------------------------------------------------------------------
# Evidence, tables and banners


def show_banner(text: str, level: str = "warning", *, title: str = "") -> None:
    """A coloured box for what the reader must not miss (a source down, a verdict)."""
    fg, bg = {
        "ok": _STATUS_STYLE["ok"],
        "info": ("#0a3069", "#ddf4ff"),
        "warning": _STATUS_STYLE["unavailable"],
        "error": _STATUS_STYLE["error"],
    }.get(level, _STATUS_STYLE["unavailable"])
    head = f"<strong>{_esc(title)}</strong> " if title else ""
    _display(
        {
            "text/html": f"<div class='vcci-banner vcci-banner-{_esc(level)}' style='border-left:6px solid {fg};"
            f"background:{bg};color:#24292f;padding:8px 12px;margin:6px 0'>{head}{_esc(text)}</div>",
            "text/plain": f"[{level.upper()}] {title + ': ' if title else ''}{redact(text)}",
        }
    )


def _cell_text(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def _number(value: float) -> str:
    """Numbers as a person reads them: 0.5823, 2383, 21,201,870,000; never 5.823075e-01."""
    if value != value:  # NaN
        return ""
    if abs(value) >= 1e5:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _frame_html(frame: pd.DataFrame, max_rows: int) -> tuple[str, str]:
    shown = frame.head(max_rows).copy()
    for col in shown.columns:
        if pd.api.types.is_object_dtype(shown[col]) or pd.api.types.is_string_dtype(shown[col]):
            shown[col] = shown[col].map(_cell_text)
    more = len(frame.index) - len(shown.index)
    note = f"<p><em>{more} more rows not shown (first {max_rows} of {len(frame.index)}).</em></p>" if more > 0 else ""
    table = shown.to_html(
        index=False, escape=True, border=0, classes="vcci-table", na_rep="", max_cols=30, float_format=_number
    )
    text = shown.to_string(index=False, max_cols=30, max_colwidth=60, float_format=_number)
    if more > 0:
        text += f"\n… {more} more rows"
    return table + note, text


def show_table(
    frame: pd.DataFrame | None,
    title: str = "",
    *,
    query: str = "",
    columns: Sequence[str] | None = None,
    sort_by: str | Sequence[str] | None = None,
    ascending: bool = False,
    max_rows: int = 30,
    empty: str = "Nothing to show.",
) -> None:
    """A table with an optional query beneath it, sorted by what matters most."""
    frame = frame if frame is not None else pd.DataFrame()
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]
    if sort_by is not None:
        keys = [sort_by] if isinstance(sort_by, str) else list(sort_by)
        keys = [k for k in keys if k in frame.columns]
        if keys:
            frame = frame.sort_values(keys, ascending=ascending, kind="stable")
    head = f"<h4 style='margin:8px 0 4px'>{_esc(title)}</h4>" if title else ""
    if frame.empty:
        body_html, body_text = f"<p><em>{_esc(empty)}</em></p>", empty
    else:
        body_html, body_text = _frame_html(frame, max_rows)
    q_html = _query_html(query)
    _display(
        {
            "text/html": f"<div class='vcci-evidence'>{head}{body_html}{q_html}</div>",
            "text/plain": (f"{title}\n" if title else "") + body_text + (f"\nquery: {redact(query)}" if query else ""),
        }
    )


def _query_html(query: str) -> str:
    if not query:
        return ""
    return (
        "<details class='vcci-query' open><summary style='cursor:pointer;color:#57606a'>Query</summary>"
        f"<pre style='white-space:pre-wrap;font-size:85%;background:#f6f8fa;padding:6px'>{_esc(query)}</pre></details>"
    )


def show_evidence(
    ev: Evidence,
    title: str = "",
    *,
    columns: Sequence[str] | None = None,
    sort_by: str | Sequence[str] | None = None,
    ascending: bool = False,
    max_rows: int = 30,
    empty: str = "No rows: nothing matched.",
) -> None:
    """Show one piece of evidence: its table and the exact query, or a banner saying why there is none.

    Returns nothing, so that a cell ending in it shows the table once (and no ``Out[]`` repr).
    """
    label = title or ev.name
    when = _fmt_time(ev.collected_at) if isinstance(ev.collected_at, datetime) else str(ev.collected_at)
    source = f"{ev.source} · {when} · {ev.elapsed_s:.2f} s"
    if ev.meta.get("replayed_from"):
        source += " · replayed"
    if ev.status != "ok":
        fg, bg = _STATUS_STYLE.get(ev.status, _STATUS_STYLE["error"])
        advice = _WHAT_TO_DO.get(ev.status, "")
        banner = (
            f"<div class='vcci-banner vcci-status-{_esc(ev.status)}' style='border-left:6px solid {fg};"
            f"background:{bg};padding:8px 12px;margin:6px 0'>"
            f"<strong>{_esc(ev.source)} {_esc(ev.status.upper())}</strong> — {_esc(label)}: {_esc(ev.message)}"
            f"<br><small>{_esc(advice)}</small></div>"
        )
        _display(
            {
                "text/html": f"<div class='vcci-evidence'><h4 style='margin:8px 0 4px'>{_esc(label)}</h4>"
                f"{banner}{_query_html(ev.query)}</div>",
                "text/plain": f"[{ev.status.upper()}] {label} ({ev.source}): {redact(ev.message)}\n{advice}",
            }
        )
        return
    frame = ev.frame
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]
    if sort_by is not None:
        keys = [sort_by] if isinstance(sort_by, str) else list(sort_by)
        keys = [k for k in keys if k in frame.columns]
        if keys:
            frame = frame.sort_values(keys, ascending=ascending, kind="stable")
    if frame.empty:
        body_html, body_text = f"<p><em>{_esc(empty)}</em></p>", empty
    else:
        body_html, body_text = _frame_html(frame, max_rows)
    _display(
        {
            "text/html": f"<div class='vcci-evidence'><h4 style='margin:8px 0 4px'>{_esc(label)} "
            f"<small style='color:#57606a;font-weight:normal'>{_esc(source)}</small></h4>"
            f"{body_html}{_query_html(ev.query)}</div>",
            "text/plain": f"{label} ({source})\n{body_text}\nquery: {redact(ev.query)}",
        }
    )


# --------------------------------------------------------------------------------------------
# Charts


#: The MIME type Plotly figures travel under: JupyterLab draws it (jupyterlab-plotly), and the
#: runner's HTML export gives each one an offline ``text/html`` twin that loads plotly.js once per
#: incident folder (``assets/plotly.min.js``) — so no notebook carries its own copy of plotly.js.
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def figure_json(fig: Any) -> dict[str, Any]:
    """The figure as plain JSON (numpy arrays become plotly.js typed-array specs, which stay small)."""
    import plotly.io as pio

    data: dict[str, Any] = json.loads(pio.to_json(fig, validate=False, remove_uids=True))
    data.setdefault("config", {}).update({"displaylogo": False, "responsive": True})
    return data


def show_chart(fig: Any, *, query: str = "") -> None:
    """Draw a Plotly figure: in JupyterLab directly, and offline in the runner's HTML export.

    ``query`` (e.g. the PromQL behind it) is shown beneath the chart. ``None`` draws nothing, so a
    chart function may return None when its evidence is unavailable (the banner says why).
    """
    if fig is None:
        return
    if isinstance(fig, Evidence):
        raise TypeError("show_chart takes a figure; use show_evidence for Evidence")
    payload = figure_json(fig)
    title = ((payload.get("layout") or {}).get("title") or {}).get("text") or ""
    _display({PLOTLY_MIME: payload, "text/plain": f"[chart] {redact(str(title))}"})
    if query:
        _display({"text/html": _query_html(query), "text/plain": f"query: {redact(query)}"})


# --------------------------------------------------------------------------------------------
# Findings


def _json_safe(value: Any) -> Any:
    """Turn numpy/pandas scalars, times and tuples into plain JSON, redacting text on the way."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, timedelta | pd.Timedelta):
        return pd.Timedelta(value).total_seconds()
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _json_safe(item())
        except (TypeError, ValueError):
            pass
    return redact(str(value))


def _as_finding(item: Finding | Mapping[str, Any]) -> Finding:
    if isinstance(item, Finding):
        return item
    if isinstance(item, Mapping):
        return Finding.from_dict(dict(item))
    raise TypeError(f"record_findings takes Finding objects or their dicts, not {type(item).__name__}")


def _fmt_value(value: object, unit: str) -> str:
    if value is None or value == "":
        return ""
    text = str(value)
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def _finding_card(f: Finding) -> tuple[str, str]:
    fg, bg = _SEVERITY_STYLE.get(f.severity, _SEVERITY_STYLE["info"])
    measured = _fmt_value(f.value, f.unit)
    limit = _fmt_value(f.threshold, f.unit)
    numbers = ""
    if measured:
        numbers = f"measured {measured}" + (f" (threshold {limit})" if limit else "")
    parts = [
        f"<span style='background:{bg};color:{fg};padding:1px 8px;border-radius:8px;font-size:85%;"
        f"font-weight:bold'>{_esc(f.severity.upper())}</span>",
        f"<strong>{_esc(f.summary)}</strong>",
    ]
    meta = [f"<code>{_esc(f.key)}</code>"]
    if numbers:
        meta.append(_esc(numbers))
    if f.evidence:
        meta.append("evidence: " + ", ".join(_esc(e) for e in f.evidence))
    if f.runbook:
        meta.append("next: " + _esc(f.runbook))
    card = (
        f"<div class='vcci-finding vcci-finding-{_esc(f.severity)}' style='border:1px solid #d0d7de;"
        f"border-left:6px solid {bg};padding:6px 10px;margin:4px 0'>{' '.join(parts)}"
        f"<br><small style='color:#57606a'>{' · '.join(meta)}</small></div>"
    )
    text = f"[{f.severity.upper()}] {redact(f.summary)} ({f.key}" + (f"; {numbers}" if numbers else "") + ")"
    return card, text


def record_findings(
    findings: Iterable[Finding | Mapping[str, Any]] | Finding | None,
    *,
    title: str = "Findings",
    none_text: str = "Nothing here crossed a threshold.",
) -> list[Finding]:
    """Show findings most severe first, and emit each one for the runner to collect.

    Each finding becomes one display output whose bundle holds the finding as JSON under
    :data:`FINDING_MIME` (contract C), a card as HTML and one line as text.
    """
    if findings is None:
        items: list[Finding] = []
    elif isinstance(findings, Finding):
        items = [findings]
    else:
        items = [_as_finding(f) for f in findings]
    items = sort_findings(items)
    counts: dict[str, int] = {}
    for f in items:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    summary = ", ".join(f"{n} {sev}" for sev, n in sorted(counts.items(), key=lambda kv: SEVERITY_ORDER.get(kv[0], 9)))
    head = f"{title}: {summary}" if items else f"{title}: none. {none_text}"
    _display(
        {
            "text/html": f"<h4 style='margin:10px 0 4px'>{_esc(head)}</h4>",
            "text/plain": head,
        }
    )
    for f in items:
        card, text = _finding_card(f)
        payload = _json_safe(f.to_dict())
        # Round-trip through json so that what the kernel sends is exactly what the runner reads.
        payload = json.loads(json.dumps(payload))
        _display({FINDING_MIME: payload, "text/html": card, "text/plain": text})
    return items


# --------------------------------------------------------------------------------------------
# Pointers to the next notebook


def show_next(notebooks: Sequence[tuple[str, str]] | Sequence[str], *, heading: str = "Open next") -> None:
    """Links to the notebooks to open next, as (path, why) pairs relative to ``notebooks/``."""
    pairs: list[tuple[str, str]] = []
    for item in notebooks:
        if isinstance(item, str):
            pairs.append((item, ""))
        else:
            pairs.append((str(item[0]), str(item[1])))
    if not pairs:
        return
    items_html = "".join(
        f"<li><a href='{_esc(path)}'>{_esc(path)}</a>{' — ' + _esc(why) if why else ''}</li>" for path, why in pairs
    )
    text = "\n".join(f"- {path}{' — ' + why if why else ''}" for path, why in pairs)
    _display({"text/html": f"<p><strong>{_esc(heading)}</strong></p><ul>{items_html}</ul>", "text/plain": text})


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
        _banners_for_failures(results.values())
    return results


def _banners_for_failures(evidence: Iterable[Evidence]) -> None:
    """One banner per source that failed (not one per query), so a dead source is seen, not drowned."""
    seen: set[tuple[str, str]] = set()
    for ev in evidence:
        if ev.ok or (ev.source, ev.status) in seen:
            continue
        seen.add((ev.source, ev.status))
        show_banner(
            ev.message, "warning" if ev.status != "error" else "error", title=f"{ev.source} {ev.status.upper()}"
        )


def show_failures(evidence: Mapping[str, Evidence] | Iterable[Evidence]) -> None:
    """A banner for each source whose evidence could not be gathered (nothing when all is well)."""
    items = evidence.values() if isinstance(evidence, Mapping) else evidence
    _banners_for_failures(items)


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


def pod_ready(pods: pd.DataFrame) -> pd.Series:
    """Which pods are ready: every container ready (``ready`` counts ready containers) and Running."""
    if pods.empty or "ready" not in pods:
        return pd.Series(False, index=pods.index)
    ready = pd.to_numeric(pods["ready"], errors="coerce").fillna(0)
    total = pd.to_numeric(pods.get("containers", ready), errors="coerce").fillna(0)
    running = pods["phase"].eq("Running") if "phase" in pods else pd.Series(True, index=pods.index)
    return (ready >= total) & (total > 0) & running


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
    _banners_for_failures(ctx.evidence[k] for k in ctx.evidence if k.startswith("monitor."))
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
    previous_at = None
    if previous.get("taken_at"):
        with contextlib.suppress(ValueError):
            previous_at = datetime.fromisoformat(str(previous["taken_at"]))
    table = pd.DataFrame(rows)
    since = f" (previous: {_fmt_time(previous_at)})" if previous_at else " (first snapshot: no trend yet)"
    show_table(table, f"Snapshot at {_fmt_time(now)}{since}")
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


def human_bytes(value: object) -> str:
    """``1.4 GiB`` for a byte count; ``?`` when unknown (a title must never fail)."""
    try:
        n = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "?"
    if not math.isfinite(n):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


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


def gatherers() -> dict[str, tuple[Callable[..., Evidence], dict[str, Any]]]:
    """Every evidence kind analysis knows, with the gather call that produces it."""
    from vcci_nb.sources import git, http, kube, postgres, prometheus, rabbitmq, redis

    table: dict[str, tuple[Callable[..., Evidence], dict[str, Any]]] = {
        "kubernetes.pods": (kube.gather_pods, {}),
        "kubernetes.containers": (kube.gather_containers, {}),
        "kubernetes.nodes": (kube.gather_nodes, {}),
        "kubernetes.top_pods": (kube.gather_top_pods, {}),
        "kubernetes.rollout_history": (kube.gather_rollout_history, {}),
        "kubernetes.error_signatures": (kube.gather_error_signatures, {}),
        "kubernetes.events": (kube.gather_events, {}),
        "kubernetes.oomkilled": (kube.gather_oomkilled, {}),
        "postgres.connections": (postgres.gather_connections, {}),
        "postgres.long_queries": (postgres.gather_long_queries, {}),
        "postgres.blocking": (postgres.gather_blocking, {}),
        "postgres.indexes": (postgres.gather_indexes, {}),
        "postgres.table_scans": (postgres.gather_table_scans, {}),
        "postgres.statements": (postgres.gather_statements, {}),
        "postgres.migrations": (postgres.gather_migrations, {}),
        "redis.ping": (redis.gather_ping, {}),
        "redis.info": (redis.gather_info, {}),
        "redis.slowlog": (redis.gather_slowlog, {}),
        "prometheus.volumes": (prometheus.gather_volumes, {}),
        "prometheus.dependency_up": (prometheus.gather_dependency_up, {}),
        "http.health": (http.gather_health, {}),
        "rabbitmq.overview": (rabbitmq.gather_overview, {}),
        "rabbitmq.queues": (rabbitmq.gather_queues, {}),
        "git.log": (git.gather_git_log, {}),
    }
    for panel in prometheus.panel_names():
        table[f"prometheus.{panel}"] = (prometheus.gather_panel, {"panel": panel})
    return table


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


def _panel_worst(ev: Evidence) -> float | None:
    if not ev.ok or ev.frame.empty or "value" not in ev.frame:
        return None
    frame = ev.frame
    if "period" in frame:
        frame = frame[frame["period"] == "incident"]
    series = frame.groupby("timestamp")["value"].sum() if "timestamp" in frame else frame["value"]
    series = pd.to_numeric(series, errors="coerce").dropna()
    series = series[series.map(math.isfinite)]
    return float(series.max()) if not series.empty else None


def resolution_verdict(ctx: Context, *, stable_minutes: float) -> Verdict:
    """Check runbook 6.1 over the last ``stable_minutes``: pods ready now, 5xx share and p95 under
    their thresholds for the whole time, and the smoke checks (health endpoints) answering.

    A check that could not be made (a source down, no data) counts against resolving: "we could
    not see" is not "it is fine". Every check and its reason is in the table.
    """
    from vcci_nb.sources import http, kube, prometheus

    end = ctx.window.end
    stable = Window(end - timedelta(minutes=float(stable_minutes)), end)
    rows: list[dict[str, Any]] = []

    def check(name: str, ok: bool | None, detail: str, evidence: str) -> None:
        rows.append({"check": name, "result": "pass" if ok else ("unknown" if ok is None else "fail"),
                     "detail": detail, "evidence": evidence})  # fmt: skip

    pods = ctx.evidence.get("kubernetes.pods") or ctx.ask(kube.gather_pods)
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
    for panel, threshold_name, label in (
        ("error_ratio_5xx", "error_ratio_5xx", "5xx share"),
        ("latency_p95", "latency_p95_s", "p95 latency (s)"),
    ):
        ev = ctx.ask(prometheus.gather_panel, panel, window=stable, baseline=False, key=f"resolve.{panel}")
        worst = _panel_worst(ev)
        limit = ctx.threshold(threshold_name)
        check(
            f"{label} under {limit:g} for {stable_minutes:g} min",
            None if worst is None else worst < limit,
            (ev.message or "no data in the window") if worst is None else f"worst {worst:.3g}",
            ev.name,
        )
    smoke = ctx.evidence.get("http.health") or ctx.ask(http.gather_health)
    if smoke.ok and "up" in smoke.frame:
        frame = smoke.frame
        if "url" in frame:
            frame = frame[frame["url"].astype(str) != ""]
        down = frame.loc[~frame["up"].astype(bool), "name"].astype(str).tolist() if "name" in frame else []
        check("smoke checks answer", not down and not frame.empty,
              "all healthy" if not down else f"failing: {', '.join(down)}", smoke.name)  # fmt: skip
    else:
        check("smoke checks answer", None, smoke.message or "no health endpoints configured", smoke.name)
    table = pd.DataFrame(rows)
    failed = table[table["result"] != "pass"]
    resolved = failed.empty
    reasons = (
        [f"{r.check}: {r.detail}" for r in failed.itertuples()]
        if not resolved
        else [f"all {len(table)} checks passed over the last {stable_minutes:g} minutes"]
    )
    return Verdict(resolved=resolved, checks=table, reasons=reasons)


def show_verdict(verdict: Verdict) -> list[Finding]:
    """The checks table, a banner with the verdict, and the verdict recorded as a finding."""
    show_table(verdict.checks, "Checks", columns=["check", "result", "detail"])
    show_banner("; ".join(verdict.reasons), "ok" if verdict.resolved else "warning", title=verdict.label.upper())
    return record_findings([verdict.finding()], title="Verdict")


# --------------------------------------------------------------------------------------------
# 03_investigate_metrics: every panel, window against baseline


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


# --------------------------------------------------------------------------------------------
# Scenario notebooks: each symptom confirmed, not seen, or unknown


#: Runbook 4.2's scenarios: (symptom, finding keys that confirm it, evidence kinds it needs).
SCENARIOS: dict[str, tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] = {
    "connection_pool_exhausted": (
        ("Connections at or near a limit", ("db.pool_exhaustion", "db.max_connections"), ("postgres.connections",)),
        ("Idle connections held open by the application", ("db.idle_connections",), ("postgres.connections",)),
        ("Requests failing with 5xx", ("metrics.error_rate",), ("prometheus.error_ratio_5xx",)),
        ("Errors in the application logs", ("logs.errors",), ("kubernetes.error_signatures",)),
    ),
    "memory_leak": (
        ("Containers OOMKilled", ("kube.oomkilled",), ("kubernetes.oomkilled",)),
        ("Pods restarting or not ready", ("kube.crashloop", "kube.pods_not_ready"), ("kubernetes.pods",)),
        ("Memory or CPU near the limit", ("kube.resource_saturation",), ("kubernetes.top_pods",)),
    ),
    "disk_full": (
        ("A volume nearly full", ("kube.disk_full",), ("prometheus.volumes",)),
        ("Errors in the application logs", ("logs.errors",), ("kubernetes.error_signatures",)),
    ),
    "slow_queries": (
        (
            "Large tables read without their index (missing index, sequential scans)",
            ("db.missing_index", "db.seq_scans"),
            ("postgres.indexes",),
        ),
        ("Sequential scans on large tables", ("db.seq_scans",), ("postgres.table_scans",)),
        ("Statements slow on average", ("db.slow_statements",), ("postgres.statements",)),
        ("p95 latency over the threshold", ("metrics.latency",), ("prometheus.latency_p95",)),
        ("Sessions waiting on locks or long queries", ("db.lock_chain", "db.long_queries"), ("postgres.blocking",)),
    ),
    "external_api_down": (
        (
            "The provider's health endpoint failing, or the application reporting it down",
            ("deps.http_down", "deps.dependency_down"),
            ("http.health",),
        ),
        ("The application reports a dependency down", ("deps.dependency_down",), ("prometheus.dependency_up",)),
        ("Requests failing with 5xx", ("metrics.error_rate",), ("prometheus.error_ratio_5xx",)),
        ("Errors in the application logs", ("logs.errors",), ("kubernetes.error_signatures",)),
    ),
}


@dataclass
class ScenarioCheck:
    """The symptoms of one scenario against the evidence."""

    scenario: str
    frame: pd.DataFrame
    confirmed: int
    checked: int

    @property
    def headline(self) -> str:
        total = len(self.frame.index)
        if self.confirmed == 0:
            return f"Not this scenario (so far): none of {total} symptoms seen ({self.checked} could be checked)"
        return f"{self.confirmed} of {total} symptoms confirmed"

    def finding(self) -> Finding:
        # The first symptom defines the scenario (OOMKilled for a memory leak); the others add weight.
        likely = bool(self.frame["status"].iloc[0] == "confirmed")
        title = self.scenario.replace("_", " ")
        seen = self.frame.loc[self.frame["status"] == "confirmed", "symptom"].tolist()
        return Finding(
            key=f"scenario.{self.scenario}",
            severity="high" if likely else ("medium" if self.confirmed else "info"),
            summary=(
                f"Scenario '{title}' {'is likely' if likely else 'is possible' if self.confirmed else 'is not seen'}: "
                + (", ".join(seen) if seen else "no symptom confirmed")
                + f" ({self.confirmed} of {len(self.frame.index)} symptoms)."
            ),
            value=self.confirmed,
            threshold=len(self.frame.index),
            unit="symptoms",
            details={"symptoms": json.loads(self.frame.to_json(orient="records"))},
            runbook=f"4.2 {title}",
        )


def scenario_check(scenario: str, evidence: Mapping[str, Evidence], findings: Iterable[Finding]) -> ScenarioCheck:
    """Each symptom of ``scenario``: *confirmed* (a finding shows it), *not seen* (its evidence was
    gathered and shows nothing), or *unknown* (its evidence is missing or its source failed)."""
    from vcci_nb.analysis.findings import pick

    if scenario not in SCENARIOS:
        raise ParameterError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    by_key: dict[str, list[Finding]] = {}
    for f in findings:
        by_key.setdefault(f.key, []).append(f)
    rows = []
    for symptom, keys, kinds in SCENARIOS[scenario]:
        hits = [f for k in keys for f in by_key.get(k, [])]
        sources = [pick(evidence, kind) for kind in kinds]
        usable = all(ev is not None and ev.ok for ev in sources)
        status = "confirmed" if hits else ("not seen" if usable else "unknown")
        missing = [f"{k}: {'not gathered' if ev is None else ev.status}" for k, ev in zip(kinds, sources, strict=True)]
        because = hits[0].summary if hits else ("checked: nothing found" if usable else "; ".join(missing))
        rows.append({"symptom": symptom, "status": status, "because": because})
    frame = pd.DataFrame(rows)
    return ScenarioCheck(
        scenario=scenario,
        frame=frame,
        confirmed=int((frame["status"] == "confirmed").sum()),
        checked=int((frame["status"] != "unknown").sum()),
    )

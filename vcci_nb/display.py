"""How a notebook shows things: evidence tables, banners, charts, finding cards, numbers.

The display layer. It draws what sources gathered and analysis judged, and judges nothing
itself:

- :func:`show_evidence` renders a table with the exact query beside it, and a banner when the
  source was unavailable, forbidden, timed out or failed;
- :func:`show_chart` emits a Plotly figure as ``application/vnd.plotly.v1+json``, which JupyterLab
  draws and which the runner's HTML export draws offline with one plotly.js per incident folder;
- :func:`record_findings` shows findings as cards and emits each as a display output of MIME
  :data:`~vcci_nb.analysis.model.FINDING_MIME`, which the runner collects into the record.

IPython is imported lazily so the module imports anywhere. Notebooks import these names from
:mod:`vcci_nb.notebook`, which re-exports them.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from vcci_nb import numbers
from vcci_nb.analysis.model import FINDING_MIME, Finding, sort_findings
from vcci_nb.evidence import Evidence
from vcci_nb.policy import level_rank
from vcci_nb.redact import redact

if TYPE_CHECKING:
    from vcci_nb.analysis.verdict import Verdict

__all__ = [
    "PLOTLY_MIME",
    "figure_json",
    "fmt_time",
    "human_bytes",
    "record_findings",
    "show_banner",
    "show_chart",
    "show_evidence",
    "show_failures",
    "show_markdown",
    "show_next",
    "show_table",
    "show_verdict",
]

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


def _display(bundle: Mapping[str, Any]) -> None:
    from IPython.display import display

    display(dict(bundle), raw=True)  # type: ignore[no-untyped-call]


def _esc(value: object) -> str:
    return html.escape(redact(str(value)), quote=True)


def fmt_time(value: datetime) -> str:
    """A time as headers and tables show it: ``2026-01-06 14:05:00 UTC``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --------------------------------------------------------------------------------------------
# Evidence, tables and banners


def show_markdown(text: str, *, svg: str = "") -> None:
    """Show Markdown formatted (headings, tables, lists), with an optional inline SVG chart after it.

    JupyterLab and exported HTML render the ``text/markdown``; the plain text (the Markdown itself)
    is what a headless reader or a test sees. Nothing is shown for empty text and no chart.
    """
    text = redact(text or "")
    if text.strip():
        _display({"text/markdown": text, "text/plain": text})
    if svg:
        _display({"image/svg+xml": svg, "text/plain": "(chart)"})


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
    return numbers.plain(value)


#: A table shows this many columns; the rest are behind a toggle ("all N columns").
MAX_COLUMNS = 8


def _readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as a person reads them: durations (``*_s``), bytes (``*_bytes``) and ratios by column name."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(_cell_text)
        elif (
            pd.api.types.is_numeric_dtype(out[col])
            and not pd.api.types.is_bool_dtype(out[col])
            and numbers.column_kind(str(col)) != "plain"
        ):
            name = str(col)
            out[col] = out[col].map(lambda v, name=name: "" if v != v else numbers.fmt_cell(name, v))
    return out


def _frame_html(frame: pd.DataFrame, max_rows: int) -> tuple[str, str]:
    shown = _readable(frame.head(max_rows))
    more = len(frame.index) - len(shown.index)
    note = f"<p><em>{more} more rows not shown (first {max_rows} of {len(frame.index)}).</em></p>" if more > 0 else ""

    def html_of(part: pd.DataFrame) -> str:
        return part.to_html(index=False, escape=True, border=0, classes="vcci-table", na_rep="", float_format=_number)

    if len(shown.columns) > MAX_COLUMNS:
        # The columns that matter first (the caller's order), the rest behind a toggle.
        first = shown[list(shown.columns[:MAX_COLUMNS])]
        table = (
            html_of(first) + f"<details><summary style='cursor:pointer;color:#57606a'>all {len(shown.columns)} "
            f"columns</summary>{html_of(shown)}</details>"
        )
        text = first.to_string(index=False, max_colwidth=60, float_format=_number)
        text += (
            f"\n({len(shown.columns) - MAX_COLUMNS} more columns: {', '.join(map(str, shown.columns[MAX_COLUMNS:]))})"
        )
    else:
        table = html_of(shown)
        text = shown.to_string(index=False, max_colwidth=60, float_format=_number)
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
    when = fmt_time(ev.collected_at) if isinstance(ev.collected_at, datetime) else str(ev.collected_at)
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
    return numbers.fmt_value(value, unit)


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
    summary = ", ".join(f"{n} {sev}" for sev, n in sorted(counts.items(), key=lambda kv: level_rank(kv[0])))
    head = f"{title}: {summary}" if items else f"{title}: none. {none_text}"
    # Checks that could not run are not checks that found nothing: say how many, and why.
    from vcci_nb.analysis.findings.unreachable import checks_headline

    if not_run := checks_headline(items):
        head = f"{title}: {summary}. {not_run}"
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


def banners_for_failures(evidence: Iterable[Evidence]) -> None:
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
    banners_for_failures(items)


def show_verdict(verdict: Verdict) -> list[Finding]:
    """The checks table, a banner with the verdict, and the verdict recorded as a finding."""
    show_table(verdict.checks, "Checks", columns=["check", "result", "detail"])
    show_banner("; ".join(verdict.reasons), "ok" if verdict.resolved else "warning", title=verdict.label.upper())
    return record_findings([verdict.finding()], title="Verdict")


# --------------------------------------------------------------------------------------------
# Small readers for prose and titles


# --------------------------------------------------------------------------------------------
# Small readers for prose and titles


def human_bytes(value: object) -> str:
    """``1.4 GiB`` for a byte count; ``?`` when unknown (a title must never fail)."""
    return numbers.human_bytes(value)

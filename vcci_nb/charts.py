"""Plotly figures from DataFrames: pure functions, no fetching.

Every chart has a title and axis units, shades the incident window when one is given, and
draws the threshold when there is one. Every trace is downsampled to at most
:data:`MAX_POINTS` points (tsdownsample's MinMaxLTTB keeps spikes, which plain striding
loses), so a chart of a million samples is a few hundred kilobytes, not fifty megabytes.

Drawing: call :func:`show` (or :func:`vcci_nb.display.show_chart`). It emits the Plotly JSON
bundle; the runner's HTML export draws it offline with the one plotly.js it stores per incident
folder (see ``vcci_nb.display`` and ``vcci_nb.runner``). Plotly's default renderer under
papermill writes only that JSON and nbconvert drops it, which is why charts are not shown
with ``fig.show()``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from vcci_nb.evidence import Evidence, Window

MAX_POINTS = 5000

#: Colours: incident traces use Plotly's default cycle; these mark context.
WINDOW_FILL = "rgba(255, 99, 71, 0.10)"
THRESHOLD_COLOR = "#d62728"
BASELINE_COLOR = "rgba(120, 120, 120, 0.55)"
STATE_COLORS = {
    "active": "#d62728",
    "idle in transaction": "#ff7f0e",
    "idle in transaction (aborted)": "#8c564b",
    "idle": "#1f77b4",
    "fastpath function call": "#9467bd",
    "disabled": "#7f7f7f",
}


# --- downsampling ---------------------------------------------------------------------------------


def downsample(x: Any, y: Any, n_out: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n_out`` points of (x, y), keeping extremes (MinMaxLTTB); x must be sortable.

    Datetime x is handled as int64 nanoseconds and given back as datetimes. NaNs in y are
    dropped first (Prometheus gaps), so the result is what is drawn.
    """
    xs = pd.Series(x).reset_index(drop=True)
    ys = pd.to_numeric(pd.Series(y).reset_index(drop=True), errors="coerce").astype("float64")
    keep = ys.notna() & xs.notna()
    xs, ys = xs[keep], ys[keep]
    is_time = pd.api.types.is_datetime64_any_dtype(xs)
    if is_time:
        tz = getattr(xs.dt, "tz", None)
        xnum = xs.astype("int64").to_numpy() if tz is None else xs.dt.tz_convert("UTC").astype("int64").to_numpy()
    else:
        xnum = pd.to_numeric(xs, errors="coerce").to_numpy(dtype="float64")
    yv = ys.to_numpy(dtype="float64")
    order = np.argsort(xnum, kind="stable")
    xnum, yv = xnum[order], yv[order]
    if len(yv) > n_out:
        from tsdownsample import MinMaxLTTBDownsampler

        idx = MinMaxLTTBDownsampler().downsample(  # type: ignore[no-untyped-call]
            xnum, yv, n_out=n_out
        )
        xnum, yv = xnum[idx], yv[idx]
    if is_time:
        # Naive datetime64 in UTC: Plotly serialises it fast (tz-aware objects are deep-copied one by one).
        return xnum.astype("int64").astype("datetime64[ns]"), yv
    return xnum, yv


FrameLike = pd.DataFrame | Evidence


def _frame(data: FrameLike | None) -> pd.DataFrame:
    """Charts take a DataFrame, or an Evidence (its frame; empty when the source failed)."""
    if data is None:
        return pd.DataFrame()
    return data.frame if isinstance(data, Evidence) else data


# --- layout helpers -------------------------------------------------------------------------------


def _figure(title: str, y_title: str, x_title: str = "time (UTC)") -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        title={"text": title},
        xaxis_title=x_title,
        yaxis_title=y_title,
        template="plotly_white",
        height=380,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        hovermode="x unified",
    )
    return fig


def _mark(fig: Any, window: Window | None, threshold: float | None, unit: str = "") -> Any:
    if window is not None:
        fig.add_vrect(
            x0=pd.Timestamp(window.start),
            x1=pd.Timestamp(window.end),
            fillcolor=WINDOW_FILL,
            line_width=0,
            layer="below",
            annotation_text="incident window",
            annotation_position="top left",
        )
    if threshold is not None and np.isfinite(threshold):
        fig.add_hline(
            y=threshold,
            line_dash="dash",
            line_color=THRESHOLD_COLOR,
            annotation_text=f"threshold {threshold:g} {unit}".strip(),
            annotation_position="top right",
        )
    return fig


def _unit_label(unit: str) -> str:
    return {"ratio": "share (0–1)", "s": "seconds", "bytes": "bytes", "cores": "CPU cores"}.get(unit, unit or "value")


def _series_key(frame: pd.DataFrame, by: str | None) -> str | None:
    if by and by in frame:
        return by
    for col in ("pod", "series"):
        if col in frame and frame[col].nunique(dropna=True) > 0:
            return col
    return None


# --- time series ----------------------------------------------------------------------------------


def timeseries_chart(
    data: FrameLike,
    *,
    title: str,
    unit: str = "",
    window: Window | None = None,
    threshold: float | None = None,
    by: str | None = None,
    baseline: bool = True,
    max_series: int = 12,
) -> Any:
    """Lines over time from a tidy frame (``timestamp``, ``value``, optional ``period`` and a series column).

    Baseline rows (``period == "baseline"``) are drawn dashed and grey, shifted onto the incident
    window by ``offset_s`` so that "now" and "before" overlay. Only the ``max_series`` largest
    series are drawn (the rest are named in the legend title).
    """
    import plotly.graph_objects as go

    frame = _frame(data)
    fig = _figure(title, _unit_label(unit))
    if frame.empty or "value" not in frame:
        fig.add_annotation(text="no data in this window", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return _mark(fig, window, threshold, unit)
    has_period = "period" in frame
    incident = frame[frame["period"] == "incident"] if has_period else frame
    key = _series_key(frame, by)
    groups = _top_groups(incident, key, max_series)
    for name in groups:
        part = incident if key is None else incident[incident[key] == name]
        x, y = downsample(part["timestamp"], part["value"])
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=legend_name(name, title) if key else title))
    if baseline and has_period and window is not None and "offset_s" in frame:
        base = frame[frame["period"] == "baseline"]
        for name in groups[:3]:
            part = base if key is None else base[base[key] == name]
            if part.empty:
                continue
            shifted = pd.Timestamp(window.start) + pd.to_timedelta(part["offset_s"], unit="s")
            x, y = downsample(shifted, part["value"])
            label = f"{legend_name(name, title)} (baseline)" if key else "baseline (same length, just before)"
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=label, line={"dash": "dot", "color": BASELINE_COLOR}))
    hidden = _count_groups(incident, key) - len(groups)
    if hidden > 0:
        fig.update_layout(legend_title_text=f"top {len(groups)} of {len(groups) + hidden} series")
    return _mark(fig, window, threshold, unit)


def legend_name(name: Any, title: str) -> str:
    """A series' name in a legend: ``pod=vcci-api-1, route=/x`` for ``{pod="vcci-api-1",route="/x"}``;
    the chart's title for a single series with no labels (``{}``), never ``{}``."""
    text = str(name).strip()
    if text in ("", "{}", "None", "nan"):
        return title
    m = re.fullmatch(r"([^{]*)\{(.*)\}", text)
    if m:
        inner = ", ".join(part.replace('"', "") for part in m.group(2).split(",") if part)
        return inner or m.group(1) or title
    return text


def _top_groups(frame: pd.DataFrame, key: str | None, limit: int) -> list[Any]:
    if key is None:
        return [None]
    totals = frame.groupby(key, observed=True)["value"].max().sort_values(ascending=False)
    return list(totals.index[:limit])


def _count_groups(frame: pd.DataFrame, key: str | None) -> int:
    return 1 if key is None else int(frame[key].nunique(dropna=True))


def panel_chart(
    evidence: Evidence, window: Window | None = None, *, threshold: float | None = None, title: str | None = None
) -> Any:
    """A Prometheus panel Evidence (``gather_panel``) as a chart, with its title, unit and threshold."""
    meta = evidence.meta or {}
    thr = threshold if threshold is not None else meta.get("threshold")
    name = title or str(meta.get("title") or evidence.name)
    if not evidence.ok:
        name = f"{name} — {evidence.status}"
    return timeseries_chart(
        evidence.frame,
        title=name,
        unit=str(meta.get("unit") or ""),
        window=window or evidence.window,
        threshold=float(thr) if thr is not None else None,
    )


def error_rate_chart(frame: FrameLike, window: Window | None = None, *, threshold: float | None = None) -> Any:
    """5xx share of requests over time (panel ``error_ratio_5xx``)."""
    return timeseries_chart(frame, title="5xx share of requests", unit="ratio", window=window, threshold=threshold)


def latency_chart(
    p95: FrameLike, p99: FrameLike | None = None, window: Window | None = None, *, threshold: float | None = None
) -> Any:
    """p95 (and p99) latency over time, in seconds, against the latency threshold."""
    import plotly.graph_objects as go

    fig = _figure("API latency percentiles", "seconds")
    for label, frame in (("p95", _frame(p95)), ("p99", _frame(p99))):
        if frame.empty:
            continue
        inc = frame[frame["period"] == "incident"] if "period" in frame else frame
        x, y = downsample(inc["timestamp"], inc["value"])
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=label))
    return _mark(fig, window, threshold, "s")


def resource_chart(
    frame: FrameLike, *, resource: str = "cpu", window: Window | None = None, threshold: float | None = None
) -> Any:
    """CPU (cores) or memory (bytes) per pod over time."""
    if resource == "memory":
        return timeseries_chart(frame, title="Memory per pod", unit="bytes", window=window, threshold=threshold)
    return timeseries_chart(frame, title="CPU per pod", unit="cores", window=window, threshold=threshold)


# --- PostgreSQL -----------------------------------------------------------------------------------


def connections_chart(
    data: FrameLike,
    *,
    max_connections: float | None = None,
    role_limit: float | None = None,
    by: str = "application",
) -> Any:
    """Connections per application (or role), stacked by state, against max_connections and the role limit."""
    import plotly.graph_objects as go

    connections = _frame(data)
    if isinstance(data, Evidence) and max_connections is None and data.meta.get("max_connections"):
        max_connections = float(data.meta["max_connections"])
    fig = _figure("PostgreSQL connections by state", "connections", x_title=by)
    if connections.empty:
        fig.add_annotation(text="no client connections", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    else:
        pivot = connections.pivot_table(index=by, columns="state", values="count", aggfunc="sum", fill_value=0)
        pivot = pivot.loc[pivot.sum(axis=1).sort_values(ascending=False).index]
        for state in pivot.columns:
            fig.add_trace(
                go.Bar(
                    x=[str(i) for i in pivot.index],
                    y=pivot[state].to_numpy(),
                    name=str(state),
                    marker_color=STATE_COLORS.get(str(state)),
                )
            )
    fig.update_layout(barmode="stack", hovermode="closest")
    if max_connections:
        fig.add_hline(y=max_connections, line_dash="dash", line_color=THRESHOLD_COLOR,
                      annotation_text=f"max_connections {max_connections:g}")  # fmt: skip
    if role_limit:
        fig.add_hline(
            y=role_limit,
            line_dash="dot",
            line_color="#ff7f0e",
            annotation_text=f"role connection limit {role_limit:g}",
            annotation_position="bottom right",
        )
    return fig


def connections_evidence_chart(connections: Evidence, *, role: str | None = None) -> Any:
    """:func:`connections_chart` from ``postgres.connections`` evidence, limits taken from it."""
    frame = connections.frame
    limit = None
    if role and not frame.empty and "role_limit" in frame:
        lim = frame.loc[frame["role"] == role, "role_limit"]
        limit = float(lim.max()) if not lim.empty and float(lim.max()) > 0 else None
    mc = connections.meta.get("max_connections")
    return connections_chart(frame, max_connections=float(mc) if mc else None, role_limit=limit)


def lock_graph_chart(data: FrameLike) -> Any:
    """The lock chain as a graph: each session a node, an arrow from blocker to blocked; roots on the left."""
    import plotly.graph_objects as go

    blocking = _frame(data)
    fig = _figure("Lock chain: who blocks whom", "sessions", x_title="depth in the chain (0 = root blocker)")
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False)
    if blocking.empty:
        fig.add_annotation(text="no session is waiting on a lock", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=0.5)  # fmt: skip
        return fig
    edges = [(int(a), int(b)) for a, b in zip(blocking["blocking_pid"], blocking["blocked_pid"], strict=True)]
    parents: dict[int, set[int]] = {}
    for a, b in edges:
        parents.setdefault(b, set()).add(a)
        parents.setdefault(a, set())
    depth: dict[int, int] = {}

    def d(pid: int, seen: frozenset[int] = frozenset()) -> int:
        if pid in depth:
            return depth[pid]
        ps = [p for p in parents.get(pid, ()) if p not in seen]
        depth[pid] = 0 if not ps else 1 + max(d(p, seen | {pid}) for p in ps)
        return depth[pid]

    for pid in parents:
        d(pid)
    pos: dict[int, tuple[float, float]] = {}
    for level in sorted(set(depth.values())):
        members = sorted(p for p, v in depth.items() if v == level)
        for i, pid in enumerate(members):
            pos[pid] = (float(level), float(i - (len(members) - 1) / 2))
    labels = _pid_labels(blocking)
    gids = (
        [str(g) for g in blocking.loc[blocking["blocking_pid"] == 0, "blocking_gid"].dropna()]
        if "blocking_gid" in blocking
        else []
    )
    gids = gids or ["?"]
    for a, b in edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=3, arrowsize=1.5, arrowcolor="#555")  # fmt: skip
    pids = list(pos)
    fig.add_trace(
        go.Scatter(
            x=[pos[p][0] for p in pids],
            y=[pos[p][1] for p in pids],
            mode="markers+text",
            text=[f"pid {p}" if p else f"prepared {gids[0]}" for p in pids],
            textposition="top center",
            hovertext=[labels.get(p, f"pid {p}") for p in pids],
            hoverinfo="text",
            marker={"size": 22, "color": [THRESHOLD_COLOR if depth[p] == 0 else "#1f77b4" for p in pids]},
        )
    )
    fig.update_xaxes(dtick=1)
    return fig


def _pid_labels(blocking: pd.DataFrame) -> dict[int, str]:
    out: dict[int, str] = {}
    for rec in blocking.to_dict("records"):
        gid = rec.get("blocking_gid")
        if int(rec["blocking_pid"]) == 0 and isinstance(gid, str) and gid:
            # PID 0: a prepared transaction, which has no session; it is known by its gid.
            out[0] = f"prepared transaction {gid!r} ({rec.get('blocking_role') or ''}): ROLLBACK PREPARED by gid"
            continue
        out[int(rec["blocking_pid"])] = (
            f"pid {rec['blocking_pid']} {rec.get('blocking_application') or ''} ({rec.get('blocking_state')}): "
            f"{str(rec.get('blocking_query') or '')[:80]}"
        )
        out.setdefault(
            int(rec["blocked_pid"]),
            f"pid {rec['blocked_pid']} {rec.get('blocked_application') or ''} waiting "
            f"{float(rec.get('waiting_s') or 0):.0f} s: {str(rec.get('blocked_query') or '')[:80]}",
        )
    return out


# --- Redis, logs ----------------------------------------------------------------------------------


def slowlog_chart(data: FrameLike, *, threshold_ms: float | None = None, window: Window | None = None) -> Any:
    """SLOWLOG entries: when, how long (ms), which command."""
    import plotly.graph_objects as go

    slowlog = _frame(data)
    fig = _figure("Redis SLOWLOG", "duration (ms)")
    fig.update_layout(hovermode="closest")
    if not slowlog.empty:
        cmd = slowlog["command"].astype(str).str.split().str[0].str.upper()
        for name in cmd.value_counts().index[:10]:
            part = slowlog[cmd == name]
            x, y = downsample(part["at"], part["duration_ms"])
            fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=str(name)))
    return _mark(fig, window, threshold_ms, "ms")


def signatures_timeline_chart(
    data: FrameLike,
    window: Window | None = None,
    *,
    top: int = 8,
    bucket: str | None = None,
) -> Any:
    """ERROR signatures over time: one line per signature (the ``top`` loudest), counts per time bucket.

    ``logs`` is the frame of ``kubernetes.logs`` (``timestamp``, ``level``, ``message``).
    """
    import plotly.graph_objects as go

    from vcci_nb.logparse import ERROR_LEVELS, signatures_of

    logs = _frame(data)
    fig = _figure("Error signatures over time", "error lines per bucket")
    errors = logs[logs["level"].isin(ERROR_LEVELS) & logs["timestamp"].notna()] if not logs.empty else logs
    if errors.empty:
        fig.add_annotation(text="no ERROR lines", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return _mark(fig, window, None)
    work = pd.DataFrame(
        {"timestamp": errors["timestamp"].to_numpy(), "signature": signatures_of(errors["message"]).to_numpy()}
    )
    span = work["timestamp"].max() - work["timestamp"].min()
    freq = bucket or _bucket_for(span)
    loudest = work["signature"].value_counts().index[:top]
    for sig in loudest:
        part = work[work["signature"] == sig]
        counts = part.set_index("timestamp").resample(freq).size()
        x, y = downsample(counts.index.to_series(), counts.to_numpy())
        label = str(sig) if len(str(sig)) <= 60 else str(sig)[:57] + "..."
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, hovertext=str(sig)))
    fig.update_layout(yaxis_title=f"error lines per {freq}")
    return _mark(fig, window, None)


def _bucket_for(span: pd.Timedelta) -> str:
    seconds = max(span.total_seconds(), 1)
    for step, label in ((60, "1s"), (600, "10s"), (3600, "1min"), (6 * 3600, "5min"), (86400, "15min")):
        if seconds <= step:
            return label
    return "1h"


# --- drawing --------------------------------------------------------------------------------------


def show(fig: Any, *, query: str = "") -> None:
    """Draw ``fig`` so that it also draws offline in the exported HTML (delegates to the notebook helper)."""
    from vcci_nb.display import show_chart

    show_chart(fig, query=query)


def trace_points(fig: Any) -> list[int]:
    """Points per trace of a figure (what :data:`MAX_POINTS` bounds); handy in tests and checks."""
    return [len(t.x) if t.x is not None else 0 for t in fig.data]


def titles(fig: Any) -> tuple[str, str, str]:
    """(title, x-axis title, y-axis title) of a figure."""
    lay = fig.layout
    return (str(lay.title.text or ""), str(lay.xaxis.title.text or ""), str(lay.yaxis.title.text or ""))

"""Prometheus: instant and range queries, and the seed's dashboards as named panels.

Range results are turned into a tidy frame straight from the response bytes: the sample
arrays are cut out of the JSON and parsed as CSV by pyarrow, the small rest (the label sets)
by ``json``. A million samples never become a million Python lists; see
``tests/bench/bench_data.py`` for what that buys.

Frame of a range query: ``timestamp`` (UTC), ``value`` (float), ``series`` (the label set as
text), one categorical column per label, and, for panels, ``period`` (incident | baseline)
and ``offset_s`` (seconds since the start of its period, to overlay the two).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import requests

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, resolve_profile, service_url
from vcci_nb.errors import ConfigError, SourceError
from vcci_nb.evidence import Evidence, Window
from vcci_nb.redact import redact_url
from vcci_nb.sources._core import collect, not_configured, setting_for
from vcci_nb.sources.window import baseline_window, choose_step

SOURCE = "prometheus"
_VALUES_KEY = b'"values":['

#: Which profile threshold belongs to which panel (drawn on charts, used by findings).
PANEL_THRESHOLDS: dict[str, str] = {
    "error_ratio_5xx": "error_ratio_5xx",
    "latency_p95": "latency_p95_s",
    "latency_p99": "latency_p95_s",
}


# --- parsing --------------------------------------------------------------------------------------


def _label_text(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{inner}}}" if inner or not name else name


def _frame_from_arrays(
    metrics: list[dict[str, str]], counts: np.ndarray, ts: np.ndarray, values: np.ndarray
) -> pd.DataFrame:
    """Assemble the tidy frame from flat arrays; labels become categoricals built from codes."""
    series_codes = np.repeat(np.arange(len(metrics), dtype=np.int32), counts)
    # Prometheus times are milliseconds: round there, or float error shows up as 09:29:28.492999936.
    stamps = np.round(ts * 1e3).astype("int64") * 1_000_000
    columns: dict[str, Any] = {
        "timestamp": pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC"),
        "value": values.astype("float64", copy=False),
        "series": _categorical([_label_text(m) for m in metrics], series_codes),
    }
    for key in sorted({k for m in metrics for k in m}):
        columns[key] = _categorical([m.get(key) for m in metrics], series_codes)
    return pd.DataFrame(columns)


def _categorical(per_series: list[str | None], series_codes: np.ndarray) -> pd.Categorical:
    """One value per series, expanded to one per sample through integer codes (no Python loop)."""
    cats = list(dict.fromkeys(v for v in per_series if v is not None))
    lookup = {v: i for i, v in enumerate(cats)}
    codes = np.array([lookup[v] if v is not None else -1 for v in per_series], dtype=np.int32)
    return pd.Categorical.from_codes(
        codes[series_codes] if len(codes) else codes, categories=pd.Index(cats, dtype=object)
    )


def matrix_to_frame(result: list[dict[str, Any]]) -> pd.DataFrame:
    """A parsed ``resultType: matrix`` (list of ``{metric, values}``) to the tidy frame."""
    metrics = [dict(s.get("metric") or {}) for s in result]
    counts = np.array([len(s.get("values") or ()) for s in result], dtype=np.int64)
    total = int(counts.sum())
    ts = np.empty(total, dtype=np.float64)
    vals = np.empty(total, dtype=np.float64)
    pos = 0
    for series, n in zip(result, counts, strict=True):
        if n:
            arr = np.array(series["values"], dtype=object)
            ts[pos : pos + n] = arr[:, 0].astype(np.float64)
            vals[pos : pos + n] = arr[:, 1].astype(np.float64)
            pos += int(n)
    return _frame_from_arrays(metrics, counts, ts, vals)


def vector_to_frame(result: list[dict[str, Any]]) -> pd.DataFrame:
    """A parsed ``resultType: vector`` to the same tidy frame (one row per series)."""
    metrics = [dict(s.get("metric") or {}) for s in result]
    counts = np.ones(len(result), dtype=np.int64)
    ts = np.array([float(s["value"][0]) for s in result], dtype=np.float64)
    vals = np.array([float(s["value"][1]) for s in result], dtype=np.float64)
    return _frame_from_arrays(metrics, counts, ts, vals)


def _split_values(body: bytes) -> tuple[bytes, list[bytes]]:
    """Cut every ``"values":[[t,"v"],...]`` array out of a compact Prometheus answer."""
    pieces: list[bytes] = []
    arrays: list[bytes] = []
    pos = 0
    while True:
        i = body.find(_VALUES_KEY, pos)
        if i < 0:
            break
        start = i + len(_VALUES_KEY)
        if body[start : start + 1] == b"]":
            arrays.append(b"")
            pieces.append(body[pos:start])
            pos = start
            continue
        j = body.find(b"]]", start)
        if j < 0:
            raise SourceError("Prometheus answer is truncated: a values array never closes")
        arrays.append(body[start + 1 : j])
        pieces.append(body[pos:start])
        pos = j + 1
    pieces.append(body[pos:])
    return b"".join(pieces), arrays


def parse_query_response(body: bytes) -> pd.DataFrame:
    """Parse a ``/api/v1/query`` or ``/api/v1/query_range`` answer into the tidy frame.

    Raises SourceError when Prometheus answered with ``status: error`` (a bad PromQL query),
    quoting its message so the engineer can fix the query.
    """
    stripped, arrays = _split_values(body)
    doc = json.loads(stripped)
    if doc.get("status") != "success":
        raise SourceError(f"Prometheus rejected the query: {doc.get('errorType')}: {doc.get('error')}")
    data = doc.get("data") or {}
    rtype = data.get("resultType")
    result = data.get("result") or []
    if rtype == "vector":
        return vector_to_frame(result)
    if rtype == "scalar":
        t, v = result
        return pd.DataFrame({"timestamp": pd.to_datetime([float(t)], unit="s", utc=True), "value": [float(v)]})
    if rtype != "matrix":
        raise SourceError(f"Prometheus answered with an unexpected result type {rtype!r}")
    metrics = [dict(s.get("metric") or {}) for s in result]
    if len(arrays) != len(metrics):
        # Not the compact layout we expect: fall back to the slow, general path.
        return matrix_to_frame(json.loads(body)["data"]["result"])
    return _frame_from_csv(metrics, arrays)


def _frame_from_csv(metrics: list[dict[str, str]], arrays: list[bytes]) -> pd.DataFrame:
    """Parse the cut-out sample arrays (``t,"v"],[t,"v"...``) with pyarrow.

    One ``"],["`` to newline replacement in Arrow (a C++ pass, about twice as fast as
    ``bytes.replace``) turns them into CSV whose quoted values Arrow's reader unquotes itself.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    counts = np.array([a.count(b"[") + 1 if a else 0 for a in arrays], dtype=np.int64)
    joined = b"\n".join(a for a in arrays if a)
    if not joined:
        return _frame_from_arrays(metrics, counts, np.empty(0), np.empty(0))
    csv = pc.replace_substring(pa.array([joined], pa.large_binary()), "],[", "\n").buffers()[2]
    table = pacsv.read_csv(
        pa.BufferReader(csv),
        read_options=pacsv.ReadOptions(column_names=["t", "v"]),
        convert_options=pacsv.ConvertOptions(column_types={"t": pa.float64(), "v": pa.float64()}),
    )
    ts = table.column("t").to_numpy()
    vals = table.column("v").to_numpy()
    return _frame_from_arrays(metrics, counts, ts, vals)


# --- I/O ------------------------------------------------------------------------------------------


def _base_url(profile: ProfileLike) -> str | None:
    url = service_url(profile, "prometheus")
    return url.rstrip("/") if url else None


def query_url(base: str, path: str, params: dict[str, str], timeout: float) -> pd.DataFrame:
    """Ask Prometheus at ``base`` directly (``/api/v1/query`` or ``/api/v1/query_range``) and parse
    the answer into the tidy frame. Raises on failure: callers that must not raise use the
    ``gather_*`` functions, which fold failures into Evidence."""
    resp = requests.post(f"{base}{path}", data=params, timeout=(timeout, timeout))
    if resp.status_code in (401, 403):
        resp.raise_for_status()
    if resp.status_code >= 500 and not resp.content.startswith(b"{"):
        resp.raise_for_status()
    return parse_query_response(resp.content)


def gather_instant(
    profile: ProfileLike,
    query: str,
    *,
    at: Window | None = None,
    name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """One instant query, at the end of ``at`` (or now). ``name`` defaults to ``prometheus.instant``."""
    ev_name = name or "prometheus.instant"
    base = _base_url(profile)
    if not base:
        return not_configured(ev_name, SOURCE, "PROMETHEUS_URL is not set", query=query)
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at.end.timestamp():.3f}"
    return collect(
        ev_name,
        SOURCE,
        query,
        lambda: query_url(base, "/api/v1/query", params, timeout),
        timeout=timeout,
        target=redact_url(base),
        setting=setting_for(profile, "prometheus"),
        window=at,
    )


def gather_range(
    profile: ProfileLike,
    query: str,
    window: Window,
    *,
    step: float | None = None,
    baseline: bool | Window | None = True,
    name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    meta: dict[str, Any] | None = None,
) -> Evidence:
    """A range query over ``window`` and a baseline: the same length just before it (``True``),
    the given Window, or none (``False``/``None``).

    Both periods use one step (chosen from the window unless given) so that they overlay.
    """
    ev_name = name or "prometheus.range"
    base = _base_url(profile)
    if not base:
        return not_configured(ev_name, SOURCE, "PROMETHEUS_URL is not set", query=query)
    step_s = step or choose_step(window)
    periods: list[tuple[str, Window]] = [("incident", window)]
    if isinstance(baseline, Window):
        periods.append(("baseline", baseline))
    elif baseline:
        periods.append(("baseline", baseline_window(window)))

    def fetch() -> tuple[pd.DataFrame, dict[str, Any]]:
        frames = []
        for label, win in periods:
            frame = query_url(
                base,
                "/api/v1/query_range",
                {
                    "query": query,
                    "start": f"{win.start.timestamp():.3f}",
                    "end": f"{win.end.timestamp():.3f}",
                    "step": f"{step_s:g}",
                },
                timeout,
            )
            frame["period"] = pd.Categorical([label] * len(frame.index), categories=["incident", "baseline"])
            frame["offset_s"] = (frame["timestamp"] - pd.Timestamp(win.start)).dt.total_seconds()
            frames.append(frame)
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        extra: dict[str, Any] = {"step_s": step_s}
        if len(periods) > 1:
            bw = periods[1][1]
            extra["baseline"] = {"start": bw.start.isoformat(), "end": bw.end.isoformat()}
        return out, extra

    return collect(
        ev_name,
        SOURCE,
        f"{query}  [step={step_s:g}s]",
        fetch,
        timeout=timeout,
        target=redact_url(base),
        setting=setting_for(profile, "prometheus"),
        window=window,
        meta=meta,
    )


def panel_names(profile: ProfileLike = None) -> list[str]:
    panels = resolve_profile(profile).get("prometheus.panels") or {}
    return list(panels)


def panel_query(profile: ProfileLike, panel: str) -> tuple[str, dict[str, Any]]:
    """The PromQL of a named panel with ``{job}`` and ``{namespace}`` filled in, and its title/unit."""
    prof = resolve_profile(profile)
    panels = prof.get("prometheus.panels") or {}
    if panel not in panels:
        raise ConfigError(
            f"profile {prof.name!r} has no Prometheus panel {panel!r}; known panels: {', '.join(panels) or 'none'}"
        )
    spec = panels[panel]
    query = prof.promql(str(spec["query"]))
    info: dict[str, Any] = {"panel": panel, "title": spec.get("title", panel), "unit": spec.get("unit", "")}
    threshold_key = PANEL_THRESHOLDS.get(panel)
    if threshold_key and prof.get(f"thresholds.{threshold_key}") is not None:
        info["threshold"] = float(prof.get(f"thresholds.{threshold_key}"))
    return query, info


def gather_panel(
    profile: ProfileLike,
    panel: str,
    window: Window,
    *,
    step: float | None = None,
    baseline: bool | Window | None = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """One of the seed's dashboard panels (``prometheus.panels`` in the profile), as ``prometheus.PANEL``.

    ``meta`` carries ``title``, ``unit`` and ``threshold`` for the chart.
    """
    query, info = panel_query(profile, panel)
    return gather_range(
        profile,
        query,
        window,
        step=step,
        baseline=baseline,
        name=f"prometheus.{panel}",
        timeout=timeout,
        meta=info,
    )


def gather_panels(
    profile: ProfileLike,
    window: Window,
    *,
    panels: list[str] | None = None,
    baseline: bool | Window | None = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Evidence]:
    """Every named panel (or those listed), keyed by panel name."""
    names = panels or panel_names(profile)
    return {p: gather_panel(profile, p, window, baseline=baseline, timeout=timeout) for p in names}


def gather_volumes(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """Free space per PersistentVolumeClaim now (kubelet_volume_stats): ``free_ratio`` = available/capacity.

    The seed's ``df -h`` without exec'ing into a pod.
    """
    prof = resolve_profile(profile)
    available, capacity = prof.query("volume_available"), prof.query("volume_capacity")
    query = f"({available}) / ({capacity})"
    base = _base_url(prof)
    if not base:
        return not_configured("prometheus.volumes", SOURCE, "PROMETHEUS_URL is not set", query=query)

    def fetch() -> pd.DataFrame:
        ratio = query_url(base, "/api/v1/query", {"query": query}, timeout)
        avail = query_url(base, "/api/v1/query", {"query": available}, timeout)
        cap = query_url(base, "/api/v1/query", {"query": capacity}, timeout)
        keys = [c for c in ("namespace", "persistentvolumeclaim") if c in ratio.columns]
        out = ratio[[*keys, "value"]].rename(columns={"value": "free_ratio"})
        for extra, col in ((avail, "available_bytes"), (cap, "capacity_bytes")):
            if not extra.empty and all(k in extra.columns for k in keys):
                part = extra[[*keys, "value"]].rename(columns={"value": col})
                out = out.merge(part, on=keys, how="left") if keys else out.assign(**{col: part[col].iloc[0]})
        for key in keys:
            out[key] = out[key].astype(str)
        return out.sort_values("free_ratio").reset_index(drop=True)

    return collect(
        "prometheus.volumes",
        SOURCE,
        query,
        fetch,
        timeout=timeout,
        target=redact_url(base),
        setting=setting_for(profile, "prometheus"),
    )


#: Columns of ``prometheus.alerts``, also when nothing fires (an empty frame keeps its shape).
ALERT_COLUMNS = ("alertname", "state", "severity", "namespace", "active_at", "value", "summary", "labels")


def alerts_to_frame(alerts: list[dict[str, Any]], namespace: str | None = None) -> pd.DataFrame:
    """``/api/v1/alerts``'s list to a frame, keeping alerts of ``namespace`` and those with none."""
    rows = []
    for alert in alerts:
        labels = dict(alert.get("labels") or {})
        ns = labels.get("namespace", "")
        if namespace and ns and ns != namespace:
            continue
        notes = alert.get("annotations") or {}
        rest = {k: v for k, v in labels.items() if k not in ("alertname", "severity", "namespace")}
        try:
            value = float(alert.get("value") or "nan")
        except ValueError:
            value = float("nan")
        rows.append(
            {
                "alertname": labels.get("alertname", ""),
                "state": str(alert.get("state", "")),
                "severity": labels.get("severity", ""),
                "namespace": ns,
                "active_at": alert.get("activeAt"),
                "value": value,
                "summary": str(notes.get("summary") or notes.get("description") or ""),
                "labels": ",".join(f"{k}={v}" for k, v in sorted(rest.items())),
            }
        )
    frame = pd.DataFrame(rows, columns=list(ALERT_COLUMNS))
    frame["active_at"] = pd.to_datetime(frame["active_at"], utc=True, errors="coerce", format="ISO8601")
    frame["value"] = frame["value"].astype("float64")
    return frame.sort_values(["state", "active_at"]).reset_index(drop=True)


def gather_alerts(
    profile: ProfileLike = None, *, namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> Evidence:
    """The alerts Prometheus is evaluating now, firing and pending, for ``namespace`` (default:
    the profile's) and those without a namespace label.

    Alerts fire from short windows while the dashboards' panels average over longer ones, so an
    alert is often the first and only sign of a fault in the first minutes: triage must show it.
    """
    ns = namespace or str(resolve_profile(profile).get("kubernetes.namespace") or "") or None
    query = "GET /api/v1/alerts" + (f" (namespace {ns} and none)" if ns else "")
    base = _base_url(profile)
    if not base:
        return not_configured("prometheus.alerts", SOURCE, "PROMETHEUS_URL is not set", query=query)

    def fetch() -> pd.DataFrame:
        resp = requests.get(f"{base}/api/v1/alerts", timeout=(timeout, timeout))
        resp.raise_for_status()
        doc = resp.json()
        if doc.get("status") != "success":
            raise SourceError(f"Prometheus refused the alerts list: {doc.get('errorType')}: {doc.get('error')}")
        return alerts_to_frame(list((doc.get("data") or {}).get("alerts") or []), ns)

    return collect(
        "prometheus.alerts",
        SOURCE,
        query,
        fetch,
        timeout=timeout,
        target=redact_url(base),
        setting=setting_for(profile, "prometheus"),
    )


def gather_dependency_up(
    profile: ProfileLike, window: Window, *, baseline: bool | Window | None = True, timeout: float = DEFAULT_TIMEOUT_S
) -> Evidence:
    """The profile's ``prometheus.queries.dependency_up`` over the window: 1 per ``dependency`` while
    the application can reach it, 0 while it cannot."""
    prof = resolve_profile(profile)
    app = prof.names.api_deployment
    return gather_range(
        prof,
        prof.query("dependency_up"),
        window,
        baseline=baseline,
        name="prometheus.dependency_up",
        timeout=timeout,
        meta={"title": f"Dependencies reachable from {app}", "unit": "up (1) / down (0)", "application": app},
    )

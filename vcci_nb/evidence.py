"""Evidence: what one question to one system returned, and how we know.

A gathering function never raises because the system it asks is broken; it returns an
``Evidence`` whose ``status`` says what happened (``ok``, ``unavailable``, ``forbidden``,
``timeout``, ``error``) and whose ``message`` tells the engineer what to do. The data is a
tidy DataFrame. Evidence saves to a folder (``NAME.parquet`` + ``NAME.json``) so that a
notebook can be re-run later on frozen evidence.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from vcci_nb import runenv
from vcci_nb.redact import redact

Status = Literal["ok", "unavailable", "forbidden", "timeout", "error"]
STATUSES: tuple[Status, ...] = ("ok", "unavailable", "forbidden", "timeout", "error")

#: Why a gather failed, finer than its status (``meta["cause"]``), with the words a headline uses.
#: :mod:`vcci_nb.sources._core` decides the cause; findings and banners name it.
CAUSES: dict[str, str] = {
    "refused": "connection refused",
    "dns": "host name does not resolve",
    "tls": "TLS failure",
    "timeout": "timed out",
    "credentials": "credentials not accepted",
    "permission": "permission denied",
    "config": "misconfigured",
    "missing": "not available here",
    "unreachable": "unreachable",
    "not_configured": "not configured",
    "bug": "failed unexpectedly",
}

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Window:
    """The time window a question was asked over (UTC)."""

    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Window:
        return cls(datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]))


@dataclass
class Evidence:
    """One answer from one source, with its provenance."""

    name: str
    source: str
    query: str
    status: Status = "ok"
    message: str = ""
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    window: Window | None = None
    collected_at: datetime = field(default_factory=utcnow)
    elapsed_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Evidence status must be one of {STATUSES}, not {self.status!r}")
        self.query = redact(self.query)
        self.message = redact(self.message)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __repr__(self) -> str:
        rows = len(self.frame.index)
        return (
            f"Evidence(name={self.name!r}, source={self.source!r}, status={self.status!r}, "
            f"rows={rows}, message={self.message!r})"
        )

    def provenance(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "query": self.query,
            "status": self.status,
            "message": self.message,
            "window": self.window.to_dict() if self.window else None,
            "collected_at": self.collected_at.isoformat(),
            "elapsed_s": round(self.elapsed_s, 4),
            "rows": len(self.frame.index),
            "columns": [str(c) for c in self.frame.columns],
            "meta": json.loads(redact(json.dumps(self.meta, default=str))),
        }

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``NAME.json`` (provenance) and ``NAME.parquet`` (data) into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        stem = _SAFE_NAME.sub("_", self.name)
        frame = _redacted_frame(self.frame)
        data_path = out / f"{stem}.parquet"
        tmp = data_path.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, data_path)
        _save_series(self, out / f"{stem}.series.json")
        meta_path = out / f"{stem}.json"
        tmp_meta = meta_path.with_suffix(".json.tmp")
        tmp_meta.write_text(json.dumps(self.provenance(), indent=2, default=str))
        os.replace(tmp_meta, meta_path)
        return meta_path

    @classmethod
    def load(cls, folder: str | os.PathLike[str], name: str) -> Evidence:
        base = Path(folder)
        stem = _SAFE_NAME.sub("_", name)
        meta = json.loads((base / f"{stem}.json").read_text())
        data_path = base / f"{stem}.parquet"
        frame = pd.read_parquet(data_path) if data_path.exists() else pd.DataFrame()
        return cls(
            name=meta["name"],
            source=meta["source"],
            query=meta["query"],
            status=meta["status"],
            message=meta["message"],
            frame=frame,
            window=Window.from_dict(meta["window"]) if meta.get("window") else None,
            collected_at=datetime.fromisoformat(meta["collected_at"]),
            elapsed_s=float(meta.get("elapsed_s", 0.0)),
            meta=dict(meta.get("meta") or {}),
        )


#: Panels whose series the incident page (index.html) draws: the SLIs, by panel name.
SLI_PANELS: tuple[str, ...] = ("error_ratio_5xx", "latency_p95")


def _save_series(ev: Evidence, path: Path, max_points: int = 400) -> None:
    """A small ``[time, value]`` JSON twin of an SLI panel (worst series per instant, incident
    period), so that index.html can draw it with the standard library only (no pandas, no parquet)."""
    panel = str(ev.meta.get("panel") or ev.name.rsplit(".", 1)[-1])
    f = ev.frame
    if panel not in SLI_PANELS or not ev.ok or not {"timestamp", "value"} <= set(map(str, f.columns)):
        return
    part = f[f["period"] == "incident"] if "period" in f else f
    series = part.groupby("timestamp")["value"].max().sort_index().dropna()
    if series.empty:
        return
    step = max(1, len(series) // max_points)
    points = [[pd.Timestamp(str(t)).isoformat(), float(v)] for t, v in series.iloc[::step].items()]
    body = {"panel": panel, "query": ev.query, "unit": str(ev.meta.get("unit") or ""), "points": points}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, path)


def _redacted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns pass through :func:`redact` before they touch disk."""
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for col in out.columns:
        # pandas 3 keeps text in a "str" dtype, older pandas in object: check both.
        if pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: redact(v) if isinstance(v, str) else v)
    # Parquet needs string column names; nested objects go as JSON text.
    for col in out.columns:
        if pd.api.types.is_object_dtype(out[col]) and out[col].map(lambda v: isinstance(v, dict | list)).any():
            out[col] = out[col].map(lambda v: json.dumps(v, default=str) if isinstance(v, dict | list) else v)
    return out


class EvidenceStore:
    """Where gathered evidence goes, and where a replay reads it back from.

    In a live run, ``gather`` calls the function and saves what it returns (when a folder is
    set). With ``replay_from`` set, ``gather`` never calls the function: it loads the frozen
    evidence of the same name, or returns ``unavailable`` saying it was not captured.
    """

    def __init__(self, save_to: str | os.PathLike[str] | None = None, replay_from: str | None = None) -> None:
        self.save_to = Path(save_to) if save_to else None
        self.replay_from = Path(replay_from) if replay_from else None

    @classmethod
    def from_env(cls) -> EvidenceStore:
        env = runenv.current()
        return cls(save_to=env.evidence_dir, replay_from=str(env.evidence_from) if env.evidence_from else None)

    def gather(self, name: str, fn: Callable[[], Evidence]) -> Evidence:
        if self.replay_from is not None:
            stem = _SAFE_NAME.sub("_", name)
            if (self.replay_from / f"{stem}.json").exists():
                ev = Evidence.load(self.replay_from, name)
                ev.meta["replayed_from"] = str(self.replay_from)
            else:
                ev = Evidence(
                    name=name,
                    source="replay",
                    query="",
                    status="unavailable",
                    message=f"No frozen evidence named {name!r} in {self.replay_from}; "
                    "it was not captured in the original run.",
                )
        else:
            ev = fn()
            if ev.name != name:
                ev.name = name
        if self.save_to is not None:
            ev.save(self.save_to)
        return ev

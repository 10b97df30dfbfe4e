"""Kubernetes answers as tables: the API's JSON (pods, nodes, events, ReplicaSets) to DataFrames.

Pure functions (JSON in, DataFrame out; no client, no profile), so they test and benchmark without
an API server; :mod:`vcci_nb.sources.kube` fetches the JSON and re-exports these names.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pandas as pd

from vcci_nb.evidence import utcnow
from vcci_nb.kubeapi import parse_quantity
from vcci_nb.redact import MASK, redact

JSONDict = dict[str, Any]

_SECRET_ENV = re.compile(r"(?i)(pass|secret|token|key|credential|dsn|url)")


# --- time helpers ----------------------------------------------------------------------------------


def _ts(value: str | None) -> Any:
    """A UTC Timestamp, or NaT when Kubernetes left the field empty."""
    if not value:
        return pd.NaT
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")


def _age_s(created: str | None, now: datetime) -> float:
    if not created:
        return float("nan")
    return float((pd.Timestamp(now) - _ts(created)).total_seconds())


def pod_status_text(pod: JSONDict) -> str:
    """What ``kubectl get pods`` prints in STATUS: a waiting or terminated reason beats the phase."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    reason = status.get("reason")
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            return str(state["waiting"]["reason"])
        if "terminated" in state and state["terminated"].get("reason"):
            return str(state["terminated"]["reason"])
    return str(reason or status.get("phase") or "Unknown")


def pods_frame(items: list[JSONDict], now: datetime | None = None) -> pd.DataFrame:
    """One row per pod, as ``kubectl get pods -o wide`` plus the last termination reason."""
    now = now or utcnow()
    rows = []
    for pod in items:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        css = status.get("containerStatuses") or []
        last_reason = last_code = last_at = None
        for cs in css:
            term = (cs.get("lastState") or {}).get("terminated") or (cs.get("state") or {}).get("terminated")
            if term and (last_at is None or str(term.get("finishedAt") or "") > str(last_at)):
                last_reason, last_code, last_at = term.get("reason"), term.get("exitCode"), term.get("finishedAt")
        labels = meta.get("labels") or {}
        owners = meta.get("ownerReferences") or []
        rows.append(
            {
                "pod": meta.get("name"),
                "namespace": meta.get("namespace"),
                "phase": status.get("phase"),
                "status": pod_status_text(pod),
                "ready": sum(1 for cs in css if cs.get("ready")),
                "containers": len(spec.get("containers") or []),
                "restarts": int(sum(int(cs.get("restartCount") or 0) for cs in css)),
                "age_s": _age_s(meta.get("creationTimestamp"), now),
                "node": spec.get("nodeName"),
                "app": labels.get("app") or labels.get("app.kubernetes.io/name"),
                "owner": owners[0].get("name") if owners else None,
                "pod_template_hash": labels.get("pod-template-hash"),
                "last_termination_reason": last_reason,
                "last_termination_exit_code": last_code,
                "last_termination_at": _ts(last_at),
                "created_at": _ts(meta.get("creationTimestamp")),
            }
        )
    frame = pd.DataFrame(rows, columns=list(_POD_COLUMNS))
    return frame


_POD_COLUMNS = (
    "pod",
    "namespace",
    "phase",
    "status",
    "ready",
    "containers",
    "restarts",
    "age_s",
    "node",
    "app",
    "owner",
    "pod_template_hash",
    "last_termination_reason",
    "last_termination_exit_code",
    "last_termination_at",
    "created_at",
)


def containers_frame(items: list[JSONDict]) -> pd.DataFrame:
    """One row per container: state, restarts, last termination, image, requests and limits."""
    rows = []
    for pod in items:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        statuses = {cs.get("name"): cs for cs in (pod.get("status") or {}).get("containerStatuses") or []}
        for c in spec.get("containers") or []:
            cs = statuses.get(c.get("name")) or {}
            state = cs.get("state") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            current_term = state.get("terminated") or {}
            res = c.get("resources") or {}
            rows.append(
                {
                    "pod": meta.get("name"),
                    "container": c.get("name"),
                    "node": spec.get("nodeName"),
                    "ready": bool(cs.get("ready")),
                    "restarts": int(cs.get("restartCount") or 0),
                    "state": next(iter(state), "unknown"),
                    "waiting_reason": (state.get("waiting") or {}).get("reason"),
                    "terminated_reason": current_term.get("reason"),
                    "last_reason": last.get("reason"),
                    "last_exit_code": last.get("exitCode"),
                    "last_finished_at": _ts(last.get("finishedAt")),
                    "image": c.get("image"),
                    "cpu_request": parse_quantity((res.get("requests") or {}).get("cpu")),
                    "cpu_limit": parse_quantity((res.get("limits") or {}).get("cpu")),
                    "memory_request_bytes": parse_quantity((res.get("requests") or {}).get("memory")),
                    "memory_limit_bytes": parse_quantity((res.get("limits") or {}).get("memory")),
                }
            )
    return pd.DataFrame(rows, columns=list(_CONTAINER_COLUMNS))


_CONTAINER_COLUMNS = (
    "pod",
    "container",
    "node",
    "ready",
    "restarts",
    "state",
    "waiting_reason",
    "terminated_reason",
    "last_reason",
    "last_exit_code",
    "last_finished_at",
    "image",
    "cpu_request",
    "cpu_limit",
    "memory_request_bytes",
    "memory_limit_bytes",
)


def oomkilled_frame(items: list[JSONDict]) -> pd.DataFrame:
    """The containers whose last (or current) termination was OOMKilled, most restarted first."""
    frame = containers_frame(items)
    mask = (frame["last_reason"] == "OOMKilled") | (frame["terminated_reason"] == "OOMKilled")
    return frame[mask].sort_values("restarts", ascending=False).reset_index(drop=True)


def nodes_frame(items: list[JSONDict]) -> pd.DataFrame:
    rows = []
    for node in items:
        meta = node.get("metadata") or {}
        status = node.get("status") or {}
        conds = {c.get("type"): c for c in status.get("conditions") or []}
        alloc = status.get("allocatable") or {}
        cap = status.get("capacity") or {}
        row: dict[str, Any] = {
            "node": meta.get("name"),
            "ready": (conds.get("Ready") or {}).get("status") == "True",
            "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
            "kubelet_version": (status.get("nodeInfo") or {}).get("kubeletVersion"),
            "cpu_capacity": parse_quantity(cap.get("cpu")),
            "cpu_allocatable": parse_quantity(alloc.get("cpu")),
            "memory_capacity_bytes": parse_quantity(cap.get("memory")),
            "memory_allocatable_bytes": parse_quantity(alloc.get("memory")),
        }
        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"):
            row[kind] = (conds.get(kind) or {}).get("status") == "True"
        problems = [
            f"{t}: {c.get('reason') or ''} {c.get('message') or ''}".strip()
            for t, c in conds.items()
            if (t == "Ready") != (c.get("status") == "True")
        ]
        row["problems"] = "; ".join(problems)
        rows.append(row)
    return pd.DataFrame(rows)


# --- events -----------------------------------------------------------------------------------------


def events_frame(items: list[JSONDict]) -> pd.DataFrame:
    rows = []
    for ev in items:
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        first = ev.get("firstTimestamp") or ev.get("eventTime") or (ev.get("metadata") or {}).get("creationTimestamp")
        last = ev.get("lastTimestamp") or ev.get("eventTime") or first
        rows.append(
            {
                "type": ev.get("type"),
                "reason": ev.get("reason"),
                "kind": obj.get("kind"),
                "object": obj.get("name"),
                "message": redact(str(ev.get("message") or ev.get("note") or "")),
                "count": int(ev.get("count") or (ev.get("series") or {}).get("count") or 1),
                "first_seen": _ts(first),
                "last_seen": _ts(last),
            }
        )
    frame = pd.DataFrame(
        rows, columns=["type", "reason", "kind", "object", "message", "count", "first_seen", "last_seen"]
    )
    return frame.sort_values("last_seen", ascending=False, na_position="last").reset_index(drop=True)


def group_events(events: pd.DataFrame, *, warnings_only: bool = True) -> pd.DataFrame:
    """Events grouped by reason: how many, on how many objects, when last, and one example message."""
    cols = ["reason", "type", "events", "objects", "first_seen", "last_seen", "example"]
    frame = events[events["type"] == "Warning"] if warnings_only and not events.empty else events
    if frame.empty:
        return pd.DataFrame(columns=cols)
    out = frame.groupby("reason", as_index=False).agg(
        type=("type", "first"),
        events=("count", "sum"),
        objects=("object", "nunique"),
        first_seen=("first_seen", "min"),
        last_seen=("last_seen", "max"),
        example=("message", "first"),
    )
    return out.sort_values(["events", "last_seen"], ascending=False)[cols].reset_index(drop=True)


# --- rollout history --------------------------------------------------------------------------------

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"


def _env_map(container: JSONDict) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in container.get("env") or []:
        name = str(e.get("name"))
        if "valueFrom" in e:
            ref = e["valueFrom"]
            if "secretKeyRef" in ref:
                out[name] = f"<secret {ref['secretKeyRef'].get('name')}/{ref['secretKeyRef'].get('key')}>"
            elif "configMapKeyRef" in ref:
                out[name] = f"<configmap {ref['configMapKeyRef'].get('name')}/{ref['configMapKeyRef'].get('key')}>"
            else:
                out[name] = "<from field>"
        else:
            value = str(e.get("value", ""))
            out[name] = (
                MASK if (_SECRET_ENV.search(name) and "://" in value) or _is_secret_name(name) else redact(value)
            )
    return out


def _is_secret_name(name: str) -> bool:
    return bool(re.search(r"(?i)(password|passwd|secret|token|api_?key|private)", name))


def _template_summary(template: JSONDict) -> dict[str, Any]:
    spec = template.get("spec") or {}
    images: dict[str, str] = {}
    env: dict[str, str] = {}
    resources: dict[str, str] = {}
    for c in spec.get("containers") or []:
        cname = str(c.get("name"))
        images[cname] = str(c.get("image"))
        for k, v in _env_map(c).items():
            env[f"{cname}.{k}"] = v
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for rname, q in (res.get(kind) or {}).items():
                resources[f"{cname}.{kind}.{rname}"] = str(q)
    return {"images": images, "env": env, "resources": resources}


def _diff(old: dict[str, str], new: dict[str, str], label: str) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a != b:
            out.append(f"{label} {key}: {a if a is not None else '(none)'} → {b if b is not None else '(none)'}")
    return out


def rollout_frame(deployment: JSONDict, replicasets: list[JSONDict]) -> pd.DataFrame:
    """One row per revision (oldest first) with change cause, images, and what changed from the one before."""
    dep_uid = (deployment.get("metadata") or {}).get("uid")
    current = (deployment.get("metadata") or {}).get("annotations", {}).get(REVISION_ANNOTATION)
    revs: list[dict[str, Any]] = []
    for rs in replicasets:
        meta = rs.get("metadata") or {}
        owners = meta.get("ownerReferences") or []
        if dep_uid and owners and not any(o.get("uid") == dep_uid for o in owners):
            continue
        ann = meta.get("annotations") or {}
        rev = ann.get(REVISION_ANNOTATION)
        if rev is None:
            continue
        summary = _template_summary((rs.get("spec") or {}).get("template") or {})
        status = rs.get("status") or {}
        revs.append(
            {
                "revision": int(rev),
                "replicaset": meta.get("name"),
                "created_at": _ts(meta.get("creationTimestamp")),
                "change_cause": ann.get(CHANGE_CAUSE_ANNOTATION) or "",
                "replicas": int(status.get("replicas") or 0),
                "ready_replicas": int(status.get("readyReplicas") or 0),
                "pod_template_hash": ((meta.get("labels") or {}).get("pod-template-hash")),
                "current": str(rev) == str(current),
                "_summary": summary,
            }
        )
    revs.sort(key=lambda r: r["revision"])
    prev: dict[str, Any] | None = None
    for r in revs:
        s = r.pop("_summary")
        r["images"] = ", ".join(f"{k}={v}" for k, v in s["images"].items())
        if prev is None:
            r["changes"] = ""
        else:
            changes = (
                _diff(prev["images"], s["images"], "image")
                + _diff(prev["env"], s["env"], "env")
                + _diff(prev["resources"], s["resources"], "resources")
            )
            r["changes"] = "; ".join(changes)
        prev = s
    cols = [
        "revision",
        "current",
        "created_at",
        "change_cause",
        "images",
        "changes",
        "replicas",
        "ready_replicas",
        "replicaset",
        "pod_template_hash",
    ]
    return pd.DataFrame(revs, columns=cols)

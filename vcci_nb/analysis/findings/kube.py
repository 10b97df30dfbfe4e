"""Findings from Kubernetes: OOMKills, crash loops, pods not ready, node pressure, saturation, full disks,
bad deploys."""

from __future__ import annotations

import pandas as pd

from vcci_nb.analysis.findings._common import (
    Thresholds,
    _finding,
    _names,
    _rows,
    _usable,
    thresholds_with_defaults,
)
from vcci_nb.analysis.model import Finding
from vcci_nb.evidence import Evidence, Window


def find_oomkilled(containers: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Containers last killed for memory: which pods, how many restarts, at what limit (seed scenario 2)."""
    if not _usable(containers, "pod", "restarts"):
        return []
    f = containers.frame
    if "last_reason" in f:
        mask = f["last_reason"] == "OOMKilled"
        if "terminated_reason" in f:
            mask = mask | (f["terminated_reason"] == "OOMKilled")
        f = f[mask]
    if f.empty:
        return []
    f = f.sort_values("restarts", ascending=False)
    pods = [f"{r.pod} ({int(r.restarts)} restarts)" for r in _rows(f)]
    limit = f["memory_limit_bytes"].dropna() if "memory_limit_bytes" in f else pd.Series(dtype=float)
    lim = f", memory limit {float(limit.iloc[0]) / 2**20:.0f} MiB" if not limit.empty else ""
    return [
        _finding(
            "kube.oomkilled",
            "high",
            f"{len(f)} containers were OOMKilled: {_names(pods, 6)}{lim}.",
            value=int(f["restarts"].sum()),
            unit="restarts",
            evidence=[containers],
            details={
                "pods": [str(p) for p in f["pod"]],
                "restarts": {str(r.pod): int(r.restarts) for r in _rows(f)},
            },
        )
    ]


def find_crashloop(pods: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Pods in CrashLoopBackOff (or restarting more than ``restarts``) that are not OOMKilled."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(pods, "pod", "status", "restarts"):
        return []
    f = pods.frame
    crash = f[
        (f["status"] == "CrashLoopBackOff") | ((f["restarts"] >= th["restarts"]) & (f["ready"] < f["containers"]))
    ]
    if "last_termination_reason" in crash:
        crash = crash[crash["last_termination_reason"] != "OOMKilled"]
    if crash.empty:
        return []
    reasons = crash.get("last_termination_reason", pd.Series(dtype=object)).dropna().astype(str).value_counts()
    return [
        _finding(
            "kube.crashloop",
            "high",
            f"{len(crash)} pods crash-looping: {_names(f'{r.pod} ({int(r.restarts)} restarts)' for r in _rows(crash))}"
            + (f"; last exit: {_names(reasons.index)}" if not reasons.empty else "")
            + ". Their logs (--previous) say why.",
            value=len(crash),
            unit="pods",
            evidence=[pods],
            details={"pods": [str(p) for p in crash["pod"]]},
        )
    ]


def find_pods_not_ready(pods: Evidence, thresholds: Thresholds | None = None, *, grace_s: float = 120) -> list[Finding]:
    """Pods older than ``grace_s`` that are not Running and ready (everything ``grep -v Running`` shows)."""
    if not _usable(pods, "pod", "ready", "containers", "phase"):
        return []
    f = pods.frame
    bad = f[((f["ready"] < f["containers"]) | (f["phase"] != "Running")) & (f["phase"] != "Succeeded")]
    if "age_s" in bad:
        bad = bad[bad["age_s"].fillna(grace_s) >= grace_s]
    if bad.empty:
        return []
    share = len(bad) / max(len(f), 1)
    return [
        _finding(
            "kube.pods_not_ready",
            "critical" if share >= 0.99 else "high" if share >= 0.5 else "medium",
            f"{len(bad)} of {len(f)} pods are not ready: {_names(f'{r.pod} ({r.status})' for r in _rows(bad))}.",
            value=len(bad),
            threshold=len(f),
            unit="pods",
            evidence=[pods],
            details={"pods": [str(p) for p in bad["pod"]], "share": share},
        )
    ]


def find_node_pressure(nodes: Evidence) -> list[Finding]:
    """Nodes not Ready or under memory, disk or PID pressure."""
    if not _usable(nodes, "node", "ready"):
        return []
    f = nodes.frame
    cols = [c for c in ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable") if c in f]
    mask = ~f["ready"].astype(bool)
    for c in cols:
        mask = mask | f[c].astype(bool)
    bad = f[mask]
    if bad.empty:
        return []
    what = []
    for r in _rows(bad):
        flags = [c for c in cols if bool(getattr(r, c))] + ([] if r.ready else ["NotReady"])
        what.append(f"{r.node} ({', '.join(flags)})")
    return [
        _finding(
            "kube.node_pressure",
            "high",
            f"{len(bad)} nodes in trouble: {_names(what)}.",
            value=len(bad),
            unit="nodes",
            evidence=[nodes],
            details={"nodes": [str(n) for n in bad["node"]]},
        )
    ]


def find_resource_saturation(top_pods: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Pods using more than ``cpu_ratio``/``memory_ratio`` of their limits (kubectl top pods)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(top_pods, "pod"):
        return []
    f = top_pods.frame
    out = []
    for col, key, label in (("cpu_ratio", "cpu_ratio", "CPU"), ("memory_ratio", "memory_ratio", "memory")):
        if col not in f:
            continue
        hot = f[f[col] >= th[key]]
        if hot.empty:
            continue
        out.append(
            _finding(
                "kube.resource_saturation",
                "medium",
                f"{len(hot)} pods above {th[key]:.0%} of their {label} limit: "
                f"{_names(f'{r.pod} ({getattr(r, col):.0%})' for r in _rows(hot))}.",
                value=float(hot[col].max()),
                threshold=th[key],
                unit="ratio",
                evidence=[top_pods],
                details={"resource": label, "pods": [str(p) for p in hot["pod"]]},
            )
        )
    return out


def find_disk_full(volumes: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Volumes with less than ``disk_free_ratio`` free (seed scenario 3)."""
    th = thresholds_with_defaults(thresholds)
    if not _usable(volumes, "free_ratio"):
        return []
    f = volumes.frame[volumes.frame["free_ratio"] < th["disk_free_ratio"]]
    if f.empty:
        return []
    name_col = "persistentvolumeclaim" if "persistentvolumeclaim" in f else f.columns[0]
    return [
        _finding(
            "kube.disk_full",
            "critical" if float(f["free_ratio"].min()) < 0.02 else "high",
            f"Volumes nearly full: {_names(f'{getattr(r, name_col)} ({r.free_ratio:.1%} free)' for r in _rows(f))}. "
            "Writes will fail with 'No space left on device'.",
            value=float(f["free_ratio"].min()),
            threshold=th["disk_free_ratio"],
            unit="free ratio",
            evidence=[volumes],
            details={"volumes": [str(v) for v in f[name_col]]},
        )
    ]


def find_bad_deploy(
    rollout: Evidence,
    signatures: Evidence | None = None,
    pods: Evidence | None = None,
    *,
    window: Window | None = None,
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """A recent revision whose pods fail or whose rollout brought new error signatures.

    Recent means created within the window (or ``deploy_recent_hours`` before its end). The
    finding names the revision, its change cause and what changed, and the signatures first
    seen after it was created.
    """
    th = thresholds_with_defaults(thresholds)
    if not _usable(rollout, "revision", "created_at"):
        return []
    f = rollout.frame.sort_values("revision")
    latest = f.iloc[-1]
    created = pd.Timestamp(latest["created_at"])
    end = pd.Timestamp(window.end) if window else pd.Timestamp.now(tz="UTC")
    start = pd.Timestamp(window.start) if window else end - pd.Timedelta(hours=th["deploy_recent_hours"])
    recent_from = min(start, end - pd.Timedelta(hours=th["deploy_recent_hours"]))
    if pd.isna(created) or created < recent_from or len(f) < 2:
        return []
    new_sigs = pd.DataFrame()
    if _usable(signatures, "signature", "first_seen") and signatures is not None:
        s = signatures.frame
        new_sigs = s[pd.to_datetime(s["first_seen"], utc=True) >= created - pd.Timedelta(seconds=30)]
    failing = pd.DataFrame()
    hash_ = latest.get("pod_template_hash")
    if _usable(pods, "pod", "ready", "containers") and pods is not None and hash_:
        p = pods.frame
        mine = p[p.get("pod_template_hash", pd.Series(index=p.index, dtype=object)) == hash_]
        failing = mine[(mine["ready"] < mine["containers"]) | (mine["restarts"] > 0)]
    unavailable = int(rollout.meta.get("unavailable_replicas") or 0)
    if new_sigs.empty and failing.empty and unavailable == 0:
        return []
    prev = f.iloc[-2]
    sig_text = (
        "; new errors since: " + _names(f"{r.signature[:80]} (×{int(r.count)})" for r in _rows(new_sigs))
        if not new_sigs.empty
        else ""
    )
    fail_text = f"; {len(failing)} of its pods failing or restarting" if not failing.empty else ""
    return [
        _finding(
            "kube.bad_deploy",
            "critical" if not failing.empty and not new_sigs.empty else "high",
            f"Revision {int(latest['revision'])} of {rollout.meta.get('deployment', 'the deployment')} "
            f"({latest.get('change_cause') or 'no change cause'}) was rolled out at "
            f"{created.strftime('%H:%M UTC')}; changes from {int(prev['revision'])}: "
            f"{latest.get('changes') or 'none recorded'}{fail_text}{sig_text}. Rollback candidate: revision "
            f"{int(prev['revision'])}.",
            value=int(latest["revision"]),
            unit="revision",
            evidence=[e for e in (rollout, signatures, pods) if e is not None],
            details={
                "deployment": str(rollout.meta.get("deployment") or ""),
                "revision": int(latest["revision"]),
                "previous_revision": int(prev["revision"]),
                "change_cause": str(latest.get("change_cause") or ""),
                "changes": str(latest.get("changes") or ""),
                "created_at": created.isoformat(),
                "new_signatures": [str(s) for s in new_sigs.get("signature", [])],
                "failing_pods": [str(p) for p in failing.get("pod", [])],
                "unavailable_replicas": unavailable,
            },
        )
    ]

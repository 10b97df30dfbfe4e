"""Kubernetes: the seed's kubectl checks of Phases 1, 3 and 6, read-only.

The client is :class:`vcci_nb.kubeapi.KubeClient` (the one the actions use too), built per
gather as the profile's read-only identity, never at import time, and every request carries the
gather's timeout. Answers are read as raw JSON rather than deserialised into the official
client's model objects, which is what makes 5,000 pods a fraction of a second instead of
several seconds.

Each ``gather_*`` returns one Evidence named ``kubernetes.<what>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, kube_settings, resolve_profile
from vcci_nb.errors import SourceMisconfigured
from vcci_nb.evidence import Evidence, Window, utcnow
from vcci_nb.kubeapi import KubeClient, parse_quantity
from vcci_nb.logparse import group_signatures, parse_lines
from vcci_nb.redact import MASK, redact
from vcci_nb.sources._core import collect, not_configured, setting_for

SOURCE = "kubernetes"
JSONDict = dict[str, Any]

_SECRET_ENV = re.compile(r"(?i)(pass|secret|token|key|credential|dsn|url)")


# --- client ---------------------------------------------------------------------------------------


def api_client(
    profile: ProfileLike = None, *, mitigation: bool = False, timeout: float = DEFAULT_TIMEOUT_S
) -> KubeClient:
    """The one Kubernetes client (:class:`vcci_nb.kubeapi.KubeClient`) as the profile's read-only
    identity (or, with ``mitigation``, its on-call identity)."""
    return KubeClient.connect(profile, mitigation=mitigation, timeout_s=timeout)


def _get_json(client: KubeClient, path: str, timeout: float, query: dict[str, Any] | None = None) -> JSONDict:
    """GET a path of the API server and parse the JSON body ourselves (no model objects)."""
    return client.get(path, timeout_s=timeout, **(query or {}))


def _get_text(client: KubeClient, path: str, timeout: float, query: dict[str, Any] | None = None) -> str:
    return client.get_text(path, timeout_s=timeout, **(query or {}))


def _namespace(profile: ProfileLike, namespace: str | None) -> str:
    return namespace or resolve_profile(profile).namespace


def _kube_gather(
    profile: ProfileLike,
    what: str,
    call: str,
    build: Callable[[Any], pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]],
    timeout: float,
    *,
    window: Window | None = None,
    meta: dict[str, Any] | None = None,
) -> Evidence:
    name = f"kubernetes.{what}"
    try:
        settings = kube_settings(profile)
    except Exception as exc:  # a broken profile is still evidence, not a crash
        return not_configured(name, SOURCE, redact(str(exc)), query=call)
    if not settings.found:
        return not_configured(
            name,
            SOURCE,
            "KUBECONFIG is not set, ~/.kube/config does not exist and this is not running in a cluster",
            query=call,
        )
    target = settings.describe()
    var = setting_for(profile, "kubernetes", "kubeconfig_env")
    setting = f"the kubeconfig {var} names (context {settings.context or '(current)'})"

    def fetch() -> pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]:
        check_context(settings.kubeconfig, settings.context, profile)
        with KubeClient(settings=settings, mitigation=False, timeout_s=timeout) as client:
            return build(client)

    return collect(name, SOURCE, call, fetch, timeout=timeout, target=target, window=window, meta=meta, setting=setting)


def check_context(kubeconfig: str | None, context: str | None, profile: ProfileLike = None) -> None:
    """Raise :class:`SourceMisconfigured` naming the contexts there are when ``context`` is not in the file.

    The client's own error ("Expected object with name X in ... contexts list") names neither what
    the file has nor which setting chose the missing one; this says both.
    """
    if not kubeconfig:
        return
    import yaml

    try:
        doc = yaml.safe_load(Path(kubeconfig).read_text()) or {}
    except OSError as exc:
        raise SourceMisconfigured(
            f"the kubeconfig {kubeconfig} cannot be read ({exc.strerror})",
            fix=f"point {setting_for(profile, 'kubernetes', 'kubeconfig_env')} at a readable kubeconfig file.",
        ) from exc
    except yaml.YAMLError as exc:
        raise SourceMisconfigured(
            f"the kubeconfig {kubeconfig} is not valid YAML ({type(exc).__name__})",
            fix=f"point {setting_for(profile, 'kubernetes', 'kubeconfig_env')} at a valid kubeconfig file.",
        ) from exc
    if not isinstance(doc, dict):
        return  # let the client say what it makes of it
    have = [str(c.get("name")) for c in doc.get("contexts") or [] if isinstance(c, dict) and c.get("name")]
    wanted = context or doc.get("current-context")
    try:
        prof_name = resolve_profile(profile).name
    except Exception:
        prof_name = "<profile>"
    key = f"connections.kubernetes.context in parameters/environments/{prof_name}.yaml"
    choices = ", ".join(have) if have else "none"
    if not wanted:
        raise SourceMisconfigured(
            f"the profile names no kube context and the kubeconfig {kubeconfig} has no current-context "
            f"(it has: {choices})",
            fix=f"Set {key} to one of: {choices}.",
        )
    if wanted not in have:
        raise SourceMisconfigured(
            f"the kubeconfig {kubeconfig} has no context {wanted!r}; the contexts it has: {choices}",
            fix=f"Set {key} to one of: {choices} (or point "
            f"{setting_for(profile, 'kubernetes', 'kubeconfig_env')} at a kubeconfig that has {wanted!r}).",
        )


# --- parsing helpers --------------------------------------------------------------------------------


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


def _list_pods(client: Any, namespace: str, selector: str | None, timeout: float) -> list[JSONDict]:
    data = _get_json(client, f"/api/v1/namespaces/{namespace}/pods", timeout, {"labelSelector": selector})
    items: list[JSONDict] = data.get("items") or []
    return items


def _call(verb: str, namespace: str, selector: str | None = None, extra: str = "") -> str:
    sel = f" -l {selector}" if selector else ""
    return f"kubectl {verb} -n {namespace}{sel}{extra}"


# --- pods, containers, nodes, top -------------------------------------------------------------------


def gather_pods(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl get pods``: phase, STATUS, ready, restarts, age, node and last termination reason."""
    ns = _namespace(profile, namespace)
    return _kube_gather(
        profile,
        "pods",
        _call("get pods", ns, selector, " -o wide"),
        lambda c: pods_frame(_list_pods(c, ns, selector, timeout)),
        timeout,
    )


def gather_containers(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """One row per container with its state, restarts, last termination and resources."""
    ns = _namespace(profile, namespace)
    return _kube_gather(
        profile,
        "containers",
        _call("get pods", ns, selector, " -o jsonpath='{.items[*].status.containerStatuses}'"),
        lambda c: containers_frame(_list_pods(c, ns, selector, timeout)),
        timeout,
    )


def gather_oomkilled(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """Containers whose last (or current) termination was OOMKilled, with restarts and memory limit."""
    ns = _namespace(profile, namespace)

    def build(client: Any) -> pd.DataFrame:
        frame = containers_frame(_list_pods(client, ns, selector, timeout))
        mask = (frame["last_reason"] == "OOMKilled") | (frame["terminated_reason"] == "OOMKilled")
        return frame[mask].sort_values("restarts", ascending=False).reset_index(drop=True)

    call = _call(
        "get pods",
        ns,
        selector,
        ' -o jsonpath=\'{range .items[*]}{.metadata.name}{"\\t"}'
        '{.status.containerStatuses[*].lastState.terminated.reason}{"\\n"}{end}\' | grep OOMKilled',
    )
    return _kube_gather(profile, "oomkilled", call, build, timeout)


def gather_workload(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Evidence]:
    """Pods, containers and OOMKilled containers from ONE pod list, keyed by evidence name.

    The same three Evidence as :func:`gather_pods`, :func:`gather_containers` and
    :func:`gather_oomkilled`, for one third of the API calls: what a triage of a big namespace wants.
    """
    ns = _namespace(profile, namespace)
    box: dict[str, list[JSONDict]] = {}

    def listing(client: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        box["items"] = _list_pods(client, ns, selector, timeout)
        return pods_frame(box["items"]), {}

    pods = _kube_gather(profile, "pods", _call("get pods", ns, selector, " -o wide"), listing, timeout)
    out = {"kubernetes.pods": pods}
    for what, call in (("containers", " -o jsonpath='{.items[*].status.containerStatuses}'"), ("oomkilled", "")):
        if not pods.ok:
            out[f"kubernetes.{what}"] = Evidence(
                name=f"kubernetes.{what}", source=SOURCE, query=pods.query, status=pods.status,
                message=pods.message, meta={"kind": f"kubernetes.{what}"},
            )  # fmt: skip
            continue
        frame = containers_frame(box["items"])
        if what == "oomkilled":
            mask = (frame["last_reason"] == "OOMKilled") | (frame["terminated_reason"] == "OOMKilled")
            frame = frame[mask].sort_values("restarts", ascending=False).reset_index(drop=True)
        out[f"kubernetes.{what}"] = Evidence(
            name=f"kubernetes.{what}",
            source=SOURCE,
            query=_call("get pods", ns, selector, call),
            frame=frame,
            collected_at=pods.collected_at,
            meta={"kind": f"kubernetes.{what}", "from": "kubernetes.pods"},
        )
    return out


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


def gather_nodes(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``kubectl get nodes`` and ``describe nodes | grep Conditions``: readiness and pressure per node."""
    return _kube_gather(
        profile,
        "nodes",
        "kubectl get nodes; kubectl describe nodes | grep -A 5 Conditions",
        lambda c: nodes_frame(_get_json(c, "/api/v1/nodes", timeout).get("items") or []),
        timeout,
    )


def gather_top_nodes(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``kubectl top nodes``: CPU cores and memory bytes in use, and their share of allocatable."""

    def build(client: Any) -> pd.DataFrame:
        metrics = _get_json(client, "/apis/metrics.k8s.io/v1beta1/nodes", timeout).get("items") or []
        nodes = nodes_frame(_get_json(client, "/api/v1/nodes", timeout).get("items") or [])
        rows = [
            {
                "node": (m.get("metadata") or {}).get("name"),
                "cpu_cores": parse_quantity((m.get("usage") or {}).get("cpu")),
                "memory_bytes": parse_quantity((m.get("usage") or {}).get("memory")),
            }
            for m in metrics
        ]
        frame = pd.DataFrame(rows, columns=["node", "cpu_cores", "memory_bytes"])
        if not nodes.empty:
            frame = frame.merge(nodes[["node", "cpu_allocatable", "memory_allocatable_bytes"]], on="node", how="left")
            frame["cpu_ratio"] = frame["cpu_cores"] / frame["cpu_allocatable"]
            frame["memory_ratio"] = frame["memory_bytes"] / frame["memory_allocatable_bytes"]
        return frame.sort_values("cpu_cores", ascending=False).reset_index(drop=True)

    return _kube_gather(profile, "top_nodes", "kubectl top nodes", build, timeout)


def gather_top_pods(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl top pods``: usage per pod, against the sum of its containers' limits."""
    ns = _namespace(profile, namespace)

    def build(client: Any) -> pd.DataFrame:
        metrics = (
            _get_json(
                client, f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods", timeout, {"labelSelector": selector}
            ).get("items")
            or []
        )
        rows = []
        for m in metrics:
            conts = m.get("containers") or []
            rows.append(
                {
                    "pod": (m.get("metadata") or {}).get("name"),
                    "cpu_cores": sum(parse_quantity((c.get("usage") or {}).get("cpu")) for c in conts),
                    "memory_bytes": sum(parse_quantity((c.get("usage") or {}).get("memory")) for c in conts),
                }
            )
        frame = pd.DataFrame(rows, columns=["pod", "cpu_cores", "memory_bytes"])
        conts = containers_frame(_list_pods(client, ns, selector, timeout))
        if not conts.empty:
            limits = conts.groupby("pod", as_index=False)[["cpu_limit", "memory_limit_bytes"]].sum(min_count=1)
            frame = frame.merge(limits, on="pod", how="left")
            frame["cpu_ratio"] = frame["cpu_cores"] / frame["cpu_limit"]
            frame["memory_ratio"] = frame["memory_bytes"] / frame["memory_limit_bytes"]
        return frame.sort_values("memory_bytes", ascending=False).reset_index(drop=True)

    return _kube_gather(profile, "top_pods", _call("top pods", ns, selector), build, timeout)


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


def gather_events(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    window: Window | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """Events of the namespace (seen in ``window`` when given), newest first; see :func:`group_events`."""
    ns = _namespace(profile, namespace)

    def build(client: Any) -> pd.DataFrame:
        frame = events_frame(_get_json(client, f"/api/v1/namespaces/{ns}/events", timeout).get("items") or [])
        if window is not None and not frame.empty:
            keep = frame["last_seen"].isna() | (frame["last_seen"] >= pd.Timestamp(window.start))
            frame = frame[keep].reset_index(drop=True)
        return frame

    return _kube_gather(
        profile, "events", f"kubectl get events -n {ns} --sort-by=.lastTimestamp", build, timeout, window=window
    )


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


def gather_rollout_history(
    profile: ProfileLike = None,
    *,
    deployment: str | None = None,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl rollout history``, with what changed between revisions (image, env, resources).

    ``meta.current_revision`` is the deployment's revision now.
    """
    prof = resolve_profile(profile)
    ns = _namespace(prof, namespace)
    dep = deployment or prof.names.api_deployment

    def build(client: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        d = _get_json(client, f"/apis/apps/v1/namespaces/{ns}/deployments/{dep}", timeout)
        match = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in match.items()) or None
        rss = _get_json(client, f"/apis/apps/v1/namespaces/{ns}/replicasets", timeout, {"labelSelector": selector})
        frame = rollout_frame(d, rss.get("items") or [])
        ann = (d.get("metadata") or {}).get("annotations") or {}
        status = d.get("status") or {}
        return frame, {
            "deployment": dep,
            "current_revision": int(ann.get(REVISION_ANNOTATION) or 0),
            "replicas": int(status.get("replicas") or 0),
            "ready_replicas": int(status.get("readyReplicas") or 0),
            "updated_replicas": int(status.get("updatedReplicas") or 0),
            "unavailable_replicas": int(status.get("unavailableReplicas") or 0),
        }

    return _kube_gather(prof, "rollout_history", f"kubectl rollout history deployment/{dep} -n {ns}", build, timeout)


# --- logs -------------------------------------------------------------------------------------------


def _read_logs(
    client: Any,
    ns: str,
    pod: str,
    container: str,
    previous: bool,
    tail: int,
    since_s: int | None,
    timeout: float,
) -> str:
    return _get_text(
        client,
        f"/api/v1/namespaces/{ns}/pods/{pod}/log",
        timeout,
        {
            "container": container,
            "tailLines": tail,
            "timestamps": "true",
            "previous": "true" if previous else None,
            "sinceSeconds": since_s,
        },
    )


def gather_logs(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    tail: int = 500,
    previous: bool | str = "auto",
    window: Window | None = None,
    max_pods: int = 30,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl logs -l SELECTOR --tail N --timestamps`` across every pod, parsed.

    ``previous``: ``"auto"`` also reads the previous instance of each container that restarted
    (``--previous``); True or False forces it. Frame: ``pod, container, previous, timestamp, level,
    message``; lines are redacted. ``meta.failed`` lists the pods whose logs could not be read.
    """
    prof = resolve_profile(profile)
    ns = _namespace(prof, namespace)
    sel = selector or prof.names.app_selector

    def build(client: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        pods = _list_pods(client, ns, sel, timeout)[:max_pods]
        jobs: list[tuple[str, str, bool]] = []
        for pod in pods:
            name = str((pod.get("metadata") or {}).get("name"))
            restarts = {
                cs.get("name"): int(cs.get("restartCount") or 0)
                for cs in (pod.get("status") or {}).get("containerStatuses") or []
            }
            for c in (pod.get("spec") or {}).get("containers") or []:
                cname = str(c.get("name"))
                jobs.append((name, cname, False))
                want_prev = previous is True or (previous == "auto" and restarts.get(cname, 0) > 0)
                if want_prev:
                    jobs.append((name, cname, True))
        since_s = None
        if window is not None:
            since_s = max(int((utcnow() - window.start).total_seconds()), 1)

        def one(job: tuple[str, str, bool]) -> tuple[tuple[str, str, bool], str | None, str]:
            try:
                return job, _read_logs(client, ns, job[0], job[1], job[2], tail, since_s, timeout), ""
            except Exception as exc:
                return job, None, redact(type(exc).__name__ + ": " + str(exc).splitlines()[0] if str(exc) else "")

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(one, jobs))
        pods_col: list[str] = []
        conts: list[str] = []
        prevs: list[bool] = []
        lines: list[str] = []
        failed: list[dict[str, Any]] = []
        for (pod_name, cont, prev), text, err in results:
            if text is None:
                failed.append({"pod": pod_name, "container": cont, "previous": prev, "error": err})
                continue
            got = [redact(line) for line in text.splitlines() if line.strip()]
            lines.extend(got)
            pods_col.extend([pod_name] * len(got))
            conts.extend([cont] * len(got))
            prevs.extend([prev] * len(got))
        parsed = parse_lines(lines)
        parsed.insert(0, "previous", prevs)
        parsed.insert(0, "container", conts)
        parsed.insert(0, "pod", pods_col)
        if window is not None and not parsed.empty:
            ts = parsed["timestamp"]
            parsed = parsed[ts.isna() | ((ts >= pd.Timestamp(window.start)) & (ts <= pd.Timestamp(window.end)))]
            parsed = parsed.reset_index(drop=True)
        hard_failures = [f for f in failed if not f["previous"]]
        if jobs and len(hard_failures) == sum(1 for j in jobs if not j[2]):
            raise RuntimeError(f"no pod's logs could be read: {hard_failures[0]['error']}")
        return parsed, {"pods": len(pods), "streams": len(jobs), "failed": failed, "selector": sel}

    call = _call(
        "logs", ns, sel, f" --tail={tail} --timestamps" + (" (+ --previous where restarted)" if previous else "")
    )
    return _kube_gather(prof, "logs", call, build, timeout, window=window)


def gather_error_signatures(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    tail: int = 500,
    window: Window | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl logs ... | grep ERROR``, grouped: one row per error signature with count, first and last seen."""
    logs = gather_logs(profile, namespace=namespace, selector=selector, tail=tail, window=window, timeout=timeout)
    if not logs.ok:
        logs.name = "kubernetes.error_signatures"
        logs.meta["kind"] = "kubernetes.error_signatures"
        return logs
    return Evidence(
        name="kubernetes.error_signatures",
        source=SOURCE,
        query=logs.query + " | grep ERROR | signatures",
        frame=group_signatures(logs.frame),
        window=window,
        collected_at=logs.collected_at,
        elapsed_s=logs.elapsed_s,
        meta={**logs.meta, "lines": len(logs.frame.index), "kind": "kubernetes.error_signatures"},
    )


# --- ingress ----------------------------------------------------------------------------------------


def gather_ingress(
    profile: ProfileLike = None,
    *,
    name: str | None = None,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """The ingress' annotations (rate limits, allow-lists, maintenance) as ``key, value`` rows."""
    prof = resolve_profile(profile)
    ns = _namespace(prof, namespace)
    ing = name or prof.names.ingress

    def build(client: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        d = _get_json(client, f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{ing}", timeout)
        ann = (d.get("metadata") or {}).get("annotations") or {}
        frame = pd.DataFrame({"annotation": list(ann), "value": [redact(str(v)) for v in ann.values()]})
        hosts = [r.get("host") for r in (d.get("spec") or {}).get("rules") or [] if r.get("host")]
        return frame, {"ingress": ing, "hosts": hosts}

    return _kube_gather(
        prof, "ingress", f"kubectl get ingress {ing} -n {ns} -o jsonpath='{{.metadata.annotations}}'", build, timeout
    )


def gather_configmap(
    profile: ProfileLike = None,
    *,
    name: str,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """A ConfigMap's data as ``key, value`` rows (the decision tree's "check ConfigMaps")."""
    ns = _namespace(profile, namespace)

    def build(client: Any) -> pd.DataFrame:
        d = _get_json(client, f"/api/v1/namespaces/{ns}/configmaps/{name}", timeout)
        data = d.get("data") or {}
        return pd.DataFrame({"key": list(data), "value": [redact(str(v)) for v in data.values()]})

    return _kube_gather(profile, f"configmap.{name}", f"kubectl get configmap {name} -n {ns} -o yaml", build, timeout)


def gather_version(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``/version``: is the API server reachable with our credentials (used by ``vcci-nb check``)."""

    def build(client: Any) -> pd.DataFrame:
        # /version is readable anonymously; ask a namespaced list too so bad credentials show.
        v = _get_json(client, "/version", timeout)
        ns = resolve_profile(profile).namespace
        _get_json(client, f"/api/v1/namespaces/{ns}/pods", timeout, {"limit": 1})
        return pd.DataFrame([{"git_version": v.get("gitVersion"), "platform": v.get("platform")}])

    return _kube_gather(profile, "version", "kubectl version; kubectl get pods --limit=1", build, timeout)

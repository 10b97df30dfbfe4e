# ruff: noqa: E501  (column descriptions are the API server's own strings)
"""Server-side printing: ``meta.k8s.io/v1`` Tables, the way ``kubectl get`` asks for them.

``kubectl get`` sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`` and prints the
cells it gets back verbatim, so the columns here (and the pod STATUS logic) follow the API server's
own printers (pkg/printers/internalversion/printers.go).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vcci_lab.kube._util import JSON, parse_time


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _age(obj: JSON, now: float, field: str | None = None) -> str:
    ts = field or obj.get("metadata", {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    try:
        return human_duration(now - parse_time(ts))
    except ValueError:
        return "<unknown>"


def _col(name: str, typ: str = "string", desc: str = "", fmt: str = "", priority: int = 0) -> JSON:
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


NAME = _col("Name", "string", "Name must be unique within a namespace.", "name")
AGE = _col(
    "Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created."
)


def pod_row(p: JSON, now: float) -> list[Any]:
    st = p.get("status") or {}
    reason = st.get("reason") or st.get("phase") or "Unknown"
    restarts = 0
    ready = 0
    total = len(p.get("spec", {}).get("containers") or [])
    last_restart: float | None = None
    has_running = False
    for cs in reversed(st.get("containerStatuses") or []):
        restarts += int(cs.get("restartCount", 0))
        term = (cs.get("lastState") or {}).get("terminated")
        if term and term.get("finishedAt"):
            t = parse_time(term["finishedAt"])
            last_restart = t if last_restart is None else max(last_restart, t)
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif state.get("terminated"):
            t = state["terminated"]
            reason = f"Signal:{t['signal']}" if t.get("signal") else f"ExitCode:{t.get('exitCode', 0)}"
        elif cs.get("ready") and "running" in state:
            has_running = True
            ready += 1
    if reason == "Completed" and has_running:
        reason = "Running"
    if p["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts_s = str(restarts)
    if last_restart is not None and restarts:
        restarts_s = f"{restarts} ({human_duration(now - last_restart)} ago)"
    return [
        p["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        restarts_s,
        _age(p, now),
        st.get("podIP") or "<none>",
        p.get("spec", {}).get("nodeName") or "<none>",
        st.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


POD_COLS = [
    NAME,
    _col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", desc="The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        desc="The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    _col("IP", desc="IP address allocated to the pod. Routable at least within the cluster.", priority=1),
    _col("Node", desc="NodeName is a request to schedule this pod onto a specific node.", priority=1),
    _col(
        "Nominated Node",
        desc="nominatedNodeName is set only when this pod preempts other pods on the node.",
        priority=1,
    ),
    _col("Readiness Gates", desc="If specified, all readiness gates will be evaluated for pod readiness.", priority=1),
]


def node_row(n: JSON, now: float) -> list[Any]:
    st = n.get("status") or {}
    status = []
    for c in st.get("conditions") or []:
        if c.get("type") == "Ready":
            status.append("Ready" if c.get("status") == "True" else "NotReady")
    if not status:
        status = ["Unknown"]
    if n.get("spec", {}).get("unschedulable"):
        status.append("SchedulingDisabled")
    roles = sorted(
        k.split("/", 1)[1] for k in (n["metadata"].get("labels") or {}) if k.startswith("node-role.kubernetes.io/")
    )
    info = st.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    return [
        n["metadata"]["name"],
        ",".join(status),
        ",".join(roles) or "<none>",
        _age(n, now),
        info.get("kubeletVersion", ""),
        addrs.get("InternalIP", "<none>"),
        addrs.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


NODE_COLS = [
    NAME,
    _col("Status", desc="The status of the node"),
    _col("Roles", desc="The roles of the node"),
    AGE,
    _col("Version", desc="Kubelet Version reported by the node."),
    _col(
        "Internal-IP",
        desc="List of addresses reachable to the node. Queried from cloud provider, if available.",
        priority=1,
    ),
    _col(
        "External-IP",
        desc="List of addresses reachable to the node. Queried from cloud provider, if available.",
        priority=1,
    ),
    _col(
        "OS-Image",
        desc="OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        priority=1,
    ),
    _col(
        "Kernel-Version",
        desc="Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        priority=1,
    ),
    _col(
        "Container-Runtime",
        desc="Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        priority=1,
    ),
]


def _containers(obj: JSON) -> tuple[str, str]:
    cs = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _sel(obj: JSON) -> str:
    sel = obj.get("spec", {}).get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in (sel.get("matchLabels") or {}).items()) or "<none>"


def deploy_row(d: JSON, now: float) -> list[Any]:
    st = d.get("status") or {}
    names, images = _containers(d)
    return [
        d["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{d.get('spec', {}).get('replicas', 0)}",
        int(st.get("updatedReplicas", 0)),
        int(st.get("availableReplicas", 0)),
        _age(d, now),
        names,
        images,
        _sel(d),
    ]


DEPLOY_COLS = [
    NAME,
    _col("Ready", desc="Number of the pod with ready state"),
    _col(
        "Up-to-date",
        "integer",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    _col(
        "Available",
        "integer",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    _col("Containers", desc="Names of each container in the template.", priority=1),
    _col("Images", desc="Images referenced by each container in the template.", priority=1),
    _col(
        "Selector",
        desc="Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
        priority=1,
    ),
]


def rs_row(r: JSON, now: float) -> list[Any]:
    st = r.get("status") or {}
    names, images = _containers(r)
    return [
        r["metadata"]["name"],
        int(r.get("spec", {}).get("replicas", 0)),
        int(st.get("replicas", 0)),
        int(st.get("readyReplicas", 0)),
        _age(r, now),
        names,
        images,
        _sel(r),
    ]


RS_COLS = [
    NAME,
    _col("Desired", "integer", "Replicas is the number of desired replicas."),
    _col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    _col("Ready", "integer", "The number of ready replicas for this replica set."),
    AGE,
    _col("Containers", desc="Names of each container in the template.", priority=1),
    _col("Images", desc="Images referenced by each container in the template.", priority=1),
    _col("Selector", desc="Selector is a label query over pods that should match the replica count.", priority=1),
]


def sts_row(s: JSON, now: float) -> list[Any]:
    st = s.get("status") or {}
    names, images = _containers(s)
    return [
        s["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{s.get('spec', {}).get('replicas', 0)}",
        _age(s, now),
        names,
        images,
    ]


STS_COLS = [
    NAME,
    _col("Ready", desc="Number of the pod with ready state"),
    AGE,
    _col("Containers", desc="Names of each container in the template.", priority=1),
    _col("Images", desc="Images referenced by each container in the template.", priority=1),
]


def event_row(e: JSON, now: float) -> list[Any]:
    io = e.get("involvedObject") or {}
    last = e.get("lastTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp")
    first = e.get("firstTimestamp") or last
    src = e.get("source") or {}
    source = src.get("component", "")
    if src.get("host"):
        source += ", " + src["host"]
    return [
        _age(e, now, last),
        e.get("type", ""),
        e.get("reason", ""),
        f"{str(io.get('kind', '')).lower()}/{io.get('name', '')}",
        e.get("message", ""),
        io.get("fieldPath", ""),
        source,
        _age(e, now, first),
        int(e.get("count", 1)),
        e["metadata"]["name"],
    ]


EVENT_COLS = [
    _col("Last Seen"),
    _col("Type", desc="Type of this event (Normal, Warning), new types could be added in the future"),
    _col(
        "Reason",
        desc="This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    _col("Object"),
    _col("Message", desc="A human-readable description of the status of this operation."),
    _col("Subobject", priority=1),
    _col(
        "Source",
        desc="The component reporting this event. Should be a short machine understandable string.",
        priority=1,
    ),
    _col(
        "First Seen",
        desc="The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        priority=1,
    ),
    _col("Count", "integer", "The number of times this event has occurred.", priority=1),
    _col("Name", desc="Name must be unique within a namespace.", priority=1),
]


def ingress_row(i: JSON, now: float) -> list[Any]:
    spec = i.get("spec") or {}
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules") or []) or "*"
    lbs = ((i.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addr = ",".join(x.get("hostname") or x.get("ip", "") for x in lbs)
    ports = "80, 443" if spec.get("tls") else "80"
    return [i["metadata"]["name"], spec.get("ingressClassName") or "<none>", hosts, addr, ports, _age(i, now)]


INGRESS_COLS = [
    NAME,
    _col("Class", desc="The name of the IngressClass resource that should be used for ingress."),
    _col("Hosts", desc="Hosts that incoming requests are matched against before the ingress rule"),
    _col("Address", desc="Address is a list containing ingress points for the load-balancer"),
    _col("Ports", desc="Ports of TLS configurations that open"),
    AGE,
]


def cm_row(c: JSON, now: float) -> list[Any]:
    return [c["metadata"]["name"], len(c.get("data") or {}) + len(c.get("binaryData") or {}), _age(c, now)]


CM_COLS = [NAME, _col("Data", "integer", "Data contains the configuration data."), AGE]


def secret_row(c: JSON, now: float) -> list[Any]:
    return [c["metadata"]["name"], c.get("type", "Opaque"), len(c.get("data") or {}), _age(c, now)]


SECRET_COLS = [
    NAME,
    _col("Type", desc="Used to facilitate programmatic handling of secret data."),
    _col("Data", "integer", "Data contains the secret data."),
    AGE,
]


def pvc_row(c: JSON, now: float) -> list[Any]:
    spec, st = c.get("spec") or {}, c.get("status") or {}
    modes = ",".join(
        {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}.get(m, m)
        for m in st.get("accessModes") or []
    )
    return [
        c["metadata"]["name"],
        st.get("phase", "Pending"),
        spec.get("volumeName", ""),
        (st.get("capacity") or {}).get("storage", ""),
        modes,
        spec.get("storageClassName") or "",
        "<unset>",
        _age(c, now),
        spec.get("volumeMode", "Filesystem"),
    ]


PVC_COLS = [
    NAME,
    _col("Status", desc="phase represents the current phase of PersistentVolumeClaim."),
    _col("Volume", desc="volumeName is the binding reference to the PersistentVolume backing this claim."),
    _col("Capacity", desc="capacity represents the actual resources of the underlying volume."),
    _col("Access Modes", desc="accessModes contains the desired access modes the volume should have."),
    _col("StorageClass", desc="storageClassName is the name of the StorageClass required by the claim."),
    _col(
        "VolumeAttributesClass",
        desc="volumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim.",
    ),
    AGE,
    _col("VolumeMode", desc="volumeMode defines what type of volume is required by the claim.", priority=1),
]


def ns_row(n: JSON, now: float) -> list[Any]:
    return [n["metadata"]["name"], (n.get("status") or {}).get("phase", "Active"), _age(n, now)]


NS_COLS = [NAME, _col("Status", desc="The status of the namespace"), AGE]


def svc_row(s: JSON, now: float) -> list[Any]:
    spec = s.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or "<none>"
    sel = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>"
    return [
        s["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        "<none>",
        ports,
        _age(s, now),
        sel,
    ]


SVC_COLS = [
    NAME,
    _col("Type", desc="type determines how the Service is exposed."),
    _col("Cluster-IP", desc="clusterIP is the IP address of the service and is usually assigned randomly."),
    _col(
        "External-IP",
        desc="externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    _col("Port(s)", desc="The list of ports that are exposed by this service."),
    AGE,
    _col(
        "Selector", desc="Route service traffic to pods with label keys and values matching this selector.", priority=1
    ),
]


def _selector_text(sel: JSON | None) -> str:
    """metav1.FormatLabelSelector."""
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        op, vals = e.get("operator", ""), ",".join(e.get("values") or [])
        if op == "In":
            parts.append(f"{e.get('key')} in ({vals})")
        elif op == "NotIn":
            parts.append(f"{e.get('key')} notin ({vals})")
        elif op == "Exists":
            parts.append(str(e.get("key")))
        elif op == "DoesNotExist":
            parts.append(f"!{e.get('key')}")
    return ",".join(parts) or "<none>"


def job_row(j: JSON, now: float) -> list[Any]:
    spec, st = j.get("spec") or {}, j.get("status") or {}
    succeeded = int(st.get("succeeded", 0))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif int(spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    try:
        if st.get("startTime") and st.get("completionTime"):
            duration = human_duration(parse_time(st["completionTime"]) - parse_time(st["startTime"]))
        elif st.get("startTime"):
            duration = human_duration(now - parse_time(st["startTime"]))
    except ValueError:
        duration = ""
    conds = {c.get("type") for c in st.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conds:
        status = "Complete"
    elif "Failed" in conds:
        status = "Failed"
    elif j["metadata"].get("deletionTimestamp"):
        status = "Terminating"
    elif "Suspended" in conds:
        status = "Suspended"
    elif "FailureTarget" in conds:
        status = "FailureTarget"
    else:
        status = "Running"
    tspec = (spec.get("template") or {}).get("spec") or {}
    cs = tspec.get("containers") or []
    return [
        j["metadata"]["name"],
        status,
        completions,
        duration,
        _age(j, now),
        ",".join(c.get("name", "") for c in cs),
        ",".join(c.get("image", "") for c in cs),
        _selector_text(spec.get("selector")),
    ]


JOB_COLS = [
    NAME,
    _col("Status", desc="Status of the job."),
    _col("Completions", desc="The completion status of the job."),
    _col("Duration", desc="Time required to complete the job."),
    AGE,
    _col("Containers", desc="Names of each container in the template.", priority=1),
    _col("Images", desc="Images referenced by each container in the template.", priority=1),
    _col("Selector", desc="Selector is a label query over pods that should match the pod count.", priority=1),
]


def default_row(o: JSON, now: float) -> list[Any]:
    return [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")]


DEFAULT_COLS = [
    NAME,
    _col(
        "Created At",
        "date",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    ),
]

PRINTERS: dict[str, tuple[list[JSON], Callable[[JSON, float], list[Any]]]] = {
    "/pods": (POD_COLS, pod_row),
    "/nodes": (NODE_COLS, node_row),
    "apps/deployments": (DEPLOY_COLS, deploy_row),
    "apps/replicasets": (RS_COLS, rs_row),
    "apps/statefulsets": (STS_COLS, sts_row),
    "/events": (EVENT_COLS, event_row),
    "networking.k8s.io/ingresses": (INGRESS_COLS, ingress_row),
    "/configmaps": (CM_COLS, cm_row),
    "/secrets": (SECRET_COLS, secret_row),
    "/persistentvolumeclaims": (PVC_COLS, pvc_row),
    "/namespaces": (NS_COLS, ns_row),
    "/services": (SVC_COLS, svc_row),
    "batch/jobs": (JOB_COLS, job_row),
}


def partial_metadata(obj: JSON) -> JSON:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def to_table(
    key: str,
    objs: list[JSON],
    *,
    resource_version: str,
    include: str,
    cont: str | None = None,
    now: float | None = None,
) -> JSON:
    now = time.time() if now is None else now
    cols, row = PRINTERS.get(key, (DEFAULT_COLS, default_row))
    rows = []
    for o in objs:
        r: JSON = {"cells": row(o, now)}
        if include == "Object":
            r["object"] = o
        elif include != "None":
            r["object"] = partial_metadata(o)
        rows.append(r)
    meta: JSON = {"resourceVersion": resource_version}
    if cont:
        meta["continue"] = cont
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": cols, "rows": rows}

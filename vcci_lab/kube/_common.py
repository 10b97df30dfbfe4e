# ruff: noqa: S311  (randomness is simulation, not crypto)
"""The emulated cluster's shared parts: names, the kubelet's record of a pod, the World's state and events.

The World (:mod:`vcci_lab.kube._world`) is built from parts, one module each: this base holds its
state, the controller's schedule and the event recorder; :mod:`._pods` the kubelet (pod lifecycle,
status, filesystems, usage); :mod:`._seed` the initial cluster; :mod:`._controllers` the deployment,
replica-set and stateful-set controllers; :mod:`._faults` the lab's faults. All methods expect
``store.lock`` to be held unless noted.
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_lab.flavour import get as get_flavour
from vcci_lab.kube import _logs
from vcci_lab.kube._fs import Volume
from vcci_lab.kube._store import Store
from vcci_lab.kube._util import JSON, parse_quantity, parse_time, rfc3339

#: The names of the platform this emulator plays (``vcci_lab.flavour``): one per process, from
#: ``VCCI_LAB_FLAVOUR`` (the lab sets it when it starts the emulator; default: the default flavour).
FLAVOUR = get_flavour(os.environ.get("VCCI_LAB_FLAVOUR"))
NS = FLAVOUR.namespace
API = FLAVOUR.api  # the API's Deployment
WORKER = FLAVOUR.worker
APP_LABEL = FLAVOUR.app_label  # the label the Deployments select their pods by
DATA_PVC = FLAVOUR.data_pvc
PODS = "/pods"
DEPLOY = "apps/deployments"
RS = "apps/replicasets"
STS = "apps/statefulsets"
EVENTS = "/events"
NODES = "/nodes"
PVCS = "/persistentvolumeclaims"

FAULTS = ("oomkill", "crashloop", "bad-deploy", "disk-full")
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
SKIP_ANNOTATIONS = {
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "kubectl.kubernetes.io/last-applied-configuration",
}

CREATE_DELAY = 0.35  # ContainerCreating -> Running
READY_DELAY = 0.6  # Running -> Ready (readiness probe passes)
TERMINATE_DELAY = 0.8  # Terminating -> gone
CRASH_AFTER = 1.0  # a crashing container dies this long after it starts
EVENT_TTL = 3600.0  # the API server's default --event-ttl

API_IMAGE = f"ghcr.io/vcci/{API}"
WORKER_IMAGE = f"ghcr.io/vcci/{WORKER}"
BAD_RELEASE = "2.15.0"


def app_value(deployment: str) -> str:
    """The value of :data:`APP_LABEL` on a Deployment's pods."""
    return FLAVOUR.api_app if deployment == API else FLAVOUR.worker_app if deployment == WORKER else deployment


def container_name(deployment: str) -> str:
    if deployment == API:
        return FLAVOUR.api_container
    return FLAVOUR.worker_container if deployment == WORKER else deployment


def app_labels(deployment: str) -> dict[str, str]:
    """The labels of a Deployment and its pods (the selector is ``{APP_LABEL: app_value(...)}``)."""
    return {APP_LABEL: app_value(deployment), "app.kubernetes.io/name": deployment, "app.kubernetes.io/part-of": "vcci"}


def deployment_of(pod: JSON) -> str | None:
    """The Deployment a pod belongs to, by its app label (None: not one of the application's)."""
    value = (pod.get("metadata", {}).get("labels") or {}).get(APP_LABEL)
    return API if value == FLAVOUR.api_app else WORKER if value == FLAVOUR.worker_app else None


def is_api_pod(pod: JSON) -> bool:
    return deployment_of(pod) == API


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def controller_uid(obj: JSON) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def revision_of(rs: JSON) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def container_limit(pod_spec: JSON, resource: str) -> float | None:
    cs = pod_spec.get("containers") or []
    if not cs:
        return None
    v = ((cs[0].get("resources") or {}).get("limits") or {}).get(resource)
    if v is None:
        return None
    try:
        return parse_quantity(v)
    except ValueError:
        return None


@dataclass
class PodRT:
    """What the kubelet knows about a pod that the API object does not hold directly."""

    uid: str
    ns: str
    name: str
    app: str
    stage: str  # creating | starting | ready | backoff | terminating
    due: float | None
    instances: list[_logs.Instance] = field(default_factory=list)
    restarts: int = 0
    mode: str = "ok"
    cpu: float = 0.2
    mem_frac: float = 0.45
    ready_since: float | None = None
    started_since: float | None = None
    container_ids: list[str] = field(default_factory=list)
    backoff: float = 5.0
    #: a Job's pod: its container runs as a local process (see ``_jobs``)
    local: bool = False
    proc: Any = None
    config_error: str | None = None
    kill_at: float | None = None
    disruption: JSON | None = None
    cpu_sample: tuple[float, float] | None = None  # (time, CPU seconds) of a local pod's last usage sample
    cpu_total: float = 0.0

    @property
    def current(self) -> _logs.Instance | None:
        return self.instances[-1] if self.instances else None

    @property
    def previous(self) -> _logs.Instance | None:
        for inst in reversed(self.instances):
            if inst.finished_at is not None and inst is not self.current:
                return inst
        return None


class WorldBase:
    """The cluster's state (see :class:`vcci_lab.kube._world.World`), its schedule and its events."""

    def __init__(self, store: Store, *, pods: int = 12, seed: int = 7) -> None:
        self.store = store
        self.n_pods = max(2, pods)
        self.rng = random.Random(seed)
        self.runtimes: dict[str, PodRT] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self.faults: dict[str, JSON] = {}
        #: The lab's other faults in force (pool exhaustion, slow queries, a provider down, ...), as
        #: windows [start, end or None] per name: vcci-api's logs show their errors while they last.
        self.flags: dict[str, list[list[float | None]]] = {}
        self.bad_images: set[str] = set()
        self.volumes: dict[tuple[str, str], Volume] = {}
        self.overlays: dict[str, Volume] = {}
        self.node_pods: dict[str, int] = {}
        self.node_index: dict[str, int] = {}
        self.ip_counter: dict[str, int] = {}
        self._progress: dict[str, tuple[Any, float]] = {}
        self.dirty = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._last_lease = 0.0
        self._last_node_heartbeat = 0.0
        self._disk_files: list[tuple[str, str]] = []
        self.started = time.time()
        # the Job controller's and the local kubelet's state (see ``_jobs``)
        self.job_counted: dict[str, dict[str, str]] = {}
        self.job_last_failure: dict[str, float] = {}
        self.job_failjob: dict[str, str] = {}  # a podFailurePolicy FailJob rule matched: its message
        self.job_wake: float | None = None
        self.local: dict[str, PodRT] = {}
        self.dying: list[Any] = []  # killed local processes not yet reaped
        self.pod_root: Path | None = None
        #: the emulator's state directory: local pods' logs and working folders go under it
        self.data_dir: Path | None = None

    def schedule(self, rt: PodRT, due: float) -> None:
        rt.due = due
        heapq.heappush(self._heap, (due, next(self._seq), rt.uid))

    def _cid(self) -> str:
        return "containerd://" + _hex(self.rng, 64)

    @staticmethod
    def _owner_ref(obj: JSON) -> JSON:
        return {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def event(
        self, obj: JSON, etype: str, reason: str, message: str, component: str, now: float, host: str | None = None
    ) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        involved = {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace", ""),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if obj.get("kind") == "Pod":
            involved["fieldPath"] = (
                f"spec.containers{{{obj['spec']['containers'][0]['name']}}}"
                if reason not in ("Scheduled", "Killing_")
                else None
            )
            if reason == "Scheduled":
                involved.pop("fieldPath", None)
            host = host or obj["spec"].get("nodeName")
        involved = {k: v for k, v in involved.items() if v is not None and (k != "namespace" or v)}
        key = f"{meta.get('uid')}|{reason}|{message}"
        existing = self._event_index.get(key) if hasattr(self, "_event_index") else None
        if not hasattr(self, "_event_index"):
            self._event_index: dict[str, tuple[str, str]] = {}
        if existing is not None:
            found = self.store.get(EVENTS, existing[0], existing[1])
            if found is not None:
                upd = dict(found)
                upd["count"] = int(found.get("count", 1)) + 1
                upd["lastTimestamp"] = rfc3339(now)
                upd["metadata"] = dict(found["metadata"])
                self.store.replace(EVENTS, upd)
                return
        name = f"{meta['name']}.{time.time_ns() + next(self._seq):x}"
        source: JSON = {"component": component}
        if host:
            source["host"] = host
        ev: JSON = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": rfc3339(now),
            "lastTimestamp": rfc3339(now),
            "count": 1,
            "type": etype,
            "eventTime": None,
            "reportingComponent": component if component != "kubelet" else "kubelet",
            "reportingInstance": host or "",
        }
        self.store.create(EVENTS, ev, now=now)
        self._event_index[key] = (ns, name)

    def node_event(self, node: str, etype: str, reason: str, message: str, now: float) -> None:
        obj = self.store.get(NODES, "", node)
        if obj is None:
            return
        self.event(obj, etype, reason, message, "kernel-monitor", now, host=node)

    def _prune_events(self, now: float) -> None:
        for ev in self.store.objects(EVENTS):
            try:
                last = parse_time(ev.get("lastTimestamp") or ev["metadata"]["creationTimestamp"])
            except (ValueError, KeyError):
                continue
            if now - last > EVENT_TTL:
                self.store.delete(EVENTS, ev["metadata"]["namespace"], ev["metadata"]["name"])
        idx = getattr(self, "_event_index", {})
        for k, (ns, name) in list(idx.items()):
            if self.store.get(EVENTS, ns, name) is None:
                del idx[k]


def _pod_ready(p: JSON) -> bool:
    for c in (p.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _neg_time(p: JSON) -> float:
    try:
        return -parse_time(p["metadata"]["creationTimestamp"])
    except (KeyError, ValueError):
        return 0.0


def _qos(spec: JSON) -> str:
    guaranteed = True
    anything = False
    for c in spec.get("containers") or []:
        r = c.get("resources") or {}
        req, lim = r.get("requests") or {}, r.get("limits") or {}
        if req or lim:
            anything = True
        for k in ("cpu", "memory"):
            if k not in lim or (k in req and req[k] != lim[k]):
                guaranteed = False
    if not anything:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def pod_conditions(
    *, started: bool, started_t: str, initialized_t: str, ready: bool, ready_t: str, scheduled_t: str
) -> list[JSON]:
    """A running pod's five conditions in the kubelet's order (callers add reasons and a disruption)."""

    def cond(kind: str, status: bool, t: str) -> JSON:
        return {"type": kind, "status": "True" if status else "False", "lastProbeTime": None, "lastTransitionTime": t}

    return [
        cond("PodReadyToStartContainers", started, started_t),
        cond("Initialized", True, initialized_t),
        cond("Ready", ready, ready_t),
        cond("ContainersReady", ready, ready_t),
        cond("PodScheduled", True, scheduled_t),
    ]

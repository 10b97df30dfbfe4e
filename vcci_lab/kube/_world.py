# ruff: noqa: E501, S108, S311  (object literals read best on one line; /tmp paths are simulated; randomness is simulation, not crypto)
"""The emulated cluster: its initial objects, the controllers that keep them consistent, and faults.

One background thread plays the parts a real cluster splits between the deployment and replica-set
controllers, the scheduler, the kubelet and metrics-server: it scales ReplicaSets during a rollout,
creates and deletes pods, moves pods through ContainerCreating -> Running -> Ready (or into
CrashLoopBackOff / OOMKilled restarts while a fault is active), writes status and events, and garbage
collects objects whose owner is gone. Timings are compressed (a pod is Ready about a second after it
is created) so that ``kubectl rollout status`` finishes in seconds.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from vcci_lab.kube import _logs
from vcci_lab.kube._fs import ContainerFS, FileEntry, GiB, MiB, Mount, Volume
from vcci_lab.kube._selectors import selector_from_match_labels, selector_string
from vcci_lab.kube._store import Store, copy_json
from vcci_lab.kube._util import (
    JSON,
    parse_quantity,
    parse_time,
    rfc3339,
    rfc3339_micro,
    safe_suffix,
    strip_hash,
    template_hash,
)

log = logging.getLogger(__name__)

NS = "vcci-production"
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

API_IMAGE = "ghcr.io/vcci/vcci-api"
WORKER_IMAGE = "ghcr.io/vcci/vcci-worker"
BAD_RELEASE = "2.15.0"

# (image tag, change-cause, age in hours, env overrides) for vcci-api's history; the last is current.
API_HISTORY = (
    ("2.10.0", "Deploy 2.10.0 (release/2.10, CHG-1841)", 24 * 12, {"DATABASE_POOL_SIZE": "10"}),
    ("2.11.0", "Deploy 2.11.0 (release/2.11, CHG-1866)", 24 * 9, {"DATABASE_POOL_SIZE": "10"}),
    ("2.12.0", "Deploy 2.12.0 (release/2.12, CHG-1902)", 24 * 6, {"DATABASE_POOL_SIZE": "20"}),
    ("2.12.1", "Hotfix 2.12.1: supplier import timeout (CHG-1911)", 24 * 5, {"DATABASE_POOL_SIZE": "20"}),
    ("2.13.0", "Deploy 2.13.0 (release/2.13, CHG-1937)", 24 * 2 + 5, {"DATABASE_POOL_SIZE": "20"}),
    ("2.14.0", "Deploy 2.14.0 (release/2.14, CHG-1958)", 19, {"DATABASE_POOL_SIZE": "20"}),
)
WORKER_HISTORY = (
    ("2.13.0", "Deploy 2.13.0 (release/2.13, CHG-1937)", 24 * 2 + 5),
    ("2.14.0", "Deploy 2.14.0 (release/2.14, CHG-1958)", 19),
)


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

    @property
    def current(self) -> _logs.Instance | None:
        return self.instances[-1] if self.instances else None

    @property
    def previous(self) -> _logs.Instance | None:
        for inst in reversed(self.instances):
            if inst.finished_at is not None and inst is not self.current:
                return inst
        return None


class World:
    """The cluster's state machine. All methods expect ``store.lock`` to be held unless noted."""

    def __init__(self, store: Store, *, pods: int = 12, seed: int = 7) -> None:
        self.store = store
        self.n_pods = max(2, pods)
        self.rng = random.Random(seed)
        self.runtimes: dict[str, PodRT] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self.faults: dict[str, JSON] = {}
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

    # ==========================================================================================
    # lifecycle
    # ==========================================================================================
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kube-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.store.changed.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.store.changed.wait(0.1)
            self.store.changed.clear()
            try:
                with self.store.lock:
                    self.tick(time.time())
            except Exception:  # the controller must keep running; log and go on
                log.exception("controller tick failed")

    def schedule(self, rt: PodRT, due: float) -> None:
        rt.due = due
        heapq.heappush(self._heap, (due, next(self._seq), rt.uid))

    def tick(self, now: float) -> None:
        """One controller pass: kubelet transitions that are due, then reconcile if anything changed."""
        changed_pods: set[str] = set()
        while self._heap and self._heap[0][0] <= now:
            due, _, uid = heapq.heappop(self._heap)
            rt = self.runtimes.get(uid)
            if rt is None or rt.due is None or abs(rt.due - due) > 1e-9:
                continue
            rt.due = None
            self._advance(rt, now)
            changed_pods.add(uid)
        for uid in changed_pods:
            rt = self.runtimes.get(uid)
            if rt is not None and rt.stage != "gone":
                self._write_pod_status(rt, now)
        if changed_pods:
            self.dirty = True
        if self.dirty:
            self.dirty = False
            self._reconcile(now)
        if now - self._last_prune > 30:
            self._last_prune = now
            self._prune_events(now)
        if now - self._last_lease > 10:
            self._last_lease = now
            self._heartbeat(now)
        if self._heap:
            # wake up in time for the next due transition
            delay = max(0.0, self._heap[0][0] - time.time())
            if delay < 0.1:
                self.store.changed.set()

    # ==========================================================================================
    # initial state
    # ==========================================================================================
    def build(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.started = now
        s = self.store
        api_n = math.ceil(self.n_pods / 2)
        worker_n = self.n_pods - api_n
        n_nodes = max(3, math.ceil((self.n_pods + 5) / 100))
        created = now - 86400 * 40
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease", NS, "monitoring"):
            s.create(
                "/namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
                now=created,
            )
        for name in ("rook-cephfs", "gp3"):
            s.create(
                "storage.k8s.io/storageclasses",
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {
                        "name": name,
                        "annotations": {"storageclass.kubernetes.io/is-default-class": str(name == "gp3").lower()},
                    },
                    "provisioner": "rook-ceph.cephfs.csi.ceph.com" if name == "rook-cephfs" else "ebs.csi.aws.com",
                    "reclaimPolicy": "Delete",
                    "allowVolumeExpansion": True,
                    "volumeBindingMode": "Immediate",
                },
                now=created,
            )
        zones = ("eu-west-1a", "eu-west-1b", "eu-west-1c")
        for i in range(n_nodes):
            self._make_node(i, zones[i % 3], created + 86400 * 5 + i * 60, now)
        self._make_config(created, now)
        self._make_deployment("vcci-api", api_n, now, API_HISTORY)
        self._make_deployment("vcci-worker", worker_n, now, tuple((t, c, h, {}) for t, c, h in WORKER_HISTORY))
        self._make_monitoring(now)
        self._make_fs(now)
        self.dirty = True

    def _make_node(self, i: int, zone: str, created: float, now: float) -> None:
        rng = self.rng
        ip = f"10.20.{32 + i // 200}.{10 + i % 200}"
        name = f"ip-{ip.replace('.', '-')}.eu-west-1.compute.internal"
        self.node_index[name] = i
        self.node_pods[name] = 0
        cond_time = rfc3339(created + 40)
        hb = rfc3339(now - rng.randint(5, 40))
        obj: JSON = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "beta.kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/instance-type": "m6i.2xlarge",
                    "beta.kubernetes.io/os": "linux",
                    "eks.amazonaws.com/capacityType": "ON_DEMAND",
                    "eks.amazonaws.com/nodegroup": "vcci-prod-general",
                    "failure-domain.beta.kubernetes.io/region": "eu-west-1",
                    "failure-domain.beta.kubernetes.io/zone": zone,
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "node.kubernetes.io/instance-type": "m6i.2xlarge",
                    "topology.kubernetes.io/region": "eu-west-1",
                    "topology.kubernetes.io/zone": zone,
                },
                "annotations": {
                    "alpha.kubernetes.io/provided-node-ip": ip,
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {
                "providerID": f"aws:///{zone}/i-0{_hex(rng, 16)}",
                "podCIDR": f"10.244.{i % 250}.0/24",
                "podCIDRs": [f"10.244.{i % 250}.0/24"],
            },
            "status": {
                "capacity": {
                    "cpu": "8",
                    "ephemeral-storage": "83873772Ki",
                    "hugepages-1Gi": "0",
                    "hugepages-2Mi": "0",
                    "memory": "32386256Ki",
                    "pods": "110",
                },
                "allocatable": {
                    "cpu": "7910m",
                    "ephemeral-storage": "76224326324",
                    "hugepages-1Gi": "0",
                    "hugepages-2Mi": "0",
                    "memory": "31369424Ki",
                    "pods": "110",
                },
                "conditions": [
                    {
                        "type": "MemoryPressure",
                        "status": "False",
                        "lastHeartbeatTime": hb,
                        "lastTransitionTime": cond_time,
                        "reason": "KubeletHasSufficientMemory",
                        "message": "kubelet has sufficient memory available",
                    },
                    {
                        "type": "DiskPressure",
                        "status": "False",
                        "lastHeartbeatTime": hb,
                        "lastTransitionTime": cond_time,
                        "reason": "KubeletHasNoDiskPressure",
                        "message": "kubelet has no disk pressure",
                    },
                    {
                        "type": "PIDPressure",
                        "status": "False",
                        "lastHeartbeatTime": hb,
                        "lastTransitionTime": cond_time,
                        "reason": "KubeletHasSufficientPID",
                        "message": "kubelet has sufficient PID available",
                    },
                    {
                        "type": "Ready",
                        "status": "True",
                        "lastHeartbeatTime": hb,
                        "lastTransitionTime": rfc3339(created + 55),
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                    },
                ],
                "addresses": [
                    {"type": "InternalIP", "address": ip},
                    {"type": "InternalDNS", "address": name},
                    {"type": "Hostname", "address": name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": _hex(rng, 32),
                    "systemUUID": "ec2"
                    + _hex(rng, 5)
                    + "-"
                    + _hex(rng, 4)
                    + "-"
                    + _hex(rng, 4)
                    + "-"
                    + _hex(rng, 4)
                    + "-"
                    + _hex(rng, 12),
                    "bootID": f"{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}",
                    "kernelVersion": "6.1.115-126.197.amzn2023.x86_64",
                    "osImage": "Amazon Linux 2023.6.20241121",
                    "containerRuntimeVersion": "containerd://1.7.23",
                    "kubeletVersion": "v1.31.3-eks-59bf375",
                    "kubeProxyVersion": "v1.31.3-eks-59bf375",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
                "images": [
                    {"names": [f"{API_IMAGE}:2.14.0"], "sizeBytes": 412_331_808},
                    {"names": [f"{WORKER_IMAGE}:2.14.0"], "sizeBytes": 398_101_554},
                ],
            },
        }
        self.store.create(NODES, obj, now=created)
        self.store.create(
            "coordination.k8s.io/leases",
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": rfc3339_micro(now - 3)},
            },
            now=created,
        )

    def _make_config(self, created: float, now: float) -> None:
        s = self.store
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease", NS, "monitoring"):
            s.create(
                "/configmaps",
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "kube-root-ca.crt", "namespace": ns},
                    "data": {
                        "ca.crt": "-----BEGIN CERTIFICATE-----\nMIIC/jCCAeagAwIBAgIBADANBgkqhkiG9w0BAQsFADAVMRMwEQYDVQQDEwprdWJl\n-----END CERTIFICATE-----\n"
                    },
                },
                now=created,
            )
            s.create(
                "/serviceaccounts",
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}},
                now=created,
            )
        for name in ("vcci-api", "vcci-worker"):
            s.create(
                "/serviceaccounts",
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
                },
                now=created,
            )
        s.create(
            "/configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "vcci-api-config", "namespace": NS, "labels": {"app": "vcci-api"}},
                "data": {
                    "LOG_LEVEL": "INFO",
                    "GUNICORN_WORKERS": "4",
                    "CACHE_TTL_SECONDS": "900",
                    "EXTERNAL_API_TIMEOUT_SECONDS": "10",
                    "EMISSION_FACTORS_VERSION": "2024.2",
                },
            },
            now=now - 86400 * 2,
        )
        s.create(
            "/configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "vcci-maintenance",
                    "namespace": NS,
                    "labels": {"app": "vcci-api", "app.kubernetes.io/part-of": "vcci"},
                    "annotations": {
                        "vcci.io/description": 'Set enabled to "true" to serve the maintenance page from the ingress.'
                    },
                },
                "data": {
                    "enabled": "false",
                    "message": "The VCCI platform is undergoing maintenance. We will be back shortly.",
                },
            },
            now=now - 86400 * 30,
        )
        s.create(
            "/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "vcci-api-secrets", "namespace": NS, "labels": {"app": "vcci-api"}},
                "type": "Opaque",
                "data": {
                    "database-url": "cG9zdGdyZXNxbDovL3ZjY2lfYXBwOioqKkB2Y2NpLXBvc3RncmVzOjU0MzIvdmNjaV9wcm9kdWN0aW9u",
                    "redis-url": "cmVkaXM6Ly92Y2NpLXJlZGlzOjYzNzkvMA==",
                },
            },
            now=created,
        )
        for name, port, ip in (
            ("vcci-api", 8000, "10.100.41.12"),
            ("vcci-postgres", 5432, "10.100.23.7"),
            ("vcci-redis", 6379, "10.100.9.88"),
        ):
            s.create(
                "/services",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
                    "spec": {
                        "type": "ClusterIP",
                        "clusterIP": ip,
                        "clusterIPs": [ip],
                        "ports": [
                            {
                                "name": "http" if port == 8000 else "tcp",
                                "port": port if port != 8000 else 80,
                                "protocol": "TCP",
                                "targetPort": port,
                            }
                        ],
                        "selector": {"app": name},
                        "sessionAffinity": "None",
                        "ipFamilies": ["IPv4"],
                        "ipFamilyPolicy": "SingleStack",
                        "internalTrafficPolicy": "Cluster",
                    },
                    "status": {"loadBalancer": {}},
                },
                now=created,
            )
        s.create(
            "networking.k8s.io/ingresses",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": "vcci-api-ingress",
                    "namespace": NS,
                    "labels": {"app": "vcci-api"},
                    "annotations": {
                        "cert-manager.io/cluster-issuer": "letsencrypt-prod",
                        "nginx.ingress.kubernetes.io/proxy-body-size": "50m",
                        "nginx.ingress.kubernetes.io/proxy-read-timeout": "60",
                        "nginx.ingress.kubernetes.io/ssl-redirect": "true",
                    },
                    "generation": 1,
                },
                "spec": {
                    "ingressClassName": "nginx",
                    "tls": [{"hosts": ["api.vcci.example.com"], "secretName": "vcci-api-tls"}],
                    "rules": [
                        {
                            "host": "api.vcci.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": "vcci-api", "port": {"number": 80}}},
                                    }
                                ]
                            },
                        }
                    ],
                },
                "status": {
                    "loadBalancer": {
                        "ingress": [
                            {
                                "hostname": "k8s-ingressn-ingressn-3f9c1a2b7e-0a1b2c3d4e5f6a7b.elb.eu-west-1.amazonaws.com"
                            }
                        ]
                    }
                },
            },
            now=created,
        )
        pv_name = (
            f"pvc-{_hex(self.rng, 8)}-{_hex(self.rng, 4)}-{_hex(self.rng, 4)}-{_hex(self.rng, 4)}-{_hex(self.rng, 12)}"
        )
        s.create(
            PVCS,
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": "vcci-api-data",
                    "namespace": NS,
                    "labels": {"app": "vcci-api"},
                    "annotations": {
                        "pv.kubernetes.io/bind-completed": "yes",
                        "pv.kubernetes.io/bound-by-controller": "yes",
                        "volume.beta.kubernetes.io/storage-provisioner": "rook-ceph.cephfs.csi.ceph.com",
                        "volume.kubernetes.io/storage-provisioner": "rook-ceph.cephfs.csi.ceph.com",
                    },
                    "finalizers": ["kubernetes.io/pvc-protection"],
                },
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "resources": {"requests": {"storage": "20Gi"}},
                    "storageClassName": "rook-cephfs",
                    "volumeMode": "Filesystem",
                    "volumeName": pv_name,
                },
                "status": {"phase": "Bound", "accessModes": ["ReadWriteMany"], "capacity": {"storage": "20Gi"}},
            },
            now=created,
        )
        s.create(
            "/persistentvolumes",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": pv_name,
                    "annotations": {"pv.kubernetes.io/provisioned-by": "rook-ceph.cephfs.csi.ceph.com"},
                },
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "capacity": {"storage": "20Gi"},
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "name": "vcci-api-data",
                        "namespace": NS,
                    },
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": "rook-cephfs",
                    "volumeMode": "Filesystem",
                    "csi": {
                        "driver": "rook-ceph.cephfs.csi.ceph.com",
                        "volumeHandle": "0001-0009-rook-ceph-" + _hex(self.rng, 16),
                    },
                },
                "status": {"phase": "Bound"},
            },
            now=created,
        )

    def _api_template(self, app: str, tag: str, env_over: dict[str, str]) -> JSON:
        image = f"{API_IMAGE if app == 'vcci-api' else WORKER_IMAGE}:{tag}"
        env = [
            {"name": "DJANGO_SETTINGS_MODULE", "value": "vcci.settings.production"},
            {"name": "DATABASE_POOL_SIZE", "value": env_over.get("DATABASE_POOL_SIZE", "20")},
            {"name": "CIRCUIT_BREAKER_ENABLED", "value": "false"},
            {"name": "USE_CACHED_DATA", "value": "false"},
            {"name": "MEMORY_PROFILING_ENABLED", "value": "false"},
            {
                "name": "DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": "vcci-api-secrets", "key": "database-url"}},
            },
            {"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": "vcci-api-secrets", "key": "redis-url"}}},
        ]
        container: JSON = {
            "name": app,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "env": env,
            "envFrom": [{"configMapRef": {"name": "vcci-api-config"}}],
            "resources": {"limits": {"cpu": "2", "memory": "4Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
        volumes: list[JSON] = []
        if app == "vcci-api":
            container["args"] = [
                "gunicorn",
                "vcci.wsgi:application",
                "--bind=0.0.0.0:8000",
                "--workers=4",
                "--threads=4",
            ]
            container["ports"] = [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
            container["readinessProbe"] = {
                "httpGet": {"path": "/health", "port": "http", "scheme": "HTTP"},
                "initialDelaySeconds": 5,
                "periodSeconds": 10,
                "timeoutSeconds": 2,
                "successThreshold": 1,
                "failureThreshold": 3,
            }
            container["livenessProbe"] = {
                "httpGet": {"path": "/health/live", "port": "http", "scheme": "HTTP"},
                "initialDelaySeconds": 20,
                "periodSeconds": 20,
                "timeoutSeconds": 3,
                "successThreshold": 1,
                "failureThreshold": 3,
            }
            container["volumeMounts"] = [{"name": "logs", "mountPath": "/var/log"}]
            volumes = [{"name": "logs", "persistentVolumeClaim": {"claimName": "vcci-api-data"}}]
        else:
            container["args"] = ["celery", "-A", "vcci", "worker", "--loglevel=INFO", "--concurrency=8"]
            container["resources"] = {
                "limits": {"cpu": "2", "memory": "3Gi"},
                "requests": {"cpu": "500m", "memory": "1536Mi"},
            }
        spec: JSON = {
            "containers": [container],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
            "serviceAccountName": app,
            "serviceAccount": app,
            "terminationGracePeriodSeconds": 30,
        }
        if volumes:
            spec["volumes"] = volumes
        return {
            "metadata": {
                "labels": {"app": app, "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "vcci"},
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8000"}
                if app == "vcci-api"
                else {},
            },
            "spec": spec,
        }

    def _make_deployment(
        self, name: str, replicas: int, now: float, history: tuple[tuple[str, str, float, dict[str, str]], ...]
    ) -> None:
        s = self.store
        created = now - 3600 * history[0][2] - 600
        labels = {"app": name, "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "vcci"}
        cur_tag, cur_cause, cur_age, cur_env = history[-1]
        template = self._api_template(name, cur_tag, cur_env)
        dep: JSON = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": NS,
                "labels": labels,
                "annotations": {REVISION: str(len(history)), CHANGE_CAUSE: cur_cause},
                "generation": len(history),
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": template,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
            "status": {},
        }
        s.create(DEPLOY, dep, now=created)
        dep = s.get(DEPLOY, NS, name) or dep
        dep_ref = self._owner_ref(dep)
        cur_rs: JSON | None = None
        for rev, (tag, cause, age, env) in enumerate(history, start=1):
            tmpl = self._api_template(name, tag, env)
            h = template_hash(tmpl)
            tmpl["metadata"]["labels"]["pod-template-hash"] = h
            is_cur = rev == len(history)
            rs: JSON = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-{h}",
                    "namespace": NS,
                    "labels": {**labels, "pod-template-hash": h},
                    "annotations": {
                        CHANGE_CAUSE: cause,
                        "deployment.kubernetes.io/desired-replicas": str(replicas),
                        "deployment.kubernetes.io/max-replicas": str(replicas + math.ceil(replicas * 0.25)),
                        REVISION: str(rev),
                    },
                    "ownerReferences": [dep_ref],
                    "generation": 2 if not is_cur else 1,
                },
                "spec": {
                    "replicas": replicas if is_cur else 0,
                    "selector": {"matchLabels": {"app": name, "pod-template-hash": h}},
                    "template": tmpl,
                },
                "status": {"replicas": 0, "observedGeneration": 2 if not is_cur else 1},
            }
            s.create(RS, rs, now=now - 3600 * age)
            if is_cur:
                cur_rs = s.get(RS, NS, rs["metadata"]["name"])
        assert cur_rs is not None
        born = now - 3600 * cur_age
        for i in range(replicas):
            pod = self._new_pod(cur_rs, born + 20 + i * 7)
            rt = self._register_pod(pod, born + 20 + i * 7)
            # the pods of the current release have been running since the rollout
            start = born + 24 + i * 7
            rt.instances = [_logs.Instance(0, start, "ok")]
            if name == "vcci-worker" and i == 1:
                # realistic noise: one worker restarted once overnight after losing its broker
                rt.instances = [
                    _logs.Instance(0, start, "error", finished_at=now - 14 * 3600, reason="Error", exit_code=1),
                    _logs.Instance(1, now - 14 * 3600 + 11, "ok"),
                ]
                rt.restarts = 1
                rt.container_ids = [self._cid(), self._cid()]
            rt.stage = "ready"
            rt.ready_since = rt.instances[-1].started_at + 6
            rt.started_since = rt.instances[-1].started_at
            rt.mode = "ok"
            pod["status"] = self._pod_status(pod, rt, now)
            s.create(PODS, pod, now=born + 20 + i * 7)

    def _make_monitoring(self, now: float) -> None:
        s = self.store
        created = now - 86400 * 30
        labels = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": "kube-prometheus"}
        tmpl: JSON = {
            "metadata": {"labels": dict(labels)},
            "spec": {
                "containers": [
                    {
                        "name": "prometheus",
                        "image": "quay.io/prometheus/prometheus:v2.54.1",
                        "args": ["--storage.tsdb.retention.time=15d", "--config.file=/etc/prometheus/prometheus.yml"],
                        "ports": [{"name": "web", "containerPort": 9090, "protocol": "TCP"}],
                        "resources": {"limits": {"memory": "8Gi"}, "requests": {"cpu": "500m", "memory": "4Gi"}},
                        "imagePullPolicy": "IfNotPresent",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }
                ],
                "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
                "serviceAccountName": "default",
                "terminationGracePeriodSeconds": 600,
            },
        }
        sts: JSON = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "prometheus", "namespace": "monitoring", "labels": dict(labels), "generation": 1},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(labels)},
                "serviceName": "prometheus-operated",
                "template": tmpl,
                "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            },
            "status": {
                "replicas": 1,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "currentReplicas": 1,
                "updatedReplicas": 1,
                "observedGeneration": 1,
            },
        }
        s.create(STS, sts, now=created)
        sts = s.get(STS, "monitoring", "prometheus") or sts
        self._create_sts_pod(sts, 0, created + 30, now, ready=True)

    def _create_sts_pod(self, sts: JSON, ordinal: int, born: float, now: float, *, ready: bool) -> None:
        name = f"{sts['metadata']['name']}-{ordinal}"
        tmpl = copy_json(sts["spec"]["template"])
        pod = self._pod_from_template(tmpl, name, sts["metadata"]["namespace"], self._owner_ref(sts), born)
        pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = name
        pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] = str(ordinal)
        rt = self._register_pod(pod, born)
        if ready:
            rt.instances = [_logs.Instance(0, born + 5, "ok")]
            rt.stage = "ready"
            rt.ready_since = born + 12
            rt.started_since = born + 5
            pod["status"] = self._pod_status(pod, rt, now)
        else:
            self.schedule(rt, now + CREATE_DELAY)
            pod["status"] = self._pod_status(pod, rt, now)
        self.store.create(PODS, pod, now=born)

    def _make_fs(self, now: float) -> None:
        pvc = self.store.get(PVCS, NS, "vcci-api-data")
        cap = int(parse_quantity(pvc["status"]["capacity"]["storage"])) if pvc else 20 * GiB
        vol = Volume("10.20.40.11:/volumes/csi/csi-vol-7e1c", cap, 180 * MiB)
        day = 86400
        vol.files["/var/log/vcci/api.log"] = FileEntry(212 * MiB, now - 5)
        vol.files["/var/log/vcci/access.log"] = FileEntry(96 * MiB, now - 2)
        vol.files["/var/log/gunicorn/error.log"] = FileEntry(14 * MiB, now - 40)
        for d in range(1, 7):
            stamp = time.strftime("%Y-%m-%d", time.gmtime(now - d * day))
            vol.files[f"/var/log/vcci/api-{stamp}.log"] = FileEntry(812 * MiB + d * 7 * MiB, now - d * day + 3600)
            vol.files[f"/var/log/vcci/access-{stamp}.log"] = FileEntry(143 * MiB, now - d * day + 3600)
        self.volumes[(NS, "vcci-api-data")] = vol

    def overlay(self, uid: str, now: float) -> Volume:
        vol = self.overlays.get(uid)
        if vol is None:
            vol = Volume("overlay", 80 * GiB, 14 * GiB + self.rng.randint(0, 3 * 1024) * MiB)
            vol.files["/tmp/gunicorn-heartbeat"] = FileEntry(0, now - 1)
            vol.files["/tmp/prometheus_multiproc/counter_8.db"] = FileEntry(1 * MiB, now - 3)
            vol.files["/app/manage.py"] = FileEntry(664, now - 86400)
            if "disk-full" in self.faults:
                self._fill_tmp(vol, now)
            self.overlays[uid] = vol
        return vol

    def container_fs(self, pod: JSON, now: float) -> ContainerFS:
        uid = pod["metadata"]["uid"]
        mounts = [
            Mount("/", self.overlay(uid, now)),
            Mount("/dev", Volume("tmpfs", 64 * MiB, 0)),
            Mount("/dev/shm", Volume("shm", 64 * MiB, 0)),
            Mount("/run/secrets/kubernetes.io/serviceaccount", Volume("tmpfs", int(3.8 * GiB), 12 * 1024)),
        ]
        for v in pod["spec"].get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            vol = self.volumes.get((pod["metadata"]["namespace"], claim))
            if vol is None:
                continue
            for c in pod["spec"]["containers"][:1]:
                for vm in c.get("volumeMounts") or []:
                    if vm.get("name") == v.get("name"):
                        mounts.append(Mount(vm["mountPath"], vol))
        env = {"HOSTNAME": pod["metadata"]["name"], "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/app"}
        for c in pod["spec"]["containers"][:1]:
            for e in c.get("env") or []:
                if "value" in e:
                    env[e["name"]] = e["value"]
        return ContainerFS(mounts, hostname=pod["metadata"]["name"], env=env)

    # ==========================================================================================
    # pods
    # ==========================================================================================
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

    def _pick_node(self) -> str:
        return min(self.node_pods, key=lambda n: (self.node_pods[n], self.node_index[n]))

    def _pod_from_template(self, tmpl: JSON, name: str, ns: str, owner: JSON, born: float) -> JSON:
        node = self._pick_node()
        self.node_pods[node] += 1
        meta = tmpl.get("metadata") or {}
        spec = copy_json(tmpl["spec"])
        token_vol = f"kube-api-access-{safe_suffix(5, self.rng)}"
        spec.setdefault("volumes", []).append(
            {
                "name": token_vol,
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                    }
                                ]
                            }
                        },
                    ],
                },
            }
        )
        for c in spec.get("containers", []):
            c.setdefault("volumeMounts", []).append(
                {"name": token_vol, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
            )
        spec["nodeName"] = node
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        spec["tolerations"] = [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ]
        labels = dict(meta.get("labels") or {})
        pod: JSON = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [owner],
            },
            "spec": spec,
            "status": {},
        }
        if meta.get("annotations"):
            pod["metadata"]["annotations"] = dict(meta["annotations"])
        idx = self.node_index[node]
        self.ip_counter[node] = self.ip_counter.get(node, 1) % 250 + 1
        pod["status"] = {
            "hostIP": f"10.20.{32 + idx // 200}.{10 + idx % 200}",
            "podIP": f"10.244.{idx % 250}.{self.ip_counter[node] + 1}",
            "startTime": rfc3339(born),
        }
        return pod

    def _new_pod(self, rs: JSON, born: float) -> JSON:
        name = f"{rs['metadata']['name']}-{safe_suffix(5, self.rng)}"
        pod = self._pod_from_template(
            copy_json(rs["spec"]["template"]), name, rs["metadata"]["namespace"], self._owner_ref(rs), born
        )
        pod["metadata"]["generateName"] = rs["metadata"]["name"] + "-"
        return pod

    def _register_pod(self, pod: JSON, born: float) -> PodRT:
        uid = pod["metadata"].setdefault("uid", _uuid(self.rng))
        app = (pod["metadata"].get("labels") or {}).get("app") or pod["spec"]["containers"][0]["name"]
        rt = PodRT(uid, pod["metadata"]["namespace"], pod["metadata"]["name"], app, "creating", None)
        rt.cpu = self.rng.uniform(0.15, 0.45) if app == "vcci-api" else self.rng.uniform(0.25, 0.7)
        rt.mem_frac = self.rng.uniform(0.38, 0.55)
        rt.mode = self.mode_for(pod)
        self.runtimes[uid] = rt
        return rt

    def mode_for(self, pod: JSON) -> str:
        labels = pod["metadata"].get("labels") or {}
        containers = pod["spec"].get("containers") or [{}]
        image = containers[0].get("image", "")
        if image in self.bad_images:
            return "baddeploy"
        if labels.get("app") == "vcci-api" and pod["metadata"]["namespace"] == NS:
            if "crashloop" in self.faults:
                return "crash"
            oom = self.faults.get("oomkill")
            if oom is not None:
                lim = container_limit(pod["spec"], "memory")
                if lim is None or lim <= float(oom["limit_bytes"]):
                    return "oom"
        return "ok"

    def _advance(self, rt: PodRT, now: float) -> None:
        """Move one pod to its next kubelet state."""
        pod = self.store.get(PODS, rt.ns, rt.name)
        if pod is None:
            rt.stage = "gone"
            self.runtimes.pop(rt.uid, None)
            return
        if rt.stage == "terminating":
            self._remove_pod(pod, rt)
            return
        cname = pod["spec"]["containers"][0]["name"]
        if rt.stage == "creating":
            self._start_instance(rt, pod, now, first=True)
            return
        if rt.stage == "starting":
            if rt.mode in ("crash", "baddeploy"):
                self._terminate_instance(rt, now, "Error", 1 if rt.mode == "crash" else 3)
                rt.stage = "backoff"
                rt.backoff = min(5.0 * 2 ** max(0, rt.restarts - 1), 20.0)
                self.schedule(rt, now + rt.backoff)
                self.event(
                    pod,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {cname} in pod {rt.name}_{rt.ns}({rt.uid})",
                    "kubelet",
                    now,
                )
                return
            rt.stage = "ready"
            rt.ready_since = now
            if rt.mode == "oom":
                self.schedule(rt, now + self.rng.uniform(12, 25))
            return
        if rt.stage == "ready":
            if rt.mode == "oom":
                self._terminate_instance(rt, now, "OOMKilled", 137)
                node = pod["spec"].get("nodeName", "")
                self.node_event(
                    node,
                    "Warning",
                    "OOMKilling",
                    f"Memory cgroup out of memory: Killed process {self.rng.randint(20000, 90000)} (gunicorn) total-vm:{self.rng.randint(4_300_000, 4_900_000)}kB, anon-rss:{self.rng.randint(4_150_000, 4_190_000)}kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:8432kB oom_score_adj:969",
                    now,
                )
                if rt.restarts >= 2:
                    self.event(
                        pod,
                        "Warning",
                        "BackOff",
                        f"Back-off restarting failed container {cname} in pod {rt.name}_{rt.ns}({rt.uid})",
                        "kubelet",
                        now,
                    )
                self._start_instance(rt, pod, now + 0.3, first=False)
                return
            if rt.mode in ("crash", "baddeploy"):
                self._terminate_instance(rt, now, "Error", 1 if rt.mode == "crash" else 3)
                rt.stage = "backoff"
                rt.backoff = 5.0
                self.schedule(rt, now + rt.backoff)
                self.event(
                    pod,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {cname} in pod {rt.name}_{rt.ns}({rt.uid})",
                    "kubelet",
                    now,
                )
            return
        if rt.stage == "backoff":
            self._start_instance(rt, pod, now, first=False)

    def _start_instance(self, rt: PodRT, pod: JSON, now: float, *, first: bool) -> None:
        c = pod["spec"]["containers"][0]
        if first:
            self.event(
                pod, "Normal", "Pulled", f'Container image "{c["image"]}" already present on machine', "kubelet", now
            )
        else:
            self.event(
                pod, "Normal", "Pulled", f'Container image "{c["image"]}" already present on machine', "kubelet", now
            )
        self.event(pod, "Normal", "Created", f"Created container {c['name']}", "kubelet", now)
        self.event(pod, "Normal", "Started", f"Started container {c['name']}", "kubelet", now)
        number = len(rt.instances) and rt.instances[-1].number + 1
        rt.instances = [
            *[i for i in rt.instances if i.finished_at is not None][-1:],
            _logs.Instance(number, now, rt.mode),
        ]
        rt.container_ids = [*rt.container_ids[-1:], self._cid()]
        rt.stage = "starting"
        rt.started_since = now
        rt.ready_since = None
        if rt.mode in ("crash", "baddeploy"):
            self.schedule(rt, now + CRASH_AFTER)
            if c.get("readinessProbe"):
                ip = pod["status"].get("podIP", "")
                self.event(
                    pod,
                    "Warning",
                    "Unhealthy",
                    f'Readiness probe failed: Get "http://{ip}:8000/health": dial tcp {ip}:8000: connect: connection refused',
                    "kubelet",
                    now,
                )
        else:
            self.schedule(rt, now + READY_DELAY)

    def _terminate_instance(self, rt: PodRT, now: float, reason: str, code: int) -> None:
        cur = rt.current
        if cur is not None and cur.finished_at is None:
            cur.finished_at = now
            cur.reason = reason
            cur.exit_code = code
        rt.restarts += 1
        rt.ready_since = None

    def _pod_status(self, pod: JSON, rt: PodRT, now: float) -> JSON:
        st = dict(pod.get("status") or {})
        c = pod["spec"]["containers"][0]
        image = c.get("image", "")
        created = pod["metadata"].get("creationTimestamp") or rfc3339(now)
        sched = created
        cur = rt.current
        prev = rt.previous
        cs: JSON = {
            "name": c["name"],
            "image": image,
            "imageID": "",
            "restartCount": rt.restarts,
            "ready": False,
            "started": False,
        }
        running = rt.stage in ("starting", "ready") or (
            rt.stage == "terminating" and cur is not None and cur.finished_at is None
        )
        if rt.stage == "creating" or cur is None:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif running:
            cs["state"] = {"running": {"startedAt": rfc3339(cur.started_at)}}
            cs["started"] = True
            cs["ready"] = rt.stage == "ready" or (rt.stage == "terminating" and rt.ready_since is not None)
        elif rt.stage == "backoff" and cur.finished_at is not None:
            cs["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {int(rt.backoff)}s restarting failed container={c['name']} pod={rt.name}_{rt.ns}({rt.uid})",
                }
            }
        else:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        if cur is not None and rt.stage != "creating":
            cs["imageID"] = f"{image.split(':')[0]}@sha256:{_sha(image)}"
            cs["containerID"] = rt.container_ids[-1] if rt.container_ids else self._cid()
        last = cur if (cur is not None and cur.finished_at is not None) else prev
        if rt.stage == "backoff" and cur is not None and cur.finished_at is not None:
            last = cur
        if last is not None and last.finished_at is not None:
            term: JSON = {
                "exitCode": last.exit_code,
                "reason": last.reason,
                "startedAt": rfc3339(last.started_at),
                "finishedAt": rfc3339(last.finished_at),
            }
            if len(rt.container_ids) >= 2:
                term["containerID"] = rt.container_ids[-2]
            cs["lastState"] = {"terminated": term}
        else:
            cs["lastState"] = {}
        cs["volumeMounts"] = [
            {
                "name": vm["name"],
                "mountPath": vm["mountPath"],
                **({"readOnly": True, "recursiveReadOnly": "Disabled"} if vm.get("readOnly") else {}),
            }
            for vm in c.get("volumeMounts") or []
        ]
        ready = bool(cs["ready"])
        ready_t = (
            rfc3339(rt.ready_since)
            if ready and rt.ready_since
            else rfc3339(now if rt.started_since is None else rt.started_since)
        )
        init_t = sched
        started = rt.stage != "creating"
        conds = [
            {
                "type": "PodReadyToStartContainers",
                "status": "True" if started else "False",
                "lastProbeTime": None,
                "lastTransitionTime": rfc3339(rt.current.started_at) if started and rt.current else created,
            },
            {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": init_t},
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastProbeTime": None,
                "lastTransitionTime": ready_t,
            },
            {
                "type": "ContainersReady",
                "status": "True" if ready else "False",
                "lastProbeTime": None,
                "lastTransitionTime": ready_t,
            },
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": sched},
        ]
        if not ready and started:
            for cd in conds[2:4]:
                cd["reason"] = "ContainersNotReady"
                cd["message"] = f"containers with unready status: [{c['name']}]"
        st.update(
            {
                "phase": "Pending" if rt.stage == "creating" else "Running",
                "conditions": conds,
                "containerStatuses": [cs],
                "qosClass": _qos(pod["spec"]),
            }
        )
        st.setdefault("hostIPs", [{"ip": st.get("hostIP", "")}])
        st.setdefault("podIPs", [{"ip": st.get("podIP", "")}])
        st.setdefault("startTime", created)
        return st

    def _write_pod_status(self, rt: PodRT, now: float) -> None:
        pod = self.store.get(PODS, rt.ns, rt.name)
        if pod is None:
            return
        new_status = self._pod_status(pod, rt, now)
        if new_status != pod.get("status"):
            upd = dict(pod)
            upd["status"] = new_status
            self.store.replace(PODS, upd)

    def _remove_pod(self, pod: JSON, rt: PodRT | None) -> None:
        node = pod["spec"].get("nodeName")
        if node in self.node_pods:
            self.node_pods[node] = max(0, self.node_pods[node] - 1)
        self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        uid = pod["metadata"]["uid"]
        self.runtimes.pop(uid, None)
        self.overlays.pop(uid, None)
        if rt is not None:
            rt.stage = "gone"
        self.dirty = True

    def terminate_pod(self, pod: JSON, now: float, *, grace: float | None = None, reason_event: bool = True) -> JSON:
        """Graceful deletion: mark Terminating now, remove after a short grace period.

        Returns the pod as stored with ``deletionTimestamp`` set (what DELETE answers with).
        """
        if pod["metadata"].get("deletionTimestamp"):
            return pod
        upd: JSON = copy_json(pod)
        g = int(pod["spec"].get("terminationGracePeriodSeconds", 30)) if grace is None else int(grace)
        upd["metadata"]["deletionTimestamp"] = rfc3339(now + g)
        upd["metadata"]["deletionGracePeriodSeconds"] = g
        rt = self.runtimes.get(pod["metadata"]["uid"])
        if grace == 0 or rt is None:
            self._remove_pod(upd, rt)
            return upd
        if reason_event:
            self.event(
                pod, "Normal", "Killing", f"Stopping container {pod['spec']['containers'][0]['name']}", "kubelet", now
            )
        rt.stage = "terminating"
        self.schedule(rt, now + TERMINATE_DELAY)
        stored = self.store.replace(PODS, upd)
        self.dirty = True
        return stored

    # ==========================================================================================
    # events
    # ==========================================================================================
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

    # ==========================================================================================
    # controllers
    # ==========================================================================================
    def _reconcile(self, now: float) -> None:
        s = self.store
        pods_by_owner: dict[str, list[JSON]] = {}
        for p in s.iter_objects(PODS):
            o = controller_uid(p)
            if o:
                pods_by_owner.setdefault(o, []).append(p)
        deps = {d["metadata"]["uid"]: d for d in s.objects(DEPLOY)}
        for d in list(deps.values()):
            self._sync_deployment(d, pods_by_owner, now)
        for rs in s.objects(RS):
            owner = controller_uid(rs)
            if owner and owner not in deps:
                s.delete(RS, rs["metadata"]["namespace"], rs["metadata"]["name"])
                for p in pods_by_owner.get(rs["metadata"]["uid"], []):
                    self.terminate_pod(p, now, reason_event=True)
                continue
            self._sync_rs(rs, pods_by_owner.get(rs["metadata"]["uid"], []), now)
        stss = {x["metadata"]["uid"]: x for x in s.objects(STS)}
        for sts in stss.values():
            self._sync_sts(sts, pods_by_owner.get(sts["metadata"]["uid"], []), now)
        rs_uids = (
            {r["metadata"]["uid"] for r in s.objects(RS)}
            | set(stss)
            | {j["metadata"]["uid"] for j in s.objects("batch/jobs")}
        )
        for owner, plist in pods_by_owner.items():
            if owner not in rs_uids:
                for p in plist:
                    self.terminate_pod(p, now)
        # pods re-read after the syncs for fresh statuses
        pods_by_owner = {}
        for p in s.iter_objects(PODS):
            o = controller_uid(p)
            if o:
                pods_by_owner.setdefault(o, []).append(p)
        for rs in s.objects(RS):
            self._rs_status(rs, pods_by_owner.get(rs["metadata"]["uid"], []))
        for d in s.objects(DEPLOY):
            self._deployment_status(d, pods_by_owner, now)
        for sts in s.objects(STS):
            self._sts_status(sts, pods_by_owner.get(sts["metadata"]["uid"], []))
        self._sync_pvcs(now)

    def _owned_rs(self, d: JSON) -> list[JSON]:
        uid = d["metadata"]["uid"]
        return [r for r in self.store.objects(RS, d["metadata"]["namespace"]) if controller_uid(r) == uid]

    @staticmethod
    def _surge(d: JSON) -> tuple[int, int]:
        desired = int(d["spec"].get("replicas", 1))
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}

        def val(v: Any, up: bool) -> int:
            if isinstance(v, str) and v.endswith("%"):
                x = desired * int(v[:-1]) / 100
                return math.ceil(x) if up else math.floor(x)
            return int(v)

        surge = val(ru.get("maxSurge", "25%"), True)
        unavail = val(ru.get("maxUnavailable", "25%"), False)
        if surge == 0 and unavail == 0:
            unavail = 1
        return surge, unavail

    def _find_new_rs(self, d: JSON, owned: list[JSON]) -> JSON | None:
        want = strip_hash(d["spec"]["template"])
        for r in sorted(owned, key=lambda x: x["metadata"].get("creationTimestamp", "")):
            if strip_hash(r["spec"]["template"]) == want:
                return r
        return None

    def _sync_deployment(self, d: JSON, pods_by_owner: dict[str, list[JSON]], now: float) -> None:
        s = self.store
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        owned = self._owned_rs(d)
        new = self._find_new_rs(d, owned)
        max_rev = max((revision_of(r) for r in owned), default=0)
        dep_ann = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in SKIP_ANNOTATIONS}
        desired = int(d["spec"].get("replicas", 1))
        surge, unavail = self._surge(d)
        if new is None:
            tmpl = copy_json(d["spec"]["template"])
            h = template_hash(tmpl)
            tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
            sel = copy_json(d["spec"]["selector"])
            sel.setdefault("matchLabels", {})["pod-template-hash"] = h
            rs: JSON = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-{h}",
                    "namespace": ns,
                    "labels": {**(tmpl["metadata"].get("labels") or {})},
                    "annotations": {
                        **dep_ann,
                        "deployment.kubernetes.io/desired-replicas": str(desired),
                        "deployment.kubernetes.io/max-replicas": str(desired + surge),
                        REVISION: str(max_rev + 1),
                    },
                    "ownerReferences": [self._owner_ref(d)],
                },
                "spec": {"replicas": 0, "selector": sel, "template": tmpl},
                "status": {"replicas": 0},
            }
            if s.get(RS, ns, rs["metadata"]["name"]) is not None:
                rs["metadata"]["name"] = f"{name}-{h[:8]}{safe_suffix(2, self.rng)}"
            new = s.create(RS, rs, now=now)
            owned.append(new)
            self._progress[d["metadata"]["uid"]] = (None, now)
        else:
            ann = dict(new["metadata"].get("annotations") or {})
            want = dict(ann)
            if revision_of(new) < max_rev:
                old_rev = ann.get(REVISION, "")
                hist = [x for x in ann.get("deployment.kubernetes.io/revision-history", "").split(",") if x]
                want["deployment.kubernetes.io/revision-history"] = ",".join([*hist, old_rev])
                want[REVISION] = str(max_rev + 1)
                self._progress[d["metadata"]["uid"]] = (None, now)
            for k, v in dep_ann.items():
                want[k] = v
            if want != ann:
                upd = copy_json(new)
                upd["metadata"]["annotations"] = want
                new = s.replace(RS, upd)
        rev = new["metadata"]["annotations"][REVISION]
        dann = d["metadata"].get("annotations") or {}
        if dann.get(REVISION) != rev:
            upd = copy_json(d)
            upd["metadata"].setdefault("annotations", {})[REVISION] = rev
            d = s.replace(DEPLOY, upd)
        self._cleanup_history(d, owned, new, pods_by_owner)
        if d["spec"].get("paused"):
            return
        # --- rolling update ------------------------------------------------------------------
        olds = [r for r in owned if r["metadata"]["uid"] != new["metadata"]["uid"]]

        def ready_count(r: JSON) -> int:
            return sum(
                1
                for p in pods_by_owner.get(r["metadata"]["uid"], [])
                if not p["metadata"].get("deletionTimestamp") and _pod_ready(p)
            )

        new_replicas = int(new["spec"].get("replicas", 0))
        old_total = sum(int(r["spec"].get("replicas", 0)) for r in olds)
        if not any(int(r["spec"].get("replicas", 0)) for r in olds):
            target = desired
        else:
            allowed = desired + surge - (new_replicas + old_total)
            target = min(desired, new_replicas + max(0, allowed))
        if new_replicas > desired:
            target = desired
        if target != new_replicas:
            self._scale_rs(d, new, target, now)
        # scale down old replica sets, keeping at least desired - maxUnavailable available
        if olds:
            min_avail = desired - unavail
            avail = ready_count(new) + sum(ready_count(r) for r in olds)
            new_r = int((s.get(RS, ns, new["metadata"]["name"]) or new)["spec"].get("replicas", 0))
            total = new_r + old_total
            for r in sorted(olds, key=lambda x: revision_of(x)):
                reps = int(r["spec"].get("replicas", 0))
                if reps == 0:
                    continue
                unhealthy = max(0, reps - ready_count(r))
                # unhealthy old pods go first: they do not count as available
                can = unhealthy + max(0, avail - min_avail)
                can = min(can, max(0, total - desired + (desired - new_r)) if new_r < desired else reps)
                down = min(reps, can)
                if down > 0:
                    self._scale_rs(d, r, reps - down, now)
                    avail -= max(0, down - unhealthy)
                    total -= down

    def _cleanup_history(self, d: JSON, owned: list[JSON], new: JSON, pods_by_owner: dict[str, list[JSON]]) -> None:
        """Keep at most revisionHistoryLimit old ReplicaSets that are scaled to zero (oldest go first)."""
        limit = int(d["spec"].get("revisionHistoryLimit", 10))
        idle = [
            r
            for r in owned
            if r["metadata"]["uid"] != new["metadata"]["uid"]
            and int(r["spec"].get("replicas", 0)) == 0
            and not pods_by_owner.get(r["metadata"]["uid"])
        ]
        for r in sorted(idle, key=revision_of)[: max(0, len(idle) - limit)]:
            self.store.delete(RS, r["metadata"]["namespace"], r["metadata"]["name"])
            owned.remove(r)

    def _heartbeat(self, now: float) -> None:
        """The kubelets' node leases (every 10 s) and Ready heartbeats (every minute)."""
        for lease in self.store.objects("coordination.k8s.io/leases", "kube-node-lease"):
            upd = copy_json(lease)
            upd["spec"]["renewTime"] = rfc3339_micro(now)
            self.store.replace("coordination.k8s.io/leases", upd)
        if now - self._last_node_heartbeat < 60:
            return
        self._last_node_heartbeat = now
        for node in self.store.objects(NODES):
            upd = copy_json(node)
            for c in upd["status"].get("conditions") or []:
                c["lastHeartbeatTime"] = rfc3339(now)
            self.store.replace(NODES, upd)

    def _scale_rs(self, d: JSON | None, rs: JSON, replicas: int, now: float) -> None:
        cur = self.store.get(RS, rs["metadata"]["namespace"], rs["metadata"]["name"])
        if cur is None:
            return
        old = int(cur["spec"].get("replicas", 0))
        if old == replicas:
            return
        upd = copy_json(cur)
        upd["spec"]["replicas"] = replicas
        upd["metadata"]["generation"] = int(cur["metadata"].get("generation", 1)) + 1
        if d is not None:
            upd["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = str(
                d["spec"].get("replicas", 1)
            )
        self.store.replace(RS, upd)
        if d is not None:
            verb = "up" if replicas > old else "down"
            self.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {replicas}",
                "deployment-controller",
                now,
            )

    def _sync_rs(self, rs: JSON, pods: list[JSON], now: float) -> None:
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        want = int(rs["spec"].get("replicas", 0))
        if len(active) < want:
            for _ in range(want - len(active)):
                pod = self._new_pod(rs, now)
                rt = self._register_pod(pod, now)
                pod["status"] = self._pod_status(pod, rt, now)
                self.store.create(PODS, pod, now=now)
                self.schedule(rt, now + CREATE_DELAY)
                self.event(
                    rs,
                    "Normal",
                    "SuccessfulCreate",
                    f"Created pod: {pod['metadata']['name']}",
                    "replicaset-controller",
                    now,
                )
                self.event(
                    pod,
                    "Normal",
                    "Scheduled",
                    f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to {pod['spec']['nodeName']}",
                    "default-scheduler",
                    now,
                )
        elif len(active) > want:

            def rank(p: JSON) -> tuple[int, str]:
                return (1 if _pod_ready(p) else 0, "~" + p["metadata"].get("creationTimestamp", ""))

            victims = sorted(
                active, key=lambda p: (rank(p)[0], p["metadata"].get("creationTimestamp", "")), reverse=False
            )
            # not-ready first, then the newest
            victims = sorted(active, key=lambda p: (1 if _pod_ready(p) else 0, _neg_time(p)))
            for p in victims[: len(active) - want]:
                self.terminate_pod(p, now)
                self.event(
                    rs,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {p['metadata']['name']}",
                    "replicaset-controller",
                    now,
                )

    def _rs_status(self, rs: JSON, pods: list[JSON]) -> None:
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in active if _pod_ready(p))
        st: JSON = {
            "replicas": len(active),
            "fullyLabeledReplicas": len(active),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if len(active) == 0:
            st = {"replicas": 0, "observedGeneration": rs["metadata"].get("generation", 1)}
        else:
            st = {k: v for k, v in st.items() if v != 0 or k in ("replicas",)}
        if st != rs.get("status"):
            upd = dict(rs)
            upd["status"] = st
            self.store.replace(RS, upd)

    def _deployment_status(self, d: JSON, pods_by_owner: dict[str, list[JSON]], now: float) -> None:
        owned = self._owned_rs(d)
        new = self._find_new_rs(d, owned)
        desired = int(d["spec"].get("replicas", 1))
        _, unavail = self._surge(d)
        total = ready = updated = 0
        for r in owned:
            for p in pods_by_owner.get(r["metadata"]["uid"], []):
                if p["metadata"].get("deletionTimestamp"):
                    continue
                total += 1
                if _pod_ready(p):
                    ready += 1
                if new is not None and r["metadata"]["uid"] == new["metadata"]["uid"]:
                    updated += 1
        new_ready = 0
        if new is not None:
            new_ready = sum(
                1
                for p in pods_by_owner.get(new["metadata"]["uid"], [])
                if not p["metadata"].get("deletionTimestamp") and _pod_ready(p)
            )
        old = d.get("status") or {}
        conds = {c["type"]: c for c in old.get("conditions") or []}
        now_s = rfc3339(now)
        rs_name = new["metadata"]["name"] if new else d["metadata"]["name"]
        complete = updated == desired and total == desired and ready >= desired and new_ready >= desired
        marker = (rs_name, updated, new_ready, total)
        prev = self._progress.get(d["metadata"]["uid"])
        if prev is None or prev[0] != marker:
            self._progress[d["metadata"]["uid"]] = (marker, now)
            last_progress = now
        else:
            last_progress = prev[1]

        def cond(ctype: str, status: str, reason: str, message: str, touch: bool) -> JSON:
            c = conds.get(ctype)
            if c and c["status"] == status and c["reason"] == reason and not touch:
                return dict(c)
            trans = c["lastTransitionTime"] if c and c["status"] == status else now_s
            return {
                "type": ctype,
                "status": status,
                "lastUpdateTime": now_s,
                "lastTransitionTime": trans,
                "reason": reason,
                "message": message,
            }

        avail_ok = ready >= desired - unavail
        available = cond(
            "Available",
            "True" if avail_ok else "False",
            "MinimumReplicasAvailable" if avail_ok else "MinimumReplicasUnavailable",
            "Deployment has minimum availability." if avail_ok else "Deployment does not have minimum availability.",
            False,
        )
        deadline = float(d["spec"].get("progressDeadlineSeconds", 600))
        if complete:
            progressing = cond(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                False,
            )
        elif now - last_progress > deadline:
            progressing = cond(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                False,
            )
        else:
            c = conds.get("Progressing")
            touch = c is None or c.get("reason") != "ReplicaSetUpdated" or (prev is not None and prev[0] != marker)
            progressing = cond(
                "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', touch
            )
        st: JSON = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        if desired - ready > 0:
            st["unavailableReplicas"] = max(0, total - ready) if total > desired else desired - ready
        st = {k: v for k, v in st.items() if v != 0 or k == "observedGeneration"}
        st["conditions"] = [available, progressing]
        if st != old:
            upd = dict(d)
            upd["status"] = st
            self.store.replace(DEPLOY, upd)

    def _sync_sts(self, sts: JSON, pods: list[JSON], now: float) -> None:
        want = int(sts["spec"].get("replicas", 1))
        have = {p["metadata"]["name"] for p in pods}
        for i in range(want):
            name = f"{sts['metadata']['name']}-{i}"
            if name not in have:
                self._create_sts_pod(sts, i, now, now, ready=False)
        for p in pods:
            try:
                idx = int(p["metadata"]["name"].rsplit("-", 1)[1])
            except (ValueError, IndexError):
                continue
            if idx >= want and not p["metadata"].get("deletionTimestamp"):
                self.terminate_pod(p, now)

    def _sts_status(self, sts: JSON, pods: list[JSON]) -> None:
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in active if _pod_ready(p))
        st = dict(sts.get("status") or {})
        st.update(
            {
                "replicas": len(active),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "currentReplicas": len(active),
                "updatedReplicas": len(active),
                "observedGeneration": sts["metadata"].get("generation", 1),
            }
        )
        if st != sts.get("status"):
            upd = dict(sts)
            upd["status"] = st
            self.store.replace(STS, upd)

    def _sync_pvcs(self, now: float) -> None:
        for pvc in self.store.objects(PVCS):
            try:
                want = parse_quantity(pvc["spec"]["resources"]["requests"]["storage"])
                have = parse_quantity((pvc.get("status") or {}).get("capacity", {}).get("storage", "0"))
            except (KeyError, ValueError):
                continue
            if want > have:
                upd = copy_json(pvc)
                upd["status"]["capacity"] = {"storage": pvc["spec"]["resources"]["requests"]["storage"]}
                upd["status"].pop("conditions", None)
                self.store.replace(PVCS, upd)
                vol = self.volumes.get((pvc["metadata"]["namespace"], pvc["metadata"]["name"]))
                if vol is not None:
                    vol.capacity = int(want)
                pv = self.store.get("/persistentvolumes", "", pvc["spec"].get("volumeName", ""))
                if pv is not None:
                    pvu = copy_json(pv)
                    pvu["spec"]["capacity"] = {"storage": pvc["spec"]["resources"]["requests"]["storage"]}
                    self.store.replace("/persistentvolumes", pvu)
                self.event(
                    pvc,
                    "Normal",
                    "FileSystemResizeSuccessful",
                    f'MountVolume.NodeExpandVolume succeeded for volume "{pvc["spec"].get("volumeName", "")}"',
                    "kubelet",
                    now,
                )

    # ==========================================================================================
    # faults
    # ==========================================================================================
    def fault_state(self) -> JSON:
        return {
            "faults": {
                name: {
                    "active": name in self.faults,
                    **({k: v for k, v in self.faults[name].items()} if name in self.faults else {}),
                }
                for name in FAULTS
            },
            "available": list(FAULTS),
        }

    def _api_pods(self) -> list[JSON]:
        return [p for p in self.store.objects(PODS, NS) if (p["metadata"].get("labels") or {}).get("app") == "vcci-api"]

    def _reevaluate(self, now: float, *, stagger: float = 2.0) -> None:
        for p in self.store.objects(PODS):
            rt = self.runtimes.get(p["metadata"]["uid"])
            if rt is None or rt.stage in ("terminating", "gone"):
                continue
            mode = self.mode_for(p)
            if mode == rt.mode:
                continue
            rt.mode = mode
            if rt.current is not None and rt.current.finished_at is None:
                rt.current.mode = mode if mode != "ok" else rt.current.mode
            if mode in ("crash", "baddeploy", "oom") and rt.stage == "ready":
                self.schedule(rt, now + self.rng.uniform(0.2, stagger))
            elif mode == "ok" and rt.stage == "backoff":
                self.schedule(rt, now + 0.2)

    def inject(self, name: str, now: float) -> JSON:
        if name not in FAULTS:
            raise KeyError(name)
        if name in self.faults:
            return self.fault_state()
        if name == "oomkill":
            dep = self.store.get(DEPLOY, NS, "vcci-api")
            lim = container_limit(dep["spec"]["template"]["spec"], "memory") if dep else None
            self.faults[name] = {"since": rfc3339(now), "limit_bytes": int(lim or 4 * GiB)}
            self._reevaluate(now, stagger=1.5)
        elif name == "crashloop":
            self.faults[name] = {"since": rfc3339(now)}
            self._reevaluate(now, stagger=1.0)
        elif name == "bad-deploy":
            dep = self.store.get(DEPLOY, NS, "vcci-api")
            if dep is None:
                raise LookupError("deployment vcci-api is missing; POST /_lab/reset first")
            upd = copy_json(dep)
            c = upd["spec"]["template"]["spec"]["containers"][0]
            image = f"{API_IMAGE}:{BAD_RELEASE}"
            c["image"] = image
            env = [e for e in c.get("env") or [] if e.get("name") != "EMISSIONS_SCHEMA_VERSION"]
            env.append({"name": "EMISSIONS_SCHEMA_VERSION", "value": "0042"})
            c["env"] = env
            upd["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = (
                f"Deploy {BAD_RELEASE} (release/2.15, CHG-1974)"
            )
            upd["metadata"]["generation"] = int(dep["metadata"].get("generation", 1)) + 1
            self.bad_images.add(image)
            self.faults[name] = {
                "since": rfc3339(now),
                "image": image,
                "previous_image": dep["spec"]["template"]["spec"]["containers"][0]["image"],
            }
            self.store.replace(DEPLOY, upd)
        elif name == "disk-full":
            self.faults[name] = {"since": rfc3339(now)}
            vol = self.volumes.get((NS, "vcci-api-data"))
            if vol is not None:
                target = int(vol.capacity * 0.972)
                missing = max(0, target - vol.used)
                days = list(range(8, 31))
                each = missing // len(days)
                for d in days:
                    stamp = time.strftime("%Y-%m-%d", time.gmtime(now - d * 86400))
                    path = f"/var/log/vcci/api-{stamp}.log"
                    vol.files[path] = FileEntry(each, now - d * 86400 + 3600)
                    self._disk_files.append(("pvc", path))
            for ov in self.overlays.values():
                self._fill_tmp(ov, now)
        self.dirty = True
        self.store.changed.set()
        return self.fault_state()

    def _fill_tmp(self, vol: Volume, now: float) -> None:
        for i, t in enumerate(("acme-corp", "globex", "initech")):
            vol.files[f"/tmp/export-{t}-scope3-{i}.csv"] = FileEntry(
                int(1.4 * GiB) + i * 37 * MiB, now - 3600 * (i + 2)
            )
        vol.files["/tmp/pip-unpack-q1x8/wheel.whl"] = FileEntry(84 * MiB, now - 86400 * 3)

    def heal(self, name: str, now: float) -> JSON:
        if name not in FAULTS:
            raise KeyError(name)
        fault = self.faults.pop(name, None)
        if fault is None:
            return self.fault_state()
        if name in ("oomkill", "crashloop"):
            affected = "oom" if name == "oomkill" else "crash"
            for p in self._api_pods():
                rt = self.runtimes.get(p["metadata"]["uid"])
                if rt is None:
                    continue
                was_hit = rt.mode == affected or any(
                    i.reason in (("OOMKilled",) if affected == "oom" else ("Error",)) for i in rt.instances
                )
                rt.mode = self.mode_for(p)
                if was_hit and not p["metadata"].get("deletionTimestamp"):
                    # the fix rolls the affected pods: they come back fresh, without the restarts
                    self.terminate_pod(p, now, grace=0)
        elif name == "bad-deploy":
            image = fault.get("image", "")
            self.bad_images.discard(image)
            dep = self.store.get(DEPLOY, NS, "vcci-api")
            if dep is not None and dep["spec"]["template"]["spec"]["containers"][0].get("image") == image:
                self.rollback("vcci-api", now)
            self._reevaluate(now)
        elif name == "disk-full":
            vol = self.volumes.get((NS, "vcci-api-data"))
            for where, path in self._disk_files:
                if where == "pvc" and vol is not None:
                    vol.files.pop(path, None)
            self._disk_files.clear()
            for ov in self.overlays.values():
                for fp in [fp for fp in ov.files if fp.startswith(("/tmp/export-", "/tmp/pip-unpack"))]:
                    del ov.files[fp]
        self.dirty = True
        self.store.changed.set()
        return self.fault_state()

    def rollback(self, name: str, now: float) -> None:
        """What ``kubectl rollout undo`` does, server side: restore the previous revision's template."""
        dep = self.store.get(DEPLOY, NS, name)
        if dep is None:
            return
        owned = sorted(self._owned_rs(dep), key=revision_of)
        cur = self._find_new_rs(dep, owned)
        prev = [r for r in owned if cur is None or r["metadata"]["uid"] != cur["metadata"]["uid"]]
        if not prev:
            return
        target = prev[-1]
        upd = copy_json(dep)
        tmpl = copy_json(target["spec"]["template"])
        tmpl["metadata"]["labels"].pop("pod-template-hash", None)
        upd["spec"]["template"] = tmpl
        anns = {k: v for k, v in (dep["metadata"].get("annotations") or {}).items() if k in SKIP_ANNOTATIONS}
        anns.update(
            {k: v for k, v in (target["metadata"].get("annotations") or {}).items() if k not in SKIP_ANNOTATIONS}
        )
        upd["metadata"]["annotations"] = anns
        upd["metadata"]["generation"] = int(dep["metadata"].get("generation", 1)) + 1
        self.store.replace(DEPLOY, upd)

    # ==========================================================================================
    # metrics
    # ==========================================================================================
    def usage(self, pod: JSON, now: float) -> tuple[float, float] | None:
        """(cpu cores, memory bytes) of a pod's first container, or None if it is not running."""
        rt = self.runtimes.get(pod["metadata"]["uid"])
        if rt is None or rt.stage not in ("starting", "ready", "terminating") or rt.current is None:
            return None
        limit = container_limit(pod["spec"], "memory") or 4 * GiB
        age = now - rt.current.started_at
        wobble = 0.5 + 0.5 * math.sin(now / 37.0 + hash(rt.uid) % 100)
        if rt.mode == "oom":
            frac = min(0.985, 0.76 + 0.23 * min(1.0, age / 12.0))
            cpu = rt.cpu * 1.6 + 0.1 * wobble
        elif rt.mode in ("crash", "baddeploy"):
            frac = 0.04
            cpu = 0.05
        else:
            frac = rt.mem_frac + 0.03 * wobble
            cpu = rt.cpu * (0.85 + 0.3 * wobble)
        return cpu, limit * frac

    def cpu_seconds(self, pod: JSON, now: float) -> float:
        rt = self.runtimes.get(pod["metadata"]["uid"])
        if rt is None or rt.current is None:
            return 0.0
        u = self.usage(pod, now)
        return (u[0] if u else rt.cpu) * max(0.0, now - rt.current.started_at)


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


def selector_for(obj: JSON) -> str:
    return selector_string(obj.get("spec", {}).get("selector"))


__all__ = ["FAULTS", "World", "selector_for", "selector_from_match_labels"]

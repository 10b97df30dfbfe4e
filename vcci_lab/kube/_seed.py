# ruff: noqa: E501  (object literals read best on one line)
"""The initial cluster: namespaces, nodes, configuration, the vcci-api and vcci-worker deployments
with their rollout history, monitoring, and the log volume's files. ``World.build`` seeds it.
"""

from __future__ import annotations

import math
import time

from vcci_lab.kube import _logs
from vcci_lab.kube._common import (
    API,
    API_IMAGE,
    APP_LABEL,
    CHANGE_CAUSE,
    DATA_PVC,
    DEPLOY,
    FLAVOUR,
    NODES,
    NS,
    PODS,
    PVCS,
    REVISION,
    RS,
    STS,
    WORKER,
    WORKER_IMAGE,
    _hex,
    app_labels,
    app_value,
    container_name,
)
from vcci_lab.kube._fs import FileEntry, GiB, MiB, Volume
from vcci_lab.kube._pods import Pods
from vcci_lab.kube._util import JSON, parse_quantity, rfc3339, rfc3339_micro, template_hash

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


class Seed(Pods):
    """Builds the cluster the lab starts from (and returns to on reset)."""

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
        self._make_deployment(API, api_n, now, API_HISTORY)
        self._make_deployment(WORKER, worker_n, now, tuple((t, c, h, {}) for t, c, h in WORKER_HISTORY))
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
        for name in (API, WORKER):
            s.create(
                "/serviceaccounts",
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": NS, "labels": {APP_LABEL: app_value(name)}},
                },
                now=created,
            )
        s.create(
            "/configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": FLAVOUR.config_configmap, "namespace": NS, "labels": {APP_LABEL: FLAVOUR.api_app}},
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
                    "name": FLAVOUR.maintenance_configmap,
                    "namespace": NS,
                    "labels": {APP_LABEL: FLAVOUR.api_app, "app.kubernetes.io/part-of": "vcci"},
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
                "metadata": {"name": FLAVOUR.secret, "namespace": NS, "labels": {APP_LABEL: FLAVOUR.api_app}},
                "type": "Opaque",
                "data": {
                    "database-url": "cG9zdGdyZXNxbDovL3ZjY2lfYXBwOioqKkB2Y2NpLXBvc3RncmVzOjU0MzIvdmNjaV9wcm9kdWN0aW9u",
                    "redis-url": "cmVkaXM6Ly92Y2NpLXJlZGlzOjYzNzkvMA==",
                },
            },
            now=created,
        )
        for name, port, ip in (
            (API, 8000, "10.100.41.12"),
            ("vcci-postgres", 5432, "10.100.23.7"),
            ("vcci-redis", 6379, "10.100.9.88"),
        ):
            s.create(
                "/services",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": NS, "labels": {APP_LABEL: app_value(name)}},
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
                        "selector": {APP_LABEL: app_value(name)},
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
                    "name": FLAVOUR.ingress,
                    "namespace": NS,
                    "labels": {APP_LABEL: FLAVOUR.api_app},
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
                    "tls": [{"hosts": ["api.vcci.example.com"], "secretName": f"{API}-tls"}],
                    "rules": [
                        {
                            "host": "api.vcci.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": API, "port": {"number": 80}}},
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
                    "name": DATA_PVC,
                    "namespace": NS,
                    "labels": {APP_LABEL: FLAVOUR.api_app},
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
                        "name": DATA_PVC,
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
        image = f"{API_IMAGE if app == API else WORKER_IMAGE}:{tag}"
        env = [
            {"name": "DJANGO_SETTINGS_MODULE", "value": "vcci.settings.production"},
            {"name": "DATABASE_POOL_SIZE", "value": env_over.get("DATABASE_POOL_SIZE", "20")},
            {"name": "CIRCUIT_BREAKER_ENABLED", "value": "false"},
            {"name": "USE_CACHED_DATA", "value": "false"},
            {"name": "MEMORY_PROFILING_ENABLED", "value": "false"},
            {
                "name": "DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": FLAVOUR.secret, "key": "database-url"}},
            },
            {"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": FLAVOUR.secret, "key": "redis-url"}}},
        ]
        container: JSON = {
            "name": container_name(app),
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "env": env,
            "envFrom": [{"configMapRef": {"name": FLAVOUR.config_configmap}}],
            "resources": {"limits": {"cpu": "2", "memory": "4Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
        volumes: list[JSON] = []
        if app == API:
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
            volumes = [{"name": "logs", "persistentVolumeClaim": {"claimName": DATA_PVC}}]
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
                "labels": app_labels(app),
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8000"} if app == API else {},
            },
            "spec": spec,
        }

    def _make_deployment(
        self, name: str, replicas: int, now: float, history: tuple[tuple[str, str, float, dict[str, str]], ...]
    ) -> None:
        s = self.store
        created = now - 3600 * history[0][2] - 600
        labels = app_labels(name)
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
                "selector": {"matchLabels": {APP_LABEL: app_value(name)}},
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
                    "selector": {"matchLabels": {APP_LABEL: app_value(name), "pod-template-hash": h}},
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
            if name == WORKER and i == 1:
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

    def _make_fs(self, now: float) -> None:
        pvc = self.store.get(PVCS, NS, DATA_PVC)
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
        self.volumes[(NS, DATA_PVC)] = vol

# ruff: noqa: E501, S108  (object literals read best on one line; /tmp paths are simulated)
"""The kubelet and metrics-server of the emulated cluster: pods from templates, their lifecycle
(ContainerCreating -> Running -> Ready, crash loops and OOM kills while a fault says so), their status,
container filesystems and resource usage.
"""

from __future__ import annotations

import math

from vcci_lab.kube import _logs
from vcci_lab.kube._common import (
    API,
    CRASH_AFTER,
    CREATE_DELAY,
    NS,
    PODS,
    READY_DELAY,
    TERMINATE_DELAY,
    PodRT,
    _qos,
    _sha,
    _uuid,
    container_limit,
    deployment_of,
    is_api_pod,
    pod_conditions,
)
from vcci_lab.kube._fs import ContainerFS, FileEntry, GiB, MiB, Mount, Volume
from vcci_lab.kube._jobs import Jobs, is_job_pod, job_of
from vcci_lab.kube._store import copy_json
from vcci_lab.kube._util import JSON, rfc3339, safe_suffix


class Pods(Jobs):
    """Pods: created from templates, moved through their states by the controller's schedule."""

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

    def overlay(self, uid: str, now: float) -> Volume:
        vol = self.overlays.get(uid)
        if vol is None:
            vol = Volume("overlay", 80 * GiB, 14 * GiB + self.rng.randint(0, 3 * 1024) * MiB)
            vol.files["/tmp/gunicorn-heartbeat"] = FileEntry(0, now - 1)
            vol.files["/tmp/prometheus_multiproc/counter_8.db"] = FileEntry(1 * MiB, now - 3)
            vol.files["/app/manage.py"] = FileEntry(664, now - 86400)
            if "disk-full" in self.faults:
                fill_tmp(vol, now)
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

    def _pick_node(self) -> str:
        return min(self.node_pods, key=lambda n: (self.node_pods[n], self.node_index[n]))

    def _pod_from_template(
        self, tmpl: JSON, name: str, ns: str, owner: JSON, born: float, node: str | None = None
    ) -> JSON:
        node = node or self._pick_node()
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
        pod["status"] = self._bind_status(node, born)
        return pod

    def _bind_status(self, node: str, born: float) -> JSON:
        """A pod's first status on the node it was scheduled to: its host and pod IPs."""
        idx = self.node_index[node]
        self.ip_counter[node] = self.ip_counter.get(node, 1) % 250 + 1
        return {
            "hostIP": f"10.20.{32 + idx // 200}.{10 + idx % 200}",
            "podIP": f"10.244.{idx % 250}.{self.ip_counter[node] + 1}",
            "startTime": rfc3339(born),
        }

    def _new_pod(self, rs: JSON, born: float) -> JSON:
        name = f"{rs['metadata']['name']}-{safe_suffix(5, self.rng)}"
        pod = self._pod_from_template(
            copy_json(rs["spec"]["template"]), name, rs["metadata"]["namespace"], self._owner_ref(rs), born
        )
        pod["metadata"]["generateName"] = rs["metadata"]["name"] + "-"
        return pod

    def _register_pod(self, pod: JSON, born: float) -> PodRT:
        uid = pod["metadata"].setdefault("uid", _uuid(self.rng))
        app = deployment_of(pod) or pod["spec"]["containers"][0]["name"]
        rt = PodRT(uid, pod["metadata"]["namespace"], pod["metadata"]["name"], app, "creating", None)
        rt.cpu = self.rng.uniform(0.15, 0.45) if app == API else self.rng.uniform(0.25, 0.7)
        rt.mem_frac = self.rng.uniform(0.38, 0.55)
        rt.mode = self.mode_for(pod)
        rt.local = is_job_pod(pod)
        self.runtimes[uid] = rt
        return rt

    def mode_for(self, pod: JSON) -> str:
        containers = pod["spec"].get("containers") or [{}]
        image = containers[0].get("image", "")
        if image in self.bad_images:
            return "baddeploy"
        if is_api_pod(pod) and pod["metadata"]["namespace"] == NS:
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
            if rt.local:
                self._forget_local(rt)
            return
        if rt.local:
            self._advance_local(rt, pod, now)
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
        if rt.local:
            return self._local_pod_status(pod, rt, now)
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
        conds = pod_conditions(
            started=started,
            started_t=rfc3339(rt.current.started_at) if started and rt.current else created,
            initialized_t=init_t,
            ready=ready,
            ready_t=ready_t,
            scheduled_t=sched,
        )
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
        job_uid = job_of(pod)
        if job_uid is not None:
            self._account(job_uid, pod, removed=True)
        if rt is not None and rt.local:
            self._forget_local(rt)
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
        if rt is not None and rt.local:
            if reason_event and rt.proc is not None and rt.proc.poll() is None:
                self.event(
                    pod,
                    "Normal",
                    "Killing",
                    f"Stopping container {pod['spec']['containers'][0]['name']}",
                    "kubelet",
                    now,
                )
            self._terminate_local(rt, float(g), now)
            if grace == 0:
                if rt.proc is not None:
                    rt.proc.wait(1.0)  # SIGKILLed: gone within milliseconds
                self._finish_instance(rt)
                upd["status"] = self._pod_status(upd, rt, now)
                self._remove_pod(upd, rt)
                return upd
            upd["status"] = self._pod_status(upd, rt, now)
            stored = self.store.replace(PODS, upd)
            self.dirty = True
            return stored
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

    def usage(self, pod: JSON, now: float) -> tuple[float, float] | None:
        """(cpu cores, memory bytes) of a pod's first container, or None if it is not running."""
        rt = self.runtimes.get(pod["metadata"]["uid"])
        if rt is not None and rt.local:
            return self._local_usage(rt, now)
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
        if rt is not None and rt.local:
            return rt.cpu_total
        if rt is None or rt.current is None:
            return 0.0
        u = self.usage(pod, now)
        return (u[0] if u else rt.cpu) * max(0.0, now - rt.current.started_at)


def fill_tmp(vol: Volume, now: float) -> None:
    """What the ``disk-full`` fault leaves in a pod's ``/tmp`` (its overlay volume)."""
    for i, t in enumerate(("acme-corp", "globex", "initech")):
        vol.files[f"/tmp/export-{t}-scope3-{i}.csv"] = FileEntry(int(1.4 * GiB) + i * 37 * MiB, now - 3600 * (i + 2))
    vol.files["/tmp/pip-unpack-q1x8/wheel.whl"] = FileEntry(84 * MiB, now - 86400 * 3)

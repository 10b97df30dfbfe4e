# ruff: noqa: E501  (Status messages are the API server's exact wording)
"""The APIs beside the resources: metrics.k8s.io, the authentication and authorization reviews, and the
lab's own ``/_lab`` endpoints (faults, reset, Prometheus metrics; contract B).
"""

from __future__ import annotations

import time

from vcci_lab.kube._handler import READ_VERBS, USERS, HandlerBase
from vcci_lab.kube._store import Resource
from vcci_lab.kube._util import ApiError, format_cpu_nanos, format_mem_ki, not_found, rfc3339, status_body
from vcci_lab.kube._world import FAULTS, PODS, container_limit


class Extras(HandlerBase):
    """metrics.k8s.io, SelfSubjectReview / SelfSubjectAccessReview and ``/_lab``."""

    def _metrics_api(self, res: Resource, ns: str | None, name: str | None) -> None:
        store, world = self.emu.store, self.emu.world
        now = time.time()
        ts = rfc3339(now - 7)
        match = self._matcher(res)
        with store.lock:
            if res.plural == "pods":
                pods = [p for p in store.objects(PODS, ns) if match(p)]
                if name is not None:
                    pods = [p for p in pods if p["metadata"]["name"] == name]
                items = []
                for p in sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
                    u = world.usage(p, now)
                    if u is None:
                        continue
                    items.append(
                        {
                            "metadata": {
                                "name": p["metadata"]["name"],
                                "namespace": p["metadata"]["namespace"],
                                "creationTimestamp": rfc3339(now),
                                "labels": p["metadata"].get("labels") or {},
                            },
                            "timestamp": ts,
                            "window": "15.012s",
                            "containers": [
                                {
                                    "name": p["spec"]["containers"][0]["name"],
                                    "usage": {"cpu": format_cpu_nanos(u[0]), "memory": format_mem_ki(u[1])},
                                }
                            ],
                        }
                    )
                if name is not None:
                    if not items:
                        raise not_found("pods", "metrics.k8s.io", name)
                    self.send_json(200, {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1", **items[0]})
                    return
                self.send_json(
                    200,
                    {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items},
                )
                return
            per_node: dict[str, list[float]] = {}
            for p in store.iter_objects(PODS):
                u = world.usage(p, now)
                if u is None:
                    continue
                acc = per_node.setdefault(p["spec"].get("nodeName", ""), [0.0, 0.0])
                acc[0] += u[0]
                acc[1] += u[1]
            items = []
            for n in sorted(store.objects("/nodes"), key=lambda n: n["metadata"]["name"]):
                if not match(n) or (name is not None and n["metadata"]["name"] != name):
                    continue
                cpu, mem = per_node.get(n["metadata"]["name"], [0.0, 0.0])
                items.append(
                    {
                        "metadata": {
                            "name": n["metadata"]["name"],
                            "creationTimestamp": rfc3339(now),
                            "labels": n["metadata"].get("labels") or {},
                        },
                        "timestamp": ts,
                        "window": "20.047s",
                        "usage": {"cpu": format_cpu_nanos(cpu + 0.35), "memory": format_mem_ki(mem + 1.6 * 1024**3)},
                    }
                )
        if name is not None:
            if not items:
                raise not_found("nodes", "metrics.k8s.io", name)
            self.send_json(200, {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1", **items[0]})
            return
        self.send_json(
            200, {"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}
        )

    def _self_subject_review(self, role: str | None) -> None:
        self._json_body()
        self._body_consumed = True
        user, groups = USERS[role or "open"]
        self.send_json(
            201,
            {
                "kind": "SelfSubjectReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "status": {"userInfo": {"username": user, "groups": groups}},
            },
        )

    def _access_review(self, role: str | None) -> None:
        body = self._json_body() or {}
        self._body_consumed = True
        attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
        verb = attrs.get("verb", "")
        resource = attrs.get("resource", "")
        sub = attrs.get("subresource", "")
        allowed = role in ("open", "admin") or (
            verb in READ_VERBS and resource != "secrets" and sub not in ("exec", "attach", "portforward", "proxy")
        )
        out = dict(body)
        out.setdefault("metadata", {})
        out["status"] = {"allowed": allowed}
        if not allowed:
            out["status"]["reason"] = (
                "the lab's read-only role (vcci-diag) grants get, list and watch on everything but Secrets"
            )
        self.send_json(201, out)

    def _lab(self, method: str, path: str, role: str) -> None:
        emu = self.emu
        write = method != "GET"
        if write and role == "view":
            raise ApiError(
                status_body(
                    403,
                    "Forbidden",
                    f'User "{USERS["view"][0]}" cannot {method.lower()} lab endpoint "{path}": lab faults need the admin token',
                )
            )
        body = self._json_body()
        self._body_consumed = True
        parts = [p for p in path.split("/") if p]
        if parts == ["_lab", "metrics"] and method == "GET":
            self.send_bytes(200, self._lab_metrics().encode(), "text/plain; version=0.0.4; charset=utf-8")
            return
        if parts == ["_lab", "reset"] and method == "POST":
            emu.reset()
            self.send_json(200, {"reset": True, **emu.world.fault_state()})
            return
        if parts == ["_lab", "flags"] and method == "PUT":
            names = body.get("faults") if isinstance(body, dict) else None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ApiError(status_body(400, "BadRequest", 'the body must be {"faults": ["name", ...]}'))
            with emu.store.lock:
                self.send_json(200, emu.world.set_flags(names, time.time()))
            return
        if len(parts) == 5 and parts[:2] == ["_lab", "pods"] and parts[4] == "node-lost" and method == "POST":
            # a pod lost with its node (its processes killed, DisruptionTarget, deleted): a Job replaces it
            with emu.store.lock:
                pod = emu.store.get("/pods", parts[2], parts[3])
                if pod is None:
                    raise not_found("pods", "", parts[3])
                out = emu.world.lose_pod(pod, time.time())
                emu.store.changed.set()
            self.send_json(200, out)
            return
        if parts == ["_lab", "faults"] and method == "GET":
            with emu.store.lock:
                self.send_json(200, emu.world.fault_state())
            return
        if len(parts) == 3 and parts[:2] == ["_lab", "faults"] and method in ("POST", "DELETE"):
            fault = parts[2]
            if fault not in FAULTS:
                raise ApiError(
                    status_body(
                        404,
                        "NotFound",
                        f'unknown fault "{fault}"; valid faults: {", ".join(FAULTS)}',
                        name=fault,
                        kind="faults",
                    )
                )
            with emu.store.lock:
                now = time.time()
                state = emu.world.inject(fault, now) if method == "POST" else emu.world.heal(fault, now)
                emu.world.tick(now)
            self.send_json(200, state)
            return
        raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))

    def _lab_metrics(self) -> str:
        store, world = self.emu.store, self.emu.world
        now = time.time()
        lines: dict[str, list[str]] = {}
        helps = {
            "kube_pod_container_status_restarts_total": ("counter", "The number of container restarts per container."),
            "kube_pod_container_status_ready": ("gauge", "Describes whether the containers readiness check succeeded."),
            "kube_pod_container_status_waiting_reason": (
                "gauge",
                "Describes the reason the container is currently in waiting state.",
            ),
            "kube_pod_container_status_last_terminated_reason": (
                "gauge",
                "Describes the last reason the container was in terminated state.",
            ),
            "kube_pod_status_phase": ("gauge", "The pods current phase."),
            "kube_deployment_spec_replicas": ("gauge", "Number of desired pods for a deployment."),
            "kube_deployment_status_replicas_available": ("gauge", "The number of available replicas per deployment."),
            "kube_deployment_status_replicas_unavailable": (
                "gauge",
                "The number of unavailable replicas per deployment.",
            ),
            "container_memory_working_set_bytes": ("gauge", "Current working set of the container in bytes"),
            "container_spec_memory_limit_bytes": ("gauge", "Memory limit for the container."),
            "container_cpu_usage_seconds_total": (
                "counter",
                "Cumulative cpu time consumed by the container in core-seconds",
            ),
            "kubelet_volume_stats_capacity_bytes": ("gauge", "Capacity in bytes of the volume"),
            "kubelet_volume_stats_available_bytes": ("gauge", "Number of available bytes in the volume"),
            "kubelet_volume_stats_used_bytes": ("gauge", "Number of used bytes in the volume"),
        }

        def add(metric: str, labels: dict[str, str], value: float) -> None:
            lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.setdefault(metric, []).append(
                f"{metric}{{{lab}}} {value:.6g}"
                if isinstance(value, float) and not value.is_integer()
                else f"{metric}{{{lab}}} {int(value)}"
            )

        with store.lock:
            for p in store.iter_objects(PODS):
                meta = p["metadata"]
                base = {"namespace": meta["namespace"], "pod": meta["name"]}
                st = p.get("status") or {}
                add("kube_pod_status_phase", {**base, "phase": st.get("phase", "Unknown")}, 1)
                for cs in st.get("containerStatuses") or []:
                    lb = {**base, "container": cs["name"]}
                    add("kube_pod_container_status_restarts_total", lb, int(cs.get("restartCount", 0)))
                    add("kube_pod_container_status_ready", lb, 1 if cs.get("ready") else 0)
                    waiting = (cs.get("state") or {}).get("waiting")
                    if waiting and waiting.get("reason"):
                        add("kube_pod_container_status_waiting_reason", {**lb, "reason": waiting["reason"]}, 1)
                    term = (cs.get("lastState") or {}).get("terminated")
                    if term and term.get("reason"):
                        add("kube_pod_container_status_last_terminated_reason", {**lb, "reason": term["reason"]}, 1)
                u = world.usage(p, now)
                cname = p["spec"]["containers"][0]["name"]
                lb = {**base, "container": cname, "node": p["spec"].get("nodeName", "")}
                lim = container_limit(p["spec"], "memory")
                if lim:
                    add("container_spec_memory_limit_bytes", lb, lim)
                if u is not None:
                    add("container_memory_working_set_bytes", lb, float(int(u[1])))
                    add("container_cpu_usage_seconds_total", lb, round(world.cpu_seconds(p, now), 3))
            for d in store.objects("apps/deployments"):
                lb = {"namespace": d["metadata"]["namespace"], "deployment": d["metadata"]["name"]}
                st = d.get("status") or {}
                add("kube_deployment_spec_replicas", lb, int(d["spec"].get("replicas", 1)))
                add("kube_deployment_status_replicas_available", lb, int(st.get("availableReplicas", 0)))
                add("kube_deployment_status_replicas_unavailable", lb, int(st.get("unavailableReplicas", 0)))
            for (ns, claim), vol in world.volumes.items():
                lb = {"namespace": ns, "persistentvolumeclaim": claim}
                add("kubelet_volume_stats_capacity_bytes", lb, vol.capacity)
                add("kubelet_volume_stats_available_bytes", lb, vol.available)
                add("kubelet_volume_stats_used_bytes", lb, vol.used)
        out = []
        for metric, (typ, help_) in helps.items():
            if metric in lines:
                out.append(f"# HELP {metric} {help_}")
                out.append(f"# TYPE {metric} {typ}")
                out.extend(lines[metric])
        return "\n".join(out) + "\n"

# ruff: noqa: E501  (object literals read best on one line)
"""The controllers of the emulated cluster: deployments (rolling updates, history, rollback),
replica sets, stateful sets, garbage collection of orphans, node heartbeats and PVC expansion.
"""

from __future__ import annotations

import math
from typing import Any

from vcci_lab.kube._common import (
    CREATE_DELAY,
    DEPLOY,
    NODES,
    NS,
    PODS,
    PVCS,
    REVISION,
    RS,
    SKIP_ANNOTATIONS,
    STS,
    _neg_time,
    _pod_ready,
    controller_uid,
    revision_of,
)
from vcci_lab.kube._pods import Pods
from vcci_lab.kube._store import copy_json
from vcci_lab.kube._util import JSON, parse_quantity, rfc3339, rfc3339_micro, safe_suffix, strip_hash, template_hash


class Controllers(Pods):
    """What the deployment, replica-set and stateful-set controllers do, one reconcile pass at a time."""

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
        self._sync_jobs(now, pods_by_owner)
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

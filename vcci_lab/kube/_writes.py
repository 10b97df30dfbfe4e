# ruff: noqa: E501  (Status messages are the API server's exact wording)
"""The write verbs: create, update (PUT), patch, delete and deletecollection, with the validation and
dry runs the API server applies.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from vcci_lab.kube import _discovery, _patch
from vcci_lab.kube._jobs import JOBS, job_causes, normalise_secret, prepare_job
from vcci_lab.kube._reads import Reads
from vcci_lab.kube._selectors import parse_label_selector, selector_string
from vcci_lab.kube._store import Resource, copy_json
from vcci_lab.kube._util import (
    JSON,
    ApiError,
    already_exists,
    bad_request,
    conflict,
    drop_nulls,
    invalid,
    not_found,
    parse_quantity,
    rfc3339,
    safe_suffix,
    status_body,
    valid_dns_subdomain,
)


class Writes(Reads):
    """POST, PUT, PATCH and DELETE on a resource (deletecollection lists what it deletes)."""

    def _check_strings(self, obj: JSON, kind: str) -> None:
        meta = obj.get("metadata") or {}
        for field in ("labels", "annotations"):
            vals = meta.get(field)
            if vals is None:
                continue
            if not isinstance(vals, dict):
                raise bad_request(
                    f"json: cannot unmarshal {type(vals).__name__} into Go struct field ObjectMeta.metadata.{field} of type map[string]string"
                )
            for v in vals.values():
                if not isinstance(v, str):
                    t = (
                        "number"
                        if isinstance(v, int | float) and not isinstance(v, bool)
                        else "bool"
                        if isinstance(v, bool)
                        else "object"
                    )
                    raise bad_request(
                        f"json: cannot unmarshal {t} into Go struct field ObjectMeta.metadata.{field} of type string"
                    )
        if kind in ("ConfigMap", "Secret"):
            for v in (obj.get("data") or {}).values():
                if not isinstance(v, str):
                    raise bad_request(f"json: cannot unmarshal number into Go struct field {kind}.data of type string")

    def _validate(self, res: Resource, obj: JSON, old: JSON | None, extra: list[tuple[str, str]] | None = None) -> None:
        name = obj.get("metadata", {}).get("name", "")
        causes: list[tuple[str, str]] = list(extra or [])
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        elif res.plural != "events" and not valid_dns_subdomain(name):
            causes.append(
                (
                    "metadata.name",
                    f"Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                )
            )
        for v in (obj.get("metadata", {}).get("labels") or {}).values():
            if len(v) > 63 or (v and not all(c.isalnum() or c in "-_." for c in v)):
                causes.append(
                    (
                        "metadata.labels",
                        f"Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
        spec = obj.get("spec") or {}
        pod_spec: JSON | None = None
        prefix = "spec"
        if res.kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            reps = spec.get("replicas", 1)
            if not isinstance(reps, int) or isinstance(reps, bool):
                raise bad_request(
                    f"json: cannot unmarshal {type(reps).__name__} into Go struct field {res.kind}Spec.spec.replicas of type int32"
                )
            if reps < 0:
                causes.append(("spec.replicas", f"Invalid value: {reps}: must be greater than or equal to 0"))
            pod_spec = (spec.get("template") or {}).get("spec")
            prefix = "spec.template.spec"
            sel = parse_label_selector(selector_string(spec.get("selector")))
            tmpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if sel is not None and not sel({"metadata": {"labels": tmpl_labels}}):
                causes.append(
                    (
                        "spec.template.metadata.labels",
                        f"Invalid value: {json.dumps(tmpl_labels)}: `selector` does not match template `labels`",
                    )
                )
            if (
                old is not None
                and old.get("spec", {}).get("selector") != spec.get("selector")
                and res.kind == "Deployment"
            ):
                causes.append(
                    ("spec.selector", f"Invalid value: {json.dumps(spec.get('selector'))}: field is immutable")
                )
        elif res.kind == "Job":
            pod_spec = (spec.get("template") or {}).get("spec") or {}
            prefix = "spec.template.spec"
            causes += job_causes(obj, old)
        elif res.kind == "Pod":
            pod_spec = spec
            if old is not None:
                o, n = copy_json(old.get("spec") or {}), copy_json(spec)
                for s in (o, n):
                    for c in s.get("containers") or []:
                        c.pop("image", None)
                    s.pop("activeDeadlineSeconds", None)
                    s.pop("tolerations", None)
                if o != n:
                    causes.append(
                        (
                            "spec",
                            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                        )
                    )
        elif res.kind == "PersistentVolumeClaim" and old is not None:
            try:
                new_s = parse_quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
                cap = parse_quantity(((old.get("status") or {}).get("capacity") or {}).get("storage", "0"))
                if new_s < cap:
                    causes.append(
                        ("spec.resources.requests.storage", "Forbidden: field can not be less than status.capacity")
                    )
            except ValueError as exc:
                causes.append(("spec.resources.requests.storage", f"Invalid value: {exc}"))
        if pod_spec is not None:
            containers = pod_spec.get("containers") or []
            if not containers:
                causes.append((f"{prefix}.containers", "Required value"))
            for i, c in enumerate(containers):
                p = f"{prefix}.containers[{i}]"
                if not c.get("name"):
                    causes.append((f"{p}.name", "Required value"))
                if not c.get("image"):
                    causes.append((f"{p}.image", "Required value"))
                for j, e in enumerate(c.get("env") or []):
                    en = e.get("name", "")
                    if not en or not all(ch.isalnum() or ch in "-._" for ch in en) or en[0].isdigit():
                        causes.append(
                            (
                                f"{p}.env[{j}].name",
                                f"Invalid value: \"{en}\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
                            )
                        )
                    if "value" in e and not isinstance(e["value"], str):
                        raise bad_request(
                            f"json: cannot unmarshal number into Go struct field EnvVar.{prefix}.containers.env.value of type string"
                        )
                res_ = c.get("resources") or {}
                parsed: dict[str, dict[str, float]] = {}
                for kind in ("limits", "requests"):
                    for rname, val in (res_.get(kind) or {}).items():
                        try:
                            parsed.setdefault(kind, {})[rname] = parse_quantity(val)
                        except ValueError as exc:
                            raise bad_request(
                                f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' ({rname}: {val!r}: {exc})"
                            ) from exc
                for rname, req in (parsed.get("requests") or {}).items():
                    lim = (parsed.get("limits") or {}).get(rname)
                    if lim is not None and req > lim:
                        causes.append(
                            (
                                f"{p}.resources.requests",
                                f'Invalid value: "{res_["requests"][rname]}": must be less than or equal to {rname} limit of {res_["limits"][rname]}',
                            )
                        )
        if causes:
            raise invalid(res.kind, res.group, name, causes)

    def _create(self, res: Resource, ns: str | None) -> None:
        obj = drop_nulls(self._read_obj())
        self._check_strings(obj, res.kind)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns or meta.get("namespace") or "default"
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + safe_suffix(5)
        obj["kind"] = res.kind
        obj["apiVersion"] = res.group_version
        store = self.emu.store
        world = self.emu.world
        extra: list[tuple[str, str]] = []
        if res.kind == "Job":
            meta.pop("uid", None)
            extra = prepare_job(obj)
        elif res.kind == "Secret":
            normalise_secret(obj)
        job_uid = meta.get("uid") if res.kind == "Job" else None
        with store.lock:
            self._validate(res, obj, None, extra)
            if res.namespaced and store.get("/namespaces", "", meta["namespace"]) is None:
                raise not_found("namespaces", "", meta["namespace"])
            if store.get(res.key, meta.get("namespace", ""), meta["name"]) is not None:
                raise already_exists(res.plural, res.group, meta["name"])
            for k in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp"):
                meta.pop(k, None)
            if job_uid:
                meta["uid"] = job_uid  # the selector and the template's labels name it
            if res.kind in ("Deployment", "ReplicaSet", "StatefulSet"):
                obj["spec"].setdefault("replicas", 1)
                obj.setdefault("status", {})
            if self._dry():
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = rfc3339(time.time())
                self.send_json(201, obj)
                return
            if res.plural == "pods":
                now = time.time()
                node = obj["spec"].get("nodeName") or world._pick_node()
                obj["spec"]["nodeName"] = node
                world.node_pods[node] = world.node_pods.get(node, 0) + 1
                rt = world._register_pod(obj, now)
                obj["status"] = world._pod_status(obj, rt, now)
                stored = store.create(res.key, obj)
                world.schedule(rt, now + 0.35)
            elif res.kind == "Namespace":
                obj.setdefault("status", {"phase": "Active"})
                obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
                stored = store.create(res.key, obj)
            else:
                stored = store.create(res.key, obj)
            world.dirty = True
            store.changed.set()
        self.send_bytes(201, json.dumps(stored, separators=(",", ":")).encode())

    def _commit_update(self, res: Resource, old: JSON, new: JSON, sub: str | None) -> tuple[int, JSON]:
        """Validate and store ``new`` in place of ``old``; return (status code, stored object)."""
        store = self.emu.store
        new = drop_nulls(new)
        self._check_strings(new, res.kind)
        nm, om = new.setdefault("metadata", {}), old["metadata"]
        if nm.get("name", om["name"]) != om["name"]:
            raise bad_request(
                f"the name of the object ({nm.get('name')}) does not match the name on the URL ({om['name']})"
            )
        if nm.get("resourceVersion") and nm["resourceVersion"] != om["resourceVersion"]:
            raise conflict(res.plural, res.group, om["name"])
        for k in (
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "deletionTimestamp",
            "generation",
            "ownerReferences" if res.kind == "Pod" else "_",
        ):
            if k in om:
                nm[k] = om[k]
            elif k in nm and k != "_":
                del nm[k]
        new["kind"], new["apiVersion"] = res.kind, res.group_version
        if res.kind == "Secret" and sub is None:
            normalise_secret(new)
        if sub == "status":
            merged = copy_json(old)
            merged["status"] = new.get("status", {})
            new = merged
        elif "status" in old:
            new["status"] = old["status"]
        self._validate(res, new, old)
        nm["resourceVersion"] = om["resourceVersion"]
        if new == old:
            return 200, old
        if new.get("spec") != old.get("spec") and "generation" in om:
            nm["generation"] = int(om["generation"]) + 1
        if self._dry():
            return 200, new
        stored = store.replace(res.key, new)
        world = self.emu.world
        if res.plural == "pods":
            rt = world.runtimes.get(om["uid"])
            if rt is not None:
                rt.mode = world.mode_for(stored)
        world.dirty = True
        store.changed.set()
        return 200, stored

    def _update(self, res: Resource, ns: str, name: str, sub: str | None) -> None:
        obj = self._read_obj()
        store = self.emu.store
        with store.lock:
            old = store.get(res.key, ns, name)
            if old is None:
                raise not_found(res.plural, res.group, name)
            code, out = self._commit_update(res, old, obj, sub)
        self.send_json(code, out)

    def _apply_patch(self, base: JSON) -> JSON:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        raw = self._body()
        self._body_consumed = True
        try:
            patch = json.loads(raw) if raw else None
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}") from exc
        try:
            if ctype == "application/json-patch+json":
                out = _patch.json_patch(base, patch)
            elif ctype == "application/merge-patch+json":
                out = _patch.merge_patch(base, patch)
            elif ctype == "application/strategic-merge-patch+json":
                out = _patch.strategic_merge(base, patch)
            elif ctype == "application/apply-patch+yaml":
                raise ApiError(
                    status_body(
                        415,
                        "UnsupportedMediaType",
                        "server-side apply is not supported by the lab's Kubernetes emulator; use a strategic merge or JSON patch",
                    )
                )
            else:
                raise ApiError(
                    status_body(
                        415,
                        "UnsupportedMediaType",
                        f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ctype!r})",
                    )
                )
        except _patch.PatchError as exc:
            if exc.code == 400:
                raise bad_request(str(exc)) from exc
            raise ApiError(status_body(422, "Invalid", str(exc))) from exc
        if not isinstance(out, dict):
            raise bad_request("patch result is not a JSON object")
        return out

    def _patch(self, res: Resource, ns: str, name: str, sub: str | None) -> None:
        store = self.emu.store
        with store.lock:
            old = store.get(res.key, ns, name)
            if old is None:
                self._body()
                self._body_consumed = True
                raise not_found(res.plural, res.group, name)
            new = self._apply_patch(copy_json(old))
            code, out = self._commit_update(res, old, new, sub)
        self.send_json(code, out)

    def _delete(self, res: Resource, ns: str, name: str) -> None:
        body = self._json_body() or {}
        self._body_consumed = True
        self._delete_options(body)
        store = self.emu.store
        world = self.emu.world
        grace: float | None = None
        if "gracePeriodSeconds" in self.q:
            grace = float(self.q["gracePeriodSeconds"])
        elif isinstance(body, dict) and body.get("gracePeriodSeconds") is not None:
            grace = float(body["gracePeriodSeconds"])
        pre = (body.get("preconditions") or {}) if isinstance(body, dict) else {}
        with store.lock:
            old = store.get(res.key, ns, name)
            if old is None:
                raise not_found(res.plural, res.group, name)
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise ApiError(
                    status_body(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {res.qualified} "{name}": Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {old["metadata"]["uid"]}',
                        name=name,
                        group=res.group,
                        kind=res.plural,
                    )
                )
            if self._dry():
                out = copy_json(old)
                if res.plural == "pods":
                    out["metadata"]["deletionTimestamp"] = rfc3339(time.time() + (grace if grace is not None else 30))
                    out["metadata"]["deletionGracePeriodSeconds"] = int(grace if grace is not None else 30)
                    self.send_json(200, out)
                else:
                    self.send_json(
                        200,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "metadata": {},
                            "status": "Success",
                            "details": {
                                "name": name,
                                "group": res.group,
                                "kind": res.plural,
                                "uid": old["metadata"]["uid"],
                            },
                        },
                    )
                return
            if res.plural == "pods":
                out = world.terminate_pod(old, time.time(), grace=grace)
                store.changed.set()
                self.send_json(200, out)
                return
            if res.kind == "Namespace" and name in ("default", "kube-system", "kube-public", "kube-node-lease"):
                raise ApiError(
                    status_body(
                        403,
                        "Forbidden",
                        f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                        name=name,
                        kind="namespaces",
                    )
                )
            policy, warning = self._propagation(res, body)
            if policy == "Orphan":
                self._orphan(old)
            elif policy == "Foreground" and res.key == JOBS:
                # the Job stays, Terminating, until the garbage collector has deleted its pods
                upd = copy_json(old)
                upd["metadata"].setdefault("deletionTimestamp", rfc3339(time.time()))
                upd["metadata"]["deletionGracePeriodSeconds"] = 0
                fin = upd["metadata"].setdefault("finalizers", [])
                if "foregroundDeletion" not in fin:
                    fin.append("foregroundDeletion")
                stored = store.replace(res.key, upd)
                world.dirty = True
                store.changed.set()
                self.send_json(200, stored)
                return
            store.delete(res.key, ns, name)
            if res.kind == "Namespace":
                for r in _discovery.RESOURCES:
                    if r.namespaced and r.stored:
                        for o in store.objects(r.key, name):
                            if r.plural == "pods":
                                world.terminate_pod(o, time.time(), grace=0)  # its processes stop too
                            else:
                                store.delete(r.key, name, o["metadata"]["name"])
            world.dirty = True
            store.changed.set()
        body_out = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": res.group, "kind": res.plural, "uid": old["metadata"]["uid"]},
        }
        extra = {"Warning": f'299 - "{warning}"'} if warning else None
        self.send_bytes(200, json.dumps(body_out, separators=(",", ":")).encode(), extra=extra)

    def _propagation(self, res: Resource, body: Any) -> tuple[str, str | None]:
        """The delete's propagationPolicy, and the API server's warning when a Job's default applies.

        batch/v1 Jobs default to orphaning their pods (for compatibility), as a real API server
        does: a client that deletes a Job without ``propagationPolicy`` leaves its pods running.
        """
        b = body if isinstance(body, dict) else {}
        policy = self.q.get("propagationPolicy") or b.get("propagationPolicy") or ""
        if not policy and (self.q.get("orphanDependents") == "true" or b.get("orphanDependents") is True):
            policy = "Orphan"
        if policy and policy not in ("Orphan", "Background", "Foreground"):
            raise invalid(
                "DeleteOptions",
                "",
                "",
                [
                    (
                        "propagationPolicy",
                        f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"',
                    )
                ],
            )
        if not policy and res.key == JOBS:
            return "Orphan", (
                "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background "
                "to remove them or set propagationPolicy=Orphan to suppress this warning"
            )
        return policy or "Background", None

    def _orphan(self, owner: JSON) -> None:
        """Orphan propagation: the dependents lose their ownerReference to ``owner`` and live on."""
        store = self.emu.store
        uid = owner["metadata"]["uid"]
        ns = owner["metadata"].get("namespace")
        for key in ("/pods", "apps/replicasets"):
            for o in store.objects(key, ns):
                refs = o["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    upd = copy_json(o)
                    kept = [r for r in refs if r.get("uid") != uid]
                    if kept:
                        upd["metadata"]["ownerReferences"] = kept
                    else:
                        upd["metadata"].pop("ownerReferences", None)
                    store.replace(key, upd)

    def _delete_options(self, body: Any) -> None:
        """DeleteOptions may carry dryRun in the body (kubectl sends it there), not only in the query."""
        if not isinstance(body, dict):
            return
        dry = body.get("dryRun") or []
        if dry and dry != ["All"]:
            raise bad_request(f'Invalid dry run value: {dry!r}: valid values are "All"')
        self._body_dry = dry == ["All"]

    def _delete_collection(self, res: Resource, ns: str | None) -> None:
        body = self._json_body()
        self._delete_options(body)
        self._body_consumed = True
        policy, _ = self._propagation(res, body)
        entries = self._select(res, ns)
        store, world = self.emu.store, self.emu.world
        out = []
        with store.lock:
            for e in entries:
                o = e.obj
                if self._dry():
                    out.append(o)
                elif res.plural == "pods":
                    out.append(world.terminate_pod(o, time.time()))
                else:
                    if policy == "Orphan":
                        self._orphan(o)
                    store.delete(res.key, o["metadata"].get("namespace", ""), o["metadata"]["name"])
                    out.append(o)
            world.dirty = True
            store.changed.set()
        self.send_json(
            200,
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.group_version,
                "metadata": {"resourceVersion": str(store.rv)},
                "items": out,
            },
        )

"""The resources the emulator serves and the discovery documents that describe them.

Discovery is served in the legacy format (APIVersions, APIGroupList, APIResourceList). Newer kubectl
first asks for aggregated discovery (``as=APIGroupDiscoveryList``); when the answer's content type is
plain ``application/json`` it falls back to the legacy documents, as it does against an older server.
"""

from __future__ import annotations

from vcci_lab.kube._store import Resource
from vcci_lab.kube._util import JSON

GIT_VERSION = "v1.31.4"

_RO = ("get", "list")
_RW = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

RESOURCES: tuple[Resource, ...] = (
    Resource(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        "namespace",
        ("ns",),
        ("create", "delete", "get", "list", "patch", "update", "watch"),
        ("status",),
    ),
    Resource("", "v1", "nodes", "Node", False, "node", ("no",), _RW, ("status", "proxy")),
    Resource(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        "pod",
        ("po",),
        _RW,
        ("log", "exec", "status", "eviction", "attach", "portforward"),
        ("all",),
    ),
    Resource("", "v1", "events", "Event", True, "event", ("ev",), _RW),
    Resource("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",), _RW),
    Resource("", "v1", "secrets", "Secret", True, "secret", (), _RW),
    Resource(
        "",
        "v1",
        "services",
        "Service",
        True,
        "service",
        ("svc",),
        ("create", "delete", "get", "list", "patch", "update", "watch"),
        ("status",),
        ("all",),
    ),
    Resource("", "v1", "endpoints", "Endpoints", True, "endpoints", ("ep",), _RW),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, "serviceaccount", ("sa",), _RW),
    Resource(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        True,
        "persistentvolumeclaim",
        ("pvc",),
        _RW,
        ("status",),
    ),
    Resource("", "v1", "persistentvolumes", "PersistentVolume", False, "persistentvolume", ("pv",), _RW, ("status",)),
    Resource(
        "apps", "v1", "deployments", "Deployment", True, "deployment", ("deploy",), _RW, ("scale", "status"), ("all",)
    ),
    Resource(
        "apps", "v1", "replicasets", "ReplicaSet", True, "replicaset", ("rs",), _RW, ("scale", "status"), ("all",)
    ),
    Resource(
        "apps", "v1", "statefulsets", "StatefulSet", True, "statefulset", ("sts",), _RW, ("scale", "status"), ("all",)
    ),
    Resource("apps", "v1", "controllerrevisions", "ControllerRevision", True, "controllerrevision", (), _RW),
    Resource("batch", "v1", "jobs", "Job", True, "job", (), _RW, ("status",), ("all",)),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", True, "ingress", ("ing",), _RW, ("status",)),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True, "lease", (), _RW),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True, "role", (), _RW),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, "rolebinding", (), _RW),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, "clusterrole", (), _RW),
    Resource(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        False,
        "clusterrolebinding",
        (),
        _RW,
    ),
    Resource(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        "poddisruptionbudget",
        ("pdb",),
        _RW,
        ("status",),
    ),
    Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, "storageclass", ("sc",), _RW),
    Resource("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", False, "", (), _RO, (), (), False),
    Resource("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True, "", (), _RO, (), (), False),
    Resource(
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        False,
        "",
        (),
        ("create",),
        (),
        (),
        False,
    ),
    Resource(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        "",
        (),
        ("create",),
        (),
        (),
        False,
    ),
)

BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND: dict[tuple[str, str], Resource] = {(r.group, r.kind): r for r in RESOURCES}


def group_versions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group:
            out.setdefault(r.group, [])
            if r.version not in out[r.group]:
                out[r.group].append(r.version)
    return out


def api_versions() -> JSON:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    }


def api_group(group: str) -> JSON:
    versions = group_versions()[group]
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> JSON:
    groups = [api_group(g) for g in group_versions()]
    for g in groups:
        g.pop("kind")
        g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str) -> JSON | None:
    rs = [r for r in RESOURCES if r.group == group and r.version == version]
    if not rs:
        return None
    items: list[JSON] = []
    for r in rs:
        item: JSON = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            item["shortNames"] = list(r.short_names)
        if r.categories:
            item["categories"] = list(r.categories)
        if r.stored and r.group not in ("metrics.k8s.io",):
            item["storageVersionHash"] = _hash(r.key)
        items.append(item)
        for sub in r.subresources:
            sub_item: JSON = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced}
            if sub == "scale":
                sub_item.update(
                    {"group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
                )
            elif sub == "status":
                sub_item.update({"kind": r.kind, "verbs": ["get", "patch", "update"]})
            elif sub == "log":
                sub_item.update({"kind": "Pod", "verbs": ["get"]})
            elif sub == "eviction":
                sub_item.update({"group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]})
            elif sub in ("exec", "attach", "portforward"):
                sub_item.update(
                    {
                        "kind": "PodExecOptions"
                        if sub == "exec"
                        else "PodAttachOptions"
                        if sub == "attach"
                        else "PodPortForwardOptions",
                        "verbs": ["create", "get"],
                    }
                )
            elif sub == "proxy":
                sub_item.update({"kind": "NodeProxyOptions", "verbs": ["create", "delete", "get", "patch", "update"]})
            items.append(sub_item)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": items,
    }


def _hash(text: str) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(text.encode()).digest()[:8]).decode()


def version_info() -> JSON:
    return {
        "major": "1",
        "minor": GIT_VERSION.split(".")[1],
        "gitVersion": GIT_VERSION,
        "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
        "gitTreeState": "clean",
        "buildDate": "2024-12-10T18:38:40Z",
        "goVersion": "go1.22.9",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root() -> JSON:
    """``GET /openapi/v3``: one document per group-version, as the API server lists them."""
    keys = sorted({_gv_key(r.group, r.version) for r in RESOURCES})
    return {"paths": {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={_hash(k)}"} for k in keys}}


def openapi_v3_doc(key: str) -> JSON | None:
    """A minimal OpenAPI v3 document for one group-version.

    It holds only what kubectl reads before ``apply``/``create -f``: for each kind, the PATCH
    operation with its ``x-kubernetes-group-version-kind`` and the ``fieldValidation`` query
    parameter, which tells kubectl that the server validates fields itself. No schemas: kubectl
    then computes strategic merge patches from its own built-in types, and ``explain`` has nothing
    to show.
    """
    rs = [r for r in RESOURCES if _gv_key(r.group, r.version) == key and r.stored]
    if not rs:
        return None
    paths: JSON = {}
    for r in rs:
        base = f"/{_gv_key(r.group, r.version)}"
        item = f"{base}/namespaces/{{namespace}}/{r.plural}/{{name}}" if r.namespaced else f"{base}/{r.plural}/{{name}}"
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        params = [
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        ]
        paths[item] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            },
            "put": {
                "operationId": f"replace{r.kind}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "put",
                "x-kubernetes-group-version-kind": gvk,
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {},
    }

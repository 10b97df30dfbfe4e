"""Kubernetes workload actions of seed 4.1 and 4.2, guarded.

Every change is planned with a server-side dry run (``dryRun=All``) and shown as a diff of the
object; every object we change gets the annotations ``vcci-nb/incident`` (the incident ID) and
``vcci-nb/action``, so ``kubectl get -o yaml`` tells the next engineer who changed it and why.
Nothing in ``kube-system`` (or the other system namespaces) is ever touched.

- :class:`RolloutUndo`: back to the previous (or a given) revision, then wait for the rollout;
- :class:`Scale`: replicas (to zero is destructive);
- :class:`SetResources`: container requests and limits;
- :class:`SetEnv`: the runbook's switches (``DATABASE_POOL_SIZE``, ``CIRCUIT_BREAKER_ENABLED``,
  ``USE_CACHED_DATA``, ``MEMORY_PROFILING_ENABLED``);
- :class:`RolloutRestart`: new pods, same template (``kubectl rollout restart``);
- :class:`DeletePod`: one pod; :class:`DeletePodsRolling`: every pod of a label, at most
  ``max_unavailable`` down at once, waiting for replacements to be ready in between.
"""

from __future__ import annotations

import copy
import difflib
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml

from vcci_nb.actions._model import Action, Plan, Verification, real_number, whole_number
from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ActionRefused, KubeApiError
from vcci_nb.kubeapi import JSON, JSON_PATCH, MERGE_PATCH, KubeClient, is_dns1123_subdomain, quantity

INCIDENT_ANNOTATION = "vcci-nb/incident"
ACTION_ANNOTATION = "vcci-nb/action"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
#: What ``kubectl rollout undo`` does not copy from the target ReplicaSet (kubectl's annotationsToSkip).
ROLLBACK_SKIP_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
PROTECTED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

#: The environment switches the runbook sets (seed 4.2), with the values each accepts.
ENV_SWITCHES: dict[str, str] = {
    "DATABASE_POOL_SIZE": "int",
    "CIRCUIT_BREAKER_ENABLED": "bool",
    "USE_CACHED_DATA": "bool",
    "MEMORY_PROFILING_ENABLED": "bool",
}

_VOLATILE_META = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "selfLink", "generation")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clean(obj: JSON) -> JSON:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _VOLATILE_META:
        meta.pop(key, None)
    return out


def object_diff(before: JSON, after: JSON, name: str = "object") -> str:
    """A unified diff of two objects as YAML, without status and server-managed metadata."""
    a = yaml.safe_dump(_clean(before), sort_keys=True, default_flow_style=False).splitlines()
    b = yaml.safe_dump(_clean(after), sort_keys=True, default_flow_style=False).splitlines()
    return "\n".join(difflib.unified_diff(a, b, f"{name} (now)", f"{name} (after)", lineterm="", n=2))


def _check_name(name: str, what: str) -> None:
    if not is_dns1123_subdomain(name):
        raise ActionRefused(f"{what} {name!r} is not a valid Kubernetes name (lowercase letters, digits, '-', '.')")


def _pod_ready(pod: JSON) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def _template_key(template: JSON) -> JSON:
    """A pod template without the controller's ``pod-template-hash`` label, for comparisons."""
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels") or {}
    labels.pop("pod-template-hash", None)
    annotations = (t.get("metadata") or {}).get("annotations")
    if annotations is not None and not annotations:
        t["metadata"].pop("annotations", None)
    return t


def _images(template: JSON) -> list[str]:
    return [str(c.get("image")) for c in ((template or {}).get("spec") or {}).get("containers") or []]


class _KubeAction(Action):
    """Shared plumbing: namespace checks, the client (mitigation context), annotations, waiting."""

    def __init__(
        self,
        namespace: str | None = None,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        profile: Profile | str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self._namespace_arg = namespace
        self._kubeconfig = kubeconfig
        self._context = context
        self._profile = profile
        self.timeout_s: Any = timeout_s  # converted by preflight
        self._kube: KubeClient | None = None

    @property
    def namespace(self) -> str:
        if self._namespace_arg:
            return self._namespace_arg
        prof = self._profile if isinstance(self._profile, Profile) else load_profile(self._profile)
        return prof.namespace

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            self._kube = KubeClient.connect(
                self._profile, mitigation=True, kubeconfig=self._kubeconfig, context=self._context
            )
        return self._kube

    def identity(self) -> str:
        return self.kube.identity

    def preflight(self) -> None:
        self.timeout_s = real_number(self.timeout_s, "timeout_s", minimum=1, maximum=3600)
        ns = self.namespace
        if ns in PROTECTED_NAMESPACES:
            raise ActionRefused(
                f"refusing to change anything in {ns}: it runs the cluster itself. "
                "Ask the platform team; vcci-nb only acts on the application's namespaces."
            )
        _check_name(ns, "namespace")

    def annotations(self) -> dict[str, str]:
        return {INCIDENT_ANNOTATION: self.incident_id or "unbound", ACTION_ANNOTATION: self.name}

    def wait(self, what: str, done: Callable[[], tuple[bool, str]], timeout_s: float | None = None) -> tuple[bool, str]:
        """Poll ``done`` until it says yes or the timeout passes; (ok, last detail)."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        delay = 0.1
        ok, detail = done()
        while not ok and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
            ok, detail = done()
        if not ok:
            detail = f"{what} not reached within {self.timeout_s:g} s: {detail}"
        return ok, detail

    def pods(self, selector: str) -> list[JSON]:
        items = self.kube.get(f"/api/v1/namespaces/{self.namespace}/pods", labelSelector=selector).get("items") or []
        return list(items)


class _DeploymentAction(_KubeAction):
    """A change to one Deployment: dry-run patch → diff → patch → wait for the rollout."""

    #: whether the change rolls out new pods (so the verification waits for the rollout)
    rolls_out = True

    def __init__(self, deployment: str, namespace: str | None = None, **kwargs: Any) -> None:
        super().__init__(namespace, **kwargs)
        self.deployment = deployment

    @property
    def path(self) -> str:
        return f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{self.deployment}"

    @property
    def target(self) -> str:
        return f"{self.namespace}/deployment/{self.deployment}"

    def preflight(self) -> None:
        super().preflight()
        _check_name(self.deployment, "deployment")

    def build(self, current: JSON) -> tuple[Any, str, str, list[dict[str, Any]]]:
        """(patch body, patch type, summary, change rows) for this change against ``current``."""
        raise NotImplementedError

    def extra_checks(self, obj: JSON, plan: Plan, v: Verification) -> None:
        """Add action-specific checks on the deployment after the rollout."""

    def destructive(self, current: JSON) -> bool:
        return False

    def warnings(self, current: JSON) -> list[str]:
        return ["the pods are replaced by a rolling update"] if self.rolls_out else []

    def _with_annotations(self, body: Any, patch_type: str, current: JSON) -> Any:
        if patch_type == JSON_PATCH:
            # Optimistic concurrency: the patch applies only to the object the plan saw.
            rv = (current.get("metadata") or {}).get("resourceVersion")
            ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}] if rv else []
            ops += list(body)
            if (current.get("metadata") or {}).get("annotations") is None:
                ops.append({"op": "add", "path": "/metadata/annotations", "value": self.annotations()})
            else:
                for k, v in self.annotations().items():
                    ops.append({"op": "add", "path": "/metadata/annotations/" + k.replace("/", "~1"), "value": v})
            return ops
        merged = copy.deepcopy(body)
        merged.setdefault("metadata", {}).setdefault("annotations", {}).update(self.annotations())
        # Optimistic concurrency: the patch applies only to the object the plan saw.
        merged["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
        return merged

    def plan(self) -> Plan:
        for attempt in range(3):
            current = self.kube.get(self.path)
            body, patch_type, summary, changes = self.build(current)
            full = self._with_annotations(body, patch_type, current)
            try:
                after = self.kube.patch(self.path, full, patch_type=patch_type, dry_run=True)
                break
            except KubeApiError as exc:
                # The object moved between the read and the dry run (its status changes while pods
                # restart, e.g. OOMKilled ones): read it again and re-plan against what is there now.
                if exc.status != 409 or attempt == 2:
                    raise
        spec_changed = _clean(after).get("spec") != _clean(current).get("spec")
        return Plan(
            action=self.name,
            target=self.target,
            summary=summary,
            changes=changes,
            diff=object_diff(current, after, f"deployment/{self.deployment}"),
            warnings=self.warnings(current) if spec_changed else [],
            destructive=self.destructive(current),
            noop=not spec_changed,
            details={
                "patch": full,
                "patch_type": patch_type,
                "resource_version": (current.get("metadata") or {}).get("resourceVersion"),
                "generation_before": (current.get("metadata") or {}).get("generation"),
            },
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        after = self.kube.patch(self.path, plan.details["patch"], patch_type=plan.details["patch_type"])
        meta = after.get("metadata") or {}
        return {"generation": meta.get("generation"), "resource_version": meta.get("resourceVersion")}

    def rollout_state(self) -> tuple[bool, str, JSON]:
        """Like ``kubectl rollout status``: (complete, message, deployment)."""
        dep = self.kube.get(self.path)
        meta, spec, st = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
        want = int(spec.get("replicas", 1))
        gen, observed = meta.get("generation"), st.get("observedGeneration")
        if gen is not None and observed is not None and int(observed) < int(gen):
            return False, "waiting for the deployment spec update to be observed", dep
        updated = int(st.get("updatedReplicas") or 0)
        total = int(st.get("replicas") or 0)
        available = int(st.get("availableReplicas") or 0)
        if updated < want:
            return False, f"{updated} of {want} new replicas updated", dep
        if total > updated:
            return False, f"{total - updated} old replicas pending termination", dep
        if available < updated:
            return False, f"{available} of {updated} updated replicas available", dep
        return True, f"rolled out: {available}/{want} available", dep

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        v = Verification()
        holder: dict[str, JSON] = {}

        def done() -> tuple[bool, str]:
            ok, msg, dep = self.rollout_state()
            holder["dep"] = dep
            return ok, msg

        ok, msg = self.wait("rollout complete", done)
        v.add("rollout complete", ok, msg)
        dep = holder.get("dep") or self.kube.get(self.path)
        annotations = (dep.get("metadata") or {}).get("annotations") or {}
        v.add(
            "incident annotation",
            annotations.get(INCIDENT_ANNOTATION) == self.incident_id,
            f"{INCIDENT_ANNOTATION}={annotations.get(INCIDENT_ANNOTATION)!r}",
        )
        self.extra_checks(dep, plan, v)
        return v

    def container(self, current: JSON, name: str | None) -> tuple[int, JSON]:
        """The container to change: ``name`` when given, else the profile's ``kubernetes.api_container``.

        A deployment with one container needs no name. With several, the profile's API container is
        the one the runbook means (the first may be a sidecar, a proxy or a log shipper); when the
        deployment has no container of that name either, the change is refused, naming the choices.
        """
        containers = ((current.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
        if not containers:
            raise ActionRefused("the deployment has no containers to change")
        names = [c.get("name") for c in containers]
        if name is None:
            if len(containers) == 1:
                return 0, containers[0]
            name = self._api_container()
            if name not in names:
                raise ActionRefused(
                    f"deployment {self.deployment} has containers {names} and none is the profile's "
                    f"kubernetes.api_container ({name!r}); pass container= to say which one to change"
                )
        for i, c in enumerate(containers):
            if c.get("name") == name:
                return i, c
        raise ActionRefused(f"no container {name!r}; containers: {names}")

    def _api_container(self) -> str:
        prof = self._profile if isinstance(self._profile, Profile) else load_profile(self._profile)
        return prof.names.api_container


class Scale(_DeploymentAction):
    """``kubectl scale deployment/NAME --replicas=N`` (seed 4.1). Scaling to zero is destructive."""

    name = "k8s.scale"
    rolls_out = False

    def __init__(self, deployment: str, replicas: int, namespace: str | None = None, **kwargs: Any) -> None:
        super().__init__(deployment, namespace, **kwargs)
        self.replicas: Any = replicas  # converted by preflight

    def parameters(self) -> dict[str, Any]:
        return {"namespace": self._namespace_arg, "deployment": self.deployment, "replicas": self.replicas}

    def preflight(self) -> None:
        super().preflight()
        self.replicas = whole_number(self.replicas, "replicas")
        if not 0 <= self.replicas <= 200:
            raise ActionRefused(f"replicas={self.replicas} is outside 0..200; check the number")

    def build(self, current: JSON) -> tuple[Any, str, str, list[dict[str, Any]]]:
        before = int((current.get("spec") or {}).get("replicas", 1))
        summary = f"scale {self.deployment} {before} → {self.replicas} replicas"
        return (
            {"spec": {"replicas": self.replicas}},
            MERGE_PATCH,
            summary,
            [{"replicas": f"{before} → {self.replicas}"}],
        )

    def destructive(self, current: JSON) -> bool:
        return bool(self.replicas == 0)

    def warnings(self, current: JSON) -> list[str]:
        before = int((current.get("spec") or {}).get("replicas", 1))
        if self.replicas == 0:
            return ["scaling to zero takes the service down"]
        if self.replicas < before:
            return [f"scaling down removes {before - self.replicas} pod(s) and their in-flight requests"]
        return ["more pods mean more database connections: check the pool against max_connections"]

    def extra_checks(self, obj: JSON, plan: Plan, v: Verification) -> None:
        ready = int((obj.get("status") or {}).get("readyReplicas") or 0)
        v.add("ready replicas", ready == self.replicas, f"{ready} ready of {self.replicas} wanted")


class SetResources(_DeploymentAction):
    """``kubectl set resources`` (seed 4.1 and scenario 2): requests and limits of one container."""

    name = "k8s.set_resources"

    def __init__(
        self,
        deployment: str,
        *,
        limits: dict[str, str] | None = None,
        requests: dict[str, str] | None = None,
        container: str | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(deployment, namespace, **kwargs)
        self.limits = dict(limits or {})
        self.requests = dict(requests or {})
        self.container_name = container

    @classmethod
    def from_parameters(
        cls,
        deployment: str,
        *,
        memory_limit: str = "",
        memory_request: str = "",
        cpu_limit: str = "",
        cpu_request: str = "",
        **kwargs: Any,
    ) -> SetResources:
        """From a notebook's parameters, where an empty string means "leave it"."""
        limits = {k: v for k, v in (("memory", memory_limit), ("cpu", cpu_limit)) if v}
        requests = {k: v for k, v in (("memory", memory_request), ("cpu", cpu_request)) if v}
        return cls(deployment, limits=limits, requests=requests, **kwargs)

    @property
    def changes_anything(self) -> bool:
        return bool(self.limits or self.requests)

    def parameters(self) -> dict[str, Any]:
        return {
            "namespace": self._namespace_arg,
            "deployment": self.deployment,
            "container": self.container_name,
            "limits": self.limits,
            "requests": self.requests,
        }

    def preflight(self) -> None:
        super().preflight()
        if not self.limits and not self.requests:
            raise ActionRefused("give limits= and/or requests=, e.g. limits={'memory': '8Gi'}")
        for kind, values in (("limits", self.limits), ("requests", self.requests)):
            for res, qty in values.items():
                if res not in ("cpu", "memory", "ephemeral-storage"):
                    raise ActionRefused(f"{kind}: unknown resource {res!r}; use cpu, memory or ephemeral-storage")
                try:
                    if quantity(str(qty)) <= 0:
                        raise ValueError
                except ValueError as exc:
                    raise ActionRefused(f"{kind}.{res}={qty!r} is not a positive quantity (e.g. 2, 500m, 8Gi)") from exc

    def build(self, current: JSON) -> tuple[Any, str, str, list[dict[str, Any]]]:
        index, container = self.container(current, self.container_name)
        resources = copy.deepcopy(container.get("resources") or {})
        rows = []
        for kind, values in (("limits", self.limits), ("requests", self.requests)):
            section = resources.setdefault(kind, {})
            for res, qty in values.items():
                rows.append(
                    {"container": container.get("name"), "field": f"{kind}.{res}", "from": section.get(res), "to": qty}
                )
                section[res] = str(qty)
        for res in set(resources.get("limits", {})) & set(resources.get("requests", {})):
            if quantity(resources["requests"][res]) > quantity(resources["limits"][res]):
                raise ActionRefused(
                    f"requests.{res}={resources['requests'][res]} would exceed limits.{res}={resources['limits'][res]};"
                    " Kubernetes rejects that. Raise the limit too."
                )
        containers = copy.deepcopy(current["spec"]["template"]["spec"]["containers"])
        containers[index]["resources"] = resources
        body = {"spec": {"template": {"spec": {"containers": containers}}}}
        summary = f"set resources of {self.deployment}/{container.get('name')}: " + ", ".join(
            f"{r['field']}={r['to']}" for r in rows
        )
        return body, MERGE_PATCH, summary, rows

    def extra_checks(self, obj: JSON, plan: Plan, v: Verification) -> None:
        _, container = self.container(obj, self.container_name)
        res = container.get("resources") or {}
        wrong = [
            f"{kind}.{k}"
            for kind, values in (("limits", self.limits), ("requests", self.requests))
            for k, q in values.items()
            if str((res.get(kind) or {}).get(k)) != str(q)
        ]
        v.add("resources set", not wrong, "all set" if not wrong else f"not set: {wrong}")


class SetEnv(_DeploymentAction):
    """``kubectl set env`` for the runbook's switches (seed scenarios 1, 2 and 5).

    Only the known switches may be set this way (:data:`ENV_SWITCHES`); anything else belongs in
    a normal deploy, and secrets never go into plain environment variables.
    """

    name = "k8s.set_env"

    def __init__(
        self,
        deployment: str,
        env: dict[str, Any],
        *,
        container: str | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(deployment, namespace, **kwargs)
        self.env = {k: self._normalise(k, v) for k, v in dict(env).items()}
        self.container_name = container

    @staticmethod
    def _normalise(key: str, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value).strip()

    def parameters(self) -> dict[str, Any]:
        return {"namespace": self._namespace_arg, "deployment": self.deployment, "env": self.env}

    def preflight(self) -> None:
        super().preflight()
        if not self.env:
            raise ActionRefused("give at least one variable, e.g. env={'CIRCUIT_BREAKER_ENABLED': True}")
        for key, value in self.env.items():
            kind = ENV_SWITCHES.get(key)
            if kind is None:
                raise ActionRefused(
                    f"{key} is not one of the runbook's switches ({', '.join(ENV_SWITCHES)}); "
                    "change other settings through a normal deploy"
                )
            if kind == "bool" and value.lower() not in ("true", "false"):
                raise ActionRefused(f"{key} must be true or false, not {value!r}")
            if kind == "int" and (not value.isdigit() or not 1 <= int(value) <= 1000):
                raise ActionRefused(f"{key} must be a whole number from 1 to 1000, not {value!r}")

    def build(self, current: JSON) -> tuple[Any, str, str, list[dict[str, Any]]]:
        index, container = self.container(current, self.container_name)
        env = copy.deepcopy(container.get("env") or [])
        rows = []
        for key, value in self.env.items():
            existing = next((e for e in env if e.get("name") == key), None)
            rows.append(
                {"container": container.get("name"), "name": key, "from": (existing or {}).get("value"), "to": value}
            )
            if existing is None:
                env.append({"name": key, "value": value})
            else:
                existing.pop("valueFrom", None)
                existing["value"] = value
        containers = copy.deepcopy(current["spec"]["template"]["spec"]["containers"])
        containers[index]["env"] = env
        body = {"spec": {"template": {"spec": {"containers": containers}}}}
        summary = f"set env on {self.deployment}/{container.get('name')}: " + ", ".join(
            f"{k}={v}" for k, v in self.env.items()
        )
        return body, MERGE_PATCH, summary, rows

    def extra_checks(self, obj: JSON, plan: Plan, v: Verification) -> None:
        _, container = self.container(obj, self.container_name)
        have = {e.get("name"): e.get("value") for e in container.get("env") or []}
        wrong = [k for k, val in self.env.items() if have.get(k) != val]
        v.add("environment set", not wrong, "all set" if not wrong else f"not set: {wrong}")


class RolloutRestart(_DeploymentAction):
    """``kubectl rollout restart`` (seed 4.1, scenario 2): new pods from the same template."""

    name = "k8s.rollout_restart"

    def __init__(self, deployment: str, namespace: str | None = None, **kwargs: Any) -> None:
        super().__init__(deployment, namespace, **kwargs)
        self.restarted_at = now_iso()

    def parameters(self) -> dict[str, Any]:
        return {"namespace": self._namespace_arg, "deployment": self.deployment}

    def build(self, current: JSON) -> tuple[Any, str, str, list[dict[str, Any]]]:
        self.restarted_at = now_iso()
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: self.restarted_at}}}}}
        replicas = int((current.get("spec") or {}).get("replicas", 1))
        return (
            body,
            MERGE_PATCH,
            f"restart the {replicas} pod(s) of {self.deployment}, rolling",
            [{"annotation": RESTARTED_AT, "to": self.restarted_at}],
        )

    def warnings(self, current: JSON) -> list[str]:
        return ["every pod is replaced, one rolling step at a time; in-memory state (caches, sessions) is lost"]


class RolloutUndo(_DeploymentAction):
    """``kubectl rollout undo`` (seed 4.1): back to the previous revision, or ``to_revision``.

    Like kubectl, it copies the pod template of the target revision's ReplicaSet into the
    deployment and its annotations (change-cause), without the controller's own (a JSON patch
    replacing ``spec.template`` and ``metadata.annotations``); the controller then scales that
    ReplicaSet back up. The verification waits for the rollout and checks the images are the
    target revision's and the pods are ready.
    """

    name = "k8s.rollout_undo"

    def __init__(
        self, deployment: str, to_revision: int | None = None, namespace: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(deployment, namespace, **kwargs)
        self.to_revision = None if to_revision is None else int(to_revision)

    def parameters(self) -> dict[str, Any]:
        return {"namespace": self._namespace_arg, "deployment": self.deployment, "to_revision": self.to_revision}

    def history(self, current: JSON) -> list[tuple[int, JSON]]:
        """(revision, ReplicaSet) of this deployment, oldest first."""
        selector = ((current.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        uid = (current.get("metadata") or {}).get("uid")
        items = (
            self.kube.get(
                f"/apis/apps/v1/namespaces/{self.namespace}/replicasets", labelSelector=_selector_string(selector)
            ).get("items")
            or []
        )
        out = []
        for rs in items:
            owners = (rs.get("metadata") or {}).get("ownerReferences") or []
            if owners and uid and not any(o.get("uid") == uid for o in owners):
                continue
            rev = ((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
            if rev is not None and str(rev).isdigit():
                out.append((int(rev), rs))
        return sorted(out, key=lambda p: p[0])

    def _target(self, current: JSON) -> tuple[int, int | None, JSON]:
        history = self.history(current)
        if not history:
            raise ActionRefused(f"deployment {self.deployment} has no revision history (no ReplicaSets found)")
        current_key = _template_key((current.get("spec") or {}).get("template") or {})
        cur_rev_text = ((current.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
        cur_rev = int(cur_rev_text) if cur_rev_text and str(cur_rev_text).isdigit() else None
        if cur_rev is None:
            cur_rev = next(
                (r for r, rs in reversed(history) if _template_key(rs["spec"]["template"]) == current_key), None
            )
        known = [r for r, _ in history]
        if self.to_revision is not None:
            match = [rs for r, rs in history if r == self.to_revision]
            if not match:
                raise ActionRefused(f"revision {self.to_revision} of {self.deployment} does not exist; known: {known}")
            return self.to_revision, cur_rev, match[0]
        older = [(r, rs) for r, rs in history if cur_rev is None or r < cur_rev]
        older = [(r, rs) for r, rs in older if _template_key(rs["spec"]["template"]) != current_key]
        if not older:
            raise ActionRefused(f"{self.deployment} has no revision before {cur_rev} to go back to; known: {known}")
        rev, rs = older[-1]
        return rev, cur_rev, rs

    def build(self, current: JSON) -> tuple[Any, str, str, list[dict[str, Any]]]:
        rev, cur_rev, rs = self._target(current)
        template = _template_key(rs["spec"]["template"])
        # As kubectl does: the deployment takes the target revision's annotations (its change-cause
        # above all), without the controller's own; the new revision then says what it runs.
        kept = {
            k: v
            for k, v in ((rs.get("metadata") or {}).get("annotations") or {}).items()
            if k not in ROLLBACK_SKIP_ANNOTATIONS
        }
        has_annotations = (current.get("metadata") or {}).get("annotations") is not None
        body = [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace" if has_annotations else "add", "path": "/metadata/annotations", "value": kept},
        ]
        now_images = _images((current.get("spec") or {}).get("template") or {})
        rows: list[dict[str, Any]] = [
            {"": "now", "revision": cur_rev, "images": ", ".join(now_images)},
            {"": "after", "revision": rev, "images": ", ".join(_images(template))},
        ]
        self._target_template = template
        self._target_revision = rev
        return body, JSON_PATCH, f"roll {self.deployment} back from revision {cur_rev} to {rev}", rows

    def plan(self) -> Plan:
        plan = super().plan()
        plan.details["target_revision"] = self._target_revision
        plan.details["target_images"] = _images(self._target_template)
        return plan

    def extra_checks(self, obj: JSON, plan: Plan, v: Verification) -> None:
        images = _images((obj.get("spec") or {}).get("template") or {})
        want = plan.details["target_images"]
        v.add(
            "images are the target revision's", images == want, f"{images} (revision {plan.details['target_revision']})"
        )
        selector = _selector_string(((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        replicas = int((obj.get("spec") or {}).get("replicas", 1))

        def ready() -> tuple[bool, str]:
            pods = [p for p in self.pods(selector) if _images(p) == want and _pod_ready(p)]
            return len(pods) >= replicas, f"{len(pods)} of {replicas} pods ready with {want}"

        ok, detail = self.wait("pods ready", ready, timeout_s=min(self.timeout_s, 60.0))
        v.add("pods ready", ok, detail)


class DeletePod(_KubeAction):
    """``kubectl delete pod`` (seed 4.1): its controller starts a replacement.

    A pod without a controller does not come back, so deleting one is destructive.
    """

    name = "k8s.delete_pod"

    def __init__(self, pod: str, namespace: str | None = None, **kwargs: Any) -> None:
        super().__init__(namespace, **kwargs)
        self.pod = pod

    @property
    def target(self) -> str:
        return f"{self.namespace}/pod/{self.pod}"

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods/{self.pod}"

    def parameters(self) -> dict[str, Any]:
        return {"namespace": self._namespace_arg, "pod": self.pod}

    def preflight(self) -> None:
        super().preflight()
        _check_name(self.pod, "pod")

    def plan(self) -> Plan:
        pod = self.kube.get(self.path)
        self.kube.delete(self.path, dry_run=True)
        owners = (pod.get("metadata") or {}).get("ownerReferences") or []
        controller = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
        warnings = []
        if controller is None:
            warnings.append("this pod has no controller: it will NOT be replaced")
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"delete pod {self.pod}"
            + (f" ({controller['kind']} {controller['name']} replaces it)" if controller else ""),
            changes=[
                {
                    "pod": self.pod,
                    "phase": (pod.get("status") or {}).get("phase"),
                    "ready": _pod_ready(pod),
                    "node": (pod.get("spec") or {}).get("nodeName"),
                    "owner": f"{controller['kind']}/{controller['name']}" if controller else None,
                }
            ],
            warnings=warnings,
            destructive=controller is None,
            details={"uid": (pod.get("metadata") or {}).get("uid"), "labels": labels, "owned": controller is not None},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        self.kube.delete(self.path, body={"preconditions": {"uid": plan.details["uid"]}})
        return {"deleted": self.pod, "uid": plan.details["uid"]}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        v = Verification()

        def gone() -> tuple[bool, str]:
            try:
                pod = self.kube.get(self.path)
            except ActionRefused:
                return True, "pod gone"
            same = (pod.get("metadata") or {}).get("uid") == result["uid"]
            return not same, "still terminating" if same else "replaced by a new pod of the same name"

        ok, detail = self.wait("pod gone", gone)
        v.add("pod deleted", ok, detail)
        if plan.details["owned"]:
            ok2, detail2 = self.wait("replacement ready", lambda: _replacement_ready(self, plan))
            v.add("replacement ready", ok2, detail2)
        return v


def _replacement_ready(action: _KubeAction, plan: Plan) -> tuple[bool, str]:
    labels = {k: v for k, v in plan.details["labels"].items() if k != "statefulset.kubernetes.io/pod-name"}
    pods = action.pods(_selector_string(labels)) if labels else []
    fresh = [p for p in pods if (p.get("metadata") or {}).get("uid") != plan.details["uid"] and _pod_ready(p)]
    return bool(fresh), f"{len(fresh)} ready pod(s) with labels {labels}"


class DeletePodsRolling(_KubeAction):
    """Delete every pod of a label, at most ``max_unavailable`` at a time (seed 4.1, "restart all pods").

    The seed's ``kubectl delete pods -l app=vcci-api`` deletes them all at once, which is an outage
    for as long as the replacements take to start. This waits, after each batch, until the number
    of ready pods is back where it was before deleting the next. Deleting all pods of a label is
    destructive: it needs the typed incident ID.
    """

    name = "k8s.delete_pods_rolling"

    def __init__(self, selector: str, namespace: str | None = None, *, max_unavailable: int = 1, **kwargs: Any) -> None:
        super().__init__(namespace, **kwargs)
        self.selector = selector
        self.max_unavailable: Any = max_unavailable  # converted by preflight

    @property
    def target(self) -> str:
        return f"{self.namespace}/pods/{self.selector}"

    def parameters(self) -> dict[str, Any]:
        return {"namespace": self._namespace_arg, "selector": self.selector, "max_unavailable": self.max_unavailable}

    def preflight(self) -> None:
        super().preflight()
        if not self.selector or not re.match(
            r"^[A-Za-z0-9_./-]+(!?=|==)[A-Za-z0-9_.-]*(,[A-Za-z0-9_./-]+(!?=|==)[A-Za-z0-9_.-]*)*$", self.selector
        ):
            raise ActionRefused(
                f"selector {self.selector!r} is not a label selector like app=vcci-api; an empty one would "
                "select every pod in the namespace"
            )
        self.max_unavailable = whole_number(self.max_unavailable, "max_unavailable", minimum=1, maximum=100)

    def plan(self) -> Plan:
        pods = self.pods(self.selector)
        if not pods:
            raise ActionRefused(f"no pods match {self.selector} in {self.namespace}")
        for p in pods:
            self.kube.delete(f"/api/v1/namespaces/{self.namespace}/pods/{p['metadata']['name']}", dry_run=True)
        ready = sum(_pod_ready(p) for p in pods)
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"delete all {len(pods)} pods of {self.selector}, at most {self.max_unavailable} down at once",
            changes=[
                {"pod": p["metadata"]["name"], "phase": (p.get("status") or {}).get("phase"), "ready": _pod_ready(p)}
                for p in pods
            ],
            warnings=[f"{ready} pod(s) ready now; capacity drops by up to {self.max_unavailable} while this runs"],
            destructive=True,
            details={"pods": [[p["metadata"]["name"], p["metadata"].get("uid")] for p in pods], "ready_before": ready},
        )

    def _ready_others(self, deleted: set[str]) -> int:
        return sum(1 for p in self.pods(self.selector) if p["metadata"].get("uid") not in deleted and _pod_ready(p))

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        pods = plan.details["pods"]
        want = int(plan.details["ready_before"])
        deleted: set[str] = set()
        done: list[str] = []
        for i in range(0, len(pods), self.max_unavailable):
            batch = pods[i : i + self.max_unavailable]
            for name, uid in batch:
                try:
                    self.kube.delete(
                        f"/api/v1/namespaces/{self.namespace}/pods/{name}", body={"preconditions": {"uid": uid}}
                    )
                except ActionRefused:
                    pass  # already gone
                except KubeApiError as exc:
                    if exc.status != 409:  # 409: the uid changed, i.e. the pod was already replaced
                        raise
                deleted.add(uid)
                done.append(name)
            ok, detail = self.wait("replacements ready", lambda: self._check_ready(deleted, want))
            if not ok:
                left = [n for n, _ in pods if n not in done]
                raise KubeApiError(
                    f"stopped after deleting {len(done)} pod(s): {detail}. The other {len(left)} pod(s) were left "
                    "alone; look at why the new pods are not ready (events, logs) before going on.",
                    0,
                )
        return {"deleted": done}

    def _check_ready(self, deleted: set[str], want: int) -> tuple[bool, str]:
        n = self._ready_others(deleted)
        return n >= want, f"{n} of {want} replacement pods ready"

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        uids = {uid for _, uid in plan.details["pods"]}
        pods = self.pods(self.selector)
        old = [p["metadata"]["name"] for p in pods if p["metadata"].get("uid") in uids]
        ready = sum(_pod_ready(p) for p in pods if p["metadata"].get("uid") not in uids)
        v = Verification()
        v.add("old pods gone", not old, "all replaced" if not old else f"still there: {old}")
        want = int(plan.details["ready_before"])
        v.add("ready pods back", ready >= want, f"{ready} ready (were {want})")
        return v

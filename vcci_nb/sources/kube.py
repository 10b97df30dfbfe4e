"""Kubernetes: the seed's kubectl checks of Phases 1, 3 and 6, read-only.

The client is :class:`vcci_nb.kubeapi.KubeClient` (the one the actions use too), built per
gather as the profile's read-only identity, never at import time, and every request carries the
gather's timeout. Answers are read as raw JSON rather than deserialised into the official
client's model objects, which is what makes 5,000 pods a fraction of a second instead of
several seconds.

Each ``gather_*`` returns one Evidence named ``kubernetes.<what>``. The JSON-to-table parsing
is in :mod:`vcci_nb.sources.kube_frames` (pure; its names are re-exported here). The views of one
pod list (pods, containers, OOMKilled containers) are one table, ``POD_VIEWS``, that
:func:`gather_workload` serves from a single list call.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, kube_settings, resolve_profile
from vcci_nb.errors import SourceMisconfigured
from vcci_nb.evidence import Evidence, Window, utcnow
from vcci_nb.kubeapi import KubeClient, parse_quantity
from vcci_nb.logparse import group_signatures, parse_lines
from vcci_nb.redact import redact
from vcci_nb.sources._core import collect, not_configured, setting_for
from vcci_nb.sources.kube_frames import CHANGE_CAUSE_ANNOTATION as CHANGE_CAUSE_ANNOTATION
from vcci_nb.sources.kube_frames import REVISION_ANNOTATION as REVISION_ANNOTATION
from vcci_nb.sources.kube_frames import JSONDict
from vcci_nb.sources.kube_frames import containers_frame as containers_frame
from vcci_nb.sources.kube_frames import events_frame as events_frame
from vcci_nb.sources.kube_frames import group_events as group_events
from vcci_nb.sources.kube_frames import nodes_frame as nodes_frame
from vcci_nb.sources.kube_frames import oomkilled_frame as oomkilled_frame
from vcci_nb.sources.kube_frames import pod_status_text as pod_status_text
from vcci_nb.sources.kube_frames import pods_frame as pods_frame
from vcci_nb.sources.kube_frames import rollout_frame as rollout_frame

SOURCE = "kubernetes"


# --- client ---------------------------------------------------------------------------------------


def api_client(
    profile: ProfileLike = None, *, mitigation: bool = False, timeout: float = DEFAULT_TIMEOUT_S
) -> KubeClient:
    """The one Kubernetes client (:class:`vcci_nb.kubeapi.KubeClient`) as the profile's read-only
    identity (or, with ``mitigation``, its on-call identity)."""
    return KubeClient.connect(profile, mitigation=mitigation, timeout_s=timeout)


def _get_json(client: KubeClient, path: str, timeout: float, query: dict[str, Any] | None = None) -> JSONDict:
    """GET a path of the API server and parse the JSON body ourselves (no model objects)."""
    return client.get(path, timeout_s=timeout, **(query or {}))


def _get_text(client: KubeClient, path: str, timeout: float, query: dict[str, Any] | None = None) -> str:
    return client.get_text(path, timeout_s=timeout, **(query or {}))


def _namespace(profile: ProfileLike, namespace: str | None) -> str:
    return namespace or resolve_profile(profile).namespace


def _kube_gather(
    profile: ProfileLike,
    what: str,
    call: str,
    build: Callable[[Any], pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]],
    timeout: float,
    *,
    window: Window | None = None,
    meta: dict[str, Any] | None = None,
) -> Evidence:
    name = f"kubernetes.{what}"
    try:
        settings = kube_settings(profile)
    except Exception as exc:  # a broken profile is still evidence, not a crash
        return not_configured(name, SOURCE, redact(str(exc)), query=call)
    if not settings.found:
        return not_configured(
            name,
            SOURCE,
            "KUBECONFIG is not set, ~/.kube/config does not exist and this is not running in a cluster",
            query=call,
        )
    target = settings.describe()
    var = setting_for(profile, "kubernetes", "kubeconfig_env")
    setting = f"the kubeconfig {var} names (context {settings.context or '(current)'})"

    def fetch() -> pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]:
        check_context(settings.kubeconfig, settings.context, profile)
        with KubeClient(settings=settings, mitigation=False, timeout_s=timeout) as client:
            return build(client)

    return collect(name, SOURCE, call, fetch, timeout=timeout, target=target, window=window, meta=meta, setting=setting)


def check_context(kubeconfig: str | None, context: str | None, profile: ProfileLike = None) -> None:
    """Raise :class:`SourceMisconfigured` naming the contexts there are when ``context`` is not in the file.

    The client's own error ("Expected object with name X in ... contexts list") names neither what
    the file has nor which setting chose the missing one; this says both.
    """
    if not kubeconfig:
        return
    import yaml

    try:
        doc = yaml.safe_load(Path(kubeconfig).read_text()) or {}
    except OSError as exc:
        raise SourceMisconfigured(
            f"the kubeconfig {kubeconfig} cannot be read ({exc.strerror})",
            fix=f"point {setting_for(profile, 'kubernetes', 'kubeconfig_env')} at a readable kubeconfig file.",
        ) from exc
    except yaml.YAMLError as exc:
        raise SourceMisconfigured(
            f"the kubeconfig {kubeconfig} is not valid YAML ({type(exc).__name__})",
            fix=f"point {setting_for(profile, 'kubernetes', 'kubeconfig_env')} at a valid kubeconfig file.",
        ) from exc
    if not isinstance(doc, dict):
        return  # let the client say what it makes of it
    have = [str(c.get("name")) for c in doc.get("contexts") or [] if isinstance(c, dict) and c.get("name")]
    wanted = context or doc.get("current-context")
    try:
        prof_name = resolve_profile(profile).name
    except Exception:
        prof_name = "<profile>"
    key = f"connections.kubernetes.context in parameters/environments/{prof_name}.yaml"
    choices = ", ".join(have) if have else "none"
    if not wanted:
        raise SourceMisconfigured(
            f"the profile names no kube context and the kubeconfig {kubeconfig} has no current-context "
            f"(it has: {choices})",
            fix=f"Set {key} to one of: {choices}.",
        )
    if wanted not in have:
        raise SourceMisconfigured(
            f"the kubeconfig {kubeconfig} has no context {wanted!r}; the contexts it has: {choices}",
            fix=f"Set {key} to one of: {choices} (or point "
            f"{setting_for(profile, 'kubernetes', 'kubeconfig_env')} at a kubeconfig that has {wanted!r}).",
        )


def _list_pods(client: Any, namespace: str, selector: str | None, timeout: float) -> list[JSONDict]:
    data = _get_json(client, f"/api/v1/namespaces/{namespace}/pods", timeout, {"labelSelector": selector})
    items: list[JSONDict] = data.get("items") or []
    return items


def _call(verb: str, namespace: str, selector: str | None = None, extra: str = "") -> str:
    sel = f" -l {selector}" if selector else ""
    return f"kubectl {verb} -n {namespace}{sel}{extra}"


# --- pods, containers, nodes, top -------------------------------------------------------------------


#: The views of one pod list: what -> (the kubectl flags it stands for, the table built from the pods).
POD_VIEWS: dict[str, tuple[str, Callable[[list[JSONDict]], pd.DataFrame]]] = {
    "pods": (" -o wide", pods_frame),
    "containers": (" -o jsonpath='{.items[*].status.containerStatuses}'", containers_frame),
    "oomkilled": (
        ' -o jsonpath=\'{range .items[*]}{.metadata.name}{"\\t"}'
        '{.status.containerStatuses[*].lastState.terminated.reason}{"\\n"}{end}\' | grep OOMKilled',
        oomkilled_frame,
    ),
}


def _pod_view(what: str, profile: ProfileLike, namespace: str | None, selector: str | None, timeout: float) -> Evidence:
    ns = _namespace(profile, namespace)
    flags, frame = POD_VIEWS[what]
    call = _call("get pods", ns, selector, flags)
    return _kube_gather(profile, what, call, lambda c: frame(_list_pods(c, ns, selector, timeout)), timeout)


def gather_pods(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl get pods``: phase, STATUS, ready, restarts, age, node and last termination reason."""
    return _pod_view("pods", profile, namespace, selector, timeout)


def gather_containers(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """One row per container with its state, restarts, last termination and resources."""
    return _pod_view("containers", profile, namespace, selector, timeout)


def gather_oomkilled(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """Containers whose last (or current) termination was OOMKilled, with restarts and memory limit."""
    return _pod_view("oomkilled", profile, namespace, selector, timeout)


def gather_workload(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Evidence]:
    """Every view in ``POD_VIEWS`` (pods, containers, OOMKilled containers) from ONE pod list, by evidence name.

    The same Evidence as :func:`gather_pods`, :func:`gather_containers` and :func:`gather_oomkilled`,
    for one third of the API calls: what a triage of a big namespace wants.
    """
    ns = _namespace(profile, namespace)
    box: dict[str, list[JSONDict]] = {}

    def listing(client: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        box["items"] = _list_pods(client, ns, selector, timeout)
        return pods_frame(box["items"]), {}

    pods = _kube_gather(profile, "pods", _call("get pods", ns, selector, POD_VIEWS["pods"][0]), listing, timeout)
    out = {"kubernetes.pods": pods}
    for what, (flags, frame) in POD_VIEWS.items():
        if what == "pods":
            continue
        name = f"kubernetes.{what}"
        if not pods.ok:
            out[name] = Evidence(
                name=name, source=SOURCE, query=pods.query, status=pods.status,
                message=pods.message, meta={"kind": name},
            )  # fmt: skip
            continue
        out[name] = Evidence(
            name=name,
            source=SOURCE,
            query=_call("get pods", ns, selector, flags),
            frame=frame(box["items"]),
            collected_at=pods.collected_at,
            meta={"kind": name, "from": "kubernetes.pods"},
        )
    return out


def gather_nodes(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``kubectl get nodes`` and ``describe nodes | grep Conditions``: readiness and pressure per node."""
    return _kube_gather(
        profile,
        "nodes",
        "kubectl get nodes; kubectl describe nodes | grep -A 5 Conditions",
        lambda c: nodes_frame(_get_json(c, "/api/v1/nodes", timeout).get("items") or []),
        timeout,
    )


def gather_top_nodes(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``kubectl top nodes``: CPU cores and memory bytes in use, and their share of allocatable."""

    def build(client: Any) -> pd.DataFrame:
        metrics = _get_json(client, "/apis/metrics.k8s.io/v1beta1/nodes", timeout).get("items") or []
        nodes = nodes_frame(_get_json(client, "/api/v1/nodes", timeout).get("items") or [])
        rows = [
            {
                "node": (m.get("metadata") or {}).get("name"),
                "cpu_cores": parse_quantity((m.get("usage") or {}).get("cpu")),
                "memory_bytes": parse_quantity((m.get("usage") or {}).get("memory")),
            }
            for m in metrics
        ]
        frame = pd.DataFrame(rows, columns=["node", "cpu_cores", "memory_bytes"])
        if not nodes.empty:
            frame = frame.merge(nodes[["node", "cpu_allocatable", "memory_allocatable_bytes"]], on="node", how="left")
            frame["cpu_ratio"] = frame["cpu_cores"] / frame["cpu_allocatable"]
            frame["memory_ratio"] = frame["memory_bytes"] / frame["memory_allocatable_bytes"]
        return frame.sort_values("cpu_cores", ascending=False).reset_index(drop=True)

    return _kube_gather(profile, "top_nodes", "kubectl top nodes", build, timeout)


def gather_top_pods(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl top pods``: usage per pod, against the sum of its containers' limits."""
    ns = _namespace(profile, namespace)

    def build(client: Any) -> pd.DataFrame:
        metrics = (
            _get_json(
                client, f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods", timeout, {"labelSelector": selector}
            ).get("items")
            or []
        )
        rows = []
        for m in metrics:
            conts = m.get("containers") or []
            rows.append(
                {
                    "pod": (m.get("metadata") or {}).get("name"),
                    "cpu_cores": sum(parse_quantity((c.get("usage") or {}).get("cpu")) for c in conts),
                    "memory_bytes": sum(parse_quantity((c.get("usage") or {}).get("memory")) for c in conts),
                }
            )
        frame = pd.DataFrame(rows, columns=["pod", "cpu_cores", "memory_bytes"])
        conts = containers_frame(_list_pods(client, ns, selector, timeout))
        if not conts.empty:
            limits = conts.groupby("pod", as_index=False)[["cpu_limit", "memory_limit_bytes"]].sum(min_count=1)
            frame = frame.merge(limits, on="pod", how="left")
            frame["cpu_ratio"] = frame["cpu_cores"] / frame["cpu_limit"]
            frame["memory_ratio"] = frame["memory_bytes"] / frame["memory_limit_bytes"]
        return frame.sort_values("memory_bytes", ascending=False).reset_index(drop=True)

    return _kube_gather(profile, "top_pods", _call("top pods", ns, selector), build, timeout)


def gather_events(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    window: Window | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """Events of the namespace (seen in ``window`` when given), newest first; see :func:`group_events`."""
    ns = _namespace(profile, namespace)

    def build(client: Any) -> pd.DataFrame:
        frame = events_frame(_get_json(client, f"/api/v1/namespaces/{ns}/events", timeout).get("items") or [])
        if window is not None and not frame.empty:
            keep = frame["last_seen"].isna() | (frame["last_seen"] >= pd.Timestamp(window.start))
            frame = frame[keep].reset_index(drop=True)
        return frame

    return _kube_gather(
        profile, "events", f"kubectl get events -n {ns} --sort-by=.lastTimestamp", build, timeout, window=window
    )


def gather_rollout_history(
    profile: ProfileLike = None,
    *,
    deployment: str | None = None,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl rollout history``, with what changed between revisions (image, env, resources).

    ``meta.current_revision`` is the deployment's revision now.
    """
    prof = resolve_profile(profile)
    ns = _namespace(prof, namespace)
    dep = deployment or prof.names.api_deployment

    def build(client: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        d = _get_json(client, f"/apis/apps/v1/namespaces/{ns}/deployments/{dep}", timeout)
        match = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in match.items()) or None
        rss = _get_json(client, f"/apis/apps/v1/namespaces/{ns}/replicasets", timeout, {"labelSelector": selector})
        frame = rollout_frame(d, rss.get("items") or [])
        ann = (d.get("metadata") or {}).get("annotations") or {}
        status = d.get("status") or {}
        return frame, {
            "deployment": dep,
            "current_revision": int(ann.get(REVISION_ANNOTATION) or 0),
            "replicas": int(status.get("replicas") or 0),
            "ready_replicas": int(status.get("readyReplicas") or 0),
            "updated_replicas": int(status.get("updatedReplicas") or 0),
            "unavailable_replicas": int(status.get("unavailableReplicas") or 0),
        }

    return _kube_gather(prof, "rollout_history", f"kubectl rollout history deployment/{dep} -n {ns}", build, timeout)


# --- logs -------------------------------------------------------------------------------------------


def _read_logs(
    client: Any,
    ns: str,
    pod: str,
    container: str,
    previous: bool,
    tail: int,
    since_s: int | None,
    timeout: float,
) -> str:
    return _get_text(
        client,
        f"/api/v1/namespaces/{ns}/pods/{pod}/log",
        timeout,
        {
            "container": container,
            "tailLines": tail,
            "timestamps": "true",
            "previous": "true" if previous else None,
            "sinceSeconds": since_s,
        },
    )


def gather_logs(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    tail: int = 500,
    previous: bool | str = "auto",
    window: Window | None = None,
    max_pods: int = 30,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl logs -l SELECTOR --tail N --timestamps`` across every pod, parsed.

    ``previous``: ``"auto"`` also reads the previous instance of each container that restarted
    (``--previous``); True or False forces it. Frame: ``pod, container, previous, timestamp, level,
    message``; lines are redacted. ``meta.failed`` lists the pods whose logs could not be read.
    """
    prof = resolve_profile(profile)
    ns = _namespace(prof, namespace)
    sel = selector or prof.names.app_selector

    def build(client: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        pods = _list_pods(client, ns, sel, timeout)[:max_pods]
        jobs: list[tuple[str, str, bool]] = []
        for pod in pods:
            name = str((pod.get("metadata") or {}).get("name"))
            restarts = {
                cs.get("name"): int(cs.get("restartCount") or 0)
                for cs in (pod.get("status") or {}).get("containerStatuses") or []
            }
            for c in (pod.get("spec") or {}).get("containers") or []:
                cname = str(c.get("name"))
                jobs.append((name, cname, False))
                want_prev = previous is True or (previous == "auto" and restarts.get(cname, 0) > 0)
                if want_prev:
                    jobs.append((name, cname, True))
        since_s = None
        if window is not None:
            since_s = max(int((utcnow() - window.start).total_seconds()), 1)

        def one(job: tuple[str, str, bool]) -> tuple[tuple[str, str, bool], str | None, str]:
            try:
                return job, _read_logs(client, ns, job[0], job[1], job[2], tail, since_s, timeout), ""
            except Exception as exc:
                return job, None, redact(type(exc).__name__ + ": " + str(exc).splitlines()[0] if str(exc) else "")

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(one, jobs))
        pods_col: list[str] = []
        conts: list[str] = []
        prevs: list[bool] = []
        lines: list[str] = []
        failed: list[dict[str, Any]] = []
        for (pod_name, cont, prev), text, err in results:
            if text is None:
                failed.append({"pod": pod_name, "container": cont, "previous": prev, "error": err})
                continue
            got = [redact(line) for line in text.splitlines() if line.strip()]
            lines.extend(got)
            pods_col.extend([pod_name] * len(got))
            conts.extend([cont] * len(got))
            prevs.extend([prev] * len(got))
        parsed = parse_lines(lines)
        parsed.insert(0, "previous", prevs)
        parsed.insert(0, "container", conts)
        parsed.insert(0, "pod", pods_col)
        if window is not None and not parsed.empty:
            ts = parsed["timestamp"]
            parsed = parsed[ts.isna() | ((ts >= pd.Timestamp(window.start)) & (ts <= pd.Timestamp(window.end)))]
            parsed = parsed.reset_index(drop=True)
        hard_failures = [f for f in failed if not f["previous"]]
        if jobs and len(hard_failures) == sum(1 for j in jobs if not j[2]):
            raise RuntimeError(f"no pod's logs could be read: {hard_failures[0]['error']}")
        return parsed, {"pods": len(pods), "streams": len(jobs), "failed": failed, "selector": sel}

    call = _call(
        "logs", ns, sel, f" --tail={tail} --timestamps" + (" (+ --previous where restarted)" if previous else "")
    )
    return _kube_gather(prof, "logs", call, build, timeout, window=window)


def gather_error_signatures(
    profile: ProfileLike = None,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    tail: int = 500,
    window: Window | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """``kubectl logs ... | grep ERROR``, grouped: one row per error signature with count, first and last seen."""
    logs = gather_logs(profile, namespace=namespace, selector=selector, tail=tail, window=window, timeout=timeout)
    if not logs.ok:
        logs.name = "kubernetes.error_signatures"
        logs.meta["kind"] = "kubernetes.error_signatures"
        return logs
    return Evidence(
        name="kubernetes.error_signatures",
        source=SOURCE,
        query=logs.query + " | grep ERROR | signatures",
        frame=group_signatures(logs.frame),
        window=window,
        collected_at=logs.collected_at,
        elapsed_s=logs.elapsed_s,
        meta={**logs.meta, "lines": len(logs.frame.index), "kind": "kubernetes.error_signatures"},
    )


# --- ingress ----------------------------------------------------------------------------------------


def gather_ingress(
    profile: ProfileLike = None,
    *,
    name: str | None = None,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """The ingress' annotations (rate limits, allow-lists, maintenance) as ``key, value`` rows."""
    prof = resolve_profile(profile)
    ns = _namespace(prof, namespace)
    ing = name or prof.names.ingress

    def build(client: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        d = _get_json(client, f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{ing}", timeout)
        ann = (d.get("metadata") or {}).get("annotations") or {}
        frame = pd.DataFrame({"annotation": list(ann), "value": [redact(str(v)) for v in ann.values()]})
        hosts = [r.get("host") for r in (d.get("spec") or {}).get("rules") or [] if r.get("host")]
        return frame, {"ingress": ing, "hosts": hosts}

    return _kube_gather(
        prof, "ingress", f"kubectl get ingress {ing} -n {ns} -o jsonpath='{{.metadata.annotations}}'", build, timeout
    )


def gather_configmap(
    profile: ProfileLike = None,
    *,
    name: str,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """A ConfigMap's data as ``key, value`` rows (the decision tree's "check ConfigMaps")."""
    ns = _namespace(profile, namespace)

    def build(client: Any) -> pd.DataFrame:
        d = _get_json(client, f"/api/v1/namespaces/{ns}/configmaps/{name}", timeout)
        data = d.get("data") or {}
        return pd.DataFrame({"key": list(data), "value": [redact(str(v)) for v in data.values()]})

    return _kube_gather(profile, f"configmap.{name}", f"kubectl get configmap {name} -n {ns} -o yaml", build, timeout)


def gather_version(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``/version``: is the API server reachable with our credentials (used by ``vcci-nb check``)."""

    def build(client: Any) -> pd.DataFrame:
        # /version is readable anonymously; ask a namespaced list too so bad credentials show.
        v = _get_json(client, "/version", timeout)
        ns = resolve_profile(profile).namespace
        _get_json(client, f"/api/v1/namespaces/{ns}/pods", timeout, {"limit": 1})
        return pd.DataFrame([{"git_version": v.get("gitVersion"), "platform": v.get("platform")}])

    return _kube_gather(profile, "version", "kubectl version; kubectl get pods --limit=1", build, timeout)

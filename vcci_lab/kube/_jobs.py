# ruff: noqa: E501  (messages are the API server's and the kubelet's exact wording)
"""Jobs that run: the Job controller, and the kubelet's part for pods whose container is a local process.

A Job's pods are the emulator's only pods that really run something: their first container's
``command`` + ``args`` run as a local process (see :mod:`._runner`), with the environment the
container spec asks for, its ``env`` and ``envFrom`` resolved from the Secrets and ConfigMaps stored
here, and the kubelet's own errors when one is missing (the pod stays Pending in
``CreateContainerConfigError`` and the kubelet retries). The Job controller follows
``pkg/controller/job`` (v1.31): pods labelled ``batch.kubernetes.io/job-name``, ``job-name``,
``batch.kubernetes.io/controller-uid`` and ``controller-uid``; a pod that fails or is deleted before
it succeeds counts as failed (``podReplacementPolicy: TerminatingOrFailed``) and is replaced after a
back-off while ``failed <= backoffLimit``; ``activeDeadlineSeconds`` kills the running pods;
``FailureTarget``/``SuccessCriteriaMet`` come first, ``Failed``/``Complete`` once no pod is left
running; ``ttlSecondsAfterFinished`` deletes the Job and, through the garbage collector, its pods.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from vcci_lab.kube import _logs, _runner
from vcci_lab.kube._common import (
    CREATE_DELAY,
    NODES,
    PODS,
    PodRT,
    WorldBase,
    _qos,
    _sha,
    controller_uid,
    pod_conditions,
)
from vcci_lab.kube._store import Store, copy_json
from vcci_lab.kube._util import JSON, bad_request, parse_quantity, parse_time, rfc3339, safe_suffix

JOBS = "batch/jobs"
SECRETS = "/secrets"
CONFIGMAPS = "/configmaps"
#: A failed pod's replacement waits 10 s, 20 s, 40 s ... (capped at 6 min) in a real cluster;
#: here 1 s, 2 s, 4 s, capped at 8 s.
BACKOFF_BASE = 1.0
BACKOFF_MAX = 8.0
#: terminationGracePeriodSeconds is honoured up to this many seconds, then SIGKILL.
GRACE_MAX = 10.0

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class EnvError(Exception):
    """A container's environment cannot be built (the kubelet's CreateContainerConfigError)."""


def is_job_pod(pod: JSON) -> bool:
    """A pod a Job controls: the emulator runs its container as a local process."""
    return any(
        r.get("controller") and r.get("kind") == "Job" and str(r.get("apiVersion", "")).startswith("batch/")
        for r in pod.get("metadata", {}).get("ownerReferences") or []
    )


# --- the API server's part: defaults, validation, Secrets --------------------------------------


def prepare_job(obj: JSON) -> list[tuple[str, str]]:
    """Fill in what the API server defaults on a new Job; return the validation causes for what it cannot."""
    meta = obj["metadata"]
    uid = meta.setdefault("uid", str(_uuid4()))
    name = meta.get("name", "")
    spec = obj.setdefault("spec", {})
    causes: list[tuple[str, str]] = []
    for f in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        v = spec.get(f)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            kind = "int64" if f == "activeDeadlineSeconds" else "int32"
            raise bad_request(
                f"json: cannot unmarshal {type(v).__name__} into Go struct field JobSpec.spec.{f} of type {kind}"
            )
    tmpl = spec.setdefault("template", {})
    tmeta = tmpl.setdefault("metadata", {})
    labels = tmeta.setdefault("labels", {})
    generated = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    if spec.get("manualSelector"):
        if not spec.get("selector"):
            causes.append(("spec.selector", "Required value"))
    else:
        if spec.get("selector"):
            causes.append(
                ("spec.selector", f"Invalid value: {json.dumps(spec['selector'])}: `selector` not auto-generated")
            )
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels.update(generated)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    tspec = tmpl.setdefault("spec", {})
    tspec.setdefault("terminationGracePeriodSeconds", 30)
    tspec.setdefault("dnsPolicy", "ClusterFirst")
    tspec.setdefault("schedulerName", "default-scheduler")
    tspec.setdefault("securityContext", {})
    for c in tspec.get("containers") or []:
        if isinstance(c, dict):
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            image = str(c.get("image", ""))
            c.setdefault(
                "imagePullPolicy", "Always" if image.endswith(":latest") or ":" not in image else "IfNotPresent"
            )
    obj["status"] = {}
    return causes


def job_causes(obj: JSON, old: JSON | None) -> list[tuple[str, str]]:
    """The Job-specific validation causes (the pod template's own are checked with the pods')."""
    spec = obj.get("spec") or {}
    causes: list[tuple[str, str]] = []
    for f in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        v = spec.get(f)
        if isinstance(v, int) and v < 0:
            causes.append((f"spec.{f}", f"Invalid value: {v}: must be greater than or equal to 0"))
    rp = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if rp in (None, "", "Always"):
        causes.append(("spec.template.spec.restartPolicy", 'Required value: valid values: "OnFailure", "Never"'))
    elif rp not in ("OnFailure", "Never"):
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{rp}": supported values: "OnFailure", "Never"',
            )
        )
    elif spec.get("podFailurePolicy") is not None and rp != "Never":
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                f'Invalid value: "{rp}": only "Never" is supported when podFailurePolicy is specified',
            )
        )
    job_name = (((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}).get("job-name", "")
    if len(str(job_name)) > 63:  # the name is a label value on its pods
        causes.append(("spec.template.labels", f'Invalid value: "{job_name}": must be no more than 63 characters'))
    pfp = spec.get("podFailurePolicy")
    if pfp is not None:
        rules = pfp.get("rules") if isinstance(pfp, dict) else None
        if not isinstance(rules, list):
            causes.append(("spec.podFailurePolicy.rules", "Required value"))
            rules = []
        for i, rule in enumerate(rules):
            at = f"spec.podFailurePolicy.rules[{i}]"
            action = rule.get("action") if isinstance(rule, dict) else None
            if action not in ("FailJob", "FailIndex", "Ignore", "Count"):
                causes.append(
                    (
                        f"{at}.action",
                        f'Unsupported value: "{action}": supported values: "Count", "FailIndex", "FailJob", "Ignore"',
                    )
                )
            has_codes = isinstance(rule, dict) and rule.get("onExitCodes") is not None
            has_conds = isinstance(rule, dict) and rule.get("onPodConditions") is not None
            if has_codes == has_conds:
                causes.append((at, "Invalid value: specifying one of OnExitCodes and OnPodConditions is required"))
            if has_codes:
                op = (rule["onExitCodes"] or {}).get("operator")
                if op not in ("In", "NotIn"):
                    causes.append(
                        (f"{at}.onExitCodes.operator", f'Unsupported value: "{op}": supported values: "In", "NotIn"')
                    )
                if op == "In" and 0 in ((rule["onExitCodes"] or {}).get("values") or []):
                    causes.append(
                        (f"{at}.onExitCodes.values[0]", "Invalid value: 0: must not be 0 for the In operator")
                    )
    if old is not None:
        ospec = old.get("spec") or {}
        if spec.get("selector") != ospec.get("selector"):
            causes.append(("spec.selector", f"Invalid value: {json.dumps(spec.get('selector'))}: field is immutable"))
        if spec.get("template") != ospec.get("template"):
            causes.append(("spec.template", "Invalid value: the pod template: field is immutable"))
        if spec.get("completions") != ospec.get("completions"):
            causes.append(("spec.completions", f"Invalid value: {spec.get('completions')}: field is immutable"))
    return causes


def normalise_secret(obj: JSON) -> None:
    """What the API server does with a Secret it stores: ``stringData`` merged into ``data`` (base64)
    and dropped, ``data`` checked to be base64, ``type`` defaulted to Opaque."""
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise bad_request("json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8")
    data = dict(data or {})
    for k, v in data.items():
        if not isinstance(v, str):
            raise bad_request("json: cannot unmarshal number into Go struct field Secret.data of type []uint8")
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request(
                f"illegal base64 data at input byte {_bad_b64_at(v)} (in the value of key {k!r} of Secret data)"
            ) from exc
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
    if data or "data" in obj:
        obj["data"] = data
    obj.setdefault("type", "Opaque")


def _bad_b64_at(v: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for i, ch in enumerate(v):
        if ch not in alphabet:
            return i
    return len(v)


def _uuid4() -> str:
    import uuid

    return str(uuid.uuid4())


# --- the kubelet's part: a container's environment ----------------------------------------------


def _expand(value: str, env: dict[str, str]) -> str:
    """``$(VAR)`` references to variables defined earlier; ``$$`` is a literal ``$`` (k8s expansion)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2 : end]
                    out.append(env[name] if name in env else value[i : end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def _field_value(pod: JSON, path: str) -> str:
    meta = pod.get("metadata", {})
    m = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod.get("spec", {}).get("nodeName"),
        "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName", "default"),
        "status.podIP": (pod.get("status") or {}).get("podIP"),
        "status.hostIP": (pod.get("status") or {}).get("hostIP"),
    }
    if path not in simple:
        raise EnvError(f'unsupported fieldPath: "{path}"')
    return str(simple[path] or "")


def resolve_env(store: Store, pod: JSON, container: JSON, base: dict[str, str]) -> dict[str, str]:
    """A container's environment, as the kubelet builds it (envFrom first, then env in order).

    Raises:
        EnvError: a Secret, ConfigMap or key it needs is missing (the kubelet's exact message).
    """
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = str(src.get("prefix") or "")
        if "configMapRef" in src:
            ref = src["configMapRef"] or {}
            cm = store.get(CONFIGMAPS, ns, ref.get("name", ""))
            if cm is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'configmap "{ref.get("name", "")}" not found')
            items = {k: str(v) for k, v in (cm.get("data") or {}).items()}
        elif "secretRef" in src:
            ref = src["secretRef"] or {}
            sec = store.get(SECRETS, ns, ref.get("name", ""))
            if sec is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'secret "{ref.get("name", "")}" not found')
            items = {k: _decode(v) for k, v in (sec.get("data") or {}).items()}
        else:
            continue
        for k, v in items.items():
            if _ENV_NAME.match(prefix + k):
                env[prefix + k] = v
    for e in container.get("env") or []:
        name = e.get("name", "")
        vf = e.get("valueFrom")
        if vf is None:
            env[name] = _expand(str(e.get("value", "")), {**base, **env})
            continue
        if "secretKeyRef" in vf or "configMapKeyRef" in vf:
            secret = "secretKeyRef" in vf
            ref = vf["secretKeyRef" if secret else "configMapKeyRef"] or {}
            kind, what = (SECRETS, "secret") if secret else (CONFIGMAPS, "configmap")
            obj = store.get(kind, ns, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{what} "{ref.get("name", "")}" not found')
            data = obj.get("data") or {}
            if ref.get("key") not in data:
                if ref.get("optional"):
                    continue
                label = "Secret" if secret else "ConfigMap"
                raise EnvError(f"couldn't find key {ref.get('key')} in {label} {ns}/{ref.get('name')}")
            env[name] = _decode(data[ref["key"]]) if secret else str(data[ref["key"]])
        elif "fieldRef" in vf:
            env[name] = _field_value(pod, (vf["fieldRef"] or {}).get("fieldPath", ""))
        elif "resourceFieldRef" in vf:
            env[name] = "0"
    return {**base, **env}


def _decode(v: Any) -> str:
    try:
        return base64.b64decode(str(v)).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


# --- the World's part: kubelet for local pods, and the Job controller ----------------------------


class Jobs(WorldBase):
    """The Job controller, and the kubelet for pods whose container runs as a local process."""

    def _pod_dir(self, uid: str) -> Path:
        if self.pod_root is None:
            base = self.data_dir if self.data_dir is not None and self.data_dir.is_dir() else None
            self.pod_root = Path(tempfile.mkdtemp(prefix="vcci-kube-pods-", dir=base))
        return self.pod_root / uid

    # -- the kubelet ---------------------------------------------------------------------------
    def _advance_local(self, rt: PodRT, pod: JSON, now: float) -> None:
        self.local[rt.uid] = rt
        if rt.stage == "unscheduled":
            self._try_bind(rt, pod, now)
            return
        if rt.stage in ("creating", "configerror", "backoff"):
            self._start_local(rt, pod, now)
            return
        if rt.stage == "terminating":
            proc = rt.proc
            if proc is not None and proc.poll() is None:
                if rt.kill_at is not None and now >= rt.kill_at:
                    proc.signal(signal.SIGKILL)
                self.schedule(rt, now + 0.1)
                return
            self._finish_instance(rt)
            self._remove_pod(pod, rt)  # type: ignore[attr-defined]

    def _start_local(self, rt: PodRT, pod: JSON, now: float) -> None:
        c = pod["spec"]["containers"][0]
        home = self._pod_dir(rt.uid) / "work"
        base = _runner.base_env(pod["metadata"]["name"], home)
        try:
            env = resolve_env(self.store, pod, c, base)
        except EnvError as exc:
            msg = str(exc)
            if rt.stage != "configerror" or rt.config_error != msg:
                self.event(pod, "Warning", "Failed", f"Error: {msg}", "kubelet", now)
            rt.stage = "configerror"
            rt.config_error = msg
            self.schedule(rt, now + 1.0)
            return
        rt.config_error = None
        argv = [str(x) for x in (c.get("command") or [])] + [str(x) for x in (c.get("args") or [])]
        number = len(rt.instances) and rt.instances[-1].number + 1
        inst = _logs.Instance(number, now, "local")
        inst.log_path = str(self._pod_dir(rt.uid) / "logs" / c["name"] / f"{number}.log")
        rt.instances = [*[i for i in rt.instances if i.finished_at is not None][-1:], inst]
        rt.container_ids = [*rt.container_ids[-1:], self._cid()]
        self.event(
            pod,
            "Normal",
            "Pulled",
            f'Container image "{c.get("image", "")}" already present on machine',
            "kubelet",
            now,
        )
        self.event(pod, "Normal", "Created", f"Created container {c['name']}", "kubelet", now)
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        if not argv:
            self._start_error(
                rt,
                pod,
                inst,
                now,
                "failed to generate container spec: no command specified (the lab's emulator has no image entrypoints: give the container a command)",
            )
            return
        exe = argv[0]
        if "/" not in exe and shutil.which(exe, path=env.get("PATH")) is None:
            self._start_error(
                rt,
                pod,
                inst,
                now,
                f'failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "{exe}": executable file not found in $PATH: unknown',
            )
            return
        if "/" not in exe:
            argv[0] = str(shutil.which(exe, path=env.get("PATH")))
        try:
            rt.proc = _runner.spawn(argv, env, home, Path(inst.log_path))
        except OSError as exc:
            self._start_error(
                rt,
                pod,
                inst,
                now,
                f"failed to create containerd task: OCI runtime create failed: unable to start container process: exec: {exe!r}: {exc.strerror}: unknown",
            )
            return
        inst.started_at = rt.proc.started_at
        rt.stage = "running"
        rt.started_since = now
        rt.ready_since = now
        self.event(pod, "Normal", "Started", f"Started container {c['name']}", "kubelet", now)

    def _start_error(self, rt: PodRT, pod: JSON, inst: _logs.Instance, now: float, message: str) -> None:
        inst.finished_at = now
        inst.exit_code = 128
        inst.reason = "StartError"
        inst.message = message
        rt.proc = None
        rt.stage = "exited"
        self.event(pod, "Warning", "Failed", f"Error: {message}", "kubelet", now)
        self._after_exit(rt, pod, now)

    def _finish_instance(self, rt: PodRT) -> None:
        inst, proc = rt.current, rt.proc
        if inst is None or proc is None or inst.finished_at is not None:
            return
        code = proc.poll()
        if code is None:
            return
        inst.finished_at = proc.finished_at or time.time()
        inst.exit_code = code
        inst.reason = "Completed" if code == 0 else "Error"
        proc.kill_group()

    def _poll_local(self, now: float) -> set[str]:
        """Notice local processes that have exited; return the uids of pods whose status changed."""
        changed: set[str] = set()
        self.dying = [p for p in self.dying if p.poll() is None]  # reap what was killed
        for uid, rt in list(self.local.items()):
            proc = rt.proc
            if proc is None or rt.current is None or rt.current.finished_at is not None:
                continue
            if proc.poll() is None:
                continue
            self._finish_instance(rt)
            changed.add(uid)
            pod = self.store.get(PODS, rt.ns, rt.name)
            if rt.stage == "running" and pod is not None:
                rt.stage = "exited"
                self._after_exit(rt, pod, now)
            elif rt.stage == "terminating":
                self.schedule(rt, now + 0.05)
        return changed

    def _after_exit(self, rt: PodRT, pod: JSON, now: float) -> None:
        inst = rt.current
        rt.ready_since = None
        if inst is not None and inst.exit_code != 0 and pod["spec"].get("restartPolicy") == "OnFailure":
            rt.restarts += 1
            rt.stage = "backoff"
            rt.backoff = min(BACKOFF_BASE * 2 ** max(0, rt.restarts - 1), BACKOFF_MAX)
            self.schedule(rt, now + rt.backoff)
            c = pod["spec"]["containers"][0]["name"]
            self.event(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {c} in pod {rt.name}_{rt.ns}({rt.uid})",
                "kubelet",
                now,
            )
        self.dirty = True

    def _terminate_local(self, rt: PodRT, grace: float, now: float) -> None:
        """A local pod is being deleted: SIGTERM its processes now, SIGKILL after the grace period."""
        self.local[rt.uid] = rt
        rt.stage = "terminating"
        rt.kill_at = now + min(max(grace, 0.0), GRACE_MAX)
        if rt.proc is not None and rt.proc.poll() is None:
            rt.proc.signal(signal.SIGKILL if grace <= 0 else signal.SIGTERM)
        self.schedule(rt, now + 0.05)

    def lose_pod(self, pod: JSON, now: float) -> JSON:
        """The lab's "node lost" for one pod: its processes die at once (SIGKILL), the taint manager
        marks it ``DisruptionTarget`` (DeletionByTaintManager) and deletes it."""
        rt = self.runtimes.get(pod["metadata"]["uid"])
        if rt is not None:
            rt.disruption = {
                "type": "DisruptionTarget",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": rfc3339(now),
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
            }
            if rt.proc is not None and rt.proc.poll() is None:
                rt.proc.signal(signal.SIGKILL)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.event(
            pod,
            "Normal",
            "TaintManagerEviction",
            f"Marking for deletion Pod {ns}/{name}",
            "taint-eviction-controller",
            now,
        )
        return self.terminate_pod(pod, now, grace=1, reason_event=False)  # type: ignore[attr-defined,no-any-return]

    def _local_usage(self, rt: PodRT, now: float) -> tuple[float, float] | None:
        """What metrics-server reports for a Job's pod: its processes' real CPU (cores, averaged since
        the last sample) and resident memory, read from ``/proc``."""
        proc = rt.proc
        if proc is None or proc.poll() is not None:
            return None
        got = _runner.tree_usage(proc.popen.pid)
        if got is None:
            return None
        cpu_s, rss = got
        last_t, last_cpu = rt.cpu_sample or (proc.started_at, 0.0)
        cores = max(0.0, cpu_s - last_cpu) / max(1e-3, now - last_t)
        if now - last_t >= 1.0 or rt.cpu_sample is None:
            rt.cpu_sample = (now, cpu_s)
            rt.cpu = cores
        rt.cpu_total = cpu_s
        return rt.cpu, rss

    def _forget_local(self, rt: PodRT) -> None:
        """The pod is gone: its processes are killed and its logs and working folder removed."""
        self.local.pop(rt.uid, None)
        if rt.proc is not None and rt.proc.poll() is None:
            rt.proc.signal(signal.SIGKILL)
            self.dying.append(rt.proc)
        if self.pod_root is not None:
            shutil.rmtree(self.pod_root / rt.uid, ignore_errors=True)

    def kill_local(self) -> None:
        """Stop every local process (the emulator is stopping or resetting), and remove their folders."""
        procs = [rt.proc for rt in self.local.values() if rt.proc is not None and rt.proc.poll() is None]
        for p in procs:
            p.signal(signal.SIGTERM)
        deadline = time.time() + 3
        while any(p.poll() is None for p in procs) and time.time() < deadline:
            time.sleep(0.02)
        for p in procs:
            p.kill_now(0)
        self.local.clear()
        if self.pod_root is not None:
            shutil.rmtree(self.pod_root, ignore_errors=True)

    def _local_pod_status(self, pod: JSON, rt: PodRT, now: float) -> JSON:
        if rt.stage == "unscheduled" or (rt.stage == "terminating" and not pod["spec"].get("nodeName")):
            return {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "lastProbeTime": None,
                        "lastTransitionTime": pod["metadata"].get("creationTimestamp") or rfc3339(now),
                        "reason": "Unschedulable",
                        "message": rt.config_error or "",
                    }
                ],
                "qosClass": _qos(pod["spec"]),
            }
        st = dict(pod.get("status") or {})
        c = pod["spec"]["containers"][0]
        image = c.get("image", "")
        created = pod["metadata"].get("creationTimestamp") or rfc3339(now)
        cur = rt.current
        cs: JSON = {
            "name": c["name"],
            "image": image,
            "imageID": "",
            "restartCount": rt.restarts,
            "ready": False,
            "started": False,
        }
        alive = rt.proc is not None and cur is not None and cur.finished_at is None
        phase = "Pending"
        terminal = False
        if rt.stage == "creating" or (cur is None and rt.stage != "configerror"):
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif rt.stage == "configerror":
            cs["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": rt.config_error or ""}}
        elif alive and cur is not None:
            cs["state"] = {"running": {"startedAt": rfc3339(cur.started_at)}}
            cs["started"] = True
            cs["ready"] = rt.stage == "running"
            phase = "Running"
        elif rt.stage == "backoff" and cur is not None:
            cs["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {int(rt.backoff)}s restarting failed container={c['name']} pod={rt.name}_{rt.ns}({rt.uid})",
                }
            }
            phase = "Running"
        elif cur is not None and cur.finished_at is not None:
            cs["state"] = {"terminated": self._terminated(cur, rt.container_ids[-1] if rt.container_ids else "")}
            terminal = True
            phase = "Succeeded" if cur.exit_code == 0 else "Failed"
        else:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        if cur is not None and rt.stage not in ("creating", "configerror"):
            cs["imageID"] = f"{image.split(':')[0]}@sha256:{_sha(image)}"
            if rt.container_ids:
                cs["containerID"] = rt.container_ids[-1]
        prev = cur if rt.stage == "backoff" else rt.previous
        if prev is not None and prev.finished_at is not None:
            cs["lastState"] = {
                "terminated": self._terminated(prev, rt.container_ids[-2] if len(rt.container_ids) >= 2 else "")
            }
        else:
            cs["lastState"] = {}
        ready = bool(cs["ready"])
        started = cur is not None and rt.stage not in ("creating", "configerror")
        t_start = rfc3339(cur.started_at) if cur is not None else created
        t_ready = rfc3339(rt.ready_since) if rt.ready_since else t_start
        conds: list[JSON] = []
        if rt.disruption is not None:
            conds.append(rt.disruption)
        conds += pod_conditions(
            started=started and not terminal,
            started_t=t_start,
            initialized_t=created,
            ready=ready,
            ready_t=t_ready,
            scheduled_t=created,
        )
        if not ready:
            for cd in conds[-3:-1]:
                if terminal:
                    cd["reason"] = "PodCompleted"
                else:
                    cd["reason"] = "ContainersNotReady"
                    cd["message"] = f"containers with unready status: [{c['name']}]"
        st.update({"phase": phase, "conditions": conds, "containerStatuses": [cs], "qosClass": _qos(pod["spec"])})
        st.setdefault("hostIPs", [{"ip": st.get("hostIP", "")}])
        st.setdefault("podIPs", [{"ip": st.get("podIP", "")}])
        st.setdefault("startTime", created)
        return st

    @staticmethod
    def _terminated(inst: _logs.Instance, cid: str) -> JSON:
        term: JSON = {
            "exitCode": inst.exit_code,
            "reason": inst.reason,
            "startedAt": rfc3339(inst.started_at),
            "finishedAt": rfc3339(inst.finished_at or inst.started_at),
        }
        if inst.message:
            term["message"] = inst.message
        if cid:
            term["containerID"] = cid
        return term

    # -- the Job controller ---------------------------------------------------------------------
    def _account(self, job_uid: str, pod: JSON, *, removed: bool = False) -> None:
        """Count a finished (or deleted) pod of a Job once: succeeded, failed, or ignored (podFailurePolicy).

        Without a podFailurePolicy a pod being deleted before it succeeded counts as failed at once;
        with one, only once it has failed (or is removed), and the policy's rules decide.
        """
        counted = self.job_counted.setdefault(job_uid, {})
        puid = pod["metadata"]["uid"]
        if puid in counted:
            return
        job = self._job_by_uid(job_uid, pod["metadata"]["namespace"])
        pfp = ((job or {}).get("spec") or {}).get("podFailurePolicy")
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Succeeded":
            counted[puid] = "succeeded"
            return
        if phase != "Failed" and not (pod["metadata"].get("deletionTimestamp") and (pfp is None or removed)):
            return
        outcome = "failed"
        if pfp is not None:
            action, message = _match_policy(pfp, pod)
            if action == "Ignore":
                outcome = "ignored"
            elif action == "FailJob":
                self.job_failjob.setdefault(job_uid, message)
        counted[puid] = outcome
        if outcome == "failed":
            self.job_last_failure[job_uid] = time.time()

    def _job_by_uid(self, uid: str, ns: str) -> JSON | None:
        for j in self.store.objects(JOBS, ns):
            if j["metadata"]["uid"] == uid:
                return j
        return None

    def _sync_jobs(self, now: float, pods_by_owner: dict[str, list[JSON]]) -> None:
        wake: list[float] = []
        for job in self.store.objects(JOBS):
            try:
                w = self._sync_job(job, pods_by_owner.get(job["metadata"]["uid"], []), now)
            except Exception:  # one bad Job must not stop the controller
                import logging

                logging.getLogger(__name__).exception("job %s sync failed", job["metadata"].get("name"))
                continue
            if w is not None:
                wake.append(w)
        live = {j["metadata"]["uid"] for j in self.store.objects(JOBS)}
        for uid in list(self.job_counted):
            if uid not in live:
                self.job_counted.pop(uid, None)
                self.job_last_failure.pop(uid, None)
                self.job_failjob.pop(uid, None)
        self.job_wake = min(wake) if wake else None

    def _sync_job(self, job: JSON, pods: list[JSON], now: float) -> float | None:
        """One pass over one Job; returns when it next needs a pass for a timer (deadline, back-off, TTL)."""
        meta, spec = job["metadata"], job.get("spec") or {}
        uid, ns, name = meta["uid"], meta["namespace"], meta["name"]
        st: JSON = copy_json(job.get("status") or {})
        conds: list[JSON] = st.get("conditions") or []
        have = {c["type"] for c in conds if c.get("status") == "True"}
        wake: float | None = None
        if meta.get("deletionTimestamp"):
            # foreground deletion: the pods go first, then the Job
            for p in pods:
                self.terminate_pod(p, now)  # type: ignore[attr-defined]
            if not pods:
                self.store.delete(JOBS, ns, name)
                self.dirty = True
                return None
            return now + 0.2
        if "Complete" in have or "Failed" in have:
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None:
                done = next((c for c in conds if c["type"] in ("Complete", "Failed")), None)
                try:
                    finished = parse_time(done["lastTransitionTime"]) if done else now
                except (KeyError, ValueError):
                    finished = now
                if now >= finished + int(ttl):
                    self.store.delete(JOBS, ns, name)
                    self.dirty = True
                    return None
                return finished + int(ttl)
            return None
        for p in pods:
            self._account(uid, p)
        counted = self.job_counted.get(uid, {})
        succeeded = sum(1 for v in counted.values() if v == "succeeded")
        failed = sum(1 for v in counted.values() if v == "failed")
        active = [p for p in pods if p["metadata"]["uid"] not in counted and not p["metadata"].get("deletionTimestamp")]
        terminating = [
            p
            for p in pods
            if p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        # podReplacementPolicy Failed: a terminating pod is replaced only once it has failed
        blocking = len(terminating) if spec.get("podReplacementPolicy") == "Failed" else 0
        if "startTime" not in st and not spec.get("suspend"):
            st["startTime"] = rfc3339(now)
        start = parse_time(st["startTime"]) if "startTime" in st else now
        completions = int(spec.get("completions", 1) if spec.get("completions") is not None else 1)
        parallelism = int(spec.get("parallelism", 1))
        limit = int(spec.get("backoffLimit", 6))
        ads = spec.get("activeDeadlineSeconds")
        restarts = 0
        if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
            restarts = sum(
                int(cs.get("restartCount", 0))
                for p in pods
                for cs in (p.get("status") or {}).get("containerStatuses") or []
            )

        def cond(ctype: str, reason: str, message: str) -> JSON:
            return {
                "type": ctype,
                "status": "True",
                "lastProbeTime": rfc3339(now),
                "lastTransitionTime": rfc3339(now),
                "reason": reason,
                "message": message,
            }

        target = next((c for c in conds if c["type"] == "FailureTarget"), None)
        success = next((c for c in conds if c["type"] == "SuccessCriteriaMet"), None)
        suspended = next((c for c in conds if c["type"] == "Suspended"), None)
        if target is None and success is None:
            if spec.get("suspend"):
                # suspended: its pods are deleted (not counted as failures) and the clock stops
                if suspended is None or suspended["status"] != "True":
                    conds = [c for c in conds if c["type"] != "Suspended"]
                    conds.append(cond("Suspended", "JobSuspended", "Job suspended"))
                    self.event(job, "Normal", "Suspended", "Job suspended", "job-controller", now)
                for p in active:
                    self.job_counted.setdefault(uid, {})[p["metadata"]["uid"]] = "suspended"
                    self.terminate_pod(p, now)  # type: ignore[attr-defined]
                    terminating.append(p)
                active = []
                st.pop("startTime", None)
                ads = None
            elif suspended is not None and suspended["status"] == "True":
                suspended.update(
                    status="False",
                    reason="JobResumed",
                    message="Job resumed",
                    lastProbeTime=rfc3339(now),
                    lastTransitionTime=rfc3339(now),
                )
                self.event(job, "Normal", "Resumed", "Job resumed", "job-controller", now)
        if target is None and success is None and not spec.get("suspend"):
            reason = message = ""
            if uid in self.job_failjob:
                reason, message = "PodFailurePolicy", self.job_failjob[uid]
            elif failed + restarts > limit:
                reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            elif ads is not None and now >= start + int(ads):
                reason, message = "DeadlineExceeded", "Job was active longer than specified deadline"
            elif succeeded >= completions:
                success = cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods")
                conds.append(success)
            if reason:
                target = cond("FailureTarget", reason, message)
                conds.append(target)
                self.event(job, "Warning", reason, message, "job-controller", now)
            if target is not None or success is not None:
                for p in active:
                    self.terminate_pod(p, now)  # type: ignore[attr-defined]
                    self.event(
                        job,
                        "Normal",
                        "SuccessfulDelete",
                        f"Deleted pod: {p['metadata']['name']}",
                        "job-controller",
                        now,
                    )
                    terminating.append(p)
                active = []
            elif ads is not None:
                wake = start + int(ads)
        if target is not None and not active and not terminating:
            conds.append(cond("Failed", target["reason"], target["message"]))
        elif success is not None and not active and not terminating:
            conds.append(cond("Complete", "CompletionsReached", "Reached expected number of succeeded pods"))
            st["completionTime"] = rfc3339(now)
            self.event(job, "Normal", "Completed", "Job completed", "job-controller", now)
        elif target is None and success is None and not spec.get("suspend"):
            need = min(parallelism, completions - succeeded) - len(active) - blocking
            if need > 0:
                last = self.job_last_failure.get(uid)
                delay = min(BACKOFF_BASE * 2 ** max(0, failed - 1), BACKOFF_MAX) if failed else 0.0
                if last is not None and now < last + delay:
                    w = last + delay
                    wake = w if wake is None else min(wake, w)
                else:
                    for _ in range(need):
                        active.append(self._create_job_pod(job, now))
        ready = sum(
            1
            for p in active
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        )
        st["conditions"] = conds
        for k, v in (("active", len(active)), ("succeeded", succeeded), ("failed", failed)):
            if v:
                st[k] = v
            else:
                st.pop(k, None)
        st["ready"] = ready
        st["terminating"] = len(terminating)
        st["uncountedTerminatedPods"] = {}
        if not st["conditions"]:
            st.pop("conditions")
        if st != (job.get("status") or {}):
            upd = dict(job)
            upd["status"] = st
            self.store.replace(JOBS, upd)
        if "Complete" in {c["type"] for c in conds} or "Failed" in {c["type"] for c in conds}:
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None:
                w = now + int(ttl)
                wake = w if wake is None else min(wake, w)
        return wake

    def _create_job_pod(self, job: JSON, now: float) -> JSON:
        meta = job["metadata"]
        ns, jname = meta["namespace"], meta["name"]
        tmpl = copy_json(job["spec"]["template"])
        name = f"{jname}-{safe_suffix(5, self.rng)}"
        while self.store.get(PODS, ns, name) is not None:
            name = f"{jname}-{safe_suffix(5, self.rng)}"
        node, why = self._fit_node(tmpl.get("spec") or {})
        pod = self._pod_from_template(tmpl, name, ns, self._owner_ref(job), now, node=node)  # type: ignore[attr-defined]
        pod["metadata"]["generateName"] = jname + "-"
        rt = self._register_pod(pod, now)  # type: ignore[attr-defined]
        if node is None:
            # no node has room for its requests: Pending, unscheduled, until one has
            self.node_pods[pod["spec"].pop("nodeName")] -= 1
            rt.stage = "unscheduled"
            rt.config_error = why
            pod["status"] = {}
        pod["status"] = self._pod_status(pod, rt, now)  # type: ignore[attr-defined]
        stored = self.store.create(PODS, pod, now=now)
        self.event(job, "Normal", "SuccessfulCreate", f"Created pod: {name}", "job-controller", now)
        if node is None:
            self.event(stored, "Warning", "FailedScheduling", why, "default-scheduler", now)
            self.schedule(rt, now + 1.0)
            return stored
        self.schedule(rt, now + CREATE_DELAY)
        self._scheduled_event(stored, node, now)
        return stored

    def _scheduled_event(self, pod: JSON, node: str, now: float) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}", "default-scheduler", now)

    def _fit_node(self, spec: JSON) -> tuple[str | None, str]:
        """The node the scheduler would bind a pod to by its requests (least allocated first),
        or None and the scheduler's reason why none fits."""
        want = _requests(spec)
        used: dict[str, dict[str, float]] = {}
        for p in self.store.iter_objects(PODS):
            node = (p.get("spec") or {}).get("nodeName")
            if not node or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            r = _requests(p["spec"])
            u = used.setdefault(node, {"cpu": 0.0, "memory": 0.0})
            u["cpu"] += r["cpu"]
            u["memory"] += r["memory"]
        fits: list[tuple[float, str]] = []
        short: dict[str, int] = {}
        nodes = self.store.objects(NODES)
        for n in nodes:
            name = n["metadata"]["name"]
            alloc = (n.get("status") or {}).get("allocatable") or {}
            u = used.get(name, {"cpu": 0.0, "memory": 0.0})
            ok = True
            for res in ("cpu", "memory"):
                try:
                    free = parse_quantity(alloc.get(res, "0")) - u[res]
                except ValueError:
                    continue
                if want[res] > free:
                    ok = False
                    short[f"Insufficient {res}"] = short.get(f"Insufficient {res}", 0) + 1
            if ok:
                cpu_alloc = parse_quantity(alloc.get("cpu", "1")) or 1.0
                fits.append(((u["cpu"] + want["cpu"]) / cpu_alloc, name))
        if fits:
            return min(fits)[1], ""
        reasons = ", ".join(f"{count} {why}" for why, count in sorted(short.items()))
        total = len(nodes)
        return None, (
            f"0/{total} nodes are available: {reasons}. preemption: 0/{total} nodes are available: "
            f"{total} No preemption victims found for incoming pod."
        )

    def _try_bind(self, rt: PodRT, pod: JSON, now: float) -> None:
        """The scheduler's retry for a pending pod: bind it once a node has room."""
        node, why = self._fit_node(pod.get("spec") or {})
        if node is None:
            if why != rt.config_error:
                self.event(pod, "Warning", "FailedScheduling", why, "default-scheduler", now)
            rt.config_error = why
            self.schedule(rt, now + 1.0)
            return
        upd = copy_json(pod)
        upd["spec"]["nodeName"] = node
        self.node_pods[node] = self.node_pods.get(node, 0) + 1
        upd["status"] = self._bind_status(node, now)  # type: ignore[attr-defined]
        rt.stage = "creating"
        rt.config_error = None
        upd["status"] = self._pod_status(upd, rt, now)  # type: ignore[attr-defined]
        self.store.replace(PODS, upd)
        self._scheduled_event(upd, node, now)
        self.schedule(rt, now + CREATE_DELAY)


def _requests(spec: JSON) -> dict[str, float]:
    """A pod's resource requests (its containers' sum; a limit stands in for a missing request)."""
    out = {"cpu": 0.0, "memory": 0.0}
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        for k in out:
            v = (res.get("requests") or {}).get(k, (res.get("limits") or {}).get(k))
            if v is not None:
                with contextlib.suppress(ValueError):
                    out[k] += parse_quantity(v)
    return out


def job_of(pod: JSON) -> str | None:
    """The uid of the Job controlling a pod, if one does."""
    return controller_uid(pod) if is_job_pod(pod) else None


__all__ = ["JOBS", "EnvError", "Jobs", "is_job_pod", "job_causes", "normalise_secret", "prepare_job", "resolve_env"]


def _match_policy(pfp: JSON, pod: JSON) -> tuple[str, str]:
    """The action of the first podFailurePolicy rule a failed pod matches ("Count" when none does),
    and the Job controller's message for it."""
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    st = pod.get("status") or {}
    for i, rule in enumerate(pfp.get("rules") or []):
        action = str(rule.get("action", "Count"))
        codes = rule.get("onExitCodes")
        if codes is not None:
            values = set(codes.get("values") or [])
            for cs in st.get("containerStatuses") or []:
                if codes.get("containerName") and cs.get("name") != codes["containerName"]:
                    continue
                term = (cs.get("state") or {}).get("terminated") or {}
                code = term.get("exitCode")
                if code is None or code == 0:
                    continue
                if (code in values) == (codes.get("operator") == "In"):
                    return action, (
                        f"Container {cs.get('name')} for pod {ns}/{name} failed with exit code {code} "
                        f"matching {action} rule at index {i}"
                    )
        for pc in rule.get("onPodConditions") or []:
            want = str(pc.get("status", "True"))
            for c in st.get("conditions") or []:
                if c.get("type") == pc.get("type") and str(c.get("status")) == want:
                    return action, f"Pod {ns}/{name} has condition {pc.get('type')} matching {action} rule at index {i}"
    return "Count", ""

"""``serve --executor kubernetes``: each bundle run is a ``batch/v1`` Job; serve watches and merges.

The local executor (:class:`vcci_nb.alerts.worker.Worker`) runs ``vcci-nb run`` as a child
process. This one claims the same jobs from the same queue, and for each attempt:

1. puts the incident's record as it is into the record store (the run's *base*,
   :mod:`vcci_nb.recordstore`) and creates a Job built by :func:`build_job` (a pure function):
   the image, ``vcci-nb job-run BUNDLE …``, labels ``incident``/``bundle``/``run``, the bundle's
   resources from ``bundles.yaml``, ``activeDeadlineSeconds`` = the run timeout, a
   ``backoffLimit``, ``ttlSecondsAfterFinished``, a service account, and secrets as references
   only (``envFrom.secretRef`` / ``valueFrom.secretKeyRef``; a plain value that looks secret is
   refused);
2. follows the Job through one watch on all of serve's Jobs (re-listed whenever the watch
   reconnects, so nothing is missed while it was down) and writes each state change into the
   incident's timeline: created, running, succeeded, failed, deadline exceeded, pod lost;
3. when the Job ends, reads the manifest the pod wrote to the store and merges the run's
   notebooks, findings and timeline into ``record.json`` (serve is the record's only writer).

A Job that ends without a manifest lost its pod before the run finished (the pod was deleted or
evicted, its node went away): like a local run interrupted by a restart, it is queued again while
it has attempts left (``--max-attempts``, default 2: retried once). A Job stopped by its deadline
is a ``timeout`` and is not retried. When serve stops, its Jobs keep running; the next start
finds the jobs still ``running`` in its queue and follows their Jobs again (they are named after
serve's instance, the job and the attempt, so nothing needs remembering).

Why the official ``kubernetes`` client here and :mod:`vcci_nb.kubeapi` elsewhere: kubeapi exists
for raw-JSON reads of thousands of objects and the actions' dry-run patches; the executor handles
a few small Jobs, and the official client's ``BatchV1Api`` and ``watch.Watch`` are the reference
implementation of creating and watching them (the issue asks for it by name, and it checks the
lab's emulator against the real client). Credentials still come from
:func:`vcci_nb.config.kube_settings` (``connections.kubernetes_jobs``, else the pod's service
account), through :func:`vcci_nb.kubeapi.official_client`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_nb.alerts.store import Job, Store
from vcci_nb.alerts.worker import Worker
from vcci_nb.errors import ConfigError, KubeApiError, RecordError, VcciNbError
from vcci_nb.record import IncidentRecord
from vcci_nb.recordstore import RecordStore, StoreUnavailable, merge_result, place_files, plan_renames
from vcci_nb.redact import redact
from vcci_nb.runenv import RunEnv

log = logging.getLogger(__name__)

MANAGED_BY = "vcci-nb-serve"
#: Label keys on every Job (and its pods): ``kubectl get jobs -l incident=INC-…``.
LABEL_INCIDENT = "incident"
LABEL_BUNDLE = "bundle"
LABEL_RUN = "run"
LABEL_SERVE = "vcci-nb/serve"
#: Environment variable names a plain (non-reference) value may not have.
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|APIKEY|PRIVATE_KEY|CREDENTIALS?|_URL)$", re.I)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value(text: str) -> str:
    """``text`` as a valid label value: at most 63 of ``[A-Za-z0-9-_.]``, alphanumeric at both ends."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    value = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)
    assert _LABEL_VALUE.match(value)
    return value


# ----------------------------------------------------------------------------------------------
# Settings and the Job spec (pure)


@dataclass(frozen=True)
class JobSettings:
    """How runs become Jobs: the profile's ``executor.kubernetes`` (and serve's flags over it)."""

    namespace: str
    image: str
    record_store: str
    command: tuple[str, ...] = ("vcci-nb",)
    service_account: str = "vcci-nb-run"
    backoff_limit: int = 0
    ttl_seconds_after_finished: int = 86400
    image_pull_policy: str | None = None
    #: Secrets whose keys all become variables (``envFrom.secretRef``).
    env_from_secrets: tuple[str, ...] = ()
    #: VAR → (Secret, key): one variable from one key (``valueFrom.secretKeyRef``).
    secret_env: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: Plain values (never secrets: a name or value that looks like one is refused).
    env: Mapping[str, str] = field(default_factory=dict)
    default_resources: Mapping[str, Mapping[str, str]] | None = None
    notebook_timeout_s: float | None = None

    @classmethod
    def from_profile(
        cls,
        profile: Any,
        *,
        image: str | None = None,
        namespace: str | None = None,
        record_store: str | None = None,
    ) -> JobSettings:
        """``executor.kubernetes`` of the profile; a missing or malformed setting is a ConfigError."""
        raw = profile.get("executor.kubernetes") or {}
        where = f"profile {profile.name!r}: executor.kubernetes"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} must be a mapping (namespace, image, record_store, ...)")
        ns = namespace or raw.get("namespace")
        img = image or raw.get("image")
        store = record_store or raw.get("record_store")
        missing = [k for k, v in (("namespace", ns), ("image", img), ("record_store", store)) if not v]
        if missing:
            raise ConfigError(
                f"{where}: {', '.join(missing)} missing; set them in the profile (or pass --job-image, "
                "--job-namespace, --record-store) to use --executor kubernetes"
            )
        secret_env: dict[str, tuple[str, str]] = {}
        for var, ref in (raw.get("secret_env") or {}).items():
            if not isinstance(ref, dict) or not ref.get("secret") or not ref.get("key"):
                raise ConfigError(f"{where}.secret_env.{var} must be {{secret: NAME, key: KEY}}")
            secret_env[str(var)] = (str(ref["secret"]), str(ref["key"]))
        return cls(
            namespace=str(ns),
            image=str(img),
            record_store=str(store),
            command=tuple(str(c) for c in raw.get("command") or ("vcci-nb",)),
            service_account=str(raw.get("service_account") or "vcci-nb-run"),
            backoff_limit=int(raw.get("backoff_limit", 0)),
            ttl_seconds_after_finished=int(raw.get("ttl_seconds_after_finished", 86400)),
            image_pull_policy=raw.get("image_pull_policy"),
            env_from_secrets=tuple(str(s) for s in raw.get("env_from_secrets") or ()),
            secret_env=secret_env,
            env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
            default_resources=raw.get("default_resources"),
            notebook_timeout_s=float(raw["notebook_timeout_s"]) if raw.get("notebook_timeout_s") else None,
        )


def job_name(instance: str, job_id: int, attempt: int) -> str:
    """The Job of one attempt: ``vcci-nb-<serve instance>-<job>-<attempt>`` (a DNS label, ≤ 63)."""
    return f"vcci-nb-{instance}-{job_id}-{attempt}"


def _check_plain_env(name: str, value: str) -> None:
    if not _ENV_NAME.match(name):
        raise ConfigError(f"executor.kubernetes.env: {name!r} is not a valid environment variable name")
    if _SECRET_NAME.search(name) or redact(value) != value:
        raise ConfigError(
            f"executor.kubernetes.env.{name} looks like a secret; a Job gets secrets only by reference: put it in "
            "a Kubernetes Secret and list it under env_from_secrets or secret_env"
        )


def build_job(
    settings: JobSettings,
    *,
    name: str,
    instance: str,
    incident: str,
    bundle: str,
    run: str,
    params: Mapping[str, str],
    profile: str | None,
    skip: Sequence[str] = (),
    skip_reason: str = "",
    timeout_s: float,
    resources: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The ``batch/v1`` Job of one bundle run. Pure: same input, same manifest, nothing contacted."""
    if timeout_s <= 0:
        raise ConfigError(f"the run timeout must be positive, not {timeout_s:g}")
    labels = {
        "app.kubernetes.io/name": "vcci-nb",
        "app.kubernetes.io/component": "run",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_SERVE: label_value(instance),
        LABEL_INCIDENT: label_value(incident),
        LABEL_BUNDLE: label_value(bundle),
        LABEL_RUN: label_value(run),
    }
    args = ["job-run", bundle, "--incident", incident, "--job", name, "--store", settings.record_store]
    for key, value in sorted(params.items()):
        args += ["-p", f"{key}={value}"]
    if profile:
        args += ["--profile", profile]
    if settings.notebook_timeout_s:
        args += ["--timeout", f"{settings.notebook_timeout_s:g}"]
    for stem in skip:
        args += ["--skip", stem]
    if skip:
        args += ["--skip-reason", skip_reason or "already run by another bundle of this incident"]
    for arg in args:
        if redact(arg) != arg:
            raise ConfigError(
                f"a run parameter of {incident} ({bundle}) holds a secret; it would be written into the Job's spec. "
                "Pass secrets to runs through Kubernetes Secrets (executor.kubernetes.env_from_secrets)"
            )
    env: list[dict[str, Any]] = []
    plain = {**RunEnv(incident_id=incident, profile=profile or None).to_env(), **settings.env}
    for var, value in plain.items():
        _check_plain_env(var, value)
        env.append({"name": var, "value": value})
    for var, (secret, key) in sorted(settings.secret_env.items()):
        env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    container: dict[str, Any] = {
        "name": "run",
        "image": settings.image,
        "command": list(settings.command),
        "args": args,
        "env": env,
        "resources": {k: dict(v) for k, v in (resources or settings.default_resources or {}).items()},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
            {"name": "home", "mountPath": "/home/vcci-nb"},
        ],
    }
    if settings.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in settings.env_from_secrets]
    if settings.image_pull_policy:
        container["imagePullPolicy"] = settings.image_pull_policy
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": labels,
            "annotations": {"vcci-nb/incident": incident, "vcci-nb/bundle": bundle},
        },
        "spec": {
            "backoffLimit": settings.backoff_limit,
            "activeDeadlineSeconds": max(1, int(timeout_s)),
            "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.service_account,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "home", "emptyDir": {}}],
                },
            },
        },
    }


def job_phase(obj: dict[str, Any] | None) -> str:
    """What a Job object says: ``created``, ``running``, ``succeeded``, ``failed``, ``deadline``, or ``gone``.

    Only the terminal conditions count (``Complete``/``Failed``; Kubernetes 1.31 adds
    ``SuccessCriteriaMet``/``FailureTarget`` before them while pods terminate).
    """
    if obj is None:
        return "gone"
    status = obj.get("status") or {}
    for cond in status.get("conditions") or []:
        if str(cond.get("status")) != "True":
            continue
        if cond.get("type") == "Complete":
            return "succeeded"
        if cond.get("type") == "Failed":
            return "deadline" if cond.get("reason") == "DeadlineExceeded" else "failed"
    if (status.get("active") or 0) > 0 or (status.get("ready") or 0) > 0:
        return "running"
    return "created"


# ----------------------------------------------------------------------------------------------
# The API (official client)


class JobsApi:
    """Create, read, list and watch serve's Jobs in one namespace with the official client."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client as kclient

        self.api_client = api_client
        self.batch = kclient.BatchV1Api(api_client)
        self.namespace = namespace

    def _dict(self, obj: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.api_client.sanitize_for_serialization(obj)
        return data

    def _error(self, what: str, exc: Exception) -> KubeApiError:
        status = int(getattr(exc, "status", 0) or 0)
        reason = redact(str(getattr(exc, "reason", "") or exc))[:300]
        return KubeApiError(f"Kubernetes {what} in {self.namespace} failed: {status} {reason}", status)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            payload: Any = body  # a plain dict is what the API takes; the client serialises it as is
            return self._dict(self.batch.create_namespaced_job(self.namespace, payload))
        except Exception as exc:
            raise self._error(f"creating Job {body['metadata']['name']}", exc) from exc

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self._dict(self.batch.read_namespaced_job(name, self.namespace))
        except Exception as exc:
            if int(getattr(exc, "status", 0) or 0) == 404:
                return None
            raise self._error(f"reading Job {name}", exc) from exc

    def list(self, selector: str) -> tuple[list[dict[str, Any]], str]:
        try:
            out = self.batch.list_namespaced_job(self.namespace, label_selector=selector)
        except Exception as exc:
            raise self._error("listing Jobs", exc) from exc
        version = out.metadata.resource_version if out.metadata is not None else None
        return [self._dict(i) for i in out.items or []], str(version or "")

    def watch(self, selector: str, resource_version: str, timeout_s: int) -> Iterator[tuple[str, dict[str, Any]]]:
        from kubernetes import watch

        w = watch.Watch()  # type: ignore[no-untyped-call]
        try:
            for event in w.stream(  # type: ignore[no-untyped-call]
                self.batch.list_namespaced_job,
                self.namespace,
                label_selector=selector,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_s,
                _request_timeout=timeout_s + 30,
            ):
                kind = str(event.get("type"))
                if kind == "BOOKMARK":
                    continue
                obj = event.get("object")
                yield kind, obj if isinstance(obj, dict) else self._dict(obj)
        finally:
            w.stop()  # type: ignore[no-untyped-call]


# ----------------------------------------------------------------------------------------------
# The executor


def instance_id(state_dir: Path) -> str:
    """This serve's name among others in the namespace: 8 hex characters kept in the state directory."""
    path = state_dir / "instance"
    with contextlib.suppress(OSError):
        text = path.read_text().strip()
        if re.fullmatch(r"[0-9a-f]{8}", text):
            return text
    value = secrets.token_hex(4)
    path.write_text(value + "\n")
    return value


class KubeWorker(Worker):
    """The Worker's queue and bookkeeping, with each attempt run as a Job instead of a child process."""

    def __init__(
        self,
        store: Store,
        *,
        settings: JobSettings,
        api: JobsApi,
        records: RecordStore,
        concurrency: int = 16,
        timeout_s: float = 1800.0,
        outputs: Path | None = None,
        default_profile: str | None = None,
        bundles: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            store,
            command=["(kubernetes)"],
            concurrency=concurrency,
            timeout_s=timeout_s,
            outputs=outputs,
            default_profile=default_profile,
        )
        self.settings = settings
        self.api = api
        self.records = records
        self.bundles = dict(bundles or {})
        self.instance = instance_id(store.state_dir)
        self.selector = f"app.kubernetes.io/managed-by={MANAGED_BY},{LABEL_SERVE}={self.instance}"
        self._subs: dict[str, queue.Queue[dict[str, Any] | None]] = {}
        self._subs_lock = threading.Lock()
        self._adopt: list[Job] = []
        self.watch_timeout_s = 240

    # -- lifecycle ------------------------------------------------------------------------------

    def recover(self) -> list[int]:
        """At start: jobs left ``running`` still have their Jobs; follow them again (not interrupted).

        At stop: nothing (the Jobs keep running in the cluster; the next start follows them).
        """
        if self._stop.is_set():
            return []
        db = self.store.connection()
        self._adopt = [
            Job.from_row(r) for r in db.execute("SELECT * FROM jobs WHERE state = 'running' ORDER BY id").fetchall()
        ]
        for row in db.execute(
            "SELECT * FROM jobs WHERE announced = 0 AND state IN ('succeeded', 'failed', 'timeout', 'interrupted')"
        ).fetchall():
            self._announce(
                Job.from_row(row), row["state"], row["exit_code"], row["reason"] or "", " (noted on restart)"
            )
        return []

    def start(self) -> None:
        thread = threading.Thread(target=self._watch_loop, name="vcci-nb-job-watch", daemon=True)
        thread.start()
        self._threads.append(thread)
        for job in self._adopt:
            t = threading.Thread(target=self._resume, args=(job,), name=f"vcci-nb-job-{job.id}", daemon=True)
            t.start()
            self._threads.append(t)
        self._adopt = []
        super().start()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop claiming and following; the Jobs themselves run on (the next start follows them)."""
        self._stop.set()
        self.wake.set()
        with self._subs_lock:
            for q in self._subs.values():
                q.put(None)
        for thread in self._threads:
            thread.join(max(1.0, grace_s))

    # -- the watch --------------------------------------------------------------------------------

    def _dispatch(self, name: str, obj: dict[str, Any] | None) -> None:
        with self._subs_lock:
            q = self._subs.get(name)
        if q is not None:
            q.put(obj)

    def _watch_loop(self) -> None:
        """List (resync), then watch from the list's resourceVersion; on any end or error, again."""
        while not self._stop.is_set():
            try:
                items, version = self.api.list(self.selector)
                seen = set()
                for obj in items:
                    name = str(obj["metadata"]["name"])
                    seen.add(name)
                    self._dispatch(name, obj)
                with self._subs_lock:
                    missing = [n for n in self._subs if n not in seen]
                for name in missing:  # deleted while the watch was away (the follower checks with a GET)
                    self._dispatch(name, None)
                for kind, obj in self.api.watch(self.selector, version, self.watch_timeout_s):
                    if self._stop.is_set():
                        return
                    if kind == "ERROR":
                        break
                    name = str((obj.get("metadata") or {}).get("name") or "")
                    self._dispatch(name, None if kind == "DELETED" else obj)
            except Exception as exc:  # the API went away, 410 Gone, a broken stream: resync
                log.warning("watching Jobs in %s: %s; listing again", self.settings.namespace, redact(str(exc)))
                self._stop.wait(2.0)

    # -- one attempt ----------------------------------------------------------------------------

    def name_of(self, job: Job) -> str:
        return job_name(self.instance, job.id, job.attempts)

    def run(self, job: Job) -> str:
        name = self.name_of(job)
        started = time.monotonic()
        ns = self.settings.namespace
        without = f"; without {len(job.skip)} notebook{'s' if len(job.skip) != 1 else ''}" if job.skip else ""
        data: dict[str, object] = {"job": job.id, "attempt": job.attempts, "bundle": job.bundle,
                                   "params": job.params, "skip": list(job.skip), "kubernetes_job": name}  # fmt: skip
        self._event(job, f"Started bundle {job.bundle!r} (attempt {job.attempts}, route {job.route}{without}) "
                    f"as Kubernetes Job {ns}/{name}", data)  # fmt: skip
        bundle = self.bundles.get(job.bundle)
        try:
            body = build_job(
                self.settings,
                name=name,
                instance=self.instance,
                incident=job.incident_id,
                bundle=job.bundle,
                run=f"{job.id}-{job.attempts}",
                params=job.params,
                profile=job.profile or self.default_profile,
                skip=job.skip,
                skip_reason=job.skip_reason,
                timeout_s=self.timeout_s,
                resources=getattr(bundle, "resources", None),
            )
            base = IncidentRecord.load(job.incident_id, self.outputs).data
            self.records.put_base(job.incident_id, name, base)
        except (VcciNbError, OSError) as exc:
            return self._finish(job, "failed", None, f"could not start the Job: {redact(str(exc))}", started)
        q = self._subscribe(name)
        try:
            obj: dict[str, Any] | None
            try:
                obj = self.api.create(body)
            except KubeApiError as exc:
                if exc.status != 409:
                    return self._finish(job, "failed", None, f"Kubernetes refused the Job: {exc}", started)
                obj = self.api.get(name)  # created before a restart: follow it
            self._job_event(job, name, "created", f"Job {ns}/{name} created")
            return self._follow(job, name, q, obj, started, seen="created")
        finally:
            self._unsubscribe(name)

    def _resume(self, job: Job) -> None:
        """Follow the Job of an attempt serve was running when it last stopped."""
        name = self.name_of(job)
        started = time.monotonic()
        q = self._subscribe(name)
        try:
            obj = self.api.get(name)
            self._event(job, f"Following Job {self.settings.namespace}/{name} again after a restart",
                        {"job": job.id, "attempt": job.attempts, "kubernetes_job": name})  # fmt: skip
            self._follow(job, name, q, obj, started, seen="")
        except Exception:
            log.exception("could not follow job %d (%s) again", job.id, name)
        finally:
            self._unsubscribe(name)

    def _subscribe(self, name: str) -> queue.Queue[dict[str, Any] | None]:
        q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        with self._subs_lock:
            self._subs[name] = q
        return q

    def _unsubscribe(self, name: str) -> None:
        with self._subs_lock:
            self._subs.pop(name, None)

    def _follow(
        self,
        job: Job,
        name: str,
        q: queue.Queue[dict[str, Any] | None],
        obj: dict[str, Any] | None,
        started: float,
        seen: str,
    ) -> str:
        failed_pods = int(((obj or {}).get("status") or {}).get("failed") or 0)
        while True:
            if self._stop.is_set():
                return "running"  # the Job runs on; the next start follows it
            phase = job_phase(obj)
            if phase == "gone":
                obj = self.api.get(name)  # the watch says deleted (or a resync missed it): make sure
                phase = job_phase(obj)
            failed_now = int(((obj or {}).get("status") or {}).get("failed") or 0)
            if failed_now > failed_pods and phase in ("created", "running"):
                self._job_event(job, name, "pod_failed", f"Job {name}: a pod failed or was lost "
                                f"({failed_now} so far); Kubernetes starts another (backoffLimit)")  # fmt: skip
            failed_pods = failed_now
            if phase != seen and phase in ("running",):
                self._job_event(job, name, phase, f"Job {name} running")
            seen = phase
            if phase in ("succeeded", "failed", "deadline", "gone"):
                return self._conclude(job, name, phase, started)
            try:
                obj = q.get(timeout=30.0)
            except queue.Empty:
                obj = self.api.get(name)  # belt and braces: a quiet watch is re-checked by hand
            if obj is None and self._stop.is_set():
                return "running"

    def _job_event(self, job: Job, name: str, state: str, summary: str) -> None:
        self._event(job, summary, {"job": job.id, "attempt": job.attempts, "kubernetes_job": name,
                                   "namespace": self.settings.namespace, "job_state": state})  # fmt: skip

    def _conclude(self, job: Job, name: str, phase: str, started: float) -> str:
        try:
            manifest = self.records.manifest(job.incident_id, name)
        except StoreUnavailable as exc:
            return self._finish(job, "failed", None, f"the run's results could not be read: {exc}", started)
        if manifest is not None:
            try:
                self._merge(job, name, manifest)
            except (VcciNbError, OSError) as exc:
                return self._finish(job, "failed", None, f"merging the run's results failed: {exc}", started)
        if phase == "deadline":
            self._job_event(job, name, "deadline_exceeded", f"Job {name} stopped by Kubernetes: deadline exceeded "
                            f"(activeDeadlineSeconds {int(self.timeout_s)})")  # fmt: skip
            return self._finish(job, "timeout", None, f"no result after {self.timeout_s:.0f} s; "
                                "Kubernetes stopped the Job (DeadlineExceeded)", started)  # fmt: skip
        if manifest is None:
            return self._lost(job, name, phase, started)
        code = int(manifest.get("exit_code") or 0)
        self._job_event(job, name, "succeeded" if phase == "succeeded" else "failed",
                        f"Job {name} {'succeeded' if phase == 'succeeded' else 'failed'} (exit {code})")  # fmt: skip
        with contextlib.suppress(StoreUnavailable):
            self.records.delete(job.incident_id, name)
        state = "succeeded" if code == 0 else "failed"
        return self._finish(job, state, code, str(manifest.get("error") or ""), started)

    def _merge(self, job: Job, name: str, manifest: dict[str, Any]) -> None:
        """Bring the run's files and record changes into the incident (serve is the only writer)."""
        record = IncidentRecord.load(job.incident_id, self.outputs)
        base = self.records.get_base(job.incident_id, name)
        final: dict[str, Any] = manifest.get("record") or base
        staging = Path(tempfile.mkdtemp(prefix=".merge-", dir=record.folder))
        try:
            self.records.fetch_files(job.incident_id, name, [str(f) for f in manifest.get("files") or []], staging)
            renames: dict[str, str] = {}

            def change(current: dict[str, Any]) -> None:
                renames.clear()
                renames.update(plan_renames(current, base, final))
                place_files(staging, record.folder, renames)
                merge_result(current, base, final, renames)

            record.update(change)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _lost(self, job: Job, name: str, phase: str, started: float) -> str:
        """The Job ended (or vanished) without results: its pod was lost. Retry like an interrupted run."""
        again = job.attempts < job.max_attempts
        now = time.time()
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE attempts SET finished_at = ?, outcome = 'interrupted' WHERE job_id = ? AND attempt = ?",
                (now, job.id, job.attempts),
            )
            tx.execute(
                "UPDATE jobs SET state = ?, pid = NULL, lease_owner = NULL, finished_at = ?, reason = ? WHERE id = ?",
                ("queued" if again else "interrupted", None if again else now, f"pod lost ({phase})", job.id),
            )
        what = (
            f"queued again (attempt {job.attempts + 1} of {job.max_attempts})"
            if again
            else f"not retried ({job.attempts} of {job.max_attempts} attempts used)"
        )
        how = "the Job was deleted" if phase == "gone" else "the Job failed"
        written = self._event(
            job,
            f"Job {name}: its pod was lost before the run finished ({how} without results: the pod was deleted or "
            f"evicted, or its node went away); {what}",
            {"job": job.id, "attempt": job.attempts, "outcome": "interrupted", "kubernetes_job": name,
             "job_state": "pod_lost"},
        )  # fmt: skip
        if written and not again:
            with self.store.transaction() as tx:
                tx.execute("UPDATE jobs SET announced = 1 WHERE id = ?", (job.id,))
        with contextlib.suppress(StoreUnavailable):
            self.records.delete(job.incident_id, name)
        if again:
            self.wake.set()
        log.warning("job %d (%s for %s): pod lost; %s", job.id, job.bundle, job.incident_id, what)
        return "queued" if again else "interrupted"


def make_kube_worker(
    store: Store,
    *,
    profile_name: str | None,
    concurrency: int,
    timeout_s: float,
    outputs: Path | None,
    image: str | None = None,
    namespace: str | None = None,
    record_store: str | None = None,
) -> KubeWorker:
    """The executor for ``serve --executor kubernetes``: settings from the profile, the Job identity, the store."""
    from vcci_nb.config import kube_settings, load_profile
    from vcci_nb.kubeapi import official_client
    from vcci_nb.runner.bundles import load_bundles

    prof = load_profile(profile_name)
    settings = JobSettings.from_profile(prof, image=image, namespace=namespace, record_store=record_store)
    api = JobsApi(official_client(kube_settings(prof, connection="kubernetes_jobs")), settings.namespace)
    records = RecordStore.from_url(settings.record_store, region=str(prof.get("aws.region") or "") or None)
    records.check()
    try:
        bundles = load_bundles()
    except (ConfigError, RecordError):
        bundles = {}
    return KubeWorker(
        store,
        settings=settings,
        api=api,
        records=records,
        concurrency=concurrency,
        timeout_s=timeout_s,
        outputs=outputs,
        default_profile=profile_name,
        bundles=bundles,
    )


def check_executor(
    profile_name: str | None, image: str | None, namespace: str | None, record_store: str | None
) -> JobSettings:
    """What ``serve --executor kubernetes`` needs, checked before it listens: settings, credentials, bucket."""
    from vcci_nb.config import kube_settings, load_profile
    from vcci_nb.kubeapi import official_client

    prof = load_profile(profile_name)
    settings = JobSettings.from_profile(prof, image=image, namespace=namespace, record_store=record_store)
    official_client(kube_settings(prof, connection="kubernetes_jobs"))
    RecordStore.from_url(settings.record_store, region=str(prof.get("aws.region") or "") or None).check()
    return settings

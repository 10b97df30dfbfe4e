"""Disk-full actions of seed scenario 3, guarded.

- :class:`CleanupFiles` frees space inside a pod over the exec channel: old logs
  (``find /var/log -type f -name '*.log' -mtime +7 -delete``, the seed's command) and old temporary
  files. The seed's ``rm -rf /tmp/*`` is replaced by ``find /tmp -type f -mmin +60 -delete``:
  files a running request is writing right now are left alone. The plan lists the files and their
  size; the verification checks they are gone and the free space went up.
- :class:`ExpandVolume` grows the PersistentVolumeClaim (never shrinks it: Kubernetes refuses, and
  asking would look like a fix that did nothing).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from vcci_nb.actions._model import Plan, Verification
from vcci_nb.actions.kube import _check_name, _KubeAction, _pod_ready, object_diff
from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ActionRefused
from vcci_nb.kubeapi import MERGE_PATCH, quantity

#: Directories a cleanup may delete in; anything else is refused (``/``, ``/app``, ``/etc``…).
CLEANABLE_DIRS = ("/var/log", "/tmp", "/var/tmp", "/app/logs", "/app/tmp")  # noqa: S108 - paths in the pod


def _df_available(text: str) -> int | None:
    """Available bytes from ``df -P`` output (1K blocks), or None if unreadable."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    parts = lines[-1].split()
    try:
        return int(parts[3]) * 1024
    except (IndexError, ValueError):
        return None


class CleanupFiles(_KubeAction):
    """Delete old logs and temporary files in a pod (the PVC at ``/var/log`` is shared by the pods).

    Args:
        pod: the pod to exec into; default: a ready pod of ``deployment``.
        deployment: used to pick a pod when ``pod`` is not given.
        log_dir, log_pattern, log_days: delete ``log_pattern`` files under ``log_dir`` older than
            ``log_days`` days (``None`` skips logs).
        tmp_dir, tmp_minutes: delete files under ``tmp_dir`` older than ``tmp_minutes`` minutes
            (``None`` skips temporary files).
    """

    name = "disk.cleanup"

    def __init__(
        self,
        pod: str | None = None,
        *,
        deployment: str | None = None,
        container: str | None = None,
        log_dir: str = "/var/log",
        log_pattern: str = "*.log",
        log_days: int | None = 7,
        tmp_dir: str = "/tmp",  # noqa: S108 - the directory we clean, not one we write to
        tmp_minutes: int | None = 60,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace, **kwargs)
        self.pod = pod
        self._deployment_arg = deployment
        self.container = container
        self.log_dir = log_dir
        self.log_pattern = log_pattern
        self.log_days = log_days
        self.tmp_dir = tmp_dir
        self.tmp_minutes = tmp_minutes
        self._chosen: str | None = pod

    @property
    def deployment(self) -> str:
        """The deployment given, else the profile's ``kubernetes.api_deployment``."""
        if self._deployment_arg:
            return self._deployment_arg
        prof = self._profile if isinstance(self._profile, Profile) else load_profile(self._profile)
        return prof.names.api_deployment

    @property
    def target(self) -> str:
        return f"{self.namespace}/pod/{self._chosen or self.pod or self.deployment + '-*'}"

    def parameters(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "deployment": self.deployment,
            "log_dir": self.log_dir,
            "log_pattern": self.log_pattern,
            "log_days": self.log_days,
            "tmp_dir": self.tmp_dir,
            "tmp_minutes": self.tmp_minutes,
        }

    def preflight(self) -> None:
        super().preflight()
        if self.pod:
            _check_name(self.pod, "pod")
        for d, what in ((self.log_dir, "log_dir"), (self.tmp_dir, "tmp_dir")):
            norm = posixpath.normpath(d)
            if norm != d.rstrip("/") or not any(norm == c or norm.startswith(c + "/") for c in CLEANABLE_DIRS):
                raise ActionRefused(f"{what}={d!r} is not one of the cleanable directories {CLEANABLE_DIRS}")
        if not re.match(r"^[A-Za-z0-9_.*?\-\[\]]+$", self.log_pattern) or "/" in self.log_pattern:
            raise ActionRefused(f"log_pattern {self.log_pattern!r} must be a file-name pattern such as *.log")
        if self.log_days is not None and self.log_days < 1:
            raise ActionRefused("log_days must be at least 1: today's logs are what the investigation reads")
        if self.tmp_minutes is not None and self.tmp_minutes < 10:
            raise ActionRefused("tmp_minutes must be at least 10: newer files may be in use")
        if self.log_days is None and self.tmp_minutes is None:
            raise ActionRefused("nothing to clean: give log_days and/or tmp_minutes")

    def _pick_pod(self) -> str:
        if self.pod:
            return self.pod
        dep = self.kube.get(f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{self.deployment}")
        labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not labels:
            raise ActionRefused(f"deployment {self.deployment} has no matchLabels to find its pods by; give pod=")
        pods = [p for p in self.pods(",".join(f"{k}={v}" for k, v in labels.items())) if _pod_ready(p)]
        if not pods:
            raise ActionRefused(f"no ready pod of {self.deployment} to exec into; give pod= explicitly")
        return str(sorted(p["metadata"]["name"] for p in pods)[0])

    def _rules(self) -> list[tuple[str, list[str]]]:
        rules = []
        if self.log_days is not None:
            rules.append(
                (
                    f"{self.log_pattern} in {self.log_dir} older than {self.log_days} d",
                    ["find", self.log_dir, "-type", "f", "-name", self.log_pattern, "-mtime", f"+{self.log_days}"],
                )
            )
        if self.tmp_minutes is not None:
            rules.append(
                (
                    f"files in {self.tmp_dir} older than {self.tmp_minutes} min",
                    ["find", self.tmp_dir, "-type", "f", "-mmin", f"+{self.tmp_minutes}"],
                )
            )
        return rules

    def _run(self, pod: str, argv: list[str]) -> str:
        rc, out, err = self.kube.exec(self.namespace, pod, argv, container=self.container)
        if rc != 0:
            raise ActionRefused(f"`{' '.join(argv)}` failed in {pod} (exit {rc}): {err.strip()[:300]}")
        return out

    def _sizes(self, pod: str, files: list[str]) -> int:
        total = 0
        for i in range(0, len(files), 200):
            out = self._run(pod, ["du", "-k", *files[i : i + 200]])
            for line in out.splitlines():
                try:
                    total += int(line.split()[0]) * 1024
                except (IndexError, ValueError):
                    continue
        return total

    def _free(self, pod: str, path: str) -> int | None:
        return _df_available(self._run(pod, ["df", "-P", path]))

    def plan(self) -> Plan:
        pod = self._pick_pod()
        self._chosen = pod
        rows: list[dict[str, Any]] = []
        found: dict[str, list[str]] = {}
        for label, argv in self._rules():
            files = [ln for ln in self._run(pod, argv).splitlines() if ln.strip()]
            found[label] = files
            rows.append(
                {
                    "rule": label,
                    "files": len(files),
                    "bytes": self._sizes(pod, files) if files else 0,
                    "e.g.": files[:3],
                }
            )
        free = {d: self._free(pod, d) for d in {self.log_dir, self.tmp_dir}}
        total = sum(int(r["bytes"]) for r in rows)
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"delete {sum(len(f) for f in found.values())} file(s), about {total / 1024**2:.1f} MiB, "
            f"in pod {pod}",
            changes=rows,
            noop=not any(found.values()),
            warnings=["deleted logs are gone for good: copy any you need for the investigation first"],
            details={"pod": pod, "free_before": free, "bytes": total},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        pod = plan.details["pod"]
        for _label, argv in self._rules():
            self._run(pod, [*argv, "-delete"])
        return {"pod": pod}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        pod = plan.details["pod"]
        v = Verification()
        for label, argv in self._rules():
            left = [ln for ln in self._run(pod, argv).splitlines() if ln.strip()]
            v.add(f"gone: {label}", not left, "none left" if not left else f"{len(left)} left, e.g. {left[:3]}")
        before = plan.details["free_before"].get(self.log_dir)
        after = self._free(pod, self.log_dir)
        if before is not None and after is not None and plan.details["bytes"] > 0:
            v.add(
                f"free space on {self.log_dir}",
                after > before,
                f"{before / 1024**3:.2f} GiB → {after / 1024**3:.2f} GiB available",
            )
        return v


class ExpandVolume(_KubeAction):
    """Grow a PersistentVolumeClaim to ``size`` (seed scenario 3, "Expand volume")."""

    name = "disk.expand_volume"

    def __init__(self, pvc: str, size: str, namespace: str | None = None, **kwargs: Any) -> None:
        super().__init__(namespace, **kwargs)
        self.pvc = pvc
        self.size = str(size)

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims/{self.pvc}"

    @property
    def target(self) -> str:
        return f"{self.namespace}/pvc/{self.pvc}"

    def parameters(self) -> dict[str, Any]:
        return {"pvc": self.pvc, "size": self.size, "namespace": self._namespace_arg}

    def preflight(self) -> None:
        super().preflight()
        _check_name(self.pvc, "pvc")
        try:
            if quantity(self.size) <= 0:
                raise ValueError
        except ValueError as exc:
            raise ActionRefused(f"size={self.size!r} is not a storage size such as 200Gi") from exc

    def plan(self) -> Plan:
        obj = self.kube.get(self.path)
        requested = str(((obj.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "0"))
        capacity = str(((obj.get("status") or {}).get("capacity") or {}).get("storage", requested))
        if quantity(self.size) < quantity(requested):
            raise ActionRefused(
                f"{self.pvc} is {requested}; {self.size} would shrink it, which Kubernetes does not allow. "
                "Free space with CleanupFiles instead."
            )
        body = {
            "metadata": {"annotations": self.annotations(), "resourceVersion": obj["metadata"].get("resourceVersion")},
            "spec": {"resources": {"requests": {"storage": self.size}}},
        }
        after = self.kube.patch(self.path, body, patch_type=MERGE_PATCH, dry_run=True)
        warnings = ["volume expansion cannot be undone: a PVC never shrinks"]
        sc = (obj.get("spec") or {}).get("storageClassName")
        if sc:
            try:
                cls = self.kube.get(f"/apis/storage.k8s.io/v1/storageclasses/{sc}")
                if not cls.get("allowVolumeExpansion"):
                    warnings.append(f"storage class {sc} does not say allowVolumeExpansion: true; the resize may stall")
            except Exception:
                warnings.append(f"could not read storage class {sc} to check allowVolumeExpansion")
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"expand {self.pvc} from {capacity} to {self.size}",
            changes=[{"pvc": self.pvc, "requested": f"{requested} → {self.size}", "capacity": capacity}],
            diff=object_diff(obj, after, f"pvc/{self.pvc}"),
            warnings=warnings,
            noop=quantity(self.size) == quantity(requested),
            details={"patch": body},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        self.kube.patch(self.path, plan.details["patch"], patch_type=MERGE_PATCH)
        return {"requested": self.size}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        want = quantity(self.size)

        def grown() -> tuple[bool, str]:
            obj = self.kube.get(self.path)
            cap = ((obj.get("status") or {}).get("capacity") or {}).get("storage", "0")
            conditions = [c.get("type") for c in (obj.get("status") or {}).get("conditions") or []]
            return quantity(str(cap)) >= want, f"capacity {cap}" + (f", conditions {conditions}" if conditions else "")

        ok, detail = self.wait("capacity grown", grown)
        return Verification().add("capacity", ok, detail)

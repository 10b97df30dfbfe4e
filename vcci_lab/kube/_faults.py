# ruff: noqa: S108  (/tmp paths are simulated)
"""The lab's faults in the emulated cluster (``oomkill``, ``crashloop``, ``bad-deploy``, ``disk-full``):
inject, heal and report them. The pods' behaviour under a fault is the kubelet's (:mod:`._pods`).
"""

from __future__ import annotations

import time

from vcci_lab.kube._common import (
    API,
    API_IMAGE,
    BAD_RELEASE,
    CHANGE_CAUSE,
    DATA_PVC,
    DEPLOY,
    FAULTS,
    NS,
    PODS,
    container_limit,
    is_api_pod,
)
from vcci_lab.kube._controllers import Controllers
from vcci_lab.kube._fs import FileEntry, GiB
from vcci_lab.kube._pods import fill_tmp
from vcci_lab.kube._store import copy_json
from vcci_lab.kube._util import JSON, rfc3339


class Faults(Controllers):
    """Injects and heals the faults the lab offers."""

    def fault_state(self) -> JSON:
        return {
            "faults": {
                name: {
                    "active": name in self.faults,
                    **({k: v for k, v in self.faults[name].items()} if name in self.faults else {}),
                }
                for name in FAULTS
            },
            "available": list(FAULTS),
        }

    def _api_pods(self) -> list[JSON]:
        return [p for p in self.store.objects(PODS, NS) if is_api_pod(p)]

    def _reevaluate(self, now: float, *, stagger: float = 2.0) -> None:
        for p in self.store.objects(PODS):
            rt = self.runtimes.get(p["metadata"]["uid"])
            if rt is None or rt.stage in ("terminating", "gone"):
                continue
            mode = self.mode_for(p)
            if mode == rt.mode:
                continue
            rt.mode = mode
            if rt.current is not None and rt.current.finished_at is None:
                rt.current.mode = mode if mode != "ok" else rt.current.mode
            if mode in ("crash", "baddeploy", "oom") and rt.stage == "ready":
                self.schedule(rt, now + self.rng.uniform(0.2, stagger))
            elif mode == "ok" and rt.stage == "backoff":
                self.schedule(rt, now + 0.2)

    def inject(self, name: str, now: float) -> JSON:
        if name not in FAULTS:
            raise KeyError(name)
        if name in self.faults:
            return self.fault_state()
        if name == "oomkill":
            dep = self.store.get(DEPLOY, NS, API)
            lim = container_limit(dep["spec"]["template"]["spec"], "memory") if dep else None
            self.faults[name] = {"since": rfc3339(now), "limit_bytes": int(lim or 4 * GiB)}
            self._reevaluate(now, stagger=1.5)
        elif name == "crashloop":
            self.faults[name] = {"since": rfc3339(now)}
            self._reevaluate(now, stagger=1.0)
        elif name == "bad-deploy":
            dep = self.store.get(DEPLOY, NS, API)
            if dep is None:
                raise LookupError(f"deployment {API} is missing; POST /_lab/reset first")
            upd = copy_json(dep)
            c = upd["spec"]["template"]["spec"]["containers"][0]
            image = f"{API_IMAGE}:{BAD_RELEASE}"
            c["image"] = image
            env = [e for e in c.get("env") or [] if e.get("name") != "EMISSIONS_SCHEMA_VERSION"]
            env.append({"name": "EMISSIONS_SCHEMA_VERSION", "value": "0042"})
            c["env"] = env
            upd["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = (
                f"Deploy {BAD_RELEASE} (release/2.15, CHG-1974)"
            )
            upd["metadata"]["generation"] = int(dep["metadata"].get("generation", 1)) + 1
            self.bad_images.add(image)
            self.faults[name] = {
                "since": rfc3339(now),
                "image": image,
                "previous_image": dep["spec"]["template"]["spec"]["containers"][0]["image"],
            }
            self.store.replace(DEPLOY, upd)
        elif name == "disk-full":
            self.faults[name] = {"since": rfc3339(now)}
            vol = self.volumes.get((NS, DATA_PVC))
            if vol is not None:
                target = int(vol.capacity * 0.972)
                missing = max(0, target - vol.used)
                days = list(range(8, 31))
                each = missing // len(days)
                for d in days:
                    stamp = time.strftime("%Y-%m-%d", time.gmtime(now - d * 86400))
                    path = f"/var/log/vcci/api-{stamp}.log"
                    vol.files[path] = FileEntry(each, now - d * 86400 + 3600)
                    self._disk_files.append(("pvc", path))
            for ov in self.overlays.values():
                fill_tmp(ov, now)
        self.dirty = True
        self.store.changed.set()
        return self.fault_state()

    def set_flags(self, names: list[str], now: float) -> JSON:
        """The lab's non-Kubernetes faults now in force: open a window for each new one, close the rest."""
        wanted = set(names)
        for name in wanted:
            windows = self.flags.setdefault(name, [])
            if not windows or windows[-1][1] is not None:
                windows.append([now, None])
        for name, windows in self.flags.items():
            if name not in wanted and windows and windows[-1][1] is None:
                windows[-1][1] = now
        return {"flags": sorted(n for n, w in self.flags.items() if w and w[-1][1] is None)}

    def heal(self, name: str, now: float) -> JSON:
        if name not in FAULTS:
            raise KeyError(name)
        fault = self.faults.pop(name, None)
        if fault is None:
            return self.fault_state()
        if name in ("oomkill", "crashloop"):
            affected = "oom" if name == "oomkill" else "crash"
            for p in self._api_pods():
                rt = self.runtimes.get(p["metadata"]["uid"])
                if rt is None:
                    continue
                was_hit = rt.mode == affected or any(
                    i.reason in (("OOMKilled",) if affected == "oom" else ("Error",)) for i in rt.instances
                )
                rt.mode = self.mode_for(p)
                if was_hit and not p["metadata"].get("deletionTimestamp"):
                    # the fix rolls the affected pods: they come back fresh, without the restarts
                    self.terminate_pod(p, now, grace=0)
        elif name == "bad-deploy":
            image = fault.get("image", "")
            self.bad_images.discard(image)
            dep = self.store.get(DEPLOY, NS, API)
            if dep is not None and dep["spec"]["template"]["spec"]["containers"][0].get("image") == image:
                self.rollback(API, now)
            self._reevaluate(now)
        elif name == "disk-full":
            vol = self.volumes.get((NS, DATA_PVC))
            for where, path in self._disk_files:
                if where == "pvc" and vol is not None:
                    vol.files.pop(path, None)
            self._disk_files.clear()
            for ov in self.overlays.values():
                for fp in [fp for fp in ov.files if fp.startswith(("/tmp/export-", "/tmp/pip-unpack"))]:
                    del ov.files[fp]
        self.dirty = True
        self.store.changed.set()
        return self.fault_state()

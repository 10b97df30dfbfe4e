"""The emulated cluster: its initial objects, the controllers that keep them consistent, and faults.

One background thread plays the parts a real cluster splits between the deployment and replica-set
controllers, the scheduler, the kubelet and metrics-server: it scales ReplicaSets during a rollout,
creates and deletes pods, moves pods through ContainerCreating -> Running -> Ready (or into
CrashLoopBackOff / OOMKilled restarts while a fault is active), writes status and events, and garbage
collects objects whose owner is gone. Timings are compressed (a pod is Ready about a second after it
is created) so that ``kubectl rollout status`` finishes in seconds.

The parts live in their own modules (see :mod:`vcci_lab.kube._common`); this one puts them together
and runs the controller thread.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time

from vcci_lab.kube._common import DATA_PVC, FAULTS, FLAVOUR, NS, PODS, PodRT, container_limit
from vcci_lab.kube._faults import Faults
from vcci_lab.kube._seed import Seed
from vcci_lab.kube._selectors import selector_from_match_labels, selector_string
from vcci_lab.kube._util import JSON

log = logging.getLogger(__name__)


class World(Faults, Seed):
    """The cluster's state machine. All methods expect ``store.lock`` to be held unless noted.

    Its parts: :class:`WorldBase` (state, schedule, events), :class:`Pods` (the kubelet),
    :class:`Seed` (the initial cluster), :class:`Controllers` and :class:`Faults`.
    """

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kube-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.store.changed.set()
        if self._thread:
            self._thread.join(timeout=5)
        with self.store.lock:
            self.kill_local()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.store.changed.wait(0.1)
            self.store.changed.clear()
            try:
                with self.store.lock:
                    self.tick(time.time())
            except Exception:  # the controller must keep running; log and go on
                log.exception("controller tick failed")

    def tick(self, now: float) -> None:
        """One controller pass: kubelet transitions that are due, then reconcile if anything changed."""
        changed_pods: set[str] = set()
        while self._heap and self._heap[0][0] <= now:
            due, _, uid = heapq.heappop(self._heap)
            rt = self.runtimes.get(uid)
            if rt is None or rt.due is None or abs(rt.due - due) > 1e-9:
                continue
            rt.due = None
            self._advance(rt, now)
            changed_pods.add(uid)
        changed_pods |= self._poll_local(now)
        if self.job_wake is not None and now >= self.job_wake:
            self.job_wake = None
            self.dirty = True
        for uid in changed_pods:
            rt = self.runtimes.get(uid)
            if rt is not None and rt.stage != "gone":
                self._write_pod_status(rt, now)
        if changed_pods:
            self.dirty = True
        if self.dirty:
            self.dirty = False
            self._reconcile(now)
        if now - self._last_prune > 30:
            self._last_prune = now
            self._prune_events(now)
        if now - self._last_lease > 10:
            self._last_lease = now
            self._heartbeat(now)
        if self._heap:
            # wake up in time for the next due transition
            delay = max(0.0, self._heap[0][0] - time.time())
            if delay < 0.1:
                self.store.changed.set()


def selector_for(obj: JSON) -> str:
    return selector_string(obj.get("spec", {}).get("selector"))


__all__ = [
    "DATA_PVC",
    "FAULTS",
    "FLAVOUR",
    "NS",
    "PODS",
    "PodRT",
    "World",
    "container_limit",
    "selector_for",
    "selector_from_match_labels",
]

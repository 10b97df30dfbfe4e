"""The object store: every API object, one global resourceVersion, and watch fan-out.

Objects are plain JSON dicts and are never mutated once stored: writers store a new dict. That lets
list responses reuse each object's cached serialisation, which is what keeps a 5,000-pod list fast.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vcci_lab.kube._util import JSON, rfc3339


@dataclass(frozen=True)
class Resource:
    """One API resource as discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    stored: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        return f"{self.group}/{self.plural}"

    @property
    def qualified(self) -> str:
        """``deployments.apps`` / ``pods``: how messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass
class Entry:
    obj: JSON
    raw: bytes | None = None
    item_raw: bytes | None = None

    def encoded(self) -> bytes:
        if self.raw is None:
            self.raw = json.dumps(self.obj, separators=(",", ":")).encode()
        return self.raw

    def encoded_item(self) -> bytes:
        """The object as a list item: a real API server leaves kind and apiVersion off list items."""
        if self.item_raw is None:
            item = {k: v for k, v in self.obj.items() if k not in ("kind", "apiVersion")}
            self.item_raw = json.dumps(item, separators=(",", ":")).encode()
        return self.item_raw


@dataclass
class Watcher:
    key: str
    namespace: str | None
    match: Callable[[JSON], bool]
    events: queue.Queue[tuple[str, JSON] | None] = field(default_factory=queue.Queue)


class Store:
    """Thread-safe object store with a global, monotonically increasing resourceVersion."""

    HISTORY = 50_000

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.rv = 1000
        self.base_rv = 0
        self._data: dict[str, dict[tuple[str, str], Entry]] = {}
        self._watchers: list[Watcher] = []
        self._history: deque[tuple[int, str, str, JSON, JSON | None]] = deque(maxlen=self.HISTORY)
        self.changed = threading.Event()

    # -- reading -------------------------------------------------------------------------------
    def bucket(self, key: str) -> dict[tuple[str, str], Entry]:
        return self._data.setdefault(key, {})

    def get(self, key: str, namespace: str, name: str) -> JSON | None:
        with self.lock:
            e = self.bucket(key).get((namespace, name))
            return e.obj if e else None

    def entry(self, key: str, namespace: str, name: str) -> Entry | None:
        with self.lock:
            return self.bucket(key).get((namespace, name))

    def entries(self, key: str, namespace: str | None = None) -> list[Entry]:
        with self.lock:
            b = self.bucket(key)
            if namespace is None:
                return list(b.values())
            return [e for (ns, _), e in b.items() if ns == namespace]

    def objects(self, key: str, namespace: str | None = None) -> list[JSON]:
        return [e.obj for e in self.entries(key, namespace)]

    def iter_objects(self, key: str) -> Iterator[JSON]:
        with self.lock:
            yield from (e.obj for e in list(self.bucket(key).values()))

    # -- writing -------------------------------------------------------------------------------
    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def create(self, key: str, obj: JSON, *, now: float | None = None) -> JSON:
        """Store a new object, filling in uid, creationTimestamp, resourceVersion and generation."""
        with self.lock:
            meta = obj.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", rfc3339(now if now is not None else time.time()))
            if "spec" in obj and key.split("/")[1] not in ("pods", "persistentvolumeclaims", "nodes", "namespaces"):
                meta.setdefault("generation", 1)
            meta["resourceVersion"] = self._next_rv()
            ns = meta.get("namespace", "")
            self.bucket(key)[(ns, meta["name"])] = Entry(obj)
            self._notify(key, "ADDED", obj, None)
            return obj

    def replace(self, key: str, obj: JSON) -> JSON:
        """Store a new version of an existing object (bumps resourceVersion)."""
        with self.lock:
            meta = obj["metadata"]
            ns = meta.get("namespace", "")
            old = self.bucket(key).get((ns, meta["name"]))
            meta["resourceVersion"] = self._next_rv()
            self.bucket(key)[(ns, meta["name"])] = Entry(obj)
            self._notify(key, "MODIFIED", obj, old.obj if old else None)
            return obj

    def delete(self, key: str, namespace: str, name: str) -> JSON | None:
        with self.lock:
            e = self.bucket(key).pop((namespace, name), None)
            if e is None:
                return None
            obj = dict(e.obj)
            obj["metadata"] = dict(obj["metadata"])
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._notify(key, "DELETED", obj, e.obj)
            return obj

    # -- watching ------------------------------------------------------------------------------
    def _notify(self, key: str, kind: str, obj: JSON, old: JSON | None) -> None:
        self._history.append((self.rv, key, kind, obj, old))
        for w in self._watchers:
            if w.key != key:
                continue
            ev = _filtered(w, kind, obj, old)
            if ev is not None:
                w.events.put(ev)
        self.changed.set()

    def watch(
        self, key: str, namespace: str | None, match: Callable[[JSON], bool], since_rv: int | None
    ) -> tuple[Watcher, list[tuple[str, JSON]]]:
        """Register a watcher; return it and the events after ``since_rv`` still in history.

        Raises:
            LookupError: ``since_rv`` is older than the history kept (the caller answers 410 Gone).
        """
        w = Watcher(key, namespace, match)
        backlog: list[tuple[str, JSON]] = []
        with self.lock:
            if since_rv is not None and since_rv < self.base_rv:
                raise LookupError(since_rv)  # from before a reset: the client must relist
            if since_rv is not None and since_rv < self.rv:
                if self._history and self._history[0][0] > since_rv + 1 and len(self._history) == self.HISTORY:
                    raise LookupError(since_rv)
                for rv, k, kind, obj, old in self._history:
                    if rv > since_rv and k == key:
                        ev = _filtered(w, kind, obj, old)
                        if ev is not None:
                            backlog.append(ev)
            self._watchers.append(w)
        return w, backlog

    def unwatch(self, w: Watcher) -> None:
        with self.lock:
            if w in self._watchers:
                self._watchers.remove(w)

    def stop_watchers(self) -> None:
        with self.lock:
            for w in self._watchers:
                w.events.put(None)
            self._watchers.clear()

    def clear(self) -> None:
        with self.lock:
            self._data.clear()
            self._history.clear()
            for w in self._watchers:
                w.events.put(None)
            self._watchers.clear()


def _in_ns(w: Watcher, obj: JSON) -> bool:
    return w.namespace is None or obj.get("metadata", {}).get("namespace") == w.namespace


def _filtered(w: Watcher, kind: str, obj: JSON, old: JSON | None) -> tuple[str, JSON] | None:
    if not _in_ns(w, obj):
        return None
    now_match = w.match(obj)
    if kind == "MODIFIED":
        was = old is not None and w.match(old)
        if now_match and was:
            return ("MODIFIED", obj)
        if now_match:
            return ("ADDED", obj)
        if was:
            return ("DELETED", obj)
        return None
    if kind == "DELETED":
        return ("DELETED", obj) if (old is not None and w.match(old)) or now_match else None
    return (kind, obj) if now_match else None


def copy_json(obj: Any) -> Any:
    """Deep copy of a JSON value, faster than copy.deepcopy for plain dicts and lists."""
    if isinstance(obj, dict):
        return {k: copy_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [copy_json(v) for v in obj]
    return obj

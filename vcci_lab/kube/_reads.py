"""The read verbs: get, list (paged, as Table when asked) and watch."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from vcci_lab.kube import _tables
from vcci_lab.kube._handler import HandlerBase
from vcci_lab.kube._selectors import exact_field
from vcci_lab.kube._store import Resource
from vcci_lab.kube._util import JSON, ApiError, bad_request, not_found, status_body


class Reads(HandlerBase):
    """GET on a resource: one object, a list, or a watch stream."""

    def _select(self, res: Resource, ns: str | None) -> list[Any]:
        store = self.emu.store
        q = self.q
        match = self._matcher(res)
        name = exact_field(q.get("fieldSelector"), "metadata.name")
        with store.lock:
            if name is not None:
                if ns is not None:
                    e = store.entry(res.key, ns, name)
                    entries = [e] if e else []
                else:
                    entries = [e for e in store.entries(res.key) if e.obj["metadata"]["name"] == name]
            else:
                # sorted once per resourceVersion: the pages of one kubectl listing reuse it
                cache = self.emu.sorted_cache
                hit = cache.get((res.key, ns))
                if hit is not None and hit[0] == store.rv and hit[1] is store:
                    entries = hit[2]
                else:
                    entries = sorted(
                        store.entries(res.key, ns),
                        key=lambda e: (e.obj["metadata"].get("namespace", ""), e.obj["metadata"]["name"]),
                    )
                    cache[(res.key, ns)] = (store.rv, store, entries)
            rv = str(store.rv)
        out = [e for e in entries if match(e.obj)]
        if name is not None:
            out.sort(key=lambda e: (e.obj["metadata"].get("namespace", ""), e.obj["metadata"]["name"]))
        self._rv = rv
        return out

    def _list(self, res: Resource, ns: str | None) -> None:
        entries = self._select(res, ns)
        rv = self._rv
        q = self.q
        cont_out: str | None = None
        remaining = 0
        if q.get("continue"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(q["continue"] + "=="))
                start = tuple(tok["start"])
                rv = tok.get("rv", rv)
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request(f"continue key is not valid: {exc}") from exc
            entries = [
                e for e in entries if (e.obj["metadata"].get("namespace", ""), e.obj["metadata"]["name"]) > start
            ]
        limit = int(q.get("limit") or 0)
        if limit > 0 and len(entries) > limit:
            remaining = len(entries) - limit
            entries = entries[:limit]
            last = entries[-1].obj["metadata"]
            cont_out = (
                base64.urlsafe_b64encode(
                    json.dumps({"rv": rv, "start": [last.get("namespace", ""), last["name"]]}).encode()
                )
                .decode()
                .rstrip("=")
            )
        if self._wants_table():
            table = _tables.to_table(
                res.key,
                [e.obj for e in entries],
                resource_version=rv,
                include=q.get("includeObject", "Metadata"),
                cont=cont_out,
            )
            self.send_json(200, table)
            return
        meta: JSON = {"resourceVersion": rv}
        if cont_out:
            meta["continue"] = cont_out
            meta["remainingItemCount"] = remaining
        api_version = res.group_version
        head = json.dumps(
            {"kind": f"{res.kind}List", "apiVersion": api_version, "metadata": meta}, separators=(",", ":")
        )
        data = head[:-1].encode() + b',"items":[' + b",".join(e.encoded_item() for e in entries) + b"]}"
        self.send_bytes(200, data)

    def _get(self, res: Resource, ns: str, name: str) -> None:
        e = self.emu.store.entry(res.key, ns, name)
        if e is None:
            raise not_found(res.plural, res.group, name)
        if self._wants_table():
            self.send_json(
                200,
                _tables.to_table(
                    res.key,
                    [e.obj],
                    resource_version=e.obj["metadata"]["resourceVersion"],
                    include=self.q.get("includeObject", "Metadata"),
                ),
            )
            return
        self.send_bytes(200, e.encoded())

    def _watch(self, res: Resource, ns: str | None) -> None:
        q = self.q
        store = self.emu.store
        match = self._matcher(res)
        rv_s = q.get("resourceVersion", "")
        timeout = float(q.get("timeoutSeconds") or 1800)
        table = self._wants_table()
        include = q.get("includeObject", "Metadata")
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        initial = q.get("sendInitialEvents") in ("true", "1") or rv_s in ("", "0")
        name_pin = exact_field(q.get("fieldSelector"), "metadata.name")
        try:
            since = None if initial else int(rv_s)
        except ValueError as exc:
            raise bad_request(f"invalid resource version: {rv_s}") from exc
        with store.lock:
            try:
                watcher, backlog = store.watch(res.key, ns, match, since)
            except LookupError as exc:
                raise ApiError(status_body(410, "Expired", f"too old resource version: {rv_s} ({store.rv})")) from exc
            if initial:
                objs = [
                    o
                    for o in store.objects(res.key, ns)
                    if (name_pin is None or o["metadata"]["name"] == name_pin) and match(o)
                ]
                backlog = [
                    ("ADDED", o)
                    for o in sorted(objs, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
                ]
            start_rv = store.rv

        def encode(kind: str, obj: JSON) -> bytes:
            if table and kind != "BOOKMARK":
                obj = _tables.to_table(
                    res.key, [obj], resource_version=obj["metadata"].get("resourceVersion", ""), include=include
                )
            return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"

        deadline = time.time() + timeout
        try:
            self._start_stream("application/json")
            for kind, obj in backlog:
                self._chunk(encode(kind, obj))
            if q.get("sendInitialEvents") in ("true", "1") and bookmarks:
                bm = {
                    "kind": res.kind,
                    "apiVersion": res.group_version,
                    "metadata": {
                        "resourceVersion": str(start_rv),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                self._chunk(encode("BOOKMARK", bm))
            last_bookmark = time.time()
            while True:
                left = deadline - time.time()
                if left <= 0:
                    break
                try:
                    ev = watcher.events.get(timeout=min(left, 1.0))
                except Exception:
                    ev = ()  # type: ignore[assignment]
                if ev is None:
                    break
                if ev:
                    kind, obj = ev
                    self._chunk(encode(kind, obj))
                elif bookmarks and time.time() - last_bookmark > 30:
                    last_bookmark = time.time()
                    self._chunk(
                        encode(
                            "BOOKMARK",
                            {
                                "kind": res.kind,
                                "apiVersion": res.group_version,
                                "metadata": {"resourceVersion": str(store.rv)},
                            },
                        )
                    )
                elif _client_gone(self.connection):
                    # a watching client sends nothing; anything readable means it hung up
                    self.close_connection = True
                    return
            self._end_stream()
        except OSError:
            self.close_connection = True
        finally:
            store.unwatch(watcher)


def _client_gone(conn: Any) -> bool:
    """True when a connection that should be silent has become readable (the peer closed it)."""
    import select

    try:
        readable, _, _ = select.select([conn], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)

# ruff: noqa: E501  (Status messages are the API server's exact wording)
"""The HTTP front of the emulator: routing, authentication, the REST verbs, watch, logs and exec.

It speaks the Kubernetes REST API over plain HTTP on 127.0.0.1 (``ThreadingHTTPServer``, one thread
per connection, HTTP/1.1 keep-alive) so that both ``kubectl`` and the official Python client work
against it unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vcci_lab.kube import _discovery, _logs, _patch, _tables, _websocket
from vcci_lab.kube._selectors import any_of, exact_field, parse_field_selector, parse_label_selector, selector_string
from vcci_lab.kube._store import Resource, Store, copy_json
from vcci_lab.kube._tls import server_context
from vcci_lab.kube._util import (
    JSON,
    ApiError,
    already_exists,
    bad_request,
    conflict,
    drop_nulls,
    format_cpu_nanos,
    format_mem_ki,
    invalid,
    not_found,
    parse_quantity,
    parse_time,
    rfc3339,
    safe_suffix,
    status_body,
    valid_dns_subdomain,
)
from vcci_lab.kube._world import FAULTS, NS, PODS, World, container_limit

log = logging.getLogger(__name__)

USERS = {
    "view": (
        "system:serviceaccount:vcci-production:vcci-diag",
        ["system:serviceaccounts", "system:serviceaccounts:vcci-production", "system:authenticated"],
    ),
    "admin": (
        "system:serviceaccount:vcci-production:vcci-mitigate",
        ["system:serviceaccounts", "system:serviceaccounts:vcci-production", "system:authenticated"],
    ),
    "open": ("kubernetes-admin", ["system:masters", "system:authenticated"]),
}
PUBLIC = {"/version", "/healthz", "/readyz", "/livez", "/version/"}
READ_VERBS = {"get", "list", "watch"}


class Emulator:
    """The emulated API server's state: store, world, tokens."""

    def __init__(self, *, pods: int = 12, tokens: dict[str, str] | None = None, data_dir: Path | None = None) -> None:
        self.pods = pods
        self.tokens = tokens
        self.data_dir = data_dir
        self.store = Store()
        self.sorted_cache: dict[tuple[str, str | None], tuple[int, Store, list[Any]]] = {}
        self.world = World(self.store, pods=pods)
        with self.store.lock:
            self.world.build()
            self.world.tick(time.time())
        self.world.start()
        self.started = time.time()

    def reset(self) -> None:
        """Back to the initial cluster: a new store (resourceVersions keep increasing) and world."""
        self.world.stop()
        store = Store()
        store.rv = self.store.rv + 1000
        store.base_rv = store.rv
        world = World(store, pods=self.pods)
        with store.lock:
            world.build()
            world.tick(time.time())
        old = self.store
        self.store, self.world = store, world
        old.stop_watchers()
        world.start()

    def close(self) -> None:
        self.world.stop()
        self.store.stop_watchers()


class KubeHTTPServer(ThreadingHTTPServer):
    """HTTP and HTTPS on one port: a connection whose first byte opens a TLS handshake is wrapped."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, addr: tuple[str, int], emulator: Emulator, tls: ssl.SSLContext | None = None, ca_pem: bytes = b""
    ) -> None:
        self.emulator = emulator
        self.tls = tls
        self.ca_pem = ca_pem
        super().__init__(addr, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            try:
                request.settimeout(30)
                first = request.recv(1, socket.MSG_PEEK)
                if first == b"\x16":
                    request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (OSError, ssl.SSLError):
                return
        self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; without this, 40 ms delayed ACKs
    server: KubeHTTPServer
    server_version = "vcci-lab-kube-emulator"
    sys_version = ""

    # ------------------------------------------------------------------------------------------
    # plumbing
    # ------------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def emu(self) -> Emulator:
        return self.server.emulator

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline()
                size = int(line.strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _json_body(self) -> Any:
        raw = self._body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            try:
                import yaml

                return yaml.safe_load(raw)
            except Exception as exc:
                raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc

    def send_bytes(
        self, code: int, data: bytes, ctype: str = "application/json", extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, code: int, obj: Any) -> None:
        self.send_bytes(code, json.dumps(obj, separators=(",", ":")).encode())

    def send_status(self, err: ApiError) -> None:
        self.send_json(err.code, err.body)

    def _dispatch(self, method: str) -> None:
        self._body_consumed = False
        self._body_dry = False
        try:
            self._route(method)
        except ApiError as err:
            self._drain()
            self.send_status(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # an emulator bug must look like a server error, not a hang
            log.exception("internal error on %s %s", method, self.path)
            self._drain()
            try:
                self.send_status(ApiError(status_body(500, "InternalError", f"Internal error occurred: {exc}")))
            except OSError:
                self.close_connection = True

    def _drain(self) -> None:
        if not getattr(self, "_body_consumed", True):
            with contextlib.suppress(Exception):  # best effort so keep-alive stays in sync
                self._body()
            self._body_consumed = True

    # ------------------------------------------------------------------------------------------
    # authentication and authorization
    # ------------------------------------------------------------------------------------------
    def _role(self, path: str) -> str | None:
        tokens = self.emu.tokens
        if tokens is None:
            return "open"
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            role = tokens.get(auth[7:].strip())
            if role in ("view", "admin"):
                return role
        if path in PUBLIC:
            return None
        raise ApiError(status_body(401, "Unauthorized", "Unauthorized"))

    def _authorize(
        self, role: str | None, verb: str, res: Resource | None, ns: str | None, name: str | None, sub: str | None
    ) -> None:
        if role in ("open", "admin"):
            return
        if role is None:
            raise ApiError(status_body(401, "Unauthorized", "Unauthorized"))
        resource = res.plural if res else ""
        full = f"{resource}/{sub}" if sub else resource
        allowed = verb in READ_VERBS and resource != "secrets" and sub not in ("exec", "attach", "portforward", "proxy")
        if res is not None and res.group in ("authentication.k8s.io", "authorization.k8s.io") and verb == "create":
            allowed = True
        if allowed:
            return
        user = USERS[role][0]
        group = res.group if res else ""
        where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
        subject = f'{res.qualified if res else resource} "{name}"' if name else (res.qualified if res else resource)
        msg = f'{subject} is forbidden: User "{user}" cannot {verb} resource "{full}" in API group "{group}"{where}'
        raise ApiError(status_body(403, "Forbidden", msg, name=name or None, group=group, kind=resource))

    # ------------------------------------------------------------------------------------------
    # routing
    # ------------------------------------------------------------------------------------------
    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.q = q
        self.query_multi = parse_qs(url.query, keep_blank_values=True)
        if path == "/_lab/ca.crt":
            # the cluster CA is public (a real cluster publishes it in every kube-root-ca.crt ConfigMap)
            if not self.server.ca_pem:
                raise ApiError(
                    status_body(404, "NotFound", "this emulator serves plain HTTP only (openssl was missing)")
                )
            self.send_bytes(200, self.server.ca_pem, "application/x-pem-file")
            return
        role = self._role(path)
        if path in ("/healthz", "/readyz", "/livez"):
            self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
            return
        if path == "/version":
            self.send_json(200, _discovery.version_info())
            return
        if role is None:
            raise ApiError(status_body(401, "Unauthorized", "Unauthorized"))
        if path.startswith("/_lab"):
            self._lab(method, path, role)
            return
        if path == "/openapi/v3":
            self.send_json(200, _discovery.openapi_v3_root())
            return
        if path.startswith("/openapi/v3/"):
            doc = _discovery.openapi_v3_doc(path[len("/openapi/v3/") :])
            if doc is None:
                raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
            self.send_json(200, doc)
            return
        if path.startswith("/openapi"):
            raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
        segs = [s for s in path.split("/") if s]
        if not segs or segs[0] not in ("api", "apis"):
            raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
        if segs[0] == "api":
            if len(segs) == 1:
                self.send_json(200, _discovery.api_versions())
                return
            group, version, rest = "", segs[1], segs[2:]
        else:
            if len(segs) == 1:
                self.send_json(200, _discovery.api_group_list())
                return
            if len(segs) == 2:
                if segs[1] not in _discovery.group_versions():
                    raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
                self.send_json(200, _discovery.api_group(segs[1]))
                return
            group, version, rest = segs[1], segs[2], segs[3:]
        if not rest:
            doc = _discovery.resource_list(group, version)
            if doc is None:
                raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
            self.send_json(200, doc)
            return
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in _discovery.BY_PATH:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        res = _discovery.BY_PATH.get((group, version, plural))
        if res is None:
            raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
        if sub is not None and sub not in res.subresources:
            raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
        if ns is not None and not res.namespaced:
            raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
        verb = self._verb(method, name, q)
        self._authorize(role, verb, res, ns, name, sub)
        if "dryRun" in q and q["dryRun"] not in ("All",):
            raise bad_request(f'Invalid dry run value: {q["dryRun"]!r}: valid values are "All"')
        if res.group == "metrics.k8s.io":
            self._metrics_api(res, ns, name)
            return
        if res.group == "authentication.k8s.io" and method == "POST":
            self._self_subject_review(role)
            return
        if res.group == "authorization.k8s.io" and method == "POST":
            self._access_review(role)
            return
        if sub == "log":
            self._pod_log(ns or "", name or "")
            return
        if sub in ("exec", "attach"):
            self._exec(ns or "", name or "", role)
            return
        if sub in ("portforward", "proxy"):
            raise ApiError(status_body(400, "BadRequest", f"{sub} is not supported by the lab's Kubernetes emulator"))
        if sub == "scale":
            self._scale(method, res, ns or "", name or "")
            return
        if sub == "eviction":
            self._evict(res, ns or "", name or "")
            return
        if method == "GET":
            if name is None:
                if q.get("watch") in ("true", "1"):
                    self._watch(res, ns)
                else:
                    self._list(res, ns)
            else:
                self._get(res, ns or "", name)
            return
        self._body_consumed = False
        if method == "POST":
            if name is not None:
                raise ApiError(
                    status_body(
                        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                    )
                )
            self._create(res, ns)
        elif method == "PUT":
            if name is None:
                raise ApiError(
                    status_body(
                        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                    )
                )
            self._update(res, ns or "", name, sub)
        elif method == "PATCH":
            if name is None:
                raise ApiError(
                    status_body(
                        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                    )
                )
            self._patch(res, ns or "", name, sub)
        elif method == "DELETE":
            if name is None:
                self._delete_collection(res, ns)
            else:
                self._delete(res, ns or "", name)

    @staticmethod
    def _verb(method: str, name: str | None, q: dict[str, str]) -> str:
        if method == "GET":
            if name is None:
                return "watch" if q.get("watch") in ("true", "1") else "list"
            return "get"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(
            method, "delete" if name else "deletecollection"
        )

    # ------------------------------------------------------------------------------------------
    # reads
    # ------------------------------------------------------------------------------------------
    def _wants_table(self) -> bool:
        return "as=Table" in (self.headers.get("Accept") or "")

    def _matcher(self, res: Resource) -> Any:
        q = self.q
        return any_of(
            parse_label_selector(q.get("labelSelector")),
            parse_field_selector(q.get("fieldSelector"), res.plural, res.kind, res.version),
        )

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

    def _start_stream(self, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if not data:
            return
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

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

    # ------------------------------------------------------------------------------------------
    # writes
    # ------------------------------------------------------------------------------------------
    def _dry(self) -> bool:
        return self.q.get("dryRun") == "All" or getattr(self, "_body_dry", False)

    def _read_obj(self) -> JSON:
        obj = self._json_body()
        self._body_consumed = True
        if not isinstance(obj, dict):
            raise bad_request(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
            )
        return obj

    def _check_strings(self, obj: JSON, kind: str) -> None:
        meta = obj.get("metadata") or {}
        for field in ("labels", "annotations"):
            vals = meta.get(field)
            if vals is None:
                continue
            if not isinstance(vals, dict):
                raise bad_request(
                    f"json: cannot unmarshal {type(vals).__name__} into Go struct field ObjectMeta.metadata.{field} of type map[string]string"
                )
            for v in vals.values():
                if not isinstance(v, str):
                    t = (
                        "number"
                        if isinstance(v, int | float) and not isinstance(v, bool)
                        else "bool"
                        if isinstance(v, bool)
                        else "object"
                    )
                    raise bad_request(
                        f"json: cannot unmarshal {t} into Go struct field ObjectMeta.metadata.{field} of type string"
                    )
        if kind in ("ConfigMap", "Secret"):
            for v in (obj.get("data") or {}).values():
                if not isinstance(v, str):
                    raise bad_request(f"json: cannot unmarshal number into Go struct field {kind}.data of type string")

    def _validate(self, res: Resource, obj: JSON, old: JSON | None) -> None:
        name = obj.get("metadata", {}).get("name", "")
        causes: list[tuple[str, str]] = []
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        elif res.plural != "events" and not valid_dns_subdomain(name):
            causes.append(
                (
                    "metadata.name",
                    f"Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                )
            )
        for v in (obj.get("metadata", {}).get("labels") or {}).values():
            if len(v) > 63 or (v and not all(c.isalnum() or c in "-_." for c in v)):
                causes.append(
                    (
                        "metadata.labels",
                        f"Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
        spec = obj.get("spec") or {}
        pod_spec: JSON | None = None
        prefix = "spec"
        if res.kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            reps = spec.get("replicas", 1)
            if not isinstance(reps, int) or isinstance(reps, bool):
                raise bad_request(
                    f"json: cannot unmarshal {type(reps).__name__} into Go struct field {res.kind}Spec.spec.replicas of type int32"
                )
            if reps < 0:
                causes.append(("spec.replicas", f"Invalid value: {reps}: must be greater than or equal to 0"))
            pod_spec = (spec.get("template") or {}).get("spec")
            prefix = "spec.template.spec"
            sel = parse_label_selector(selector_string(spec.get("selector")))
            tmpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if sel is not None and not sel({"metadata": {"labels": tmpl_labels}}):
                causes.append(
                    (
                        "spec.template.metadata.labels",
                        f"Invalid value: {json.dumps(tmpl_labels)}: `selector` does not match template `labels`",
                    )
                )
            if (
                old is not None
                and old.get("spec", {}).get("selector") != spec.get("selector")
                and res.kind == "Deployment"
            ):
                causes.append(
                    ("spec.selector", f"Invalid value: {json.dumps(spec.get('selector'))}: field is immutable")
                )
        elif res.kind == "Pod":
            pod_spec = spec
            if old is not None:
                o, n = copy_json(old.get("spec") or {}), copy_json(spec)
                for s in (o, n):
                    for c in s.get("containers") or []:
                        c.pop("image", None)
                    s.pop("activeDeadlineSeconds", None)
                    s.pop("tolerations", None)
                if o != n:
                    causes.append(
                        (
                            "spec",
                            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                        )
                    )
        elif res.kind == "PersistentVolumeClaim" and old is not None:
            try:
                new_s = parse_quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
                cap = parse_quantity(((old.get("status") or {}).get("capacity") or {}).get("storage", "0"))
                if new_s < cap:
                    causes.append(
                        ("spec.resources.requests.storage", "Forbidden: field can not be less than status.capacity")
                    )
            except ValueError as exc:
                causes.append(("spec.resources.requests.storage", f"Invalid value: {exc}"))
        if pod_spec is not None:
            containers = pod_spec.get("containers") or []
            if not containers:
                causes.append((f"{prefix}.containers", "Required value"))
            for i, c in enumerate(containers):
                p = f"{prefix}.containers[{i}]"
                if not c.get("name"):
                    causes.append((f"{p}.name", "Required value"))
                if not c.get("image"):
                    causes.append((f"{p}.image", "Required value"))
                for j, e in enumerate(c.get("env") or []):
                    en = e.get("name", "")
                    if not en or not all(ch.isalnum() or ch in "-._" for ch in en) or en[0].isdigit():
                        causes.append(
                            (
                                f"{p}.env[{j}].name",
                                f"Invalid value: \"{en}\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
                            )
                        )
                    if "value" in e and not isinstance(e["value"], str):
                        raise bad_request(
                            f"json: cannot unmarshal number into Go struct field EnvVar.{prefix}.containers.env.value of type string"
                        )
                res_ = c.get("resources") or {}
                parsed: dict[str, dict[str, float]] = {}
                for kind in ("limits", "requests"):
                    for rname, val in (res_.get(kind) or {}).items():
                        try:
                            parsed.setdefault(kind, {})[rname] = parse_quantity(val)
                        except ValueError as exc:
                            raise bad_request(
                                f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' ({rname}: {val!r}: {exc})"
                            ) from exc
                for rname, req in (parsed.get("requests") or {}).items():
                    lim = (parsed.get("limits") or {}).get(rname)
                    if lim is not None and req > lim:
                        causes.append(
                            (
                                f"{p}.resources.requests",
                                f'Invalid value: "{res_["requests"][rname]}": must be less than or equal to {rname} limit of {res_["limits"][rname]}',
                            )
                        )
        if causes:
            raise invalid(res.kind, res.group, name, causes)

    def _create(self, res: Resource, ns: str | None) -> None:
        obj = drop_nulls(self._read_obj())
        self._check_strings(obj, res.kind)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns or meta.get("namespace") or "default"
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + safe_suffix(5)
        obj["kind"] = res.kind
        obj["apiVersion"] = res.group_version
        store = self.emu.store
        world = self.emu.world
        with store.lock:
            self._validate(res, obj, None)
            if res.namespaced and store.get("/namespaces", "", meta["namespace"]) is None:
                raise not_found("namespaces", "", meta["namespace"])
            if store.get(res.key, meta.get("namespace", ""), meta["name"]) is not None:
                raise already_exists(res.plural, res.group, meta["name"])
            for k in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp"):
                meta.pop(k, None)
            if res.kind in ("Deployment", "ReplicaSet", "StatefulSet"):
                obj["spec"].setdefault("replicas", 1)
                obj.setdefault("status", {})
            if self._dry():
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = rfc3339(time.time())
                self.send_json(201, obj)
                return
            if res.plural == "pods":
                now = time.time()
                node = obj["spec"].get("nodeName") or world._pick_node()
                obj["spec"]["nodeName"] = node
                world.node_pods[node] = world.node_pods.get(node, 0) + 1
                rt = world._register_pod(obj, now)
                obj["status"] = world._pod_status(obj, rt, now)
                stored = store.create(res.key, obj)
                world.schedule(rt, now + 0.35)
            elif res.kind == "Namespace":
                obj.setdefault("status", {"phase": "Active"})
                obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
                stored = store.create(res.key, obj)
            else:
                stored = store.create(res.key, obj)
            world.dirty = True
            store.changed.set()
        self.send_bytes(201, json.dumps(stored, separators=(",", ":")).encode())

    def _commit_update(self, res: Resource, old: JSON, new: JSON, sub: str | None) -> tuple[int, JSON]:
        """Validate and store ``new`` in place of ``old``; return (status code, stored object)."""
        store = self.emu.store
        new = drop_nulls(new)
        self._check_strings(new, res.kind)
        nm, om = new.setdefault("metadata", {}), old["metadata"]
        if nm.get("name", om["name"]) != om["name"]:
            raise bad_request(
                f"the name of the object ({nm.get('name')}) does not match the name on the URL ({om['name']})"
            )
        if nm.get("resourceVersion") and nm["resourceVersion"] != om["resourceVersion"]:
            raise conflict(res.plural, res.group, om["name"])
        for k in (
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "deletionTimestamp",
            "generation",
            "ownerReferences" if res.kind == "Pod" else "_",
        ):
            if k in om:
                nm[k] = om[k]
            elif k in nm and k != "_":
                del nm[k]
        new["kind"], new["apiVersion"] = res.kind, res.group_version
        if sub == "status":
            merged = copy_json(old)
            merged["status"] = new.get("status", {})
            new = merged
        elif "status" in old:
            new["status"] = old["status"]
        self._validate(res, new, old)
        nm["resourceVersion"] = om["resourceVersion"]
        if new == old:
            return 200, old
        if new.get("spec") != old.get("spec") and "generation" in om:
            nm["generation"] = int(om["generation"]) + 1
        if self._dry():
            return 200, new
        stored = store.replace(res.key, new)
        world = self.emu.world
        if res.plural == "pods":
            rt = world.runtimes.get(om["uid"])
            if rt is not None:
                rt.mode = world.mode_for(stored)
        world.dirty = True
        store.changed.set()
        return 200, stored

    def _update(self, res: Resource, ns: str, name: str, sub: str | None) -> None:
        obj = self._read_obj()
        store = self.emu.store
        with store.lock:
            old = store.get(res.key, ns, name)
            if old is None:
                raise not_found(res.plural, res.group, name)
            code, out = self._commit_update(res, old, obj, sub)
        self.send_json(code, out)

    def _apply_patch(self, base: JSON) -> JSON:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        raw = self._body()
        self._body_consumed = True
        try:
            patch = json.loads(raw) if raw else None
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}") from exc
        try:
            if ctype == "application/json-patch+json":
                out = _patch.json_patch(base, patch)
            elif ctype == "application/merge-patch+json":
                out = _patch.merge_patch(base, patch)
            elif ctype == "application/strategic-merge-patch+json":
                out = _patch.strategic_merge(base, patch)
            elif ctype == "application/apply-patch+yaml":
                raise ApiError(
                    status_body(
                        415,
                        "UnsupportedMediaType",
                        "server-side apply is not supported by the lab's Kubernetes emulator; use a strategic merge or JSON patch",
                    )
                )
            else:
                raise ApiError(
                    status_body(
                        415,
                        "UnsupportedMediaType",
                        f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ctype!r})",
                    )
                )
        except _patch.PatchError as exc:
            if exc.code == 400:
                raise bad_request(str(exc)) from exc
            raise ApiError(status_body(422, "Invalid", str(exc))) from exc
        if not isinstance(out, dict):
            raise bad_request("patch result is not a JSON object")
        return out

    def _patch(self, res: Resource, ns: str, name: str, sub: str | None) -> None:
        store = self.emu.store
        with store.lock:
            old = store.get(res.key, ns, name)
            if old is None:
                self._body()
                self._body_consumed = True
                raise not_found(res.plural, res.group, name)
            new = self._apply_patch(copy_json(old))
            code, out = self._commit_update(res, old, new, sub)
        self.send_json(code, out)

    def _delete(self, res: Resource, ns: str, name: str) -> None:
        body = self._json_body() or {}
        self._body_consumed = True
        self._delete_options(body)
        store = self.emu.store
        world = self.emu.world
        grace: float | None = None
        if "gracePeriodSeconds" in self.q:
            grace = float(self.q["gracePeriodSeconds"])
        elif isinstance(body, dict) and body.get("gracePeriodSeconds") is not None:
            grace = float(body["gracePeriodSeconds"])
        pre = (body.get("preconditions") or {}) if isinstance(body, dict) else {}
        with store.lock:
            old = store.get(res.key, ns, name)
            if old is None:
                raise not_found(res.plural, res.group, name)
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise ApiError(
                    status_body(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {res.qualified} "{name}": Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {old["metadata"]["uid"]}',
                        name=name,
                        group=res.group,
                        kind=res.plural,
                    )
                )
            if self._dry():
                out = copy_json(old)
                if res.plural == "pods":
                    out["metadata"]["deletionTimestamp"] = rfc3339(time.time() + (grace if grace is not None else 30))
                    out["metadata"]["deletionGracePeriodSeconds"] = int(grace if grace is not None else 30)
                    self.send_json(200, out)
                else:
                    self.send_json(
                        200,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "metadata": {},
                            "status": "Success",
                            "details": {
                                "name": name,
                                "group": res.group,
                                "kind": res.plural,
                                "uid": old["metadata"]["uid"],
                            },
                        },
                    )
                return
            if res.plural == "pods":
                out = world.terminate_pod(old, time.time(), grace=grace)
                store.changed.set()
                self.send_json(200, out)
                return
            if res.kind == "Namespace" and name in ("default", "kube-system", "kube-public", "kube-node-lease"):
                raise ApiError(
                    status_body(
                        403,
                        "Forbidden",
                        f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                        name=name,
                        kind="namespaces",
                    )
                )
            store.delete(res.key, ns, name)
            if res.kind == "Namespace":
                for r in _discovery.RESOURCES:
                    if r.namespaced and r.stored:
                        for o in store.objects(r.key, name):
                            store.delete(r.key, name, o["metadata"]["name"])
            world.dirty = True
            store.changed.set()
        self.send_json(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": name, "group": res.group, "kind": res.plural, "uid": old["metadata"]["uid"]},
            },
        )

    def _delete_options(self, body: Any) -> None:
        """DeleteOptions may carry dryRun in the body (kubectl sends it there), not only in the query."""
        if not isinstance(body, dict):
            return
        dry = body.get("dryRun") or []
        if dry and dry != ["All"]:
            raise bad_request(f'Invalid dry run value: {dry!r}: valid values are "All"')
        self._body_dry = dry == ["All"]

    def _delete_collection(self, res: Resource, ns: str | None) -> None:
        self._delete_options(self._json_body())
        self._body_consumed = True
        entries = self._select(res, ns)
        store, world = self.emu.store, self.emu.world
        out = []
        with store.lock:
            for e in entries:
                o = e.obj
                if self._dry():
                    out.append(o)
                elif res.plural == "pods":
                    out.append(world.terminate_pod(o, time.time()))
                else:
                    store.delete(res.key, o["metadata"].get("namespace", ""), o["metadata"]["name"])
                    out.append(o)
            world.dirty = True
            store.changed.set()
        self.send_json(
            200,
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.group_version,
                "metadata": {"resourceVersion": str(store.rv)},
                "items": out,
            },
        )

    # ------------------------------------------------------------------------------------------
    # subresources
    # ------------------------------------------------------------------------------------------
    def _scale_obj(self, res: Resource, obj: JSON) -> JSON:
        st = obj.get("status") or {}
        sel = selector_string(obj["spec"].get("selector"))
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: obj["metadata"][k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in obj["metadata"]
            },
            "spec": {"replicas": int(obj["spec"].get("replicas", 1))},
            "status": {"replicas": int(st.get("replicas", 0)), "selector": sel},
        }

    def _scale(self, method: str, res: Resource, ns: str, name: str) -> None:
        store = self.emu.store
        with store.lock:
            obj = store.get(res.key, ns, name)
            if obj is None:
                self._drain()
                raise not_found(res.plural, res.group, name)
            scale = self._scale_obj(res, obj)
            if method == "GET":
                self.send_json(200, scale)
                return
            if method == "PUT":
                new_scale = self._read_obj()
            elif method == "PATCH":
                new_scale = self._apply_patch(copy_json(scale))
            else:
                raise ApiError(
                    status_body(
                        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                    )
                )
            rv = (new_scale.get("metadata") or {}).get("resourceVersion")
            if rv and rv != obj["metadata"]["resourceVersion"]:
                raise conflict(res.plural, res.group, name)
            reps = (new_scale.get("spec") or {}).get("replicas", 0)
            if not isinstance(reps, int) or isinstance(reps, bool):
                raise bad_request(
                    "json: cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32"
                )
            if reps < 0:
                raise invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    [("spec.replicas", f"Invalid value: {reps}: must be greater than or equal to 0")],
                )
            new = copy_json(obj)
            new["spec"]["replicas"] = reps
            if reps != obj["spec"].get("replicas"):
                new["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
                if not self._dry():
                    obj = store.replace(res.key, new)
                    self.emu.world.dirty = True
                    store.changed.set()
                else:
                    obj = new
            out = self._scale_obj(res, obj)
        self.send_json(200, out)

    def _evict(self, res: Resource, ns: str, name: str) -> None:
        self._json_body()
        self._body_consumed = True
        store = self.emu.store
        with store.lock:
            pod = store.get(res.key, ns, name)
            if pod is None:
                raise not_found(res.plural, res.group, name)
            if not self._dry():
                self.emu.world.terminate_pod(pod, time.time())
                store.changed.set()
        self.send_json(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})

    def _pod_log(self, ns: str, name: str) -> None:
        store, world = self.emu.store, self.emu.world
        q = self.q
        with store.lock:
            pod = store.get(PODS, ns, name)
            if pod is None:
                raise not_found("pods", "", name)
            names = [c["name"] for c in pod["spec"].get("containers") or []]
            container = q.get("container") or ""
            if not container:
                if len(names) != 1:
                    raise bad_request(
                        f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                    )
                container = names[0]
            if container not in names:
                raise bad_request(f"container {container} is not valid for pod {name}")
            rt = world.runtimes.get(pod["metadata"]["uid"])
            if rt is None or rt.current is None or rt.stage == "creating":
                raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
            previous = q.get("previous") in ("true", "1")
            if previous:
                inst = rt.previous
                if rt.stage == "backoff" and rt.current is not None and rt.current.finished_at is not None:
                    # The kubelet answers --previous from lastState.terminated: in CrashLoopBackOff
                    # that is the run that just crashed (the same one plain `logs` shows).
                    inst = rt.current
                if inst is None:
                    raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            else:
                inst = rt.current
            image = pod["spec"]["containers"][0].get("image", "")
            app = rt.app
            uid = pod["metadata"]["uid"]
            limit = (container_limit(pod["spec"], "memory") or 4 * 1024**3) / 1024**3
            # writes fail only while the log volume really is full (cleaning it up through exec stops them)
            disk = world.faults.get("disk-full")
            vol = world.volumes.get((NS, "vcci-api-data"))
            full = vol is not None and vol.available < 0.05 * vol.capacity
            # the volume filled up over the ten minutes before anyone injected (noticed) it
            disk_since = parse_time(disk["since"]) - 600 if disk and full and ns == NS else None
        now = time.time()
        since: float | None = None
        if q.get("sinceSeconds"):
            since = now - float(q["sinceSeconds"])
        elif q.get("sinceTime"):
            since = parse_time(q["sinceTime"])
        tail = int(q["tailLines"]) if q.get("tailLines") not in (None, "") else None
        if tail is not None and tail < 0:
            tail = None
        limit_bytes = int(q["limitBytes"]) if q.get("limitBytes") else None
        timestamps = q.get("timestamps") in ("true", "1")
        text = _logs.render(
            app=app,
            image=image,
            uid=uid,
            inst=inst,
            now=now,
            tail=tail,
            since=since,
            timestamps=timestamps,
            limit_bytes=limit_bytes,
            limit_gib=limit,
            disk_full_since=disk_since,
        )
        follow = q.get("follow") in ("true", "1") and not previous
        if not follow:
            self.send_bytes(200, text.encode(), "text/plain")
            return
        self._start_stream("text/plain")
        try:
            self._chunk(text.encode())
            sent_until = now
            while True:
                time.sleep(1.0)
                with store.lock:
                    cur = world.runtimes.get(uid)
                    alive = store.get(PODS, ns, name) is not None and cur is not None and cur.current is inst
                t = time.time()
                more = _logs.render(
                    app=app,
                    image=image,
                    uid=uid,
                    inst=inst,
                    now=t,
                    tail=None,
                    since=sent_until + 1e-6,
                    timestamps=timestamps,
                    limit_bytes=None,
                    limit_gib=limit,
                    disk_full_since=disk_since,
                )
                sent_until = t
                self._chunk(more.encode())
                if not alive or inst.finished_at is not None:
                    break
            self._end_stream()
        except OSError:
            self.close_connection = True

    def _exec(self, ns: str, name: str, role: str | None) -> None:
        store, world = self.emu.store, self.emu.world
        cmd = self.query_multi.get("command", [])
        with store.lock:
            pod = store.get(PODS, ns, name)
            if pod is None:
                raise not_found("pods", "", name)
            names = [c["name"] for c in pod["spec"].get("containers") or []]
            container = self.q.get("container") or (names[0] if names else "")
            if container not in names:
                raise bad_request(f"container {container} is not valid for pod {name}")
            rt = world.runtimes.get(pod["metadata"]["uid"])
            if rt is None or rt.stage not in ("starting", "ready"):
                raise bad_request(f'unable to upgrade connection: container not found ("{container}")')
        upgrade = (self.headers.get("Upgrade") or "").lower()
        if upgrade != "websocket":
            raise ApiError(
                status_body(
                    400,
                    "BadRequest",
                    "Upgrade request required: the lab's Kubernetes emulator serves exec over WebSocket only (kubectl >= 1.30 or the Python client's stream())",
                )
            )
        proto = _websocket.choose_protocol(self.headers.get("Sec-WebSocket-Protocol") or "")
        if proto is None:
            raise bad_request(
                "unable to upgrade connection: no supported subprotocol (want v5.channel.k8s.io or v4.channel.k8s.io)"
            )
        key = self.headers.get("Sec-WebSocket-Key") or ""
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", _websocket.accept_key(key))
        self.send_header("Sec-WebSocket-Protocol", proto)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        ch = _websocket.ChannelWriter(self.wfile, self.connection)  # type: ignore[arg-type]
        tty = self.q.get("tty") in ("true", "1")
        interactive = (
            self.q.get("stdin") in ("true", "1")
            and bool(cmd)
            and cmd[0].rsplit("/", 1)[-1] in ("sh", "bash", "ash", "dash")
            and "-c" not in cmd
        )
        try:
            if interactive:
                code: int | None = self._exec_shell(ch, ns, name, tty)
            else:
                with store.lock:
                    pod = store.get(PODS, ns, name)
                    fs = world.container_fs(pod, time.time()) if pod else None
                    result = fs.run(cmd) if fs else None
                code = None
                if result is not None:
                    if self.q.get("stdout", "true") in ("true", "1") and result.stdout:
                        ch.send(1, _crlf(result.stdout, tty).encode())
                    if result.stderr:
                        # with a tty stderr is merged into stdout
                        ch.send(1 if tty else 2, _crlf(result.stderr, tty).encode())
                    code = result.code
            if code is None:
                ch.send(3, json.dumps({"metadata": {}, "status": "Failure", "message": "pod went away"}).encode())
            elif code == 0:
                ch.send(3, json.dumps({"metadata": {}, "status": "Success"}).encode())
            else:
                status = {
                    "metadata": {},
                    "status": "Failure",
                    "message": f"command terminated with non-zero exit code: error executing command {json.dumps(cmd)}, exit code {code}",
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
                }
                ch.send(3, json.dumps(status).encode())
            world.dirty = True
            ch.close()
            # wait briefly for the client's close frame so it sees a clean shutdown
            self.connection.settimeout(2.0)
            for _ in range(8):
                fr = _websocket.read_frame(self.rfile)  # type: ignore[arg-type]
                if fr is None or fr[0] == _websocket.OP_CLOSE:
                    break
        except OSError:
            pass

    def _exec_shell(self, ch: _websocket.ChannelWriter, ns: str, name: str, tty: bool) -> int | None:
        """``kubectl exec -it ... -- sh``: a line-at-a-time shell over the stdin channel.

        With a tty the emulator plays the terminal's line discipline (echo, backspace, Ctrl-C,
        Ctrl-D); without one it runs each line it reads until stdin closes.
        """
        store, world = self.emu.store, self.emu.world
        prompt = f"{name}:/app$ "
        if tty:
            ch.send(1, prompt.encode())
        self.connection.settimeout(3600)
        buf = ""
        last = 0

        def run(line: str) -> bool:
            nonlocal last
            line = line.strip()
            if not line:
                return True
            with store.lock:
                pod = store.get(PODS, ns, name)
                if pod is None:
                    return False
                r = world.container_fs(pod, time.time()).run(["sh", "-c", line])
            out = r.stdout + r.stderr if tty else r.stdout
            if out:
                ch.send(1, _crlf(out, tty).encode())
            if r.stderr and not tty:
                ch.send(2, r.stderr.encode())
            last = r.code
            return not line.startswith("exit")

        while True:
            fr = _websocket.read_frame(self.rfile)  # type: ignore[arg-type]
            if fr is None or fr[0] == _websocket.OP_CLOSE:
                break
            op, data = fr
            if op == _websocket.OP_PING:
                self.wfile.write(_websocket.frame(_websocket.OP_PONG, data))
                continue
            if op not in (_websocket.OP_BINARY, _websocket.OP_TEXT) or not data:
                continue
            stream_id, payload = data[0], data[1:]
            if stream_id == 255:  # v5: the client closed stdin
                run(buf)
                break
            if stream_id != 0:
                continue  # resize events and anything else
            for c in payload.decode(errors="replace"):
                if not tty:
                    if c == "\n":
                        if not run(buf):
                            return last
                        buf = ""
                    else:
                        buf += c
                    continue
                if c in "\r\n":
                    ch.send(1, b"\r\n")
                    if not run(buf):
                        return last
                    buf = ""
                    ch.send(1, prompt.encode())
                elif c in "\x7f\b":
                    if buf:
                        buf = buf[:-1]
                        ch.send(1, b"\b \b")
                elif c == "\x03":
                    buf = ""
                    ch.send(1, ("^C\r\n" + prompt).encode())
                elif c == "\x04" and not buf:
                    ch.send(1, b"exit\r\n")
                    return last
                elif c >= " ":
                    buf += c
                    ch.send(1, c.encode())
        return last

    # ------------------------------------------------------------------------------------------
    # metrics.k8s.io, auth reviews
    # ------------------------------------------------------------------------------------------
    def _metrics_api(self, res: Resource, ns: str | None, name: str | None) -> None:
        store, world = self.emu.store, self.emu.world
        now = time.time()
        ts = rfc3339(now - 7)
        match = self._matcher(res)
        with store.lock:
            if res.plural == "pods":
                pods = [p for p in store.objects(PODS, ns) if match(p)]
                if name is not None:
                    pods = [p for p in pods if p["metadata"]["name"] == name]
                items = []
                for p in sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
                    u = world.usage(p, now)
                    if u is None:
                        continue
                    items.append(
                        {
                            "metadata": {
                                "name": p["metadata"]["name"],
                                "namespace": p["metadata"]["namespace"],
                                "creationTimestamp": rfc3339(now),
                                "labels": p["metadata"].get("labels") or {},
                            },
                            "timestamp": ts,
                            "window": "15.012s",
                            "containers": [
                                {
                                    "name": p["spec"]["containers"][0]["name"],
                                    "usage": {"cpu": format_cpu_nanos(u[0]), "memory": format_mem_ki(u[1])},
                                }
                            ],
                        }
                    )
                if name is not None:
                    if not items:
                        raise not_found("pods", "metrics.k8s.io", name)
                    self.send_json(200, {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1", **items[0]})
                    return
                self.send_json(
                    200,
                    {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items},
                )
                return
            per_node: dict[str, list[float]] = {}
            for p in store.iter_objects(PODS):
                u = world.usage(p, now)
                if u is None:
                    continue
                acc = per_node.setdefault(p["spec"].get("nodeName", ""), [0.0, 0.0])
                acc[0] += u[0]
                acc[1] += u[1]
            items = []
            for n in sorted(store.objects("/nodes"), key=lambda n: n["metadata"]["name"]):
                if not match(n) or (name is not None and n["metadata"]["name"] != name):
                    continue
                cpu, mem = per_node.get(n["metadata"]["name"], [0.0, 0.0])
                items.append(
                    {
                        "metadata": {
                            "name": n["metadata"]["name"],
                            "creationTimestamp": rfc3339(now),
                            "labels": n["metadata"].get("labels") or {},
                        },
                        "timestamp": ts,
                        "window": "20.047s",
                        "usage": {"cpu": format_cpu_nanos(cpu + 0.35), "memory": format_mem_ki(mem + 1.6 * 1024**3)},
                    }
                )
        if name is not None:
            if not items:
                raise not_found("nodes", "metrics.k8s.io", name)
            self.send_json(200, {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1", **items[0]})
            return
        self.send_json(
            200, {"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}
        )

    def _self_subject_review(self, role: str | None) -> None:
        self._json_body()
        self._body_consumed = True
        user, groups = USERS[role or "open"]
        self.send_json(
            201,
            {
                "kind": "SelfSubjectReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "status": {"userInfo": {"username": user, "groups": groups}},
            },
        )

    def _access_review(self, role: str | None) -> None:
        body = self._json_body() or {}
        self._body_consumed = True
        attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
        verb = attrs.get("verb", "")
        resource = attrs.get("resource", "")
        sub = attrs.get("subresource", "")
        allowed = role in ("open", "admin") or (
            verb in READ_VERBS and resource != "secrets" and sub not in ("exec", "attach", "portforward", "proxy")
        )
        out = dict(body)
        out.setdefault("metadata", {})
        out["status"] = {"allowed": allowed}
        if not allowed:
            out["status"]["reason"] = (
                "the lab's read-only role (vcci-diag) grants get, list and watch on everything but Secrets"
            )
        self.send_json(201, out)

    # ------------------------------------------------------------------------------------------
    # lab endpoints (contract B)
    # ------------------------------------------------------------------------------------------
    def _lab(self, method: str, path: str, role: str) -> None:
        emu = self.emu
        write = method != "GET"
        if write and role == "view":
            raise ApiError(
                status_body(
                    403,
                    "Forbidden",
                    f'User "{USERS["view"][0]}" cannot {method.lower()} lab endpoint "{path}": lab faults need the admin token',
                )
            )
        self._json_body()
        self._body_consumed = True
        parts = [p for p in path.split("/") if p]
        if parts == ["_lab", "metrics"] and method == "GET":
            self.send_bytes(200, self._lab_metrics().encode(), "text/plain; version=0.0.4; charset=utf-8")
            return
        if parts == ["_lab", "reset"] and method == "POST":
            emu.reset()
            self.send_json(200, {"reset": True, **emu.world.fault_state()})
            return
        if parts == ["_lab", "faults"] and method == "GET":
            with emu.store.lock:
                self.send_json(200, emu.world.fault_state())
            return
        if len(parts) == 3 and parts[:2] == ["_lab", "faults"] and method in ("POST", "DELETE"):
            fault = parts[2]
            if fault not in FAULTS:
                raise ApiError(
                    status_body(
                        404,
                        "NotFound",
                        f'unknown fault "{fault}"; valid faults: {", ".join(FAULTS)}',
                        name=fault,
                        kind="faults",
                    )
                )
            with emu.store.lock:
                now = time.time()
                state = emu.world.inject(fault, now) if method == "POST" else emu.world.heal(fault, now)
                emu.world.tick(now)
            self.send_json(200, state)
            return
        raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))

    def _lab_metrics(self) -> str:
        store, world = self.emu.store, self.emu.world
        now = time.time()
        lines: dict[str, list[str]] = {}
        helps = {
            "kube_pod_container_status_restarts_total": ("counter", "The number of container restarts per container."),
            "kube_pod_container_status_ready": ("gauge", "Describes whether the containers readiness check succeeded."),
            "kube_pod_container_status_waiting_reason": (
                "gauge",
                "Describes the reason the container is currently in waiting state.",
            ),
            "kube_pod_container_status_last_terminated_reason": (
                "gauge",
                "Describes the last reason the container was in terminated state.",
            ),
            "kube_pod_status_phase": ("gauge", "The pods current phase."),
            "kube_deployment_spec_replicas": ("gauge", "Number of desired pods for a deployment."),
            "kube_deployment_status_replicas_available": ("gauge", "The number of available replicas per deployment."),
            "kube_deployment_status_replicas_unavailable": (
                "gauge",
                "The number of unavailable replicas per deployment.",
            ),
            "container_memory_working_set_bytes": ("gauge", "Current working set of the container in bytes"),
            "container_spec_memory_limit_bytes": ("gauge", "Memory limit for the container."),
            "container_cpu_usage_seconds_total": (
                "counter",
                "Cumulative cpu time consumed by the container in core-seconds",
            ),
            "kubelet_volume_stats_capacity_bytes": ("gauge", "Capacity in bytes of the volume"),
            "kubelet_volume_stats_available_bytes": ("gauge", "Number of available bytes in the volume"),
            "kubelet_volume_stats_used_bytes": ("gauge", "Number of used bytes in the volume"),
        }

        def add(metric: str, labels: dict[str, str], value: float) -> None:
            lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.setdefault(metric, []).append(
                f"{metric}{{{lab}}} {value:.6g}"
                if isinstance(value, float) and not value.is_integer()
                else f"{metric}{{{lab}}} {int(value)}"
            )

        with store.lock:
            for p in store.iter_objects(PODS):
                meta = p["metadata"]
                base = {"namespace": meta["namespace"], "pod": meta["name"]}
                st = p.get("status") or {}
                add("kube_pod_status_phase", {**base, "phase": st.get("phase", "Unknown")}, 1)
                for cs in st.get("containerStatuses") or []:
                    lb = {**base, "container": cs["name"]}
                    add("kube_pod_container_status_restarts_total", lb, int(cs.get("restartCount", 0)))
                    add("kube_pod_container_status_ready", lb, 1 if cs.get("ready") else 0)
                    waiting = (cs.get("state") or {}).get("waiting")
                    if waiting and waiting.get("reason"):
                        add("kube_pod_container_status_waiting_reason", {**lb, "reason": waiting["reason"]}, 1)
                    term = (cs.get("lastState") or {}).get("terminated")
                    if term and term.get("reason"):
                        add("kube_pod_container_status_last_terminated_reason", {**lb, "reason": term["reason"]}, 1)
                u = world.usage(p, now)
                cname = p["spec"]["containers"][0]["name"]
                lb = {**base, "container": cname, "node": p["spec"].get("nodeName", "")}
                lim = container_limit(p["spec"], "memory")
                if lim:
                    add("container_spec_memory_limit_bytes", lb, lim)
                if u is not None:
                    add("container_memory_working_set_bytes", lb, float(int(u[1])))
                    add("container_cpu_usage_seconds_total", lb, round(world.cpu_seconds(p, now), 3))
            for d in store.objects("apps/deployments"):
                lb = {"namespace": d["metadata"]["namespace"], "deployment": d["metadata"]["name"]}
                st = d.get("status") or {}
                add("kube_deployment_spec_replicas", lb, int(d["spec"].get("replicas", 1)))
                add("kube_deployment_status_replicas_available", lb, int(st.get("availableReplicas", 0)))
                add("kube_deployment_status_replicas_unavailable", lb, int(st.get("unavailableReplicas", 0)))
            for (ns, claim), vol in world.volumes.items():
                lb = {"namespace": ns, "persistentvolumeclaim": claim}
                add("kubelet_volume_stats_capacity_bytes", lb, vol.capacity)
                add("kubelet_volume_stats_available_bytes", lb, vol.available)
                add("kubelet_volume_stats_used_bytes", lb, vol.used)
        out = []
        for metric, (typ, help_) in helps.items():
            if metric in lines:
                out.append(f"# HELP {metric} {help_}")
                out.append(f"# TYPE {metric} {typ}")
                out.extend(lines[metric])
        return "\n".join(out) + "\n"


def make_server(
    host: str, port: int, emulator: Emulator, *, tls_dir: Path | None = None, tls: bool = True
) -> KubeHTTPServer:
    """Bind the server; with ``tls`` (the default) it also answers TLS on the same port."""
    made = server_context(tls_dir) if tls else None
    if made is None:
        return KubeHTTPServer((host, port), emulator)
    return KubeHTTPServer((host, port), emulator, made[0], made[1])


def serve_in_thread(
    host: str = "127.0.0.1", port: int = 0, *, pods: int = 12, tokens: dict[str, str] | None = None
) -> tuple[KubeHTTPServer, threading.Thread]:
    """Start an emulator in this process (tests and benchmarks); returns the server and its thread."""
    emu = Emulator(pods=pods, tokens=tokens)
    srv = make_server(host, port, emu, tls=False)
    t = threading.Thread(target=srv.serve_forever, name="kube-emulator", daemon=True)
    t.start()
    return srv, t


__all__ = ["Emulator", "KubeHTTPServer", "make_server", "serve_in_thread"]
_ = NS


def _crlf(text: str, tty: bool) -> str:
    """A terminal turns \\n into \\r\\n; so does the emulated one."""
    return text.replace("\n", "\r\n") if tty else text


def _client_gone(conn: Any) -> bool:
    """True when a connection that should be silent has become readable (the peer closed it)."""
    import select

    try:
        readable, _, _ = select.select([conn], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)

"""The HTTP front of the emulator: the server, authentication and authorization, and the route table.

The verbs live in their own modules (:mod:`._reads`, :mod:`._writes`, :mod:`._subresources`,
:mod:`._extras`) over a shared base (:mod:`._handler`); :class:`Handler` combines them.

It speaks the Kubernetes REST API over plain HTTP on 127.0.0.1 (``ThreadingHTTPServer``, one thread
per connection, HTTP/1.1 keep-alive) so that both ``kubectl`` and the official Python client work
against it unchanged.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vcci_lab.kube import _discovery
from vcci_lab.kube._extras import Extras
from vcci_lab.kube._handler import PUBLIC, READ_VERBS, USERS
from vcci_lab.kube._store import Resource, Store
from vcci_lab.kube._subresources import Subresources
from vcci_lab.kube._tls import server_context
from vcci_lab.kube._util import ApiError, bad_request, status_body
from vcci_lab.kube._world import World

log = logging.getLogger(__name__)


class Emulator:
    """The emulated API server's state: store, world, tokens."""

    def __init__(self, *, pods: int = 12, tokens: dict[str, str] | None = None, data_dir: Path | None = None) -> None:
        self.pods = pods
        self.tokens = tokens
        self.data_dir = data_dir
        self.store = Store()
        self.sorted_cache: dict[tuple[str, str | None], tuple[int, Store, list[Any]]] = {}
        self.world = World(self.store, pods=pods)
        self.world.data_dir = data_dir
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
        world.data_dir = self.data_dir
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


@dataclass(frozen=True)
class Call:
    """One request to a resource path, parsed: what the route table dispatches on."""

    method: str
    res: Resource
    ns: str | None
    name: str | None
    sub: str | None
    role: str | None
    verb: str


class Handler(Subresources, Extras):
    """The emulator's request handler: authentication, authorization and the route table below."""

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
        plain = PLAIN_ROUTES.get(path)
        if plain is not None:
            plain(self)
            return
        if role is None:
            raise ApiError(status_body(401, "Unauthorized", "Unauthorized"))
        if path.startswith("/_lab"):
            self._lab(method, path, role)
            return
        if path.startswith("/openapi"):
            self._openapi(path)
            return
        call = self._resolve(method, path, role)
        if call is None:
            return  # a discovery document, answered
        self._authorize(role, call.verb, call.res, call.ns, call.name, call.sub)
        if "dryRun" in q and q["dryRun"] not in ("All",):
            raise bad_request(f'Invalid dry run value: {q["dryRun"]!r}: valid values are "All"')
        group = call.res.group
        route = (
            GROUP_ROUTES.get((group, None))
            or GROUP_ROUTES.get((group, method))
            or SUBRESOURCE_ROUTES.get(call.sub or "")
        )
        if route is None:
            route = VERB_ROUTES[call.verb]
            if method != "GET":
                self._body_consumed = False
        route(self, call)

    def _openapi(self, path: str) -> None:
        if path == "/openapi/v3":
            self.send_json(200, _discovery.openapi_v3_root())
            return
        doc = _discovery.openapi_v3_doc(path[len("/openapi/v3/") :]) if path.startswith("/openapi/v3/") else None
        if doc is None:
            raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
        self.send_json(200, doc)

    def _resolve(self, method: str, path: str, role: str | None) -> Call | None:
        """The resource a path names (or None once a discovery document has been sent)."""
        segs = [s for s in path.split("/") if s]
        if not segs or segs[0] not in ("api", "apis"):
            raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
        if segs[0] == "api":
            if len(segs) == 1:
                self.send_json(200, _discovery.api_versions())
                return None
            group, version, rest = "", segs[1], segs[2:]
        else:
            if len(segs) == 1:
                self.send_json(200, _discovery.api_group_list())
                return None
            if len(segs) == 2:
                if segs[1] not in _discovery.group_versions():
                    raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
                self.send_json(200, _discovery.api_group(segs[1]))
                return None
            group, version, rest = segs[1], segs[2], segs[3:]
        if not rest:
            doc = _discovery.resource_list(group, version)
            if doc is None:
                raise ApiError(status_body(404, "NotFound", "the server could not find the requested resource"))
            self.send_json(200, doc)
            return None
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
        return Call(method, res, ns, name, sub, role, self._verb(method, name, self.q))

    @staticmethod
    def _verb(method: str, name: str | None, q: dict[str, str]) -> str:
        if method == "GET":
            if name is None:
                return "watch" if q.get("watch") in ("true", "1") else "list"
            return "get"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(
            method, "delete" if name else "deletecollection"
        )


# --- the route table ----------------------------------------------------------------------------
# A request to a resource path goes to the first of: its API group's route (for any method, or for
# this one), its subresource's route, the route of its verb.

Route = Callable[[Handler, Call], None]


def _not_allowed() -> ApiError:
    return ApiError(
        status_body(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    )


def _unsupported(h: Handler, c: Call) -> None:
    raise ApiError(status_body(400, "BadRequest", f"{c.sub} is not supported by the lab's Kubernetes emulator"))


def _create(h: Handler, c: Call) -> None:
    if c.name is not None:
        raise _not_allowed()
    h._create(c.res, c.ns)


def _update(h: Handler, c: Call) -> None:
    if c.name is None:
        raise _not_allowed()
    h._update(c.res, c.ns or "", c.name, c.sub)


def _patch(h: Handler, c: Call) -> None:
    if c.name is None:
        raise _not_allowed()
    h._patch(c.res, c.ns or "", c.name, c.sub)


def _healthy(h: Handler) -> None:
    h.send_bytes(200, b"ok", "text/plain; charset=utf-8")


#: Paths answered before any resource routing (after authentication, which lets them through).
PLAIN_ROUTES: dict[str, Callable[[Handler], None]] = {
    "/healthz": _healthy,
    "/readyz": _healthy,
    "/livez": _healthy,
    "/version": lambda h: h.send_json(200, _discovery.version_info()),
}

#: (API group, method or None for any) -> route
GROUP_ROUTES: dict[tuple[str, str | None], Route] = {
    ("metrics.k8s.io", None): lambda h, c: h._metrics_api(c.res, c.ns, c.name),
    ("authentication.k8s.io", "POST"): lambda h, c: h._self_subject_review(c.role),
    ("authorization.k8s.io", "POST"): lambda h, c: h._access_review(c.role),
}

#: subresource -> route (other subresources, such as status, go by their verb)
SUBRESOURCE_ROUTES: dict[str, Route] = {
    "log": lambda h, c: h._pod_log(c.ns or "", c.name or ""),
    "exec": lambda h, c: h._exec(c.ns or "", c.name or "", c.role),
    "attach": lambda h, c: h._exec(c.ns or "", c.name or "", c.role),
    "portforward": _unsupported,
    "proxy": _unsupported,
    "scale": lambda h, c: h._scale(c.method, c.res, c.ns or "", c.name or ""),
    "eviction": lambda h, c: h._evict(c.res, c.ns or "", c.name or ""),
}

#: verb (from the method, the name and ?watch) -> route
VERB_ROUTES: dict[str, Route] = {
    "get": lambda h, c: h._get(c.res, c.ns or "", c.name or ""),
    "list": lambda h, c: h._list(c.res, c.ns),
    "watch": lambda h, c: h._watch(c.res, c.ns),
    "create": _create,
    "update": _update,
    "patch": _patch,
    "delete": lambda h, c: h._delete(c.res, c.ns or "", c.name or ""),
    "deletecollection": lambda h, c: h._delete_collection(c.res, c.ns),
}


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

# ruff: noqa: E501  (Status messages are the API server's exact wording)
"""What every part of the emulator's request handler shares: reading bodies, answering, streaming.

The handler is one class (:class:`vcci_lab.kube._server.Handler`) made of parts: this base, the verb
modules (:mod:`._reads`, :mod:`._writes`, :mod:`._subresources`, :mod:`._extras`) and the route table
in :mod:`._server`, which parses the path, authenticates, authorizes and picks the part that answers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from vcci_lab.kube._selectors import any_of, parse_field_selector, parse_label_selector
from vcci_lab.kube._store import Resource
from vcci_lab.kube._util import JSON, ApiError, bad_request

if TYPE_CHECKING:
    from vcci_lab.kube._server import Emulator, KubeHTTPServer

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


class HandlerBase(BaseHTTPRequestHandler):
    """One connection's requests (``BaseHTTPRequestHandler``): the plumbing the verbs use."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; without this, 40 ms delayed ACKs
    server: KubeHTTPServer
    server_version = "vcci-lab-kube-emulator"
    sys_version = ""
    #: the request's query, last value of each parameter (set by the router)
    q: dict[str, str]
    #: the request's query, every value of each parameter
    query_multi: dict[str, list[str]]
    _body_consumed: bool
    _body_dry: bool
    #: the store's resourceVersion when :meth:`Reads._select` read it
    _rv: str

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def emu(self) -> Emulator:
        return self.server.emulator

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

    def _drain(self) -> None:
        if not getattr(self, "_body_consumed", True):
            with contextlib.suppress(Exception):  # best effort so keep-alive stays in sync
                self._body()
            self._body_consumed = True

    def _wants_table(self) -> bool:
        return "as=Table" in (self.headers.get("Accept") or "")

    def _matcher(self, res: Resource) -> Any:
        q = self.q
        return any_of(
            parse_label_selector(q.get("labelSelector")),
            parse_field_selector(q.get("fieldSelector"), res.plural, res.kind, res.version),
        )

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

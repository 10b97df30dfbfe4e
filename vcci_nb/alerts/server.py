"""``vcci-nb serve``: the Alertmanager webhook receiver and the threads behind it.

A request does four cheap things: authenticate (bearer token, constant-time compare), bound the
body, validate it strictly, and commit it to SQLite. Then it answers. Everything slow (opening
incidents, writing records, running notebooks) happens on other threads that read the queue, so
the acknowledgement stays fast during a storm and a notebook never runs inside a request.

Answers, chosen for how Alertmanager reacts to them (it retries 5xx and network errors, never
other 4xx): 200 accepted; 400 bad payload (with the reason); 401 missing or wrong token; 404/405
wrong path or method; 408 body too slow; 411 no Content-Length; 413 body too large; 415 not
JSON; 503 when the payload could not be persisted or too many connections are open, so that
Alertmanager tries again.

Slow clients: ``ThreadingHTTPServer`` starts a thread per connection with no cap, and a socket
timeout only bounds one read, so a client trickling a byte every few seconds held a thread for
ever (300 of them held 304 threads). Here every request has one deadline for its request line,
headers and body together (``read_timeout_s``; a reaper thread cuts the read side of a socket
past it and the request is answered 408), connections are capped overall (``max_connections``)
and per client address (``max_client_connections``), answered 503 with ``Retry-After`` past the
cap without a thread, and a POST without the right token is answered 401 and closed right after
its headers, before any body is read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from vcci_nb.alerts.backend import BackendConfig
from vcci_nb.alerts.metrics import Metrics
from vcci_nb.alerts.payload import PayloadError, parse_notification
from vcci_nb.alerts.routing import Routes
from vcci_nb.alerts.store import Store, StoreError
from vcci_nb.alerts.worker import pdeathsig_preexec
from vcci_nb.errors import ConfigError
from vcci_nb.redact import redact, register_secret
from vcci_nb.runenv import ServeEnv

log = logging.getLogger(__name__)

TOKEN_ENV = ServeEnv.var("token")  # the variable's name, not a token
DEFAULT_MAX_BODY = 4 * 1024 * 1024
DEFAULT_PORT = 9787


def read_token(env: dict[str, str] | None = None) -> str | None:
    """The bearer token from ``VCCI_NB_SERVE_TOKEN_FILE`` (a mounted Secret) or ``VCCI_NB_SERVE_TOKEN``."""
    said = ServeEnv.from_environ(env)
    path = said.token_file
    if path:
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{TOKEN_ENV}_FILE points at {path}, which cannot be read: {exc.strerror}") from exc
        if not token:
            raise ConfigError(f"{TOKEN_ENV}_FILE points at {path}, which is empty; put the bearer token in it")
    else:
        token = (said.token or "").strip()
    if token and len(token) < 16:
        raise ConfigError(
            f"the serve token is {len(token)} characters long; use at least 16 (e.g. `openssl rand -hex 32`)"
        )
    if token:
        register_secret(token)
    return token or None


@dataclass
class ServeConfig:
    """Everything ``vcci-nb serve`` can be told."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    outputs: Path | None = None
    routes: Path | None = None
    profile: str | None = None
    concurrency: int = 2
    run_timeout_s: float = 1800.0
    max_attempts: int = 2
    delivery_attempts: int = 5
    delivery_retry_s: float = 2.0
    #: /healthz answers 503 once the oldest notification not yet ingested has waited this long.
    max_pending_age_s: float = 300.0
    max_body: int = DEFAULT_MAX_BODY
    read_timeout_s: float = 10.0
    max_connections: int = 128
    max_client_connections: int = 32
    run_command: list[str] | None = None
    reminder_interval_s: float = 0.0
    reminders_send: bool = False
    run_env: dict[str, str] | None = None
    executor: str = "local"
    job_image: str | None = None
    job_namespace: str | None = None
    record_store: str | None = None


class _Handler(BaseHTTPRequestHandler):
    server_version = "vcci-nb-serve"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits for the client's
    # delayed ACK (40 ms here), which alone would break the 50 ms acknowledgement budget.
    disable_nagle_algorithm = True
    service: ClassVar[Service]

    #: Monotonic time by which the request being read must be in (None between requests'
    #: reads: while answering). The service's reaper cuts the read side past it.
    reading_until: float | None = None
    #: Set by the reaper when it cut this request's read side.
    cut = False

    # -- plumbing -----------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.service.track(self, True)

    def finish(self) -> None:
        self.service.track(self, False)
        super().finish()

    def handle_one_request(self) -> None:
        """BaseHTTPRequestHandler's, with one deadline over the request line, headers and body."""
        self.cut = False
        self.reading_until = time.monotonic() + self.service.config.read_timeout_s
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline or (self.cut and not self.raw_requestline.endswith(b"\n")):
                self.close_connection = True  # idle keep-alive connection, or cut mid-line: nothing to answer
                if self.cut and self.raw_requestline:
                    self._too_slow()
                return
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.parse_request():
                return
            if self.cut:
                self._too_slow()
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(501, f"Unsupported method ({self.command!r})")
                return
            method()
            self.wfile.flush()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("%s: connection dropped: %s", self.address_string(), exc)
            self.close_connection = True
        finally:
            self.reading_until = None

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        if self.cut:  # the headers ended because the deadline cut them, not because they were malformed
            self._too_slow()
            return
        super().send_error(code, message, explain)

    def _too_slow(self) -> None:
        self.reading_until = None
        with contextlib.suppress(OSError):
            self._error(
                408,
                f"the request did not arrive within {self.service.config.read_timeout_s:g} s (headers and body)",
            )
        self.close_connection = True

    def _read_done(self) -> None:
        self.reading_until = None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), redact(format % args))

    def _send(
        self, code: int, body: dict[str, Any] | str, *, close: bool = False, headers: dict[str, str] | None = None
    ) -> None:
        if isinstance(body, dict):
            data = (json.dumps(body) + "\n").encode()
            ctype = "application/json"
        else:
            data = body.encode()
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.service.metrics.response(code)

    def _error(self, code: int, reason: str, *, close: bool = True, headers: dict[str, str] | None = None) -> None:
        self._send(code, {"status": "error", "error": reason}, close=close, headers=headers)

    # -- methods ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._read_done()
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            # Cheap on purpose (at most one indexed read a second): it is the liveness probe.
            if not self.service.backend_running():
                self._send(503, {"status": "degraded", "error": "the back end (ingest and runs) is not running"})
                return
            try:
                age = self.service.oldest_pending_age()
            except StoreError as exc:
                self._error(503, str(exc), close=False)
                return
            bound = self.service.config.max_pending_age_s
            if age > bound:
                self._send(
                    503,
                    {
                        "status": "degraded",
                        "oldest_pending_s": round(age, 1),
                        "error": f"a notification has waited {age:.0f} s to be ingested, more than {bound:g} s",
                    },
                )
            else:
                self._send(200, {"status": "ok", "oldest_pending_s": round(age, 1)})
        elif path == "/metrics":
            try:
                text = self.service.metrics.render(self.service.store)
            except StoreError as exc:
                self._error(503, str(exc))
                return
            self._send(200, text)
        else:
            self._error(
                404, f"no such path {path[:100]!r}; try POST /alertmanager, GET /healthz or GET /metrics", close=False
            )

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        started = time.perf_counter()
        path = self.path.split("?", 1)[0]
        if path != "/alertmanager":
            self._error(404, f"no such path {path[:100]!r}; Alertmanager posts to /alertmanager")
            return
        if not self._authorized():  # dropped right after the headers: its body is never read
            self._read_done()
            self._error(401, "missing or wrong bearer token", headers={"WWW-Authenticate": 'Bearer realm="vcci-nb"'})
            return
        ctype = (self.headers.get("Content-Type") or "application/json").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            self._error(415, f"Content-Type is {ctype[:60]!r}; send application/json")
            return
        if self.headers.get("Transfer-Encoding"):
            self._error(411, "send the body with a Content-Length, not chunked")
            return
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self._error(411, "Content-Length is required")
            return
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            self._error(400, f"Content-Length {raw_length[:20]!r} is not a non-negative integer")
            return
        limit = self.service.config.max_body
        if length > limit:
            self._error(
                413, f"body of {length} bytes is larger than the limit of {limit}; lower max_alerts in Alertmanager"
            )
            return
        try:
            body = self.rfile.read(length)
        except (TimeoutError, OSError):
            self._too_slow()
            return
        if self.cut:
            self._too_slow()
            return
        self._read_done()
        if len(body) < length:
            self._error(400, f"the body ended after {len(body)} of {length} bytes")
            return
        try:
            note = parse_notification(body)
        except PayloadError as exc:
            self._error(400, str(exc), close=False)
            return
        try:
            delivery = self.service.store.add_delivery(
                group_key=note.group_key,
                status=note.status,
                n_alerts=len(note.alerts),
                truncated=note.truncated_alerts,
                body=body,
            )
        except StoreError as exc:
            log.error("could not persist a notification: %s", exc)
            self._error(
                503,
                "the receiver could not persist the notification; Alertmanager will retry",
                headers={"Retry-After": "5"},
            )
            return
        self.service.wake_backend()
        self._send(200, {"status": "accepted", "delivery": delivery, "alerts": len(note.alerts)})
        self.service.metrics.ack_seconds.observe(time.perf_counter() - started)

    def do_PUT(self) -> None:
        self._error(405, "use POST /alertmanager")

    do_DELETE = do_PUT
    do_PATCH = do_PUT

    def _authorized(self) -> bool:
        token = self.service.config.token
        if token is None:
            return True
        given = self.headers.get("Authorization") or ""
        return hmac.compare_digest(given.encode("utf-8", "replace"), f"Bearer {token}".encode())


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on connections, overall and per client address."""

    daemon_threads = True
    request_queue_size = 128
    max_connections = 128
    max_client_connections = 32
    on_refused: Callable[[], None] | None = None

    def server_activate(self) -> None:
        self._open: dict[str, int] = {}
        self._open_total = 0
        self._hosts: dict[int, str] = {}
        self._open_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        host = str(client_address[0]) if isinstance(client_address, tuple) else "?"
        with self._open_lock:
            full = self._open_total >= self.max_connections or self._open.get(host, 0) >= self.max_client_connections
            if not full:
                self._open_total += 1
                self._open[host] = self._open.get(host, 0) + 1
                self._hosts[id(request)] = host
        if full:
            self._refuse(request, host)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._open_lock:
                self._hosts.pop(id(request), None)
            self._release(host)
            raise

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._open_lock:
            host = self._hosts.pop(id(request), None)
        if host is not None:
            self._release(host)

    def _release(self, host: str) -> None:
        with self._open_lock:
            if self._open_total > 0:
                self._open_total -= 1
            left = self._open.get(host, 0) - 1
            if left > 0:
                self._open[host] = left
            else:
                self._open.pop(host, None)

    def _refuse(self, request: Any, host: str) -> None:
        """503 without a thread: written with a short timeout, then closed."""
        body = json.dumps({"status": "error", "error": "too many connections; try again shortly"}).encode() + b"\n"
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with contextlib.suppress(OSError):
            request.settimeout(1.0)
            request.sendall(head + body)
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_RDWR)
        request.close()
        log.warning("refused a connection from %s: too many open connections", host)
        if self.on_refused is not None:
            self.on_refused()


class Service:
    """The front: the HTTP receiver and the durable queue; it starts and watches the back end."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.config.state_dir / "serve.lock", "a+")  # noqa: SIM115 - held for the service's life
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock_file.close()
            raise ConfigError(
                f"another vcci-nb serve is using {self.config.state_dir}; stop it or give this one another --state-dir"
            ) from exc
        Routes.load(config.routes)  # a broken routes.yaml stops the start, not the first alert
        if config.executor == "kubernetes":  # likewise a profile without the executor's settings, or no bucket
            from vcci_nb.alerts.kubejobs import check_executor

            check_executor(config.profile, config.job_image, config.job_namespace, config.record_store)
        elif config.executor != "local":
            raise ConfigError(f"--executor {config.executor!r}: choose local or kubernetes")
        self.store = Store(config.state_dir, checkpoints=False)
        self.metrics = Metrics()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._backend: subprocess.Popen[bytes] | None = None
        self._backend_lock = threading.Lock()
        self._preexec = pdeathsig_preexec()
        self._pending_lock = threading.Lock()
        self._pending_oldest: tuple[float, float | None] = (0.0, None)
        handler = type("Handler", (_Handler,), {"service": self, "timeout": config.read_timeout_s})
        self.httpd = _Server((config.host, config.port), handler)
        self.httpd.max_connections = max(1, config.max_connections)
        self.httpd.max_client_connections = max(1, config.max_client_connections)
        self.httpd.on_refused = lambda: self.metrics.response(503)
        self.port = int(self.httpd.server_address[1])
        self._handlers: set[_Handler] = set()
        self._handlers_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def start(self) -> None:
        """Start the back end (which first recovers interrupted work), then answer requests."""
        config_path = self.config.state_dir / "backend.json"
        BackendConfig(
            state_dir=str(self.config.state_dir),
            outputs=str(self.config.outputs) if self.config.outputs else None,
            routes=str(self.config.routes) if self.config.routes else None,
            profile=self.config.profile,
            concurrency=self.config.concurrency,
            run_timeout_s=self.config.run_timeout_s,
            max_attempts=self.config.max_attempts,
            delivery_attempts=self.config.delivery_attempts,
            delivery_retry_s=self.config.delivery_retry_s,
            run_command=self.config.run_command,
            reminder_interval_s=self.config.reminder_interval_s,
            reminders_send=self.config.reminders_send,
            log_level=logging.getLogger().getEffectiveLevel(),
            executor=self.config.executor,
            job_image=self.config.job_image,
            job_namespace=self.config.job_namespace,
            record_store=self.config.record_store,
        ).write(config_path)
        started = threading.Event()
        self._spawn("vcci-nb-backend", lambda: self._supervise(config_path, started))
        started.wait(30)
        self._spawn("vcci-nb-reaper", self._reap)
        self._spawn("vcci-nb-http", self.httpd.serve_forever)
        (self.config.state_dir / "serve.json").write_text(json.dumps({"pid": os.getpid(), "url": self.url}) + "\n")
        log.info("vcci-nb serve listening on %s", self.url)

    def _spawn(self, name: str, target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _supervise(self, config_path: Path, started: threading.Event) -> None:
        """Run the back end; start it again if it dies while the front is up.

        This thread starts the child, so the child's PR_SET_PDEATHSIG is tied to it; it lives
        until :meth:`stop`.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(TOKEN_ENV)}  # runs never see the token
        env.update(self.config.run_env or {})
        while not self._stop.is_set():
            with self._backend_lock:
                self._backend = subprocess.Popen(
                    [sys.executable, "-m", "vcci_nb.alerts.backend", str(config_path)],
                    stdin=subprocess.PIPE,
                    env=env,
                    preexec_fn=self._preexec,
                )
                assert self._backend.stdin is not None
                os.set_blocking(self._backend.stdin.fileno(), False)
            started.set()
            code = self._backend.wait()
            if self._stop.is_set():
                return
            log.error("the receiver's back end exited with %s; starting it again in 1 s", code)
            self._stop.wait(1.0)

    def backend_running(self) -> bool:
        backend = self._backend
        return backend is not None and backend.poll() is None

    def track(self, handler: _Handler, open_: bool) -> None:
        with self._handlers_lock:
            if open_:
                self._handlers.add(handler)
            else:
                self._handlers.discard(handler)

    def _reap(self) -> None:
        """Cut the read side of every connection whose request is past its deadline (it is then answered 408)."""
        while not self._stop.wait(0.2):
            now = time.monotonic()
            with self._handlers_lock:
                late = [
                    h for h in self._handlers if h.reading_until is not None and now > h.reading_until and not h.cut
                ]
            for handler in late:
                handler.cut = True
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RD)

    def oldest_pending_age(self) -> float:
        """How long the oldest notification not yet ingested has waited, read at most once a second."""
        now = time.time()
        with self._pending_lock:
            read_at, oldest = self._pending_oldest
            if now - read_at >= 1.0:
                age = self.store.oldest_pending_age(now)
                oldest = now - age if age > 0 else None
                self._pending_oldest = (now, oldest)
        return 0.0 if oldest is None else max(0.0, now - oldest)

    def wake_backend(self) -> None:
        """Tell the back end a notification is waiting (best effort: it also polls every second)."""
        with self._backend_lock:
            backend = self._backend
            if backend is None or backend.stdin is None:
                return
            with contextlib.suppress(OSError, ValueError):
                backend.stdin.write(b"\n")
                backend.stdin.flush()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop answering, stop the back end (runs get ``grace_s``), release the state directory."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self.httpd.shutdown()
        self.httpd.server_close()
        with self._backend_lock:
            backend = self._backend
        if backend is not None and backend.poll() is None:
            backend.send_signal(signal.SIGTERM)
            try:
                backend.wait(grace_s + 20)
            except subprocess.TimeoutExpired:
                backend.kill()
                backend.wait()
        if backend is not None and backend.stdin is not None:
            with contextlib.suppress(OSError):
                backend.stdin.close()
        for thread in self._threads:
            thread.join(5.0)
        self.store.close()
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on host:port (used by tests and the lab)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")

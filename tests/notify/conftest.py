"""Real protocol peers for the notification tests, on 127.0.0.1 at free ports.

- ``receiver``: one stdlib HTTP server playing Slack (incoming webhook and chat.postMessage),
  Atlassian Statuspage (v1 incidents), PagerDuty (Events API v2) and a generic webhook. It checks
  every request against the provider's documented shape and answers as the provider does; it
  can be told to fail (any status, Retry-After) for the next N calls to a path.
- ``smtp``: an aiosmtpd server that requires STARTTLS (self-signed certificate made with
  ``openssl`` here) before AUTH, checks the login, and keeps what it accepted.
- ``notify_env``: canary credentials and the lab profile's variables pointing at both peers.
"""

from __future__ import annotations

import copy
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CANARY = {
    "smtp_password": "canary-smtp-pw-7f3a9c41",
    "slack_token": "xoxb-canary-slack-token-5d2e77",
    "pd_key": "canarypdroutingkey0000000000a1b2",  # PagerDuty integration keys are 32 characters
    "pd_manager_key": "canarypdmanagerkey0000000000c3d4",
    "statuspage_key": "canary-statuspage-key-9b8c0e",
    "webhook_secret": "canarywebhooksecret42",
    "webhook_token": "canary-webhook-token-31",
}
SLACK_WEBHOOK_PATH = f"/slack/webhook/T0001/B0001/{CANARY['webhook_secret']}"
PAGE_ID = "lab-page"

PD_SEVERITIES = {"critical", "error", "warning", "info"}
SP_STATUSES = {"investigating", "identified", "monitoring", "resolved"}
SP_COMPONENT = {"operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"}
SP_IMPACT = {"none", "minor", "major", "critical"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """Stand-in endpoints that speak each provider's documented API, and remember every call."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    scripted: dict[str, list[tuple[int, dict[str, str], Any]]] = field(default_factory=dict)
    statuspage_incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path_prefix: str, *responses: tuple[int, dict[str, str], Any]) -> None:
        """The next calls to ``path_prefix`` get these (status, headers, body) answers, in order."""
        self.scripted.setdefault(path_prefix, []).extend(responses)

    def calls(self, prefix: str, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix) and (method is None or r.method == method)]

    # -- provider behaviour --------------------------------------------------------------------

    def handle(self, req: Request) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.requests.append(req)
            for prefix, queue in self.scripted.items():
                if req.path.startswith(prefix) and queue:
                    return queue.pop(0)
        if req.path.startswith("/slack/webhook/"):
            return self._slack_webhook(req)
        if req.path == "/slack/api/chat.postMessage":
            return self._slack_api(req)
        if req.path.startswith("/statuspage/v1/pages/"):
            return self._statuspage(req)
        if req.path == "/pagerduty/v2/enqueue":
            return self._pagerduty(req)
        if req.path.startswith("/hook"):
            return 200, {}, {"received": True}
        return 404, {}, {"error": "no such endpoint"}

    def _bad(self, why: str) -> None:
        self.violations.append(why)

    def _slack_webhook(self, req: Request) -> tuple[int, dict[str, str], Any]:
        if req.path != SLACK_WEBHOOK_PATH:
            return 404, {}, "no_service"
        if not req.headers.get("content-type", "").startswith("application/json"):
            self._bad("slack webhook: Content-Type is not JSON")
        if not isinstance(req.body, dict) or not isinstance(req.body.get("text"), str) or not req.body["text"]:
            self._bad(f"slack webhook: body needs a non-empty 'text': {req.body!r}")
            return 400, {}, "invalid_payload"
        return 200, {}, "ok"

    def _slack_api(self, req: Request) -> tuple[int, dict[str, str], Any]:
        if req.headers.get("authorization") != f"Bearer {CANARY['slack_token']}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        body = req.body if isinstance(req.body, dict) else {}
        if not isinstance(body.get("channel"), str) or not isinstance(body.get("text"), str):
            self._bad(f"chat.postMessage: channel and text are required: {body!r}")
            return 200, {}, {"ok": False, "error": "invalid_arguments"}
        if "thread_ts" in body and not isinstance(body["thread_ts"], str):
            self._bad("chat.postMessage: thread_ts must be a string")
        ts = f"1700000000.{len(self.calls('/slack/api/')):06d}"
        return 200, {}, {"ok": True, "channel": "C0VCCI", "ts": ts, "message": {"text": body["text"]}}

    def _statuspage(self, req: Request) -> tuple[int, dict[str, str], Any]:
        if req.headers.get("authorization") != f"OAuth {CANARY['statuspage_key']}":
            return 401, {}, {"error": "Could not authenticate"}
        parts = req.path.split("/")  # ['', 'statuspage', 'v1', 'pages', PAGE, 'incidents', (id)]
        if len(parts) < 6 or parts[4] != PAGE_ID or parts[5] != "incidents":
            return 404, {}, {"error": "not found"}
        inc = (req.body or {}).get("incident") if isinstance(req.body, dict) else None
        if not isinstance(inc, dict):
            self._bad(f"statuspage: body must be {{'incident': {{...}}}}: {req.body!r}")
            return 400, {}, {"error": "incident is missing"}
        if inc.get("status") not in SP_STATUSES:
            self._bad(f"statuspage: status {inc.get('status')!r} is not a realtime incident status")
        for cid, st in (inc.get("components") or {}).items():
            if st not in SP_COMPONENT:
                self._bad(f"statuspage: component {cid} status {st!r} invalid")
        if req.method == "POST" and len(parts) == 6:
            if not inc.get("name"):
                self._bad("statuspage: a new incident needs a name")
            if inc.get("impact_override") not in SP_IMPACT:
                self._bad(f"statuspage: impact_override {inc.get('impact_override')!r} invalid")
            sp_id = f"sp{len(self.statuspage_incidents) + 1:04d}"
            self.statuspage_incidents[sp_id] = copy.deepcopy(inc)
            return (
                201,
                {},
                {
                    "id": sp_id,
                    "name": inc.get("name"),
                    "status": inc["status"],
                    "shortlink": f"https://stspg.io/{sp_id}",
                },
            )
        if req.method == "PATCH" and len(parts) == 7:
            sp_id = parts[6]
            if sp_id not in self.statuspage_incidents:
                return 404, {}, {"error": "incident not found"}
            self.statuspage_incidents[sp_id].update(inc)
            return 200, {}, {"id": sp_id, "status": inc.get("status"), "shortlink": f"https://stspg.io/{sp_id}"}
        return 405, {}, {"error": "method not allowed"}

    def _pagerduty(self, req: Request) -> tuple[int, dict[str, str], Any]:
        body = req.body if isinstance(req.body, dict) else {}
        errors = []
        if body.get("routing_key") not in (CANARY["pd_key"], CANARY["pd_manager_key"]):
            errors.append("routing_key is invalid")
        if body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
            errors.append("event_action must be trigger, acknowledge or resolve")
        dk = body.get("dedup_key")
        if dk is not None and (not isinstance(dk, str) or len(dk) > 255):
            errors.append("dedup_key must be a string of at most 255 characters")
        if body.get("event_action") == "trigger":
            p = body.get("payload") or {}
            if not isinstance(p.get("summary"), str) or not p["summary"] or len(p["summary"]) > 1024:
                errors.append("payload.summary is required (1-1024 characters)")
            if not p.get("source"):
                errors.append("payload.source is required")
            if p.get("severity") not in PD_SEVERITIES:
                errors.append("payload.severity must be critical, error, warning or info")
        elif body.get("event_action") in ("acknowledge", "resolve") and not dk:
            errors.append("dedup_key is required to acknowledge or resolve")
        if errors:
            self.violations.extend(f"pagerduty: {e}" for e in errors)
            return 400, {}, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        return 202, {}, {"status": "success", "message": "Event processed", "dedup_key": dk or "generated"}


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            status, headers, answer = receiver.handle(req)
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = _serve
        do_PATCH = _serve
        do_GET = _serve

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(rec))
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


# -- SMTP ----------------------------------------------------------------------------------------


@dataclass
class Smtp:
    host: str
    port: int
    ca_file: Path
    messages: list[dict[str, Any]] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)  # scripted replies to DATA, in order
    data_calls: int = 0
    auth_attempts: list[tuple[str, bool]] = field(default_factory=list)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _start_smtp(tls_cert: tuple[Path, Path], *, starttls: bool = True) -> tuple[Any, Smtp]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tls_cert
    state = Smtp("127.0.0.1", free_port(), cert)

    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            if address.startswith("nobody@"):
                return "550 5.1.1 No such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            state.data_calls += 1
            if state.data_replies:
                return state.data_replies.pop(0)
            state.messages.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "content": envelope.content.decode("utf-8", errors="replace"),
                    "tls": session.ssl is not None,
                    "authenticated": bool(session.authenticated),
                }
            )
            return "250 Message accepted for delivery"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == b"vcci-notify"
            and auth_data.password == CANARY["smtp_password"].encode()
        )
        state.auth_attempts.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)

    kwargs: dict[str, Any] = {"authenticator": authenticator, "auth_require_tls": starttls}
    if starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        kwargs.update(tls_context=ctx, require_starttls=True)
    controller = Controller(Handler(), hostname="127.0.0.1", port=state.port, **kwargs)
    controller.start()
    return controller, state


@pytest.fixture
def smtp(tls_cert: tuple[Path, Path]) -> Iterator[Smtp]:
    controller, state = _start_smtp(tls_cert)
    yield state
    controller.stop()


@pytest.fixture
def smtp_plain(tls_cert: tuple[Path, Path]) -> Iterator[Smtp]:
    """An SMTP server that offers no STARTTLS (the client must refuse to log in to it)."""
    controller, state = _start_smtp(tls_cert, starttls=False)
    yield state
    controller.stop()


@pytest.fixture
def notify_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, receiver: Receiver, smtp: Smtp) -> dict[str, str]:
    env = {
        "VCCI_NB_PROFILE": "lab",
        "VCCI_NB_OUTPUTS": str(tmp_path / "outputs"),
        "VCCI_SLACK_WEBHOOK_URL": receiver.url + SLACK_WEBHOOK_PATH,
        "VCCI_SLACK_API_URL": receiver.url + "/slack/api",
        "VCCI_SLACK_BOT_TOKEN": CANARY["slack_token"],
        "VCCI_SMTP_HOST": smtp.host,
        "VCCI_SMTP_PORT": str(smtp.port),
        "VCCI_SMTP_USERNAME": "vcci-notify",
        "VCCI_SMTP_CA_FILE": str(smtp.ca_file),
        "VCCI_STATUSPAGE_API_URL": receiver.url + "/statuspage/v1",
        "VCCI_STATUSPAGE_PAGE_ID": PAGE_ID,
        "VCCI_STATUSPAGE_API_KEY": CANARY["statuspage_key"],
        "VCCI_PAGERDUTY_URL": receiver.url + "/pagerduty/v2/enqueue",
        "VCCI_PAGERDUTY_ROUTING_KEY": CANARY["pd_key"],
        "VCCI_PAGERDUTY_MANAGER_ROUTING_KEY": CANARY["pd_manager_key"],
        "VCCI_PAGERDUTY_CTO_ROUTING_KEY": CANARY["pd_manager_key"],
        "VCCI_WEBHOOK_URL": receiver.url + "/hook",
        "VCCI_WEBHOOK_TOKEN": CANARY["webhook_token"],
        "VCCI_NB_ACTOR": "oncall-test",
    }
    # The password comes from a file, as a mounted Kubernetes Secret would provide it.
    pw = tmp_path / "smtp-password"
    pw.write_text(CANARY["smtp_password"] + "\n")
    env["VCCI_SMTP_PASSWORD_FILE"] = str(pw)
    monkeypatch.delenv("VCCI_SMTP_PASSWORD", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def fast_profile() -> Any:
    """The lab profile with short retry back-offs, so retry tests do not sleep for seconds."""
    from vcci_nb.config import Profile, load_profile

    base = load_profile("lab")
    data = copy.deepcopy(base.data)
    for conf in data["notify"]["channels"].values():
        conf["backoff_s"] = 0.05
    return Profile(name="lab", data=data)

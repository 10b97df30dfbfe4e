"""The channels a message can go out on, configured by the profile's ``notify.channels``.

Each channel turns a rendered :class:`Message` into one provider call. Settings that are not
secret (URLs, channel names, page and component ids, recipients) come from the profile, either
literally (``api_url: https://…``) or from an environment variable it names (``api_url_env:``);
credentials come only from environment variables or ``<VAR>_FILE`` files (``token_env:``,
``password_env:``, ``routing_key_env:``) and are registered with :mod:`vcci_nb.redact` the
moment they are read. Nothing here reads credentials for a dry run.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vcci_nb.config import env_secret
from vcci_nb.errors import ConfigError
from vcci_nb.notify._http import HttpOutcome, RetryRule, Sleep, call
from vcci_nb.policy import SEVERITIES
from vcci_nb.redact import redact, register_secret

PAGERDUTY_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}
STATUSPAGE_IMPACT = {"P0": "critical", "P1": "major", "P2": "minor", "P3": "none"}
COMPONENT_STATUS_BY_SEVERITY = {
    "P0": "major_outage",
    "P1": "partial_outage",
    "P2": "degraded_performance",
    "P3": "operational",
}
COMPONENT_STATUSES = frozenset(
    {"operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"}
)
STATUSPAGE_STATUSES = frozenset({"investigating", "identified", "monitoring", "resolved"})


def _one_line(value: str) -> str:
    """A header value on one line: every run of whitespace (newlines included) becomes one space."""
    return " ".join(str(value).split())


@dataclass
class Message:
    """One rendered message for one channel: what would be sent, without any credential."""

    channel: str
    kind: str
    template: str
    text: str
    subject: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    recipients: dict[str, list[str]] = field(default_factory=dict)
    payload: dict[str, Any] | None = None
    target: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "kind": self.kind,
            "template": self.template,
            "subject": self.subject,
            "text": self.text,
            "recipients": self.recipients,
            "target": self.target,
            "payload": self.payload,
        }


@dataclass
class Outcome:
    """What sending one message came to."""

    ok: bool
    response: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)


def redact_tree(value: Any) -> Any:
    """Every string in a JSON-like tree redacted: provider answers can echo what they were sent."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value


def _from_http(out: HttpOutcome, **ids: Any) -> Outcome:
    response: dict[str, Any] = {"status_code": out.status_code}
    response.update({k: v for k, v in ids.items() if v is not None})
    return Outcome(
        ok=out.ok, response=redact_tree(response), error=redact(out.error), attempts=redact_tree(out.attempts)
    )


def _env_value(conf: dict[str, Any], key: str, default: Any = None) -> Any:
    """A non-secret setting: ``KEY_env`` (an environment variable's value) wins over ``KEY``."""
    var = conf.get(f"{key}_env")
    if var:
        value = os.environ.get(str(var))
        if value:
            return value
    return conf.get(key, default)


def _secret(conf: dict[str, Any], key: str, channel: str) -> str:
    """A credential from the environment variable (or ``VAR_FILE``) the profile names."""
    var = conf.get(f"{key}_env")
    if not var:
        raise ConfigError(
            f"notify channel {channel!r} has no {key}_env setting naming the variable that holds its {key}"
        )
    value = env_secret(str(var))
    if not value:
        raise ConfigError(
            f"notify channel {channel!r}: set {var} (or {var}_FILE) to its {key} before sending; "
            "a dry run works without it"
        )
    register_secret(value)
    return value


class Channel:
    """Base of every channel. ``variant`` picks the template file (``NAME.VARIANT.j2``)."""

    kind = "channel"
    variant = "text"
    #: See vcci_nb.notify._http for what each rule means.
    rule = RetryRule()

    def __init__(self, name: str, conf: dict[str, Any], *, environment: str = "") -> None:
        self.name = name
        self.conf = conf
        self.environment = environment
        sev = conf.get("severities", list(SEVERITIES))
        self.severities: tuple[str, ...] = tuple(str(s) for s in (sev or ()))
        self.timeout = float(conf.get("timeout_s", 10))
        self.rule = RetryRule(
            idempotent=self.rule.idempotent,
            rejected_statuses=self.rule.rejected_statuses,
            max_attempts=int(conf.get("max_attempts", self.rule.max_attempts)),
            max_wait_s=float(conf.get("max_wait_s", self.rule.max_wait_s)),
            backoff_s=float(conf.get("backoff_s", self.rule.backoff_s)),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def target(self) -> str:
        """Where messages go, safe to show (no token, no webhook path)."""
        return ""

    def build(self, message: Message, data: dict[str, Any]) -> None:
        """Fill ``message.payload`` (and subject/recipients) with what would be sent."""
        message.payload = {"text": message.text}

    def send(self, message: Message, data: dict[str, Any], sleep: Sleep = time.sleep) -> Outcome:
        raise NotImplementedError


def _host_only(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _secret_url(conf: dict[str, Any], channel: str) -> str:
    """A URL that is itself a credential (Slack incoming webhook): its path is the secret."""
    url = _secret(conf, "url", channel)
    parts = urlsplit(url)
    register_secret(parts.path)
    if parts.query:
        register_secret(parts.query)
    return url


class SlackWebhook(Channel):
    """Slack incoming webhook: ``POST {"text": …}``, answered ``200 ok``.

    A post is not idempotent and Slack returns no id to check it by, so only 429 (rejected,
    with Retry-After) and refused connections are retried.
    """

    kind = "slack_webhook"
    variant = "slack"
    rule = RetryRule(idempotent=False)

    def target(self) -> str:
        var = self.conf.get("url_env", "")
        return f"Slack incoming webhook (${var})"

    def build(self, message: Message, data: dict[str, Any]) -> None:
        message.payload = {"text": message.text}

    def send(self, message: Message, data: dict[str, Any], sleep: Sleep = time.sleep) -> Outcome:
        url = _secret_url(self.conf, self.name)
        out = call(
            "POST",
            url,
            json_body=message.payload,
            rule=self.rule,
            timeout=self.timeout,
            sleep=sleep,
            provider="Slack webhook",
        )
        if out.ok and isinstance(out.body, str) and out.body.strip() not in ("", "ok"):
            out.ok, out.error = False, f"Slack webhook answered {out.body[:200]!r} instead of 'ok'"
        return _from_http(out)


class SlackApi(Channel):
    """Slack Web API ``chat.postMessage`` with a bot token (``Authorization: Bearer xoxb-…``).

    Answers ``200 {"ok": true, "channel", "ts"}``, or ``{"ok": false, "error"}``. Updates can go
    into the thread of the first message (``thread_updates: true``). Retry rule as for webhooks.
    """

    kind = "slack_api"
    variant = "slack"
    rule = RetryRule(idempotent=False)

    def api_url(self) -> str:
        return str(_env_value(self.conf, "api_url", "https://slack.com/api")).rstrip("/")

    def target(self) -> str:
        return f"{_host_only(self.api_url())} chat.postMessage → {self.conf.get('channel', '?')}"

    def _thread_ts(self, data: dict[str, Any]) -> str | None:
        if not self.conf.get("thread_updates"):
            return None
        for n in data.get("notifications") or []:
            if n.get("channel") == self.name and n.get("status") == "sent":
                ts = (n.get("response") or {}).get("ts")
                if ts:
                    return str(ts)
        return None

    def build(self, message: Message, data: dict[str, Any]) -> None:
        channel = self.conf.get("channel")
        if not channel:
            raise ConfigError(f"notify channel {self.name!r} (slack_api) needs 'channel:' (e.g. '#vcci-incidents')")
        payload: dict[str, Any] = {"channel": channel, "text": message.text, "unfurl_links": False}
        ts = self._thread_ts(data)
        if ts:
            payload["thread_ts"] = ts
        message.payload = payload

    def send(self, message: Message, data: dict[str, Any], sleep: Sleep = time.sleep) -> Outcome:
        token = _secret(self.conf, "token", self.name)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
        out = call(
            "POST",
            f"{self.api_url()}/chat.postMessage",
            json_body=message.payload,
            headers=headers,
            rule=self.rule,
            timeout=self.timeout,
            sleep=sleep,
            provider="Slack chat.postMessage",
        )
        body = out.body if isinstance(out.body, dict) else {}
        if out.ok and not body.get("ok"):
            out.ok = False
            out.error = f"Slack refused the message: {body.get('error', 'no ok in the answer')}"
            if body.get("error") in {"invalid_auth", "not_authed", "token_revoked"}:
                out.error += "; check the bot token"
            elif body.get("error") in {"channel_not_found", "not_in_channel"}:
                out.error += "; invite the bot to the channel or fix 'channel:' in the profile"
        return _from_http(out, ts=body.get("ts"), slack_channel=body.get("channel"), error_code=body.get("error"))


class Statuspage(Channel):
    """Atlassian Statuspage REST API v1, ``Authorization: OAuth <api key>``.

    The first message creates an incident (``POST /pages/{page_id}/incidents``); later ones
    update it (``PATCH /pages/{page_id}/incidents/{incident_id}``), found from the record's
    earlier sends. Component status rides in ``incident.components`` ({component_id: status}).
    A create is not idempotent (a retry after a 5xx could open two incidents), a PATCH is.
    Statuspage rate-limits with 420 or 429.
    """

    kind = "statuspage"
    variant = "statuspage"
    rule = RetryRule(idempotent=False, rejected_statuses=frozenset({420, 429}))

    def api_url(self) -> str:
        return str(_env_value(self.conf, "api_url", "https://api.statuspage.io/v1")).rstrip("/")

    def page_id(self) -> str:
        page = _env_value(self.conf, "page_id")
        if not page:
            raise ConfigError(f"notify channel {self.name!r} (statuspage) needs page_id (or page_id_env)")
        return str(page)

    def target(self) -> str:
        return f"{_host_only(self.api_url())} page {_env_value(self.conf, 'page_id') or '?'}"

    def existing_incident(self, data: dict[str, Any]) -> str | None:
        for n in reversed(data.get("notifications") or []):
            if n.get("channel") == self.name and n.get("status") == "sent":
                sp_id = (n.get("response") or {}).get("incident_id")
                if sp_id:
                    return str(sp_id)
        return None

    def build(self, message: Message, data: dict[str, Any]) -> None:
        from vcci_nb.notify._templates import STATUSPAGE_STATUS

        sev = str(data.get("severity"))
        status = str(
            message.meta.get("statuspage_status") or STATUSPAGE_STATUS.get(str(data.get("status")), "investigating")
        )
        if status not in STATUSPAGE_STATUSES:
            raise ConfigError(
                f"template {message.template!r} sets statuspage_status {status!r}; use one of "
                f"{', '.join(sorted(STATUSPAGE_STATUSES))}"
            )
        comp_status = str(
            message.meta.get("component_status")
            or (
                "operational" if status == "resolved" else COMPONENT_STATUS_BY_SEVERITY.get(sev, "degraded_performance")
            )
        )
        if comp_status not in COMPONENT_STATUSES:
            raise ConfigError(
                f"template {message.template!r} sets component_status {comp_status!r}; use one of "
                f"{', '.join(sorted(COMPONENT_STATUSES))}"
            )
        components = [str(c) for c in self.conf.get("component_ids") or []]
        incident: dict[str, Any] = {"status": status, "body": message.text}
        if components:
            incident["component_ids"] = components
            incident["components"] = {c: comp_status for c in components}
        if self.existing_incident(data) is None:
            incident["name"] = message.subject or f"{data.get('title')}"
            incident["impact_override"] = str(
                message.meta.get("impact_override") or STATUSPAGE_IMPACT.get(sev, "minor")
            )
            incident["deliver_notifications"] = bool(self.conf.get("deliver_notifications", True))
        message.payload = {"incident": incident}

    def send(self, message: Message, data: dict[str, Any], sleep: Sleep = time.sleep) -> Outcome:
        key = _secret(self.conf, "api_key", self.name)
        headers = {"Authorization": f"OAuth {key}", "Content-Type": "application/json"}
        base = f"{self.api_url()}/pages/{self.page_id()}/incidents"
        existing = self.existing_incident(data)
        if existing:
            rule = RetryRule(
                True, self.rule.rejected_statuses, self.rule.max_attempts, self.rule.max_wait_s, self.rule.backoff_s
            )
            out = call(
                "PATCH",
                f"{base}/{existing}",
                json_body=message.payload,
                headers=headers,
                rule=rule,
                timeout=self.timeout,
                sleep=sleep,
                provider="Statuspage",
            )
        else:
            out = call(
                "POST",
                base,
                json_body=message.payload,
                headers=headers,
                rule=self.rule,
                timeout=self.timeout,
                sleep=sleep,
                provider="Statuspage",
            )
        body = out.body if isinstance(out.body, dict) else {}
        return _from_http(
            out,
            incident_id=body.get("id") or existing,
            shortlink=body.get("shortlink"),
            statuspage_status=body.get("status"),
            operation="update" if existing else "create",
        )


class PagerDuty(Channel):
    """PagerDuty Events API v2 (``POST /v2/enqueue``), dedup key = incident ID (+ ``dedup_suffix``).

    Answers ``202 {"status": "success", "message", "dedup_key"}``. PagerDuty documents 429, 5xx
    and network errors as safe to retry, and the dedup key makes a repeat harmless.
    """

    kind = "pagerduty"
    variant = "pagerduty"
    rule = RetryRule(idempotent=True)

    def api_url(self) -> str:
        return str(_env_value(self.conf, "url", "https://events.pagerduty.com/v2/enqueue"))

    def target(self) -> str:
        return f"{_host_only(self.api_url())} Events API v2"

    def dedup_key(self, data: dict[str, Any]) -> str:
        return f"{data['id']}{self.conf.get('dedup_suffix', '')}"

    def build(self, message: Message, data: dict[str, Any]) -> None:
        action = str(message.meta.get("event_action") or "trigger")
        if action not in {"trigger", "acknowledge", "resolve"}:
            raise ConfigError(
                f"template {message.template!r} sets event_action {action!r}; use trigger, acknowledge or resolve"
            )
        payload: dict[str, Any] = {
            "routing_key": "(from " + str(self.conf.get("routing_key_env", "?")) + ")",
            "event_action": action,
            "dedup_key": self.dedup_key(data),
        }
        if action == "trigger":
            sev = str(
                message.meta.get("pagerduty_severity") or PAGERDUTY_SEVERITY.get(str(data.get("severity")), "error")
            )
            payload["payload"] = {
                "summary": (message.subject or (message.text.splitlines() or [""])[0] or str(data["title"]))[:1024],
                "source": str(self.conf.get("source") or f"vcci-nb/{self.environment or 'unknown'}"),
                "severity": sev,
                "class": "incident",
                "custom_details": {
                    "incident_id": data["id"],
                    "severity": data.get("severity"),
                    "status": data.get("status"),
                    "commander": data.get("commander"),
                    "message": message.text,
                },
            }
            # PagerDuty's optional component and group come from the channel's settings in the
            # profile (notify.channels.pagerduty.component / group), never from a name spelled here.
            for key in ("component", "group"):
                if self.conf.get(key):
                    payload["payload"][key] = str(self.conf[key])
        message.payload = payload

    def send(self, message: Message, data: dict[str, Any], sleep: Sleep = time.sleep) -> Outcome:
        key = _secret(self.conf, "routing_key", self.name)
        body = dict(message.payload or {})
        body["routing_key"] = key
        out = call(
            "POST",
            self.api_url(),
            json_body=body,
            rule=self.rule,
            timeout=self.timeout,
            sleep=sleep,
            provider="PagerDuty",
        )
        resp = out.body if isinstance(out.body, dict) else {}
        return _from_http(
            out, dedup_key=resp.get("dedup_key"), pd_status=resp.get("status"), event_action=body.get("event_action")
        )


class Webhook(Channel):
    """Any HTTP endpoint that takes JSON: the incident, the template name and the text.

    Sends an ``Idempotency-Key`` header (the notification id); set ``idempotent: true`` only if
    the receiver honours it, and 5xx will then be retried too.
    """

    kind = "webhook"
    variant = "text"

    def __init__(self, name: str, conf: dict[str, Any], *, environment: str = "") -> None:
        super().__init__(name, conf, environment=environment)
        self.rule = RetryRule(
            bool(conf.get("idempotent", False)),
            frozenset({429}),
            self.rule.max_attempts,
            self.rule.max_wait_s,
            self.rule.backoff_s,
        )

    def url(self) -> str:
        url = _env_value(self.conf, "url")
        if not url:
            raise ConfigError(f"notify channel {self.name!r} (webhook) needs url (or url_env)")
        return str(url)

    def target(self) -> str:
        return _host_only(str(_env_value(self.conf, "url", "") or "?"))

    def build(self, message: Message, data: dict[str, Any]) -> None:
        message.payload = {
            "incident": {k: data.get(k) for k in ("id", "title", "severity", "status", "commander", "created_at")},
            "template": message.template,
            "subject": message.subject,
            "text": message.text,
            "environment": self.environment,
        }

    def send(self, message: Message, data: dict[str, Any], sleep: Sleep = time.sleep) -> Outcome:
        key = _one_line(str(message.meta.get("id") or uuid.uuid4()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self.conf.get("token_env"):
            headers["Authorization"] = f"Bearer {_secret(self.conf, 'token', self.name)}"
        out = call(
            "POST",
            self.url(),
            json_body=message.payload,
            headers=headers,
            rule=self.rule,
            timeout=self.timeout,
            sleep=sleep,
            provider=f"webhook {self.name}",
        )
        return _from_http(out)


class Email(Channel):
    """Email over SMTP with STARTTLS and AUTH (smtplib).

    Credentials are never sent over a connection that did not upgrade to TLS. SMTP's own rule
    decides retries: a 4xx reply is transient (try again), a 5xx reply is permanent (don't);
    a connection that drops after DATA may have delivered, so it is not repeated.
    """

    kind = "email"
    variant = "email"

    def target(self) -> str:
        return f"smtp://{_env_value(self.conf, 'host', '?')}:{_env_value(self.conf, 'port', 587)}"

    def _addresses(self, key: str, data: dict[str, Any]) -> list[str]:
        value: Any = self.conf.get(key) or []
        if isinstance(value, dict):
            value = value.get(str(data.get("severity")), value.get("default")) or []
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value]

    def build(self, message: Message, data: dict[str, Any]) -> None:
        meta_to = message.meta.get("to")
        to = [str(t) for t in meta_to] if isinstance(meta_to, list | tuple) and meta_to else self._addresses("to", data)
        cc = message.meta.get("cc")
        cc_list = [str(c) for c in cc] if isinstance(cc, list | tuple) else self._addresses("cc", data)
        if not to:
            raise ConfigError(f"notify channel {self.name!r} (email) needs 'to:' recipients in the profile")
        sender = str(_env_value(self.conf, "from", "vcci-nb@localhost"))
        subject = message.subject or f"[{data.get('severity')}] Production Incident - {data.get('title')}"
        subject = _one_line(subject)  # a multi-line alert summary must not break every mail (header injection too)
        message.subject = subject
        message.recipients = {"to": to, "cc": cc_list}
        message.payload = {"from": sender, "to": to, "cc": cc_list, "subject": subject, "body": message.text}

    def _email(self, message: Message, data: dict[str, Any]) -> EmailMessage:
        p = message.payload or {}
        mail = EmailMessage()
        mail["From"] = _one_line(p["from"])
        mail["To"] = _one_line(", ".join(p["to"]))
        if p.get("cc"):
            mail["Cc"] = _one_line(", ".join(p["cc"]))
        mail["Subject"] = _one_line(p["subject"])
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(domain="vcci-nb")
        mail["X-VCCI-Incident"] = _one_line(str(data["id"]))
        mail.set_content(p["body"])
        for att in message.meta.get("attachments") or []:
            ctype = str(att.get("content_type") or "application/octet-stream")
            main, _, rest = ctype.partition("/")
            sub, *params = [x.strip() for x in rest.split(";")]
            extra = dict(x.split("=", 1) for x in params if "=" in x)
            content = Path(str(att["path"])).read_bytes()
            mail.add_attachment(content, maintype=main, subtype=sub, filename=str(att["filename"]), params=extra)
        return mail

    def send(self, message: Message, data: dict[str, Any], sleep: Sleep = time.sleep) -> Outcome:
        host = str(_env_value(self.conf, "host", "") or "")
        if not host:
            raise ConfigError(f"notify channel {self.name!r} (email) needs host (or host_env)")
        port = int(_env_value(self.conf, "port", 587))
        user = _env_value(self.conf, "username")
        password = _secret(self.conf, "password", self.name) if self.conf.get("password_env") else None
        ca_file = _env_value(self.conf, "ca_file")
        if ca_file and not os.path.isfile(str(ca_file)):
            raise ConfigError(f"notify channel {self.name!r}: the CA file {ca_file} does not exist; fix ca_file(_env)")
        tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        mail = self._email(message, data)
        recipients = list((message.payload or {}).get("to", [])) + list((message.payload or {}).get("cc", []))
        attempts: list[dict[str, Any]] = []
        error = ""
        for attempt in range(1, self.rule.max_attempts + 1):
            entry: dict[str, Any] = {"attempt": attempt}
            attempts.append(entry)
            retry = False
            try:
                smtp = smtplib.SMTP(host, port, timeout=self.timeout)
                try:
                    smtp.ehlo()
                    if not smtp.has_extn("starttls"):
                        return Outcome(
                            False,
                            {"status_code": None},
                            (
                                f"SMTP server {host}:{port} does not offer STARTTLS; refusing to send credentials "
                                "or incident details in clear text. Use a server with STARTTLS."
                            ),
                            attempts,
                        )
                    smtp.starttls(context=tls)
                    smtp.ehlo()
                    if user and password:
                        smtp.login(str(user), password)
                    refused = smtp.send_message(mail, to_addrs=recipients)
                finally:
                    # The server has accepted the message once send_message returns: a failing QUIT
                    # must not turn a delivered email into a "failed" one.
                    with contextlib.suppress(smtplib.SMTPException, OSError):
                        smtp.quit()
                    smtp.close()
                entry["status_code"] = 250
                return Outcome(
                    True,
                    {
                        "status_code": 250,
                        "message_id": mail["Message-ID"],
                        "accepted": [r for r in recipients if r not in refused],
                        "refused": sorted(refused),
                    },
                    "",
                    attempts,
                )
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                entry["status_code"] = codes[0] if codes else None
                retry = bool(codes) and all(400 <= c < 500 for c in codes)
                error = f"SMTP server refused every recipient ({', '.join(str(c) for c in codes)})"
            except smtplib.SMTPResponseException as exc:
                code = int(exc.smtp_code)
                entry["status_code"] = code
                text = (
                    exc.smtp_error.decode(errors="replace")
                    if isinstance(exc.smtp_error, bytes)
                    else str(exc.smtp_error)
                )
                retry = 400 <= code < 500
                hint = "; check the SMTP username and password" if code in (530, 535) else ""
                error = f"SMTP server answered {code} {text}{hint}"
            except ssl.SSLError as exc:
                entry["error"] = "tls"
                error = f"TLS with {host}:{port} failed ({exc.reason}); check ca_file / the server certificate"
            except (ConnectionRefusedError, socket.gaierror) as exc:
                entry["error"] = "connection refused"
                retry = True
                error = f"SMTP server {host}:{port} could not be reached: {exc}"
            except (smtplib.SMTPException, OSError) as exc:
                entry["error"] = type(exc).__name__
                error = (
                    f"SMTP conversation with {host}:{port} broke off ({type(exc).__name__}); "
                    "it may have been delivered, so it is not retried"
                )
            error = redact(error)
            if not retry:
                break
            if attempt < self.rule.max_attempts:
                entry["waited_s"] = self.rule.backoff_s * attempt
                sleep(self.rule.backoff_s * attempt)
        else:
            error += f" (gave up after {self.rule.max_attempts} attempts)"
        return Outcome(False, {"status_code": attempts[-1].get("status_code")}, error, attempts)


KINDS: dict[str, type[Channel]] = {c.kind: c for c in (SlackWebhook, SlackApi, Statuspage, PagerDuty, Webhook, Email)}


def make_channel(name: str, conf: dict[str, Any], environment: str = "") -> Channel:
    kind = conf.get("type") or name
    cls = KINDS.get(str(kind))
    if cls is None:
        raise ConfigError(f"notify channel {name!r} has type {kind!r}; use one of {', '.join(sorted(KINDS))}")
    return cls(name, conf, environment=environment)

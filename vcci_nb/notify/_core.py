"""Render, preview, deliver and record: the part notebooks and commands call.

The flow is the same everywhere: :func:`render` fills a template for each chosen channel from
the incident record and returns a :class:`Preview` (it shows itself in a notebook); then
:func:`deliver` records every message in the incident (``notifications`` and the timeline) and,
only when ``send=True``, sends it. A dry run is the default and never opens a connection nor
reads a credential.
"""

from __future__ import annotations

import html
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ConfigError, NotifyError, VcciNbError
from vcci_nb.notify import _templates
from vcci_nb.notify._channels import Channel, Message, Outcome, make_channel, redact_tree
from vcci_nb.notify._http import Sleep
from vcci_nb.redact import redact

log = logging.getLogger(__name__)


def channels_from_profile(profile: Profile) -> dict[str, Channel]:
    """The channels ``notify.channels`` configures, by name."""
    conf = profile.get("notify.channels")
    if not conf:
        raise ConfigError(
            f"profile {profile.name!r} has no notify.channels section; add one (see parameters/environments/lab.yaml)"
        )
    if not isinstance(conf, dict):
        raise ConfigError(f"profile {profile.name!r}: notify.channels must be a mapping of channel name to settings")
    env_label = str(profile.get("notify.environment_label") or profile.name)
    return {name: make_channel(str(name), dict(c or {}), env_label) for name, c in conf.items()}


def select_channels(profile: Profile, which: str | list[str], severity: str) -> tuple[list[Channel], dict[str, str]]:
    """Channels to use: ``all`` means every channel configured for ``severity``; else names."""
    channels = channels_from_profile(profile)
    skipped: dict[str, str] = {}
    if which == "all" or which == ["all"]:
        chosen = []
        for ch in channels.values():
            if severity in ch.severities:
                chosen.append(ch)
            elif ch.severities:  # a channel with no severities is only used by name (escalations)
                skipped[ch.name] = f"not used for {severity} (severities: {', '.join(ch.severities) or 'none'})"
        return chosen, skipped
    names = [n.strip() for n in (which.split(",") if isinstance(which, str) else which) if n.strip()]
    unknown = [n for n in names if n not in channels]
    if unknown:
        raise NotifyError(
            f"unknown notify channel {', '.join(unknown)}; "
            f"profile {profile.name!r} has {', '.join(channels)} (or 'all')"
        )
    return [channels[n] for n in names], skipped


def _load(incident: Any, outputs: Path | str | None) -> Any:
    from vcci_nb.record import IncidentRecord

    if isinstance(incident, IncidentRecord):
        return incident
    return IncidentRecord.load(str(incident), outputs)


@dataclass
class Preview:
    """Rendered messages for one incident, ready to show and then to send (or record as a dry run)."""

    incident_id: str
    template: str
    messages: list[Message]
    channels: dict[str, Channel]
    skipped: dict[str, str] = field(default_factory=dict)
    outputs: Path | None = None
    rendered_at: str = ""

    def __str__(self) -> str:
        parts = [f"{self.incident_id} · template {self.template} · rendered {self.rendered_at}"]
        for m in self.messages:
            head = f"── {m.channel} ({m.kind}) → {m.target}"
            if m.recipients:
                head += f" · to {', '.join(m.recipients.get('to', []))}"
                if m.recipients.get("cc"):
                    head += f" · cc {', '.join(m.recipients['cc'])}"
            if m.subject:
                head += f"\n   Subject: {m.subject}"
            parts.append(f"{head}\n{m.text}")
        for name, why in self.skipped.items():
            parts.append(f"── {name}: skipped, {why}")
        return "\n\n".join(parts)

    def _repr_markdown_(self) -> str:
        out = [
            f"**{self.incident_id}** · template `{self.template}` · rendered {self.rendered_at} (dry run until sent)"
        ]
        for m in self.messages:
            out.append(f"\n**{m.channel}** ({m.kind}) → {m.target}")
            if m.subject:
                out.append(f"\nSubject: *{m.subject}*")
            out.append("\n```\n" + m.text + "\n```")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        e = html.escape
        cards = []
        for m in self.messages:
            rec = ""
            if m.recipients:
                rec = f"<div>To: {e(', '.join(m.recipients.get('to', [])))}"
                if m.recipients.get("cc"):
                    rec += f" · Cc: {e(', '.join(m.recipients['cc']))}"
                rec += "</div>"
            subj = f"<div><b>Subject:</b> {e(m.subject)}</div>" if m.subject else ""
            cards.append(
                "<div style='border:1px solid #ccc;border-radius:6px;padding:.5em 1em;margin:.5em 0'>"
                f"<div><b>{e(m.channel)}</b> <small>({e(m.kind)} → {e(m.target)})</small></div>{rec}{subj}"
                f"<pre style='white-space:pre-wrap'>{e(m.text)}</pre></div>"
            )
        skipped = "".join(f"<li>{e(n)}: {e(w)}</li>" for n, w in self.skipped.items())
        return (
            f"<div><b>{e(self.incident_id)}</b> · template <code>{e(self.template)}</code> · "
            f"rendered {e(self.rendered_at)} · <i>nothing is sent until you call send</i>"
            + "".join(cards)
            + (f"<p>Skipped:</p><ul>{skipped}</ul>" if skipped else "")
            + "</div>"
        )

    def send(self, *, send: bool = True, actor: str | None = None, sleep: Sleep = time.sleep) -> dict[str, Any]:
        """Deliver these messages (``send=False`` records a dry run). See :func:`deliver`."""
        return deliver(self, send=send, actor=actor, sleep=sleep)


def _record_link(profile: Profile, record: Any) -> str:
    """Where readers find the whole record: ``notify.record_url`` (``{incident_id}`` filled in),
    else the record's ``index.html`` on this machine."""
    url = profile.get("notify.record_url")
    if url:
        return str(url).replace("{incident_id}", str(record.id))
    return str(record.folder / "index.html")


def render(
    incident: Any,
    template: str,
    channels: str | list[str] = "all",
    *,
    profile: Profile | str | None = None,
    outputs: Path | str | None = None,
    message: str | None = None,
    impact: str | None = None,
    now: datetime | None = None,
    extra: dict[str, Any] | None = None,
    templates: Path | None = None,
) -> Preview:
    """Fill ``template`` for each chosen channel from the incident record; sends nothing."""
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    record = _load(incident, outputs)
    data = record.data
    chosen, skipped = select_channels(prof, channels, str(data["severity"]))
    if not chosen:
        raise NotifyError(
            f"no notify channel is configured for a {data['severity']} incident in profile {prof.name!r}; "
            "name a channel explicitly or add the severity to a channel's 'severities:'"
        )
    now = now or datetime.now(UTC)
    ctx = _templates.context(
        data,
        cadence_minutes=prof.cadence_minutes(str(data["severity"])),
        now=now,
        message=message,
        impact=impact,
        environment=str(prof.get("notify.environment_label") or prof.name),
        extra=extra,
        record_link=_record_link(prof, record),
    )
    # Who to call and where to look (profile contacts/links), on the incident's window.
    from vcci_nb import contacts
    from vcci_nb.policy import incident_start, maybe_time

    for key, value in contacts.template_vars(
        prof,
        start=incident_start(data),
        end=maybe_time(data.get("resolved_at")) or maybe_time(data.get("closed_at")),
        incident_id=str(data["id"]),
    ).items():
        ctx.setdefault(key, value)
    messages = []
    for ch in chosen:
        variant_ctx = _templates.slack_escaped(ctx) if ch.variant == "slack" else ctx
        text, meta = _templates.render(template, ch.variant, variant_ctx, templates)
        meta["id"] = uuid.uuid4().hex[:12]
        msg = Message(
            channel=ch.name,
            kind=ch.kind,
            template=template,
            text=text,
            subject=str(meta.get("subject") or ""),
            meta=meta,
            target=ch.target(),
        )
        if extra and extra.get("attachments") and ch.kind == "email":
            msg.meta["attachments"] = list(extra["attachments"])  # files of the incident folder (review.ics)
        ch.build(msg, data)
        messages.append(msg)
    return Preview(
        incident_id=record.id,
        template=template,
        messages=messages,
        channels={c.name: c for c in chosen},
        skipped=skipped,
        outputs=record.outputs,
        rendered_at=now.isoformat(timespec="seconds"),
    )


def deliver(
    preview: Preview, *, send: bool = False, actor: str | None = None, sleep: Sleep = time.sleep
) -> dict[str, Any]:
    """Record each message in the incident and, with ``send=True``, send it.

    Returns ``{"incident_id", "template", "dry_run", "ok", "deliveries": [...]}``; each delivery
    is the entry written to the record's ``notifications`` (channel, status ``dry_run`` /
    ``sent`` / ``failed``, provider response, error, attempts). A failure of one channel does
    not stop the others.
    """
    from vcci_nb.record import IncidentRecord, utc_iso

    record = IncidentRecord.load(preview.incident_id, preview.outputs)
    deliveries = []
    for msg in preview.messages:
        channel = preview.channels[msg.channel]
        started = datetime.now(UTC)
        if not send:
            outcome = Outcome(ok=True, response={})
            status = "dry_run"
        else:
            try:
                outcome = channel.send(msg, record.data, sleep=sleep)
            except VcciNbError as exc:
                outcome = Outcome(ok=False, error=redact(str(exc)))
            except Exception as exc:  # one broken channel must not stop the others nor crash a notebook
                outcome = Outcome(ok=False, error=redact(f"unexpected {type(exc).__name__} while sending: {exc}"))
            status = "sent" if outcome.ok else "failed"
        entry: dict[str, Any] = {
            "id": msg.meta.get("id"),
            "at": utc_iso(started),
            "channel": msg.channel,
            "kind": msg.kind,
            "template": msg.template,
            "dry_run": not send,
            "status": status,
            "subject": msg.subject,
            "summary": (msg.subject or (msg.text.splitlines() or [""])[0])[:200],
            "text": msg.text,
            "target": msg.target,
            "recipients": msg.recipients,
            "response": outcome.response,
            "error": outcome.error or None,
            "attempts": outcome.attempts,
        }
        if actor:
            entry["actor"] = actor
        if status == "failed":
            entry["summary"] = f"FAILED {entry['summary']}: {outcome.error}"[:400]
            log.warning("%s: %s via %s failed: %s", preview.incident_id, msg.template, msg.channel, outcome.error)
        else:
            log.info("%s: %s via %s %s", preview.incident_id, msg.template, msg.channel, status)
        entry = redact_tree(entry)
        record.add_notification(entry)
        deliveries.append(entry)
    return {
        "incident_id": preview.incident_id,
        "template": preview.template,
        "dry_run": not send,
        "ok": all(d["status"] != "failed" for d in deliveries),
        "deliveries": deliveries,
        "skipped": dict(preview.skipped),
    }


def notify(
    incident: Any,
    channels: str | list[str] = "all",
    template: str = "update",
    *,
    send: bool = False,
    profile: Profile | str | None = None,
    outputs: Path | str | None = None,
    message: str | None = None,
    impact: str | None = None,
    actor: str | None = None,
    extra: dict[str, Any] | None = None,
    sleep: Sleep = time.sleep,
) -> dict[str, Any]:
    """Render and deliver in one step (what ``vcci-nb notify`` does)."""
    preview = render(
        incident, template, channels, profile=profile, outputs=outputs, message=message, impact=impact, extra=extra
    )
    return deliver(preview, send=send, actor=actor, sleep=sleep)

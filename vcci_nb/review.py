"""The post-incident review meeting (seed Phase 7.1): an iCalendar invite within 48 hours of resolution.

:func:`invite` writes ``review.ics`` (RFC 5545: one ``VEVENT`` with ``METHOD:REQUEST``, the agenda of
the seed: timeline, root cause, action items) into the incident folder and attaches it to the record;
:func:`schedule` also sends it by email through the profile's email channel (a dry run unless
``send``), with the ``review`` message template as the body.

When: the profile's ``review:`` section says ``within_hours`` (48), ``hour_utc`` (14, the meeting's
start hour), ``duration_minutes`` (60) and ``attendees`` (besides the email channel's recipients).
The meeting is the first weekday at ``hour_utc`` at least ``min_notice_hours`` (4) after resolution
and within ``within_hours``; when no weekday fits (resolved on a Friday evening), the first such
hour on any day; ``at`` overrides.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vcci_nb.config import ProfileLike, resolve_profile
from vcci_nb.errors import RecordError
from vcci_nb.policy import maybe_time

ICS_FILE = "review.ics"


def _settings(profile: ProfileLike) -> dict[str, Any]:
    prof = resolve_profile(profile)
    conf = prof.get("review") or {}
    email = prof.get("notify.channels.email") or {}
    return {
        "within_hours": float(conf.get("within_hours") or 48),
        "hour_utc": int(conf["hour_utc"]) if conf.get("hour_utc") is not None else 14,
        "duration_minutes": int(conf.get("duration_minutes") or 60),
        "min_notice_hours": float(conf.get("min_notice_hours") or 4),
        "attendees": [str(a) for a in conf.get("attendees") or []] + [str(a) for a in email.get("to") or []],
        "organizer": str(conf.get("organizer") or email.get("from") or "vcci-incidents@localhost"),
        "location": str(conf.get("location") or ""),
    }


def meeting_time(
    resolved: datetime, *, within_hours: float = 48, hour_utc: int = 14, min_notice_hours: float = 4
) -> datetime:
    """The review's start: a weekday at ``hour_utc`` within ``within_hours`` of ``resolved`` (see module doc)."""
    earliest = resolved + timedelta(hours=min_notice_hours)
    latest = resolved + timedelta(hours=within_hours)
    day = earliest.replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    slots = [day + timedelta(days=d) for d in range(0, int(within_hours // 24) + 2)]
    slots = [s for s in slots if earliest <= s <= latest]
    for s in slots:
        if s.weekday() < 5:
            return s
    if slots:
        return slots[0]
    return (earliest + timedelta(minutes=59)).replace(minute=0, second=0, microsecond=0)


def _esc(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """RFC 5545 3.1: lines longer than 75 octets continue on the next line after CRLF and a space."""
    raw = line.encode()
    if len(raw) <= 75:
        return line
    parts, start = [], 0
    limit = 75
    while start < len(raw):
        end = min(start + limit, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never split a UTF-8 character
            end -= 1
        parts.append(raw[start:end].decode())
        start, limit = end, 74
    return "\r\n ".join(parts)


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def ics(
    data: dict[str, Any],
    start: datetime,
    *,
    duration_minutes: int,
    organizer: str,
    attendees: list[str],
    location: str = "",
    now: datetime | None = None,
) -> str:
    """The invite as iCalendar text (CRLF line ends, folded, escaped)."""
    now = now or datetime.now(UTC)
    end = start + timedelta(minutes=duration_minutes)
    title = f"Post-incident review: {data['id']} {data.get('title') or ''}".strip()
    resolution = str(data.get("resolution") or "")
    description = (
        f"Post-incident review of {data['id']} ({data.get('severity')}): {data.get('title') or ''}\n"
        + (f"Resolution: {resolution}\n" if resolution else "")
        + "Agenda (60 min): 1. Timeline  2. Root cause  3. Action items\n"
        + f"Record: outputs/{data['id']}/index.html and postmortem.md (vcci-nb postmortem {data['id']})"
    )
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//vcci-nb//post-incident review//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        f"UID:{data['id']}-review-{uuid.uuid5(uuid.NAMESPACE_URL, str(data['id'])).hex[:12]}@vcci-nb",
        f"DTSTAMP:{_stamp(now)}",
        f"DTSTART:{_stamp(start)}",
        f"DTEND:{_stamp(end)}",
        f"SUMMARY:{_esc(title)}",
        f"DESCRIPTION:{_esc(description)}",
        f"ORGANIZER;CN=vcci-nb:mailto:{organizer}",
    ]
    if location:
        lines.append(f"LOCATION:{_esc(location)}")
    for a in dict.fromkeys(attendees):
        lines.append(f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{a}")
    lines += ["STATUS:CONFIRMED", "SEQUENCE:0", "TRANSP:OPAQUE", "END:VEVENT", "END:VCALENDAR"]
    return "".join(_fold(line) + "\r\n" for line in lines)


def invite(
    record: Any,
    profile: ProfileLike = None,
    *,
    at: datetime | None = None,
    attendees: list[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write ``review.ics`` for a resolved incident and attach it to its record; returns what was made."""
    data = record.data
    resolved = maybe_time(data.get("resolved_at")) or maybe_time(data.get("closed_at"))
    if resolved is None and at is None:
        raise RecordError(
            f"{data['id']} is not resolved yet: the review is scheduled from the resolution time. Resolve it "
            "(vcci-nb incident update ID --status resolved) or give the time (--at 2026-12-08T14:00Z)."
        )
    s = _settings(profile)
    start = at or meeting_time(
        resolved,  # type: ignore[arg-type]
        within_hours=s["within_hours"],
        hour_utc=s["hour_utc"],
        min_notice_hours=s["min_notice_hours"],
    )
    people = [*(attendees or []), *s["attendees"]]
    text = ics(data, start, duration_minutes=s["duration_minutes"], organizer=s["organizer"], attendees=people,
               location=s["location"], now=now)  # fmt: skip
    path = Path(record.folder) / ICS_FILE
    path.write_text(text, newline="")
    record.add_attachment(ICS_FILE, ICS_FILE, f"review meeting {start.strftime('%Y-%m-%d %H:%M UTC')}")
    record.add_event("note", f"Post-incident review scheduled for {start.strftime('%Y-%m-%d %H:%M UTC')}")
    return {"path": str(path), "start": start, "attendees": list(dict.fromkeys(people)), "ics": text}


def schedule(
    record: Any,
    profile: ProfileLike = None,
    *,
    at: datetime | None = None,
    attendees: list[str] | None = None,
    send: bool = False,
    channel: str = "email",
) -> dict[str, Any]:
    """:func:`invite`, then the ``review`` message by email with ``review.ics`` attached (sent only with ``send``)."""
    from vcci_nb import notify

    made = invite(record, profile, at=at, attendees=attendees)
    extra = {
        "review_at": made["start"].strftime("%Y-%m-%d %H:%M UTC"),
        "review_attendees": made["attendees"],
        "attachments": [{"filename": ICS_FILE, "path": made["path"], "content_type": "text/calendar; method=REQUEST"}],
        "review_recipients": made["attendees"],
    }
    result = notify.notify(record, [channel], "review", send=send, profile=profile, extra=extra)
    return {**made, "delivery": result}

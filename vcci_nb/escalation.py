"""Update cadence and escalation: what is due, what is late, and who was pulled in.

Cadence. The seed contradicts itself: its severity table says P0 "hourly updates to
leadership + customers" and P1 "updates every 2 hours", while Phase 5.2 says "every 30 minutes
for P0/P1" and every message template promises "Next update: 30 minutes". We choose
**30 minutes for P0 and P1** (P2 daily, P3 as needed): it is the procedure the responders follow
(5.2), it is what the messages promise readers, and it also meets the hourly leadership line
(30 minutes is more often). A promise of 30 minutes kept every 2 hours is worse than either.
Profiles can change it under ``escalation.cadence_minutes``. The first message is due
``escalation.initial_update_minutes`` (10, seed Phase 2 "5-10 minutes") after detection.
Only messages that really went out count as updates; dry-run drafts do not.

Escalation (seed "When to Escalate"). Engineering Manager: P0 lasting > 30 min, P1 > 2 h, a
customer escalation, a need for more resources, or the responders unsure how to proceed. CTO:
P0 lasting > 1 h, a data breach or security incident, legal/compliance implications, an
executive customer impacted. The time rules are computed from the record; the judgement rules
are flags a person records (:func:`flag`, ``vcci-nb escalate ID --flag customer_escalation``);
security findings (key ``security.*``) raise the CTO rule by themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vcci_nb.config import Profile, load_profile, merge
from vcci_nb.errors import ConfigError
from vcci_nb.policy import (
    CADENCE_MINUTES,
    INITIAL_UPDATE_MINUTES,
    human_minutes,
    incident_start,
    last_sent_update,
    update_rounds,
)
from vcci_nb.policy import maybe_time as _t

DEFAULTS: dict[str, Any] = {
    "initial_update_minutes": INITIAL_UPDATE_MINUTES,
    "cadence_minutes": dict(CADENCE_MINUTES),
    "targets": {
        "manager": {
            "label": "Engineering Manager",
            "mention": "@engineering-manager",
            "after_minutes": {"P0": 30, "P1": 120},
            "flags": ["customer_escalation", "need_resources", "unsure"],
            "finding_prefixes": [],
            "channels": ["pagerduty_manager", "slack"],
        },
        "cto": {
            "label": "CTO",
            "mention": "@cto",
            "after_minutes": {"P0": 60},
            "flags": ["security", "data_breach", "legal", "executive_customer"],
            "finding_prefixes": ["security."],
            "channels": ["pagerduty_cto", "slack"],
        },
    },
    "reminders": {"channels": ["slack"]},
}

FLAGS: dict[str, str] = {
    "customer_escalation": "customer escalation received",
    "need_resources": "need additional resources",
    "unsure": "unsure how to proceed",
    "security": "security incident",
    "data_breach": "data breach",
    "legal": "legal/compliance implications",
    "executive_customer": "executive customer impacted",
}

_DONE = frozenset({"resolved", "closed"})


def settings(profile: Profile | str | None = None) -> dict[str, Any]:
    """The profile's ``escalation:`` section over the seed's defaults."""
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    return merge(DEFAULTS, prof.escalation())


def cadence_minutes(severity: str, profile: Profile | str | None = None) -> float | None:
    """Minutes between stakeholder updates for ``severity`` (None: as needed)."""
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    return prof.cadence_minutes(severity)


def _data(record: Any) -> dict[str, Any]:
    if isinstance(record, dict):
        return record
    if isinstance(record, str):  # an incident ID, as a notebook parameter holds it
        from vcci_nb.record import IncidentRecord

        record = IncidentRecord.load(record)
    data: dict[str, Any] = record.data
    return data


def _start(data: dict[str, Any]) -> datetime:
    return incident_start(data)


def _fmt(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "-"


def _mins(delta: timedelta) -> str:
    return human_minutes(delta.total_seconds() / 60)


def update_history(
    data: dict[str, Any], profile: Profile | str | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Every stakeholder update that was due, when it went out, and how late (for the postmortem).

    The first is due ``initial_update_minutes`` after detection; each next one a cadence after
    the previous one was sent; none after the incident was resolved.
    """
    conf = settings(profile)
    now = now or datetime.now(UTC)
    cadence = cadence_minutes(str(data["severity"]), profile)
    end = _t(data.get("resolved_at")) or _t(data.get("closed_at")) or now
    detected = _t(data.get("detected_at")) or _t(data["created_at"]) or now
    merged = update_rounds(data)
    out: list[dict[str, Any]] = []
    due = detected + timedelta(minutes=float(conf["initial_update_minutes"]))
    i = 0
    while due <= end or i < len(merged):
        at = merged[i] if i < len(merged) else None
        if at is None and due > end:
            break
        late = (at or min(now, end)) - due
        out.append(
            {
                "number": len(out) + 1,
                "due_at": due.isoformat(),
                "sent_at": at.isoformat() if at else None,
                "late_minutes": round(late.total_seconds() / 60, 1) if late.total_seconds() > 0 else 0.0,
            }
        )
        if at is None or cadence is None:
            break
        due = at + timedelta(minutes=cadence)
        i += 1
    return out


def next_update(
    data: dict[str, Any], profile: Profile | str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """When the next stakeholder update is due and whether it is overdue."""
    conf = settings(profile)
    now = now or datetime.now(UTC)
    sev = str(data["severity"])
    cadence = cadence_minutes(sev, profile)
    last = last_sent_update(data)
    last_at = _t(last.get("at")) if last else None
    if data.get("status") in _DONE:
        resolved_sent = any(
            n.get("status") == "sent" and n.get("template") == "resolution" for n in data.get("notifications") or []
        )
        return {
            "due_at": None,
            "overdue": False,
            "overdue_minutes": 0.0,
            "last_update_at": last_at,
            "cadence": cadence,
            "note": "resolved; no further updates due"
            if resolved_sent
            else "resolved; send the resolution message (template resolution)",
        }
    if last_at is None:
        base = _t(data.get("detected_at")) or _t(data["created_at"]) or now
        due = base + timedelta(minutes=float(conf["initial_update_minutes"]))
        note = "initial notification"
    elif cadence is None:
        return {
            "due_at": None,
            "overdue": False,
            "overdue_minutes": 0.0,
            "last_update_at": last_at,
            "cadence": None,
            "note": f"{sev}: updates as needed",
        }
    else:
        due = last_at + timedelta(minutes=cadence)
        note = f"every {cadence:g} min for {sev}"
    late = (now - due).total_seconds() / 60
    return {
        "due_at": due,
        "overdue": late > 0,
        "overdue_minutes": round(max(0.0, late), 1),
        "last_update_at": last_at,
        "cadence": cadence,
        "note": note,
    }


def escalations(
    data: dict[str, Any], profile: Profile | str | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """For each escalation target: is it due, since when and why; was it done, and when."""
    conf = settings(profile)
    now = now or datetime.now(UTC)
    sev = str(data["severity"])
    start = _start(data)
    end = _t(data.get("resolved_at")) or _t(data.get("closed_at"))
    flags: list[tuple[str, datetime]] = []
    for ev in data.get("timeline") or []:
        flag = (ev.get("data") or {}).get("escalation_flag")
        if flag and (at := _t(ev.get("at"))):
            flags.append((str(flag), at))
    out = []
    for name, target in conf["targets"].items():
        reasons: list[tuple[datetime, str]] = []
        after = (target.get("after_minutes") or {}).get(sev)
        if after is not None:
            timed = start + timedelta(minutes=float(after))
            if timed <= (end or now):
                reasons.append((timed, f"{sev} lasting more than {_mins(timedelta(minutes=float(after)))}"))
        for flag, at in flags:
            if flag in (target.get("flags") or []):
                reasons.append((at, FLAGS.get(flag, flag)))
        prefixes = tuple(target.get("finding_prefixes") or [])
        if prefixes:
            for f in data.get("findings") or []:
                if str(f.get("key", "")).startswith(prefixes):
                    reasons.append((_t(f.get("at")) or start, f"security finding: {f.get('summary')}"))
                    break
        reasons.sort(key=lambda r: r[0])
        done = [e for e in data.get("escalations") or [] if e.get("to") == name and e.get("status") == "sent"]
        drafted = [e for e in data.get("escalations") or [] if e.get("to") == name and e.get("status") == "dry_run"]
        due_at = reasons[0][0] if reasons else None
        done_times = [t for e in done if (t := _t(e.get("at"))) is not None]
        done_at = min(done_times) if done_times else None
        late_minutes = None
        if due_at is not None:
            ref = done_at or end or now
            late_minutes = round(max(0.0, (ref - due_at).total_seconds() / 60), 1)
        out.append(
            {
                "target": name,
                "label": target.get("label", name),
                "due": due_at is not None,
                "due_at": due_at,
                "reasons": [r for _, r in reasons],
                "done": bool(done),
                "done_at": done_at,
                "drafted": len(drafted),
                "missed": due_at is not None and not done,
                "late_minutes": late_minutes,
            }
        )
    return out


class Status(dict[str, Any]):
    """The structured status (a plain dict) that also shows itself in a notebook as the text report."""

    report: str = ""

    def __str__(self) -> str:
        return self.report

    def _repr_markdown_(self) -> str:
        return "```\n" + self.report + "\n```"


def status(record: Any, now: datetime | None = None, profile: Profile | str | None = None) -> Status:
    """Structured status: next update and escalations (what ``status_report`` prints)."""
    data = _data(record)
    now = now or datetime.now(UTC)
    out = Status(_status(data, now, profile))
    out.report = _report(out)
    return out


def _status(data: dict[str, Any], now: datetime, profile: Profile | str | None) -> dict[str, Any]:
    return {
        "incident_id": data["id"],
        "severity": data["severity"],
        "status": data["status"],
        "commander": data.get("commander"),
        "started_at": _start(data),
        "elapsed_minutes": round(((_t(data.get("resolved_at")) or now) - _start(data)).total_seconds() / 60, 1),
        "next_update": next_update(data, profile, now),
        "escalations": escalations(data, profile, now),
    }


def status_report(record: Any, now: datetime | None = None, profile: Profile | str | None = None) -> str:
    """A plain-text report for ``vcci-nb incident status ID``: next update due or overdue; escalations due and done."""
    return status(record, now, profile).report


def _report(s: dict[str, Any]) -> str:
    nu = s["next_update"]
    lines = [
        f"{s['incident_id']}  {s['severity']}  {s['status']}  commander {s['commander'] or 'unassigned'}",
        f"started {_fmt(s['started_at'])}, elapsed {_mins(timedelta(minutes=s['elapsed_minutes']))}",
        "",
    ]
    last = nu["last_update_at"]
    lines.append(f"Last update sent: {_fmt(last) if last else 'none yet'}")
    if nu["due_at"] is None:
        lines.append(f"Next update: {nu['note']}")
    elif nu["overdue"]:
        lines.append(
            f"Next update: OVERDUE by {_mins(timedelta(minutes=nu['overdue_minutes']))} "
            f"(was due {_fmt(nu['due_at'])}, {nu['note']}). "
            f"Send it: vcci-nb notify all --incident {s['incident_id']} --template "
            f"{'initial' if last is None else 'update'} --send"
        )
    else:
        lines.append(f"Next update: due {_fmt(nu['due_at'])} ({nu['note']})")
    lines.append("")
    lines.append("Escalations:")
    for e in s["escalations"]:
        if e["done"]:
            state = f"done {_fmt(e['done_at'])}"
            if e["due"] and e["late_minutes"]:
                state += f" ({_mins(timedelta(minutes=e['late_minutes']))} after it was due)"
        elif e["due"] and s["status"] in _DONE:
            state = f"MISSED: was due {_fmt(e['due_at'])} ({'; '.join(e['reasons'])}) and was not made"
        elif e["due"]:
            state = (
                f"DUE since {_fmt(e['due_at'])}: {'; '.join(e['reasons'])}. "
                f"Run: vcci-nb escalate {s['incident_id']} --to {e['target']} --send"
            )
        else:
            state = "not due"
        if e["drafted"] and not e["done"]:
            state += f" [{e['drafted']} dry-run draft(s), not sent]"
        lines.append(f"  {e['label']:<20} {state}")
    return "\n".join(lines)


def flag(record: Any, name: str, note: str = "", actor: str | None = None) -> dict[str, Any]:
    """Record a judgement that triggers an escalation rule (a customer escalation, a security concern)."""
    if name not in FLAGS:
        raise ConfigError(f"unknown escalation flag {name!r}; use one of {', '.join(FLAGS)}")
    summary = f"Escalation trigger: {FLAGS[name]}" + (f" ({note})" if note else "")
    if isinstance(record, str):
        from vcci_nb.record import IncidentRecord

        record = IncidentRecord.load(record)
    return record.add_event("note", summary, actor=actor, data={"escalation_flag": name, "note": note})  # type: ignore[no-any-return]


def escalate(
    incident: Any,
    to: str,
    *,
    reason: str | None = None,
    send: bool = False,
    profile: Profile | str | None = None,
    outputs: Path | str | None = None,
    actor: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Page or notify an escalation target (replaces the seed's ``page-manager.sh``); recorded.

    Uses the target's channels (a PagerDuty routing key of their escalation policy, a Slack
    mention, an email) with the ``escalation`` template. Dry run unless ``send=True``.
    """
    from vcci_nb import notify
    from vcci_nb.record import IncidentRecord, utc_iso

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    conf = settings(prof)
    if to not in conf["targets"]:
        raise ConfigError(f"unknown escalation target {to!r}; use one of {', '.join(conf['targets'])}")
    target = conf["targets"][to]
    record = incident if isinstance(incident, IncidentRecord) else IncidentRecord.load(str(incident), outputs)
    data = record.data
    if reason is None:
        due = next((e for e in escalations(data, prof, now) if e["target"] == to), None)
        reason = "; ".join(due["reasons"]) if due and due["reasons"] else "requested by the incident commander"
    configured = notify.channels_from_profile(prof)
    channels = [c for c in target.get("channels") or [] if c in configured]
    if not channels:
        raise ConfigError(
            f"escalation target {to!r} has no channel that notify.channels defines "
            f"(wants {', '.join(target.get('channels') or []) or 'none'}); fix escalation.targets.{to}.channels"
        )
    extra = {
        "escalation_recipients": list(target.get("email_to") or []),
        "escalation_target": target.get("label", to),
        "escalation_reason": reason,
        "mention": target.get("mention", ""),
    }
    preview = notify.render(record, "escalation", channels, profile=prof, extra=extra, now=now)
    result = notify.deliver(preview, send=send, actor=actor)
    statuses = {d["status"] for d in result["deliveries"]}
    status_ = "dry_run" if not send else ("sent" if "sent" in statuses else "failed")
    entry = {
        "at": utc_iso(now),
        "to": to,
        "label": target.get("label", to),
        "reason": reason,
        "dry_run": not send,
        "status": status_,
        "channels": channels,
        "notifications": [d["id"] for d in result["deliveries"]],
        "errors": [f"{d['channel']}: {d['error']}" for d in result["deliveries"] if d.get("error")],
    }
    if actor:
        entry["actor"] = actor
    record.add_escalation(entry)
    result["escalation"] = entry
    return result


def overdue_reminders(
    records: Iterable[Any], now: datetime | None = None, profile: Profile | str | None = None
) -> list[dict[str, Any]]:
    """Open incidents whose stakeholder update is overdue (for ``vcci-nb serve`` to call periodically).

    ``records`` are record dicts (``list_records(open_only=True)``) or ``IncidentRecord``\\ s.
    ``reminded`` says whether a reminder for this due time is already in the record, so a
    periodic caller reminds once per missed update, not once per tick.
    """
    now = now or datetime.now(UTC)
    out = []
    for rec in records:
        data = _data(rec)
        if data.get("status") in _DONE:
            continue
        nu = next_update(data, profile, now)
        if not nu["overdue"]:
            continue
        due_at = nu["due_at"]
        reminded = any(
            n.get("template") == "reminder" and (t := _t(n.get("at"))) is not None and t >= due_at
            for n in data.get("notifications") or []
        )
        out.append(
            {
                "incident_id": data["id"],
                "severity": data["severity"],
                "commander": data.get("commander"),
                "due_at": due_at,
                "overdue_minutes": nu["overdue_minutes"],
                "reminded": reminded,
                "first_update": nu["last_update_at"] is None,
            }
        )
    return out


def send_reminders(
    outputs: Path | str | None = None,
    *,
    send: bool = False,
    now: datetime | None = None,
    profile: Profile | str | None = None,
) -> list[dict[str, Any]]:
    """Remind the commander of every overdue update once (template ``reminder``); recorded.

    This is what the alert receiver runs on a timer. Dry run unless ``send=True``.
    """
    from vcci_nb import notify
    from vcci_nb.record import IncidentRecord, list_records

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    channels = [c for c in settings(prof)["reminders"].get("channels") or [] if c in notify.channels_from_profile(prof)]
    results = []
    for item in overdue_reminders(list_records(outputs, open_only=True), now, prof):
        if item["reminded"] or not channels:
            continue
        extra = {
            "due_at": item["due_at"].strftime("%H:%M UTC"),
            "overdue": _mins(timedelta(minutes=item["overdue_minutes"])),
        }
        record = IncidentRecord.load(item["incident_id"], outputs)
        preview = notify.render(record, "reminder", channels, profile=prof, extra=extra, now=now)
        results.append(notify.deliver(preview, send=send, actor="vcci-nb serve"))
    return results

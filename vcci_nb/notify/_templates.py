"""The message templates: ``parameters/templates/*.j2``, filled from the incident record.

Teams edit the templates, not this code. A template is looked up per channel: for template
``update`` and a Slack channel the file ``update.slack.j2`` is used if it exists, else
``update.text.j2``. A template may set values for the channel with top-level ``{% set %}``
statements (``subject`` for email, ``statuspage_status`` and ``component_status`` for the status
page, ``event_action`` for PagerDuty); they are read from the template module, not parsed out
of the text. The variables a template sees are documented in ``parameters/templates/README.md``
and built by :func:`context`.
"""

from __future__ import annotations

__all__ = [
    "UPDATE_TEMPLATES",
    "context",
    "find",
    "human_minutes",
    "incident_start",
    "last_sent_update",
    "list_templates",
    "render",
    "templates_dir",
    "update_rounds",
]

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2

from vcci_nb.config import parameters_dir
from vcci_nb.errors import ConfigError
from vcci_nb.policy import UPDATE_TEMPLATES, human_minutes, incident_start, last_sent_update, update_rounds
from vcci_nb.policy import maybe_time as _parse
from vcci_nb.redact import redact
from vcci_nb.story import facts as story_facts
from vcci_nb.story import story_events

#: The record's status mapped onto Statuspage's incident statuses (it has no "mitigating").
STATUSPAGE_STATUS: dict[str, str] = {
    "investigating": "investigating",
    "identified": "identified",
    "mitigating": "identified",
    "monitoring": "monitoring",
    "resolved": "resolved",
    "closed": "resolved",
}

#: Meta values a template may export with ``{% set %}``.
META_NAMES: tuple[str, ...] = (
    "subject",
    "statuspage_status",
    "component_status",
    "impact_override",
    "event_action",
    "pagerduty_severity",
    "to",
    "cc",
)


def templates_dir() -> Path:
    return parameters_dir() / "templates"


def _environment(folder: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - plain text and Slack mrkdwn, never HTML
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def list_templates(folder: Path | None = None) -> list[str]:
    """Template names (``initial``, ``update``, …) available in ``folder``."""
    folder = folder or templates_dir()
    names = {p.name.split(".", 1)[0] for p in folder.glob("*.j2")}
    return sorted(n for n in names if not n.startswith("_"))


def find(name: str, variant: str, folder: Path | None = None) -> str:
    """The file name used for template ``name`` on a channel of ``variant`` (slack, email, …)."""
    folder = folder or templates_dir()
    for candidate in (f"{name}.{variant}.j2", f"{name}.text.j2"):
        if (folder / candidate).is_file():
            return candidate
    known = ", ".join(list_templates(folder)) or "none"
    raise ConfigError(
        f"No template {name!r} for {variant} in {folder} (looked for {name}.{variant}.j2 and {name}.text.j2). "
        f"Known templates: {known}."
    )


def render(name: str, variant: str, ctx: dict[str, Any], folder: Path | None = None) -> tuple[str, dict[str, Any]]:
    """Render template ``name`` for a channel variant; return (text, meta values it set)."""
    folder = folder or templates_dir()
    filename = find(name, variant, folder)
    env = _environment(folder)
    try:
        module = env.get_template(filename).make_module(ctx)
    except jinja2.UndefinedError as exc:
        raise ConfigError(
            f"Template {folder / filename} uses an unknown variable ({exc.message}). "
            "See parameters/templates/README.md for the variables a template can use."
        ) from exc
    except jinja2.TemplateError as exc:
        raise ConfigError(f"Template {folder / filename} cannot be rendered: {exc}. Fix the template.") from exc
    meta: dict[str, Any] = {}
    for key in META_NAMES:
        value = getattr(module, key, None)
        if value is not None:
            meta[key] = value.strip() if isinstance(value, str) else value
    text = redact(str(module).strip())
    return text, meta


#: Context values that are Slack markup on purpose (a configured ``<!subteam^ID>`` mention).
SLACK_RAW: frozenset[str] = frozenset({"mention"})


def slack_escape(text: str) -> str:
    """Slack's required escaping: without it an alert text holding ``<!channel>`` pings everyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_escaped(ctx: dict[str, Any]) -> dict[str, Any]:
    """The template context with every string from the record escaped for Slack's markup."""

    def esc(value: Any) -> Any:
        if isinstance(value, str):
            return slack_escape(value)
        if isinstance(value, dict):
            return {k: esc(v) for k, v in value.items()}
        if isinstance(value, list):
            return [esc(v) for v in value]
        return value

    return {k: (v if k in SLACK_RAW else esc(v)) for k, v in ctx.items()}


#: At most this many lines of "what changed" in an update; the rest is a link to the record.
MAX_CHANGES = 8

#: Which changes an update keeps first when there are more than :data:`MAX_CHANGES`.
_CHANGE_PRIORITY = {"status": 0, "action": 0, "escalation": 1, "note": 1, "finding": 2, "alert": 3}


def _latest_per_finding(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per finding in an update: a finding whose text changed several times since the
    last update (notebooks seeing it a moment apart) is told once, as it reads now, at its latest
    time; "Changed:" only when it was already told before."""
    first: dict[str, dict[str, Any]] = {}
    last: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev.get("kind") == "finding" and ev.get("key"):
            first.setdefault(str(ev["key"]), ev)
            last[str(ev["key"])] = ev
    out = []
    for ev in events:
        key = str(ev.get("key") or "")
        if ev.get("kind") != "finding" or not key:
            out.append(ev)
        elif ev is last[key]:
            text = str(ev["summary"]).removeprefix("Changed: ")
            changed = str(first[key]["summary"]).startswith("Changed: ")
            out.append({**ev, "summary": f"Changed: {text}" if changed else text})
    return out


def changes_since(
    data: dict[str, Any],
    since: datetime | None,
    *,
    limit: int = MAX_CHANGES,
    more: str = "the record",
    skip_keys: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """What changed after ``since``, told once (notifications and runs left out).

    Each finding appears when it is first seen or when its summary changes, not once per notebook
    that saw it (:func:`vcci_nb.story.story_events`); alerts that began together are one line.
    More than ``limit`` changes keep status changes, actions and escalations first, then the
    causes found, and end with one line saying how many more are in ``more``.
    """
    from vcci_nb.story import CAUSE, role

    timeline = [ev for ev in data.get("timeline") or [] if ev.get("kind") not in {"notification", "run"}]
    told = _latest_per_finding(story_events(timeline, since=since.isoformat() if since else None, skip_keys=skip_keys))
    if len(told) > limit:

        def priority(ev: dict[str, Any]) -> tuple[int, str]:
            p = _CHANGE_PRIORITY.get(str(ev["kind"]), 2)
            if ev["kind"] == "finding":
                p = 1 if role(str(ev.get("key") or "")) == CAUSE else 2
            return p, str(ev["at"])

        kept = sorted(sorted(told, key=priority)[: limit - 1], key=lambda ev: str(ev["at"]))
        dropped = len(told) - len(kept)
    else:
        kept, dropped = told, 0
    out = []
    for ev in kept:
        at = _parse(ev.get("at"))
        out.append(
            {"at": ev.get("at"), "time": at.strftime("%H:%M") if at else "", "kind": ev.get("kind"),
             "summary": ev.get("summary", "")}
        )  # fmt: skip
    if dropped:
        out.append({"at": None, "time": "", "kind": "more", "summary": f"… {dropped} more in {more}"})
    return out


#: Actors in a record that are not people (the thank-you message names only people).
_NOT_PEOPLE = frozenset({"alertmanager", "vcci-nb", "runner", "serve", "system", "notebook", "vcci-nb serve"})


def context(
    data: dict[str, Any],
    *,
    cadence_minutes: float | None,
    now: datetime | None = None,
    message: str | None = None,
    impact: str | None = None,
    environment: str = "",
    extra: dict[str, Any] | None = None,
    record_link: str = "",
) -> dict[str, Any]:
    """Everything a template may use, from a record dict (``IncidentRecord.data``).

    ``findings`` are the record's findings told once (one per key, causes first, context such
    as severity suggestions left out); ``impact`` defaults to what users feel (the top symptom,
    e.g. the 5xx share), and that finding is not listed again under ``findings``.
    """
    from vcci_nb.story import CONTEXT, SYMPTOM

    felt_key = ""

    now = now or datetime.now(UTC)
    start = incident_start(data)
    end = _parse(data.get("resolved_at")) or _parse(data.get("closed_at"))
    elapsed_min = ((end or now) - start).total_seconds() / 60
    last = last_sent_update(data)
    last_at = _parse(last.get("at")) if last else None
    told = [f for f in story_facts(data.get("findings") or []) if f.role != CONTEXT and f.severity != "info"]
    if impact is None:
        notes = [h.get("note") for h in data.get("status_history") or [] if h.get("note")]
        felt = next((f for f in told if f.role == SYMPTOM), None) or (told[0] if told else None)
        felt_key = felt.key if felt is not None else ""
        impact = felt.summary if felt else None
        if felt is not None:
            told = [f for f in told if f is not felt]
        if impact is None and notes and notes[-1] != "incident opened":
            impact = notes[-1]
    findings = [{**f.to_dict(), "summary": f.summary} for f in told]
    updates_sent = len(update_rounds(data, {"update"}))
    status = str(data.get("status") or "investigating")
    next_due = (now + timedelta(minutes=cadence_minutes)) if cadence_minutes else None
    people = [data.get("commander")]
    people += [e.get("actor") for e in data.get("timeline") or []]
    people += [a.get("actor") for a in data.get("actions") or []]
    responders = sorted({str(p) for p in people if p and p not in _NOT_PEOPLE})
    review = next((a for a in data.get("attachments") or [] if a.get("name") == "review.ics"), None)
    ctx: dict[str, Any] = {
        "responders": responders,
        "review_at": str(review.get("kind") or "").removeprefix("review meeting ") if review else "",
        "incident_id": data["id"],
        "title": data["title"],
        "severity": data["severity"],
        "status": status,
        "status_label": status.capitalize(),
        "statuspage_status": STATUSPAGE_STATUS.get(status, "investigating"),
        "commander": data.get("commander") or "unassigned",
        "environment": environment,
        "started_at": start.strftime("%H:%M UTC"),
        "started_at_iso": start.isoformat(),
        "date": start.strftime("%Y-%m-%d"),
        "elapsed": human_minutes(elapsed_min),
        "elapsed_minutes": round(elapsed_min),
        "duration": human_minutes(elapsed_min),
        "impact": impact or "Under assessment",
        "message": message or "",
        "next_update": human_minutes(cadence_minutes) if cadence_minutes else "as needed",
        "next_update_minutes": cadence_minutes,
        "next_update_at": next_due.strftime("%H:%M UTC") if next_due else "",
        "update_number": updates_sent + 1,
        "changes": changes_since(data, last_at, more=record_link or "the record", skip_keys=(felt_key,)),
        "record_link": record_link or f"the record of {data['id']} (index.html)",
        "last_update_at": last_at.strftime("%H:%M UTC") if last_at else "",
        "findings": findings[:5],
        "actions": data.get("actions") or [],
        "resolution": data.get("resolution") or "",
        "now": now.strftime("%H:%M UTC"),
    }
    if extra:
        ctx.update(extra)
    return ctx

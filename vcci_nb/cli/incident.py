"""``vcci-nb incident open|update|close|show|list|status``: the seed's create/update/close-incident scripts.

``incident update ID … --notify CHANNELS`` records the change and tells people in the same step
(dry run unless ``--send``); ``incident status ID`` says when the next update is due and which
escalations are due or done. It is the one status command: the top-level ``vcci-nb status`` that
printed the same report was removed (``vcci-nb lab status`` is about the lab, not an incident).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from vcci_nb.policy import SEVERITIES

_STATUSES = ("investigating", "identified", "mitigating", "monitoring", "resolved")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("incident", help="open, update, close, show and list incidents")
    sub = parser.add_subparsers(dest="incident_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("open", help="open an incident and print its ID (INC-YYYYMMDD-NNN)")
    p.add_argument("--severity", required=True, choices=list(SEVERITIES))
    p.add_argument("--title", required=True, help="a few words on what is wrong")
    p.add_argument("--commander", default=None, help="incident commander")
    p.add_argument("--actor", default=None, help="who is acting (default: $VCCI_NB_ACTOR or your login)")
    p.set_defaults(func=_open)

    p = sub.add_parser("update", help="change status or severity and/or add a note to the timeline")
    p.add_argument("id")
    p.add_argument("--status", choices=_STATUSES)
    p.add_argument(
        "--severity",
        choices=list(SEVERITIES),
        help="declare the severity (needs --reason); escalation and update cadence follow it",
    )
    p.add_argument("--reason", default="", help="why the severity changes (recorded in the timeline)")
    p.add_argument("--note", default="", help="what changed, for the timeline (and the message's Update line)")
    p.add_argument("--actor", default=None)
    p.add_argument(
        "--notify",
        metavar="CHANNELS",
        default=None,
        help="also tell people: 'all' (every channel configured for the severity) or names, e.g. slack,email",
    )
    p.add_argument(
        "--template",
        default=None,
        help="message template for --notify (default: resolution when --status resolved, else update)",
    )
    p.add_argument("--send", action="store_true", help="with --notify: really send (default: dry run, recorded)")
    p.add_argument("--profile", default=None, help="environment profile for --notify (default: $VCCI_NB_PROFILE)")
    p.set_defaults(func=_update)

    p = sub.add_parser("status", help="when the next update is due, and which escalations are due or done")
    p.add_argument("id")
    p.add_argument("--profile", default=None, help="environment profile (default: $VCCI_NB_PROFILE or lab)")
    p.add_argument("--outputs", help="incident folders (default: $VCCI_NB_OUTPUTS, else the project's outputs/)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_status)

    p = sub.add_parser("close", help="close an incident with its resolution")
    p.add_argument("id")
    p.add_argument("--resolution", required=True, help="what fixed it")
    p.add_argument("--actor", default=None)
    p.set_defaults(func=_close)

    p = sub.add_parser("show", help="a readable summary of one incident")
    p.add_argument("id")
    p.add_argument("--json", action="store_true", help="print record.json instead")
    p.set_defaults(func=_show)

    p = sub.add_parser("list", help="incidents, newest first")
    p.add_argument("--open", action="store_true", help="only those not yet resolved or closed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)


def _open(args: argparse.Namespace) -> int:
    from vcci_nb.record import IncidentRecord

    record = IncidentRecord.open(args.severity, args.title, args.commander, actor=args.actor)
    print(record.id)
    return 0


def _update(args: argparse.Namespace) -> int:
    from vcci_nb.errors import RecordError
    from vcci_nb.record import IncidentRecord

    record = IncidentRecord.load(args.id)
    if args.send and not args.notify:
        raise RecordError("--send only applies with --notify CHANNELS (e.g. --notify all --send).")
    if args.reason and not args.severity:
        raise RecordError("--reason goes with --severity P0..P3 (e.g. --severity P0 --reason 'all tenants down').")
    changed = False
    if args.severity:
        from vcci_nb.record import severity_text

        data = record.set_severity(args.severity, args.reason, actor=args.actor)
        print(f"{data['id']}: severity {severity_text(data)}")
        changed = True
    if args.status:
        data = record.set_status(args.status, note=args.note, actor=args.actor)
    elif args.note:
        record.add_event("note", args.note, actor=args.actor)
        data = record.data
    elif not args.notify and not changed:
        raise RecordError(
            "Nothing to update: give --status STATUS, --severity P0..P3 --reason '…', --note '…' "
            "and/or --notify CHANNELS."
        )
    else:
        data = record.data
    print(f"{data['id']}: {data['status']}")
    if not args.notify:
        return 0
    return _notify(record, args)


def _notify(record: Any, args: argparse.Namespace) -> int:
    """Tell people about the change just recorded (what ``vcci-nb notify`` does, in the same step)."""
    from vcci_nb import notify

    template = args.template or ("resolution" if args.status == "resolved" else "update")
    result = notify.notify(
        record,
        args.notify,
        template,
        message=args.note or None,
        send=args.send,
        profile=args.profile,
        actor=args.actor,
    )
    for d in result["deliveries"]:
        line = f"  {template} → {d['channel']:<18} {d['status']}"
        if d.get("error"):
            line += f"  {d['error']}"
        print(line)
    for name, why in result.get("skipped", {}).items():
        print(f"  {template} → {name:<18} skipped: {why}")
    if not args.send:
        print("Dry run: nothing was sent; the messages are recorded in the incident. Add --send to send them.")
    return 0 if result["ok"] else 1


def _status(args: argparse.Namespace) -> int:
    from vcci_nb import escalation
    from vcci_nb.record import IncidentRecord

    record = IncidentRecord.load(args.id, args.outputs)
    if args.json:
        print(json.dumps(escalation.status(record, profile=args.profile), indent=2, default=str))
    else:
        print(escalation.status_report(record, profile=args.profile))
    return 0


def _close(args: argparse.Namespace) -> int:
    from vcci_nb.record import IncidentRecord

    data = IncidentRecord.load(args.id).close(args.resolution, actor=args.actor)
    print(f"{data['id']}: closed at {data['closed_at']}")
    return 0


def _duration(data: dict[str, Any]) -> str:
    from vcci_nb.policy import parse_time
    from vcci_nb.record import format_duration

    end = data.get("closed_at") or data.get("resolved_at")
    stop = parse_time(end) if end else datetime.now(UTC)
    return format_duration((stop - parse_time(data["created_at"])).total_seconds())


def _show(args: argparse.Namespace) -> int:
    from vcci_nb import story
    from vcci_nb.record import IncidentRecord, severity_text, truncated_text

    record = IncidentRecord.load(args.id)
    data = record.data
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    out = [
        f"{data['id']}  {data['severity']}  {data['status'].upper()}  {data['title']}",
        f"  severity: {severity_text(data)}",
        f"  commander: {data.get('commander') or 'unassigned'}   source: {data['source']}   "
        f"opened: {data['created_at']}   duration: {_duration(data)}",
        f"  folder: {record.folder}",
    ]
    if data.get("resolution"):
        out.append(f"  resolution: {data['resolution']}")
    groups = data.get("alert_groups") or []
    if groups:
        firing = sum(1 for g in groups if g.get("status") == "firing")
        out.append(f"\nAlert groups ({len(groups)}, {firing} firing):")
        for g in groups:
            line = f"  {g.get('status', '?'):<9} {g.get('role', '?'):<7} {g.get('name') or g['group_key']}"
            if g.get("joined_at"):
                line += f"  since {g['joined_at']}"
            if g.get("role") == "joined" and g.get("reason"):
                line += f"  — {g['reason']}"
            out.append(line)
            if left_out := truncated_text(g):
                out.append(f"    {left_out}")
    # Each finding once (the record keeps every notebook's observation), causes first.
    facts = story.facts(data["findings"])
    if facts:
        n_obs = len(data["findings"])
        out.append(f"\nFindings ({len(facts)}, from {n_obs} observations; causes first):")
        for f in facts:
            out.append(f"  {f.role:<12} {story.line(f)}")
    if data["notebooks"]:
        out.append(f"\nNotebooks ({len(data['notebooks'])}):")
        for nb in data["notebooks"]:
            line = f"  {nb['status']:<10} {nb['name']}"
            if nb.get("error"):
                line += f"  — {nb['error']}"
            out.append(line)
    told = story.story_events(data["timeline"])
    out.append(f"\nTimeline ({len(told)} entries; each finding once, `--json` for all {len(data['timeline'])}):")
    out += [f"  {ev['at']}  {ev['kind']:<12} {ev.get('actor') or '-':<12} {ev['summary']}" for ev in told]
    print("\n".join(out))
    return 0


def _list(args: argparse.Namespace) -> int:
    from vcci_nb.record import list_records

    records = list_records(open_only=args.open)
    if args.json:
        json.dump(
            [{k: r.get(k) for k in ("id", "severity", "status", "title", "created_at")} for r in records], sys.stdout
        )
        print()
        return 0
    if not records:
        print("no open incidents" if args.open else "no incidents")
        return 0
    for r in records:
        print(f"{r['id']}  {r['severity']}  {r['status']:<13} {_duration(r):>10}  {r['title']}")
    return 0

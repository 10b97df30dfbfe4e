"""``vcci-nb review ID [--at TIME] [--attendee EMAIL] [--send]``: the review meeting within 48 h (seed 7.1)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "review",
        help="schedule the post-incident review: review.ics attached to the record, emailed with --send",
        description="An iCalendar invite for the review meeting, by default the first weekday slot within 48 hours "
        "of resolution (the profile's review: section). A dry run unless --send.",
    )
    p.add_argument("incident", help="incident ID (resolved)")
    p.add_argument("--at", help="meeting start, ISO-8601 (default: from the resolution time)")
    p.add_argument("--attendee", action="append", default=[], help="another attendee's email (repeatable)")
    p.add_argument("--send", action="store_true", help="really email the invite (default: dry run)")
    p.add_argument("--profile", help="environment profile")
    p.add_argument("--outputs", help="incident folders (default: $VCCI_NB_OUTPUTS, else the project's outputs/)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from vcci_nb import review
    from vcci_nb.policy import parse_time
    from vcci_nb.record import IncidentRecord

    record = IncidentRecord.load(args.incident, args.outputs)
    at = parse_time(args.at, name="--at") if args.at else None
    out = review.schedule(record, args.profile, at=at, attendees=args.attendee, send=args.send)
    print(f"{record.id}: review meeting {out['start'].strftime('%Y-%m-%d %H:%M UTC')} -> {out['path']}")
    print(f"attendees: {', '.join(out['attendees'])}")
    for d in out["delivery"]["deliveries"]:
        print(f"  {d['channel']:<18} {d['status']}" + (f"  {d.get('error')}" if d.get("error") else ""))
    if not args.send:
        print("Dry run: the invite is attached to the record; nothing was emailed. Add --send to email it.")
    return 0 if out["delivery"]["ok"] else 1

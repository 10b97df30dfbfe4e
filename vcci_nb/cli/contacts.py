"""``vcci-nb contacts [--incident ID]``: on-call, hotline, emergency contacts and links (seed "Quick Reference")."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "contacts",
        help="who to call and where to look: on-call, hotline, emergency contacts, dashboards",
        description="The profile's contacts and links; with --incident, the links open on the incident's window.",
    )
    p.add_argument("--incident", help="incident ID: open the links on its window")
    p.add_argument("--profile", help="environment profile")
    p.add_argument("--outputs", help="incident folders (default: $VCCI_NB_OUTPUTS, else the project's outputs/)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    print(text_for(args.incident, args.profile, args.outputs))
    return 0


def text_for(incident: str | None, profile: str | None, outputs: str | None) -> str:
    """The contacts and links as text, on the incident's window when one is given (also used by escalate)."""
    from vcci_nb import contacts
    from vcci_nb.policy import incident_start, maybe_time
    from vcci_nb.record import IncidentRecord

    start = end = None
    incident_id = ""
    if incident:
        data = IncidentRecord.load(incident, outputs).data
        start = incident_start(data)
        end = maybe_time(data.get("resolved_at")) or maybe_time(data.get("closed_at"))
        incident_id = str(data["id"])
    return contacts.text(profile, start=start, end=end, incident_id=incident_id)

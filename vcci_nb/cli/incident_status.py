"""``vcci-nb status ID``: next update due or overdue, escalations due and done.

The runner's ``vcci-nb incident`` group can offer the same as ``incident status`` by calling
:func:`vcci_nb.escalation.status_report`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "status", help="when the next update is due, and which escalations are due or done"
    )
    p.add_argument("incident", help="incident ID")
    p.add_argument("--profile", help="environment profile")
    p.add_argument("--outputs", help="incident folders (default: $VCCI_NB_OUTPUTS, else the project's outputs/)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from vcci_nb import escalation
    from vcci_nb.record import IncidentRecord

    record = IncidentRecord.load(args.incident, args.outputs)
    if args.json:
        print(json.dumps(escalation.status(record, profile=args.profile), indent=2, default=str))
    else:
        print(escalation.status_report(record, profile=args.profile))
    return 0

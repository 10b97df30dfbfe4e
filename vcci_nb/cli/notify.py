"""``vcci-nb notify CHANNEL|all --incident ID --template NAME [--send]`` (replaces update-status-page.sh)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "notify",
        help="render a message from the incident record and (with --send) send it",
        description=(
            "Render TEMPLATE (parameters/templates/) from the incident record for each channel and record it. "
            "A dry run unless --send: nothing leaves the machine and no credential is read."
        ),
    )
    p.add_argument("channel", help="a channel name from the profile's notify.channels, a comma list, or 'all'")
    p.add_argument("--incident", required=True, help="incident ID, e.g. INC-20260106-001")
    p.add_argument("--template", default="update", help="initial, update, resolution, degraded, acknowledge, …")
    p.add_argument("--message", help="free text for the message (the 'Update:' line, the status page body)")
    p.add_argument("--impact", help="the impact line (default: the top finding or the last status note)")
    p.add_argument("--send", action="store_true", help="really send (default: dry run, recorded as such)")
    p.add_argument("--profile", help="environment profile (default: $VCCI_NB_PROFILE or lab)")
    p.add_argument("--outputs", help="incident folders (default: $VCCI_NB_OUTPUTS, else the project's outputs/)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from vcci_nb import notify

    preview = notify.render(
        args.incident,
        args.template,
        args.channel,
        profile=args.profile,
        outputs=args.outputs,
        message=args.message,
        impact=args.impact,
    )
    result = notify.deliver(preview, send=args.send)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(preview)
        print()
        for d in result["deliveries"]:
            line = f"{d['channel']:<18} {d['status']}"
            resp = {k: v for k, v in (d.get("response") or {}).items() if v is not None}
            if resp:
                line += f"  {resp}"
            if d.get("error"):
                line += f"  {d['error']}"
            print(line)
        if not args.send:
            print("\nDry run: nothing was sent; the messages are recorded in the incident. Add --send to send.")
    return 0 if result["ok"] else 1

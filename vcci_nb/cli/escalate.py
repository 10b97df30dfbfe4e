"""``vcci-nb escalate ID --to manager|cto [--send]`` (replaces the seed's page-manager.sh)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from vcci_nb.escalation import FLAGS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "escalate",
        help="page or notify the Engineering Manager or the CTO about an incident, recorded",
        description="Escalate per the seed's rules. A dry run unless --send. "
        "--flag records a judgement that makes an escalation due (e.g. a customer escalation).",
    )
    p.add_argument("incident", help="incident ID")
    p.add_argument("--to", choices=["manager", "cto"], help="whom to escalate to")
    p.add_argument("--reason", help="why (default: the rules that made it due)")
    p.add_argument("--flag", choices=sorted(FLAGS), help="record an escalation trigger first")
    p.add_argument("--send", action="store_true", help="really page/notify (default: dry run)")
    p.add_argument("--profile", help="environment profile")
    p.add_argument("--outputs", help="incident folders (default: $VCCI_NB_OUTPUTS, else the project's outputs/)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from vcci_nb import escalation
    from vcci_nb.errors import ConfigError
    from vcci_nb.record import IncidentRecord

    if not args.to and not args.flag:
        raise ConfigError("say whom to escalate to (--to manager|cto) or record a trigger (--flag NAME)")
    record = IncidentRecord.load(args.incident, args.outputs)
    if args.flag:
        escalation.flag(record, args.flag, args.reason or "")
        print(f"{record.id}: recorded escalation trigger {args.flag!r}")
    if not args.to:
        print(escalation.status_report(record, profile=args.profile))
        return 0
    result = escalation.escalate(record, args.to, reason=args.reason, send=args.send, profile=args.profile)
    entry = result["escalation"]
    print(f"{record.id}: escalation to {entry['label']} {entry['status']} via {', '.join(entry['channels'])}")
    print(f"reason: {entry['reason']}")
    for d in result["deliveries"]:
        print(f"  {d['channel']:<18} {d['status']}" + (f"  {d['error']}" if d.get("error") else ""))
    from vcci_nb.cli.contacts import text_for

    print('\nIf nobody answers (seed "How to Escalate"):')
    print(text_for(record.id, args.profile, args.outputs))
    if not args.send:
        print("Dry run: nobody was paged. Add --send to escalate.")
    return 0 if result["ok"] else 1

"""``vcci-nb check``: is every source reachable from here? (replaces the seed's quick-health-check.sh)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="is every data source reachable, refusing us, or hanging? (concurrently, in about 3 s at most)",
        description="Ask every source of the profile one cheap question at once and report reachable, "
        "unreachable, forbidden, timeout or not configured, with the latency. Exit 0 when all configured "
        "sources are reachable, 1 otherwise.",
    )
    parser.add_argument("--profile", default=None, help="environment profile (default: $VCCI_NB_PROFILE or lab)")
    parser.add_argument("--timeout", type=float, default=2.0, help="client timeout per source, seconds (2)")
    parser.add_argument("--deadline", type=float, default=3.0, help="overall deadline, seconds (3)")
    parser.add_argument("--only", action="append", help="check only this source (repeatable)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from vcci_nb.sources.health import reachability

    deadline = max(min(args.deadline, 4.5), 0.1)
    timeout = max(min(args.timeout, deadline), 0.1)
    frame = reachability(args.profile, timeout=timeout, deadline=deadline, only=args.only)
    if args.json:
        print(json.dumps(frame.to_dict("records"), indent=2, default=str))
    else:
        width = max([len(s) for s in frame["source"]] + [6])
        print(f"{'SOURCE':<{width}}  {'STATUS':<14}  {'LATENCY':>9}  DETAIL")
        for rec in frame.to_dict("records"):
            print(f"{rec['source']:<{width}}  {rec['status']:<14}  {rec['latency_ms']:>7.0f}ms  {rec['detail']}")
    bad = frame[~frame["status"].isin(["reachable", "not configured"])]
    sys.stdout.flush()
    return 0 if bad.empty else 1

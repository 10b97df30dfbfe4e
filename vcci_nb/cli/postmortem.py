"""``vcci-nb postmortem ID``: the seed's Post-Incident Report, drafted from the record."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "postmortem",
        help="write postmortem.md and postmortem.html into the incident folder",
        description="Draft the Post-Incident Report from the record; impact is measured from Prometheus.",
    )
    p.add_argument("incident", help="incident ID")
    p.add_argument("--prometheus-url", help="Prometheus base URL (default: the profile's, e.g. $PROMETHEUS_URL)")
    p.add_argument("--profile", help="environment profile")
    p.add_argument("--outputs", help="incident folders (default: $VCCI_NB_OUTPUTS, else the project's outputs/)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from vcci_nb import postmortem

    pm = postmortem.build(args.incident, outputs=args.outputs, prometheus_url=args.prometheus_url, profile=args.profile)
    print(f"wrote {pm.markdown_path}")
    print(f"wrote {pm.html_path}")
    if pm.impact.get("status") != "ok":
        print(f"impact not measured: {pm.impact.get('message')}")
    return 0

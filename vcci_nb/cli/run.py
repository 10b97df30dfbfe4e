"""``vcci-nb run TARGET --incident ID``: run a notebook or a bundle into the incident record."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a notebook or a bundle (parameters/bundles.yaml) for an incident",
        description="Run a notebook or bundle concurrently into outputs/ID/. Exit status 0 only if every "
        "notebook succeeded, 1 if any failed or timed out, 2 if nothing ran (bad input).",
    )
    p.add_argument("target", help="bundle name (triage, investigate, resolve, a scenario) or notebook path/name")
    p.add_argument("--incident", required=True, help="incident ID (vcci-nb incident open …)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="notebook parameter")
    p.add_argument("-f", "--params-file", action="append", default=[], metavar="FILE", help="YAML parameters")
    p.add_argument("--profile", default=None, help="environment profile (parameters/environments/NAME.yaml)")
    p.add_argument("--evidence-from", default=None, metavar="DIR", help="replay saved evidence; no live source")
    p.add_argument("--jobs", type=int, default=None, help="notebooks at once (default: 2 per core, at most 4)")
    p.add_argument("--timeout", type=float, default=None, help="seconds each notebook may take (default 600)")
    p.add_argument("--no-html", action="store_true", help="skip the HTML copies")
    p.add_argument("--cold", action="store_true", help="do not pre-import pandas/plotly/vcci_nb in kernels")
    p.add_argument(
        "--skip", action="append", default=[], metavar="NOTEBOOK", help="a notebook of the bundle not to run (repeat)"
    )
    p.add_argument("--skip-reason", default="", metavar="TEXT", help="why, for the timeline")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from vcci_nb.runner import DEFAULT_TIMEOUT, run
    from vcci_nb.runner.core import parse_cli_params

    params = parse_cli_params(args.param)
    t0 = time.monotonic()
    width = [0]

    def progress(event: dict[str, Any]) -> None:
        total = event.get("total", 0)
        name = event.get("name", "?")
        width[0] = max(width[0], len(name))
        stamp = f"{time.monotonic() - t0:6.1f}s"
        pos = f"[{event['index'] + 1}/{total}]"
        kind = event["type"]
        if kind == "started":
            print(f"{stamp} {pos} {name:<{width[0]}}  running", file=sys.stderr, flush=True)
        elif kind == "finished":
            status = event["status"]
            mark = {"succeeded": "ok", "failed": "FAILED", "timed_out": "TIMED OUT"}.get(status, status)
            extra = f", {event['findings']} finding(s)" if event.get("findings") else ""
            line = f"{stamp} {pos} {name:<{width[0]}}  {mark} in {event.get('seconds', 0):.1f}s{extra}"
            if event.get("error"):
                line += f"\n{' ' * 8}{event['error']}"
            print(line, file=sys.stderr, flush=True)

    result = run(
        args.target,
        args.incident,
        params=params,
        param_files=args.params_file,
        profile=args.profile,
        evidence_from=args.evidence_from,
        jobs=args.jobs,
        timeout=args.timeout if args.timeout is not None else DEFAULT_TIMEOUT,
        progress=progress,
        warm=not args.cold,
        export_html=not args.no_html,
        skip=args.skip,
        skip_reason=args.skip_reason,
    )
    good = sum(1 for nb in result.notebooks if nb.status == "succeeded")
    print(
        f"{result.incident}: {good}/{len(result.notebooks)} notebooks succeeded in {result.seconds:.1f}s "
        f"(run {result.run_id}); record: {result.notebooks[0].path.rsplit('/', 1)[0] if result.notebooks else ''}"
    )
    return 0 if result.ok else 1

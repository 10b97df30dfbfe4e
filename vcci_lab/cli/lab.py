"""``vcci-nb lab up|down|status|env|inject|heal|reset``: the local VCCI platform."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "lab",
        help="start, inspect, break and stop the local VCCI platform (real servers on 127.0.0.1)",
        description="The lab: PostgreSQL, Redis, Prometheus, Alertmanager, exporters, RabbitMQ, a fake "
        "vcci-api and a Kubernetes API emulator on 127.0.0.1, for demos, drills and tests.",
    )
    p.add_argument("--dir", default=".lab", help="lab directory (state, data, logs); default .lab")
    sub = p.add_subparsers(dest="lab_command", metavar="ACTION")
    sub.required = True

    up = sub.add_parser("up", help="start every component (idempotent) and print where each listens")
    up.add_argument("--webhook", metavar="URL", help="route Alertmanager to this webhook (vcci-nb serve)")
    up.add_argument("--webhook-token-file", metavar="FILE", help="file holding the webhook's bearer token")
    up.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    up.add_argument(
        "--flavour",
        choices=["default", "other"],
        default=None,
        help="the names the lab gives the platform: default (vcci-production, vcci-api, …; profile lab) or "
        "other (every name different; profile lab-other). A lab keeps the flavour it was made with.",
    )
    up.add_argument(
        "--stop-with",
        metavar="PID",
        type=int,
        help="stop the lab when process PID ends (a CI job or script that may be killed before its clean-up)",
    )
    up.set_defaults(func=_up)

    sub.add_parser("down", help="stop everything up started (no-op when down)").set_defaults(func=_down)
    sub.add_parser("status", help="each component's health and the faults in force").set_defaults(func=_status)
    sub.add_parser("env", help="print export lines for the notebooks and plain clients").set_defaults(func=_env)

    inj = sub.add_parser("inject", help="produce a fault or preset; with no argument, list them")
    inj.add_argument("fault", nargs="?", help="fault or preset name")
    inj.set_defaults(func=_inject)

    heal = sub.add_parser("heal", help="remove a fault or preset")
    heal.add_argument("fault", help="fault or preset name ('all' heals every fault in force)")
    heal.set_defaults(func=_heal)

    sub.add_parser("reset", help="heal every fault and restore the baseline data").set_defaults(func=_reset)


def _lab(args: argparse.Namespace) -> Any:
    from vcci_lab import Lab

    return Lab(Path(args.dir))


def _print_status(status: dict[str, Any]) -> None:
    width = max((len(n) for n in status["components"]), default=10)
    for name, c in status["components"].items():
        if c["running"]:
            state = "up" if c["healthy"] else "unhealthy"
        else:
            state = f"down (fault {c['stopped_by_fault']})" if c.get("stopped_by_fault") else "down"
        pid = f"pid {c['pid']}" if c["pid"] else ""
        print(f"  {name:<{width}}  {state:<10} {c['where']:<48} {pid}")
    if status.get("faults"):
        print(f"  faults in force: {', '.join(status['faults'])}")


def _up(args: argparse.Namespace) -> int:
    token = None
    if args.webhook_token_file:
        from vcci_nb.errors import LabError

        try:
            token = Path(args.webhook_token_file).read_text().strip()
        except OSError as exc:
            raise LabError(f"cannot read the webhook token file {args.webhook_token_file}: {exc.strerror}") from exc
    lab = _lab(args)

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"  {msg}", file=sys.stderr, flush=True)

    print(f"lab in {lab.dir}:", file=sys.stderr)
    status = lab.up(
        progress=progress, webhook_url=args.webhook, webhook_token=token, stop_with=args.stop_with, flavour=args.flavour
    )
    if status.get("already_running") and not status.get("started"):
        print("already up; nothing to start.")
    _print_status(status)
    print(f'point clients at it with: eval "$(vcci-nb lab --dir {shlex.quote(str(lab.dir))} env)"')
    return 0


def _down(args: argparse.Namespace) -> int:
    lab = _lab(args)
    status = lab.status()
    was_up = bool(status["faults"]) or any(c["running"] for c in status["components"].values())
    lab.down()
    print("lab stopped." if was_up else "lab was not running; nothing to stop.")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    print(f"lab in {status['dir']}: {'up' if status['up'] else 'not (fully) up'}")
    _print_status(status)
    return 0 if status["up"] else 1


def _env(args: argparse.Namespace) -> int:
    for key, value in _lab(args).env().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def _inject(args: argparse.Namespace) -> int:
    from vcci_lab import _faults

    if not args.fault:
        print("faults:")
        for f in _faults.FAULTS.values():
            print(f"  {f.name:<18} {f.summary}")
        print("presets:")
        for name, faults in _faults.PRESETS.items():
            print(f"  {name:<26} {', '.join(faults)}  ({_faults.PRESET_SUMMARIES[name]})")
        return 0
    lab = _lab(args)
    lab.inject(args.fault)
    print(f"injected {args.fault}; faults in force: {', '.join(lab.faults())}")
    return 0


def _heal(args: argparse.Namespace) -> int:
    lab = _lab(args)
    names = lab.faults() if args.fault == "all" else [args.fault]
    for name in names:
        lab.heal(name)
    print(f"healed {args.fault}; faults in force: {', '.join(lab.faults()) or 'none'}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    _lab(args).reset()
    print("lab reset: no faults, baseline data.")
    return 0

"""``vcci-nb action``: the guarded mitigation actions from a shell, through the same gateway.

    vcci-nb action list
    vcci-nb action plan k8s.scale --incident INC-20260106-001 -p deployment=vcci-api -p replicas=12
    vcci-nb action run  k8s.scale --incident INC-20260106-001 --confirm INC-20260106-001 -p ...

``plan`` never changes anything. ``run`` executes only with ``--confirm`` equal to the incident
ID (a destructive action without it is refused); both leave an audit entry in the record. Values
of ``-p key=value`` are read as YAML scalars, lists or mappings (``replicas=12``,
``cidrs=[203.0.113.7/32]``, ``env={CIRCUIT_BREAKER_ENABLED: true}``).
"""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from vcci_nb.errors import ParameterError


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "action", help="plan or run a guarded mitigation action (dry run unless confirmed)"
    )
    sub = p.add_subparsers(dest="action_command", metavar="SUBCOMMAND")
    sub.required = True
    ls = sub.add_parser("list", help="the actions and what each does")
    ls.set_defaults(func=handle_list)
    for name, help_text in (
        ("plan", "show and record what the action would change; changes nothing"),
        ("run", "execute the action (needs --confirm INCIDENT_ID), verify it, record it"),
    ):
        q = sub.add_parser(name, help=help_text)
        q.add_argument("name", help="action name, e.g. k8s.rollout_undo (see `vcci-nb action list`)")
        q.add_argument("--incident", required=True, help="the open incident this is for (INC-YYYYMMDD-NNN)")
        q.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="action parameter")
        q.add_argument("--profile", help="environment profile (default: $VCCI_NB_PROFILE or lab)")
        q.add_argument("--outputs", help="incident folders (default: $VCCI_NB_OUTPUTS, else the project's outputs/)")
        q.add_argument("--json", action="store_true", help="print the audit entry as JSON")
        if name == "run":
            q.add_argument("--confirm", help="the incident ID again: the confirmation that lets the action run")
        q.set_defaults(func=handle_plan if name == "plan" else handle_run)


def handle_list(args: argparse.Namespace) -> int:
    from vcci_nb.actions import ACTIONS

    width = max(len(n) for n in ACTIONS)
    for name, cls in ACTIONS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:<{width}}  {doc}")
    return 0


def _params(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ParameterError(f"-p {item!r} is not KEY=VALUE (e.g. -p replicas=12)")
        try:
            out[key.strip()] = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            out[key.strip()] = value  # not YAML (a glob such as *): the plain string
    return out


def _build(args: argparse.Namespace) -> Any:
    from vcci_nb.actions import ACTIONS

    cls = ACTIONS.get(args.name)
    if cls is None:
        raise ParameterError(f"unknown action {args.name!r}; `vcci-nb action list` shows them: {', '.join(ACTIONS)}")
    params = _params(args.param)
    if args.profile:
        params["profile"] = args.profile
    try:
        return cls(**params)
    except TypeError as exc:
        raise ParameterError(
            f"{args.name}: {exc}. See `python -c 'import vcci_nb.actions as a; help(a.{cls.__name__})'`"
        ) from exc


def _row_text(row: dict[str, Any]) -> str:
    """One planned change as a line: ``now: revision 5, images …`` (a blank key labels the row)."""
    from vcci_nb.numbers import fmt_cell

    label = str(row.get("", "")).strip()
    parts = [f"{k}={fmt_cell(str(k), v)}" for k, v in row.items() if k != ""]
    return (f"{label}: " if label else "") + ", ".join(parts)


def _cli_hint(args: argparse.Namespace) -> str:
    """What to type to run the planned action from here (not the notebook's ``dry_run=False``)."""
    params = " ".join(f"-p {shlex.quote(p)}" for p in args.param)
    return f"vcci-nb action run {args.name} --incident {args.incident} {params} --confirm {args.incident}".replace(
        "  ", " "
    )


def _show(outcome: Any, as_json: bool, args: argparse.Namespace | None = None) -> int:
    if as_json:
        print(json.dumps(outcome.entry, indent=2, default=str))
    else:
        plan = outcome.plan
        print(f"{outcome.status}: {outcome.action} {outcome.target}")
        if plan is not None:
            print(f"plan: {plan.summary}")
            for w in plan.warnings:
                print(f"  ! {w}")
            for row in plan.changes[:50]:
                print("  - " + _row_text(row))
            for row in plan.skipped[:20]:
                print("  (protected) " + _row_text(row))
            if plan.diff:
                print(plan.diff)
        if outcome.verification is not None:
            for c in outcome.verification.checks:
                print(f"  {'ok' if c.ok else 'FAILED'}  {c.name}: {c.detail}")
        message = str(outcome.message)
        if args is not None and "to execute: dry_run=False" in message:
            message = message.split("to execute: dry_run=False", 1)[0] + f"to execute: {_cli_hint(args)}"
        print(message)
    return 0 if outcome.status in ("planned", "succeeded") else 1


def handle_plan(args: argparse.Namespace) -> int:
    from vcci_nb.actions import run

    outcome = run(_build(args), args.incident, dry_run=True, interactive=False, outputs=args.outputs)
    return _show(outcome, args.json, args)


def handle_run(args: argparse.Namespace) -> int:
    from vcci_nb.actions import run

    outcome = run(
        _build(args), args.incident, dry_run=False, confirm=args.confirm, interactive=False, outputs=args.outputs
    )
    return _show(outcome, args.json, args)

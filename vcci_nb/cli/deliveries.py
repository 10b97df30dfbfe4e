"""``vcci-nb deliveries``: the notifications ``vcci-nb serve`` holds; list the failed ones, retry one.

A notification whose ingestion keeps failing (a record that cannot be written, a bug) is set
aside as ``failed`` after its last attempt, with the error, so that the ones after it proceed.
Once the cause is fixed, ``vcci-nb deliveries retry ID`` puts it back in the queue; a running
``serve`` takes it within a second (its back end polls), a stopped one at its next start.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vcci_nb.runenv import ServeEnv


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deliveries", help="list the notifications serve set aside as failed, and retry one after a fix"
    )
    parser.add_argument(
        "--state-dir",
        default=str(ServeEnv.from_environ().state_dir or ".vcci-nb-serve"),
        help="serve's state directory (default $VCCI_NB_STATE_DIR or ./.vcci-nb-serve)",
    )
    sub = parser.add_subparsers(dest="deliveries_command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("list", help="failed notifications (or all with --all), newest first")
    p.add_argument("--all", action="store_true", help="every notification, not only the failed ones")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_list)
    p = sub.add_parser("retry", help="put a failed notification back in the queue (fresh attempts)")
    p.add_argument("id", type=int, help="the delivery's number, from `vcci-nb deliveries list`")
    p.set_defaults(func=_retry)


def _store(args: argparse.Namespace) -> Any:
    from vcci_nb.alerts.store import Store
    from vcci_nb.errors import ConfigError

    state_dir = Path(args.state_dir)
    if not (state_dir / "serve.sqlite3").is_file():
        raise ConfigError(f"{state_dir} holds no serve state (serve.sqlite3); pass serve's --state-dir")
    return Store(state_dir)


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else "-"


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        rows = store.deliveries(None if args.all else "failed", limit=max(1, args.limit))
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no failed deliveries" if not args.all else "no deliveries")
        return 0
    for row in rows:
        print(
            f"{row['id']:>6}  {row['state']:<8} {_when(row['received_at'])}  attempts {row['attempts']}  "
            f"{row['status']:<8} {row['n_alerts']} alert(s)  {row['group_key'][:80]}"
        )
        if row.get("incident_id"):
            print(f"        incident {row['incident_id']}")
        if row.get("error"):
            print(f"        error: {row['error']}")
    return 0


def _retry(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        row = store.retry_delivery(args.id)
    finally:
        store.close()
    print(f"delivery {args.id} is pending again (was {row['state']}: {row['error'] or 'no error kept'})")
    return 0

"""``vcci-nb job-run``: one bundle run inside a Kubernetes Job (what ``serve --executor kubernetes`` starts)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from vcci_nb import runenv


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "job-run",
        help="run a bundle inside a Kubernetes Job, results to the record store (serve --executor kubernetes)",
        description="Read the incident's base record from the record store, run the bundle against a scratch copy, "
        "upload the executed notebooks, HTML, evidence and a manifest. serve merges them into record.json. "
        "Exit 0 every notebook succeeded, 1 some did not, 2 nothing ran, 3 the results could not be stored.",
    )
    p.add_argument("bundle", help="bundle name (parameters/bundles.yaml)")
    p.add_argument("--incident", required=True, help="incident ID")
    p.add_argument(
        "--store",
        default=runenv.current().record_store,
        help="record store, s3://BUCKET/PREFIX (default $VCCI_NB_RECORD_STORE)",
    )
    p.add_argument("--job", required=True, help="the Job's name (its folder in the record store)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="notebook parameter")
    p.add_argument("--profile", default=None, help="environment profile (default $VCCI_NB_PROFILE)")
    p.add_argument("--timeout", type=float, default=None, help="seconds each notebook may take (default 600)")
    p.add_argument("--skip", action="append", default=[], metavar="NOTEBOOK", help="a notebook not to run (repeat)")
    p.add_argument("--skip-reason", default="", metavar="TEXT", help="why, for the timeline")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from vcci_nb.errors import ConfigError
    from vcci_nb.recordstore import RecordStore
    from vcci_nb.runner.core import parse_cli_params
    from vcci_nb.runner.jobrun import run_in_job

    if not args.store:
        raise ConfigError("no record store: pass --store s3://BUCKET/PREFIX or set VCCI_NB_RECORD_STORE")
    return run_in_job(
        args.bundle,
        args.incident,
        store=RecordStore.from_url(args.store, region=os.environ.get("AWS_REGION") or None),
        job=args.job,
        params=parse_cli_params(args.param),
        profile=args.profile or runenv.current().profile or None,
        skip=args.skip,
        skip_reason=args.skip_reason,
        timeout=args.timeout,
        actor=f"job {args.job}",
    )

"""``vcci-nb serve``: receive Alertmanager webhooks and run the routed bundles.

Configuration, in the order it is looked up: command-line flags, then environment variables
(``VCCI_NB_SERVE_TOKEN_FILE``/``VCCI_NB_SERVE_TOKEN``, ``VCCI_NB_STATE_DIR``, ``VCCI_NB_OUTPUTS``,
``VCCI_NB_PROFILE``, ``VCCI_NB_RUN_COMMAND``), then defaults. It prints one line,
``vcci-nb serve listening on URL``, once it accepts requests (tests and scripts wait for it).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import threading
from pathlib import Path
from typing import Any

from vcci_nb import runenv
from vcci_nb.runenv import ServeEnv


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="receive Alertmanager webhooks; open incidents and run bundles",
        description=(
            "Receive Alertmanager webhooks on POST /alertmanager, persist them, group them into incidents and run "
            "the bundle parameters/routes.yaml picks, a bounded number at a time. GET /healthz, GET /metrics."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9787, help="port (default 9787; 0 picks a free one)")
    parser.add_argument(
        "--state-dir",
        default=str(ServeEnv.from_environ().state_dir or ".vcci-nb-serve"),
        help="where the durable queue lives (default $VCCI_NB_STATE_DIR or ./.vcci-nb-serve)",
    )
    parser.add_argument(
        "--outputs", default=None, help="incident records (default $VCCI_NB_OUTPUTS, else the project's outputs/)"
    )
    parser.add_argument("--routes", default=None, help="routes file (default parameters/routes.yaml)")
    parser.add_argument(
        "--profile", default=None, help="environment profile for runs (default $VCCI_NB_PROFILE or lab)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="bundles run at once (default 2; with --executor kubernetes, Jobs at once, default 20)",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "kubernetes"),
        default=ServeEnv.from_environ().executor or "local",
        help="where a bundle runs: local (a child process, default) or kubernetes (a batch/v1 Job per run; "
        "settings in the profile's executor.kubernetes)",
    )
    parser.add_argument("--job-image", default=None, help="the Jobs' image (default executor.kubernetes.image)")
    parser.add_argument(
        "--job-namespace", default=None, help="where Jobs are created (default executor.kubernetes.namespace)"
    )
    parser.add_argument(
        "--record-store",
        default=None,
        help="s3://BUCKET/PREFIX the Jobs write results to (default executor.kubernetes.record_store)",
    )
    parser.add_argument("--run-timeout", type=float, default=1800.0, help="seconds before a bundle run is killed")
    parser.add_argument(
        "--max-attempts", type=int, default=2, help="starts of a run interrupted by a restart (default 2)"
    )
    parser.add_argument(
        "--delivery-attempts",
        type=int,
        default=5,
        help="ingest attempts a notification gets before it is set aside as failed (default 5)",
    )
    parser.add_argument(
        "--delivery-retry",
        type=float,
        default=2.0,
        help="seconds before a failed notification's second attempt; doubles each time (default 2)",
    )
    parser.add_argument(
        "--max-pending-age",
        type=float,
        default=300.0,
        help="/healthz turns unhealthy once a notification has waited this many seconds (default 300)",
    )
    parser.add_argument("--max-body", type=int, default=4 * 1024 * 1024, help="largest accepted body in bytes (4 MiB)")
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=10.0,
        help="seconds a client has to send a whole request, headers and body (default 10; then 408)",
    )
    parser.add_argument(
        "--max-connections", type=int, default=128, help="open connections at most, overall (default 128; then 503)"
    )
    parser.add_argument(
        "--max-client-connections",
        type=int,
        default=32,
        help="open connections at most from one client address (default 32; then 503)",
    )
    parser.add_argument(
        "--run-command",
        default=None,
        help="command that runs a bundle (default $VCCI_NB_RUN_COMMAND or 'python -m vcci_nb run')",
    )
    parser.add_argument(
        "--reminder-interval", type=float, default=0.0, help="seconds between overdue-update reminder rounds (0: off)"
    )
    parser.add_argument("--send-reminders", action="store_true", help="really send reminders (default: dry run)")
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="accept requests without a bearer token (only for a laptop; never in a cluster)",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from vcci_nb.alerts.server import ServeConfig, Service, read_token
    from vcci_nb.errors import ConfigError

    token = read_token()
    if token is None and not args.no_auth:
        raise ConfigError(
            "no bearer token: set VCCI_NB_SERVE_TOKEN_FILE (a file holding the token) or VCCI_NB_SERVE_TOKEN, "
            "and give Alertmanager the same token (http_config.authorization); or pass --no-auth on a laptop"
        )
    if args.delivery_attempts < 1:
        raise ConfigError("--delivery-attempts must be at least 1")
    if args.concurrency is None:
        args.concurrency = 20 if args.executor == "kubernetes" else 2
    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    env = runenv.current()
    outputs = args.outputs or env.outputs
    config = ServeConfig(
        state_dir=Path(args.state_dir).resolve(),
        host=args.host,
        port=args.port,
        token=token,
        outputs=Path(outputs).resolve() if outputs else None,
        routes=Path(args.routes).resolve() if args.routes else None,
        profile=args.profile or env.profile or "lab",
        concurrency=args.concurrency,
        run_timeout_s=args.run_timeout,
        max_attempts=args.max_attempts,
        delivery_attempts=args.delivery_attempts,
        delivery_retry_s=args.delivery_retry,
        max_pending_age_s=args.max_pending_age,
        max_body=args.max_body,
        read_timeout_s=args.read_timeout,
        max_connections=args.max_connections,
        max_client_connections=args.max_client_connections,
        run_command=shlex.split(args.run_command) if args.run_command else None,
        reminder_interval_s=args.reminder_interval,
        reminders_send=args.send_reminders,
        executor=args.executor,
        job_image=args.job_image,
        job_namespace=args.job_namespace,
        record_store=args.record_store,
    )
    try:
        service = Service(config)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    print(f"vcci-nb serve listening on {service.url}", flush=True)
    while not stopping.wait(0.5):
        pass
    service.stop()
    return 0

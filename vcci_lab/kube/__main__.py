"""``python -m vcci_lab.kube``: run the emulator in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vcci_lab.kube", description="The lab's Kubernetes API emulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    p.add_argument("--dir", type=Path, default=None, help="state directory (the log goes there)")
    p.add_argument(
        "--pods", type=int, default=12, help="pods in vcci-production (split between vcci-api and vcci-worker)"
    )
    p.add_argument("--tokens-file", type=Path, default=None, help='JSON {"<token>": "view"|"admin"}')
    p.add_argument(
        "--flavour",
        default=None,
        help="the names of the platform (vcci_lab.flavour: default or other); default $VCCI_LAB_FLAVOUR or default",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.flavour:
        from vcci_lab.flavour import FLAVOURS

        if args.flavour not in FLAVOURS:
            print(f"error: unknown flavour {args.flavour!r}; flavours: {', '.join(FLAVOURS)}", file=sys.stderr)
            return 2
        # The emulator's modules read their names once, at import (one flavour per process).
        os.environ["VCCI_LAB_FLAVOUR"] = args.flavour
    from vcci_lab.kube._common import FLAVOUR
    from vcci_lab.kube._server import Emulator, make_server

    if args.flavour and FLAVOUR.name != args.flavour:
        print(
            f"error: --flavour {args.flavour} needs VCCI_LAB_FLAVOUR={args.flavour} in the environment", file=sys.stderr
        )
        return 2

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    tokens: dict[str, str] | None = None
    if args.tokens_file is not None:
        try:
            raw = json.loads(args.tokens_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(
                f'error: cannot read tokens file {args.tokens_file}: {exc}; it must be JSON like {{"TOKEN": "view"}}',
                file=sys.stderr,
            )
            return 2
        if not isinstance(raw, dict) or not all(v in ("view", "admin") for v in raw.values()):
            print(f'error: tokens file {args.tokens_file} must map tokens to "view" or "admin"', file=sys.stderr)
            return 2
        tokens = {str(k): str(v) for k, v in raw.items()}
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    if args.pods < 2:
        print("error: --pods must be at least 2 (one vcci-api and one vcci-worker pod)", file=sys.stderr)
        return 2
    emu = Emulator(pods=args.pods, tokens=tokens, data_dir=args.dir)
    try:
        srv = make_server(args.host, args.port, emu, tls_dir=args.dir)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}; pick another port", file=sys.stderr)
        emu.close()
        return 1
    host, port = str(srv.server_address[0]), int(srv.server_address[1])
    print(f"kube emulator listening on http://{host}:{port}", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        emu.close()
        srv.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

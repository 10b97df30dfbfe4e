"""The ``vcci-nb`` command.

Each module in this package that defines ``register(subparsers)`` adds one command (or a
group of them). Other packages add commands the same way through the ``vcci_nb.commands`` entry
points (name = command, value = its ``register``): the lab (``vcci_lab``) adds ``lab`` and ``demo``
so that this package never imports it. Entry points are loaded when the parser is built, not when
this module is imported. Modules import heavy libraries inside their handlers, not at the top, so
that ``vcci-nb --help`` and ``vcci-nb lab status`` stay fast. Logging is configured here only.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

from vcci_nb.errors import VcciNbError
from vcci_nb.redact import redact


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vcci-nb",
        description="Incident-response runbooks for the VCCI Scope 3 Platform.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    commands: dict[str, Callable[[Any], None]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            commands[info.name] = register
    _plugins(commands)
    for name in sorted(commands):
        commands[name](sub)
    return parser


#: The entry-point group other packages add commands through.
COMMANDS_GROUP = "vcci_nb.commands"

#: Commands another package of this project provides, named here only so that asking for one
#: without that package installed says what to install instead of argparse's "invalid choice".
_PLUGIN_COMMANDS = {
    "lab": "the lab (package vcci_lab)",
    "demo": "the lab (package vcci_lab)",
}


def _plugins(commands: dict[str, Callable[[Any], None]]) -> None:
    """Add the entry points' commands (and stand-ins for this project's that are missing) to ``commands``."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=COMMANDS_GROUP):
        if ep.name in commands:
            continue
        try:
            commands[ep.name] = ep.load()
        except ImportError as exc:
            commands[ep.name] = _unavailable(ep.name, f"its package cannot be imported ({exc})")
    for name, what in _PLUGIN_COMMANDS.items():
        if name not in commands:
            commands[name] = _unavailable(name, f"{what} is not installed")


def _unavailable(name: str, why: str) -> Callable[[Any], None]:
    """A stand-in for a command whose package is missing: any use of it ends in a clear error."""

    def fail(args: argparse.Namespace) -> int:
        raise VcciNbError(
            f"`vcci-nb {name}` is not available: {why}. It comes with this project's source checkout: "
            "install it there with `./dev setup` (or `pip install -e .`), then run the command again."
        )

    def register(sub: Any) -> None:
        # No options of its own (prefix_chars no argument starts with): whatever follows is accepted.
        p = sub.add_parser(name, help=f"(not available: {why})", add_help=False, prefix_chars="\0")
        p.add_argument("args", nargs="*")
        p.set_defaults(func=fail)

    return register


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity, 2)
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        rc = args.func(args)
    except VcciNbError as exc:
        print(f"vcci-nb: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vcci-nb: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())

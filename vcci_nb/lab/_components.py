"""The lab's components: how each one starts, what it depends on, and how to tell it is healthy.

Each starter gets a :class:`Ctx` and returns the entry that goes into ``state.json`` (at least the
PID and the process start time of a process it started, so ``down`` can stop exactly that).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_nb.lab import _postgres, _procs, _redis

log = logging.getLogger(__name__)


@dataclass
class Ctx:
    """What a starter needs: the lab directory, its state, and a way to report progress."""

    dir: Path
    state: dict[str, Any]
    progress: Callable[[str], None]
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def secrets(self) -> dict[str, str]:
        return self.state["secrets"]  # type: ignore[no-any-return]

    @property
    def ports(self) -> dict[str, int]:
        return self.state["ports"]  # type: ignore[no-any-return]

    def log_path(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def entry(self, name: str) -> dict[str, Any]:
        return self.state["components"].get(name, {})  # type: ignore[no-any-return]


Entry = dict[str, Any]


def proc_entry(proc: subprocess.Popen[bytes], **extra: Any) -> Entry:
    return {"pid": proc.pid, "start_time": _procs.pid_start_time(proc.pid), **extra}


@dataclass(frozen=True)
class Spec:
    name: str
    ports: tuple[str, ...]
    after: tuple[str, ...]
    start: Callable[[Ctx], Entry]
    health: Callable[[Ctx], bool]
    where: Callable[[Ctx], str]
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 15.0
    process: bool = True


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_start(ctx: Ctx) -> Entry:
    root = Path(ctx.state.get("pg_root") or _postgres.choose_root(ctx.dir))
    ctx.state["pg_root"] = str(root)
    _postgres.prepare_data(root, ctx.log_path("postgres"), lambda m: ctx.progress(f"postgres: {m}"))
    passwords = {role: ctx.secrets[role] for role in _postgres.LOGIN_ROLES}
    proc = _postgres.start(root, ctx.ports["postgres"], ctx.log_path("postgres"), passwords)
    return proc_entry(proc, port=ctx.ports["postgres"])


def _pg_health(ctx: Ctx) -> bool:
    root = Path(ctx.state["pg_root"])
    with _postgres.admin_connect(root, ctx.ports["postgres"], "postgres") as conn:
        conn.execute("SELECT 1")
    return True


# --- Redis --------------------------------------------------------------------------------------


def _redis_passwords(ctx: Ctx) -> dict[str, str]:
    return {"redis_default": ctx.secrets["redis_default"], "redis_diag": ctx.secrets["redis_diag"]}


def _redis_start(ctx: Ctx) -> Entry:
    proc = _redis.start(ctx.dir / "redis", ctx.ports["redis"], ctx.log_path("redis"), _redis_passwords(ctx))
    _redis.seed(ctx.ports["redis"], _redis_passwords(ctx))
    return proc_entry(proc, port=ctx.ports["redis"])


def _redis_health(ctx: Ctx) -> bool:
    r = _redis.client(ctx.ports["redis"], _redis_passwords(ctx), timeout=1)
    try:
        return bool(r.ping())
    finally:
        r.close()


def _tcp(port_key: str) -> Callable[[Ctx], bool]:
    return lambda ctx: _procs.port_is_listening(ctx.ports[port_key])


SPECS: list[Spec] = [
    Spec(
        "postgres",
        ("postgres",),
        (),
        _pg_start,
        _pg_health,
        lambda c: f"postgresql://127.0.0.1:{c.ports['postgres']}/{_postgres.DATABASE}",
        stop_signal=signal.SIGINT,
    ),
    Spec(
        "redis",
        ("redis",),
        (),
        _redis_start,
        _redis_health,
        lambda c: f"redis://127.0.0.1:{c.ports['redis']}",
    ),
]


def specs() -> list[Spec]:
    return list(SPECS)

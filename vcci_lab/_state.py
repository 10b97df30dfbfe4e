"""The lab's state file (``<dir>/state.json``, mode 0600) and its lock.

The state records what ``up`` started (PID, process start time, port), the generated passwords and
tokens, and the faults in force, so that ``down``, ``status``, ``env`` and ``heal`` can work from
any process, and ``down`` stops exactly what ``up`` started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vcci_nb.redact import register_secrets

STATE_VERSION = 1

#: PostgreSQL roles that log in (default flavour's names), each with its own password.
PG_LOGIN_ROLES = (
    "vcci_app",
    "vcci_worker",
    "vcci_diag",
    "vcci_mitigate",
    "vcci_maintainer",
    "vcci_index_builder",
    "vcci_xact_resolver",
    "vcci_slot_dropper",
)

#: Secrets the lab generates once per lab directory.
SECRET_KEYS = (
    "postgres",
    *PG_LOGIN_ROLES,
    "redis_default",
    "aws_secret",
    "redis_diag",
    "rabbitmq_vcci",
    "kube_view",
    "kube_admin",
    "erlang_cookie",
    "vcci_api_token",
)


class StateFile:
    """Read-modify-write access to state.json under an exclusive file lock."""

    def __init__(self, lab_dir: Path) -> None:
        self.dir = lab_dir
        self.path = lab_dir / "state.json"
        self._lock_path = lab_dir / ".lock"
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fh: Any = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lab's lock (re-entrant within this object, exclusive across processes)."""
        with self._thread_lock:
            if self._depth == 0:
                self.dir.mkdir(parents=True, exist_ok=True)
                self._fh = open(self._lock_path, "a")  # noqa: SIM115 - held across the block
                fcntl.flock(self._fh, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._fh, fcntl.LOCK_UN)
                    self._fh.close()
                    self._fh = None

    def load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError):
            data = {}
        data.setdefault("version", STATE_VERSION)
        data.setdefault("secrets", {})
        data.setdefault("ports", {})
        data.setdefault("components", {})
        data.setdefault("faults", {})
        register_secrets(str(v) for v in data["secrets"].values())
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".state.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, self.path)
        os.chmod(self.path, 0o600)


def ensure_secrets(data: dict[str, Any]) -> dict[str, str]:
    """Generate any missing password or token (URL-safe, so it can sit in a URL unquoted)."""
    sec: dict[str, str] = data["secrets"]
    for key in SECRET_KEYS:
        if not sec.get(key):
            sec[key] = secrets.token_hex(16)
    register_secrets(sec.values())
    return sec

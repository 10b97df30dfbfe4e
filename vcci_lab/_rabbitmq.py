"""RabbitMQ with its management API, and the epmd it needs, both started and stopped by the lab.

epmd is started by the lab (in the foreground, on its own port via ``ERL_EPMD_PORT``) rather than
left to the Erlang VM, which would daemonize one on the shared default port 4369 where ``down``
could neither find nor safely stop it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from vcci_lab import _procs
from vcci_nb.errors import LabError

QUEUES = {"calculations": 42, "reports": 7, "notifications": 15, "dead-letter": 3}


def _password_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _env(rmq_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    node = "vcci-lab-" + hashlib.sha1(str(rmq_dir).encode()).hexdigest()[:8]  # noqa: S324 - a name
    return {
        "HOME": str(rmq_dir),
        "RABBITMQ_NODENAME": f"{node}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": _procs.HOST,
        "RABBITMQ_NODE_PORT": str(ports["rabbitmq"]),
        "RABBITMQ_DIST_PORT": str(ports["rabbitmq_dist"]),
        "RABBITMQ_MNESIA_BASE": str(rmq_dir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(rmq_dir / "log"),
        "RABBITMQ_CONFIG_FILE": str(rmq_dir / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(rmq_dir / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(rmq_dir / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(rmq_dir / "rabbitmq-env.conf"),
        "RABBITMQ_PID_FILE": str(rmq_dir / "rabbitmq.pid"),
        "RABBITMQ_LOGS": "-",
        "ERL_EPMD_PORT": str(ports["epmd"]),
        "ERL_EPMD_ADDRESS": _procs.HOST,
    }


def start_epmd(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [_procs.find_binary("epmd"), "-port", str(port), "-address", _procs.HOST]
    proc = _procs.spawn("epmd", argv, log_path)
    _procs.wait_until("epmd", lambda: _procs.port_is_listening(port), timeout=10, proc=proc, log_path=log_path)
    return proc


def write_config(rmq_dir: Path, ports: dict[str, int], password: str) -> None:
    rmq_dir.mkdir(parents=True, exist_ok=True)
    (rmq_dir / "enabled_plugins").write_text("[rabbitmq_management].\n")
    definitions = {
        "users": [
            {
                "name": "vcci",
                "password_hash": _password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"],
            }
        ],
        "vhosts": [{"name": "/"}],
        "permissions": [{"user": "vcci", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
        "queues": [{"name": q, "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}} for q in QUEUES],
    }
    defs = rmq_dir / "definitions.json"
    defs.touch(mode=0o600, exist_ok=True)
    defs.write_text(json.dumps(definitions))
    conf = rmq_dir / "rabbitmq.conf"
    conf.write_text(
        "\n".join(
            [
                f"listeners.tcp.default = {ports['rabbitmq']}",
                f"management.tcp.port = {ports['rabbitmq_mgmt']}",
                f"management.tcp.ip = {_procs.HOST}",
                f"load_definitions = {defs}",
                "loopback_users = none",
                "log.console = true",
                "log.console.level = warning",
                "log.file = false",
                "disk_free_limit.absolute = 10MB",
                "collect_statistics_interval = 2000",
                "",
            ]
        )
    )


def _api(port: int, password: str, path: str, method: str = "GET", body: Any = None) -> Any:
    req = urllib.request.Request(
        f"http://{_procs.HOST}:{port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": "Basic " + base64.b64encode(f"vcci:{password}".encode()).decode(),
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
        data = resp.read()
    return json.loads(data) if data else None


def _ready(port: int, password: str) -> bool:
    """The management API answers and the default vhost is running (it starts a little after the
    API does; publishing before that fails with 'vhost / is down')."""
    try:
        vhost = _api(port, password, "/api/vhosts/%2F")
    except (urllib.error.URLError, OSError, ValueError):
        return False
    states = (vhost or {}).get("cluster_state") or {}
    return bool(states) and all(v == "running" for v in states.values())


def start(rmq_dir: Path, ports: dict[str, int], password: str, log_path: Path) -> Any:
    write_config(rmq_dir, ports, password)
    env = _env(rmq_dir, ports)
    proc = _procs.spawn("rabbitmq", [_procs.find_binary("rabbitmq-server")], log_path, env=env, cwd=rmq_dir)
    _procs.wait_until(
        "rabbitmq",
        lambda: _ready(ports["rabbitmq_mgmt"], password),
        timeout=60,
        proc=proc,
        log_path=log_path,
        interval=0.2,
    )
    seed(ports["rabbitmq_mgmt"], password)
    return proc


def seed(port: int, password: str) -> None:
    """Messages waiting in the queues, as on a busy platform (only where a queue is empty)."""
    try:
        queues = {q["name"]: q for q in _api(port, password, "/api/queues/%2F")}
        for name, count in QUEUES.items():
            if queues.get(name, {}).get("messages", 0):
                continue
            for i in range(count):
                _api(
                    port,
                    password,
                    "/api/exchanges/%2F/amq.default/publish",
                    "POST",
                    {
                        "properties": {"delivery_mode": 2, "content_type": "application/json"},
                        "routing_key": name,
                        "payload": json.dumps({"job": name, "tenant_id": 1 + i % 50, "n": i}),
                        "payload_encoding": "string",
                    },
                )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LabError(f"RabbitMQ started but its management API failed while seeding queues: {exc}") from exc

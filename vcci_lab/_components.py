"""The lab's components: how each one starts, what it depends on, and how to tell it is healthy.

Each starter gets a :class:`Ctx` and returns the entry that goes into ``state.json`` (at least the
PID and the process start time of a process it started, so ``down`` can stop exactly that).
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_lab import _aws, _gitrepo, _monitoring, _postgres, _procs, _rabbitmq, _redis
from vcci_lab.flavour import Flavour
from vcci_lab.flavour import get as get_flavour

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

    @property
    def flavour(self) -> Flavour:
        """The names of the platform this lab emulates."""
        return get_flavour(self.state.get("flavour"))

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
    proc = _postgres.start(root, ctx.ports["postgres"], ctx.log_path("postgres"), passwords, ctx.flavour)
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
    fl = ctx.flavour
    proc = _redis.start(
        ctx.dir / "redis", ctx.ports["redis"], ctx.log_path("redis"), _redis_passwords(ctx), fl.redis_diag_user
    )
    _redis.seed(ctx.ports["redis"], _redis_passwords(ctx), prefix=fl.cache_prefix)
    return proc_entry(proc, port=ctx.ports["redis"])


def _redis_health(ctx: Ctx) -> bool:
    r = _redis.client(ctx.ports["redis"], _redis_passwords(ctx), timeout=1)
    try:
        return bool(r.ping())
    finally:
        r.close()


def _tcp(port_key: str) -> Callable[[Ctx], bool]:
    return lambda ctx: _procs.port_is_listening(ctx.ports[port_key])


def _http(port_key: str, path: str) -> Callable[[Ctx], bool]:
    return lambda ctx: _procs.http_ok(f"http://{_procs.HOST}:{ctx.ports[port_key]}{path}", timeout=2)


def _url(port_key: str, path: str = "") -> Callable[[Ctx], str]:
    return lambda ctx: f"http://{_procs.HOST}:{ctx.ports.get(port_key, 0)}{path}"


# --- exporters ----------------------------------------------------------------------------------


def _pg_exporter_start(ctx: Ctx) -> Entry:
    proc = _monitoring.start_postgres_exporter(
        ctx.dir / "exporters",
        ctx.ports["postgres_exporter"],
        ctx.ports["postgres"],
        ctx.secrets["postgres"],
        ctx.log_path("postgres-exporter"),
        ctx.flavour.database,
    )
    return proc_entry(proc, port=ctx.ports["postgres_exporter"])


def _redis_exporter_start(ctx: Ctx) -> Entry:
    proc = _monitoring.start_redis_exporter(
        ctx.ports["redis_exporter"], ctx.ports["redis"], ctx.secrets["redis_default"], ctx.log_path("redis-exporter")
    )
    return proc_entry(proc, port=ctx.ports["redis_exporter"])


# --- RabbitMQ -----------------------------------------------------------------------------------


def _epmd_start(ctx: Ctx) -> Entry:
    return proc_entry(_rabbitmq.start_epmd(ctx.ports["epmd"], ctx.log_path("epmd")), port=ctx.ports["epmd"])


def _rabbitmq_start(ctx: Ctx) -> Entry:
    proc = _rabbitmq.start(ctx.dir / "rabbitmq", ctx.ports, ctx.secrets["rabbitmq_vcci"], ctx.log_path("rabbitmq"))
    return proc_entry(proc, port=ctx.ports["rabbitmq"], management_port=ctx.ports["rabbitmq_mgmt"])


# --- the Kubernetes API emulator ----------------------------------------------------------------


def _kube_get(ctx: Ctx, path: str) -> bytes:
    req = urllib.request.Request(
        f"http://{_procs.HOST}:{ctx.ports['kube']}{path}",
        headers={"Authorization": f"Bearer {ctx.secrets['kube_admin']}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        return bytes(resp.read())


#: ``python -m vcci_lab.kube`` without executing ``vcci_lab/__init__.py``: the emulator uses only
#: the standard library and needs nothing else of the lab (nor of ``vcci_nb``, which imports pandas).
_PKG = Path(__file__).resolve().parent
_KUBE_LAUNCHER = f"""
import runpy, sys, types
for name, path in (("vcci_lab", {str(_PKG)!r}),):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
runpy.run_module("vcci_lab.kube", run_name="__main__", alter_sys=True)
"""


def _kube_start(ctx: Ctx) -> Entry:
    kdir = ctx.dir / "kube"
    kdir.mkdir(parents=True, exist_ok=True)
    tokens_file = kdir / "tokens.json"
    tokens_file.touch(mode=0o600, exist_ok=True)
    tokens_file.chmod(0o600)
    tokens_file.write_text(json.dumps({ctx.secrets["kube_view"]: "view", ctx.secrets["kube_admin"]: "admin"}))
    port = ctx.ports["kube"]
    argv = [sys.executable, "-c", _KUBE_LAUNCHER, "--host", _procs.HOST, "--port", str(port)]
    argv += ["--dir", str(kdir / "state"), "--tokens-file", str(tokens_file), "--flavour", ctx.flavour.name]
    proc = _procs.spawn("kube", argv, ctx.log_path("kube"), env={"VCCI_LAB_FLAVOUR": ctx.flavour.name})
    _procs.wait_until(
        "kube",
        lambda: _procs.http_ok(f"http://{_procs.HOST}:{port}/readyz"),
        timeout=30,
        proc=proc,
        log_path=ctx.log_path("kube"),
    )
    # A fresh lab has no faults: clear any the emulator kept in its state directory.
    try:
        faults = json.loads(_kube_get(ctx, "/_lab/faults"))
        if any(bool(v) for v in (faults.values() if isinstance(faults, dict) else [])):
            req = urllib.request.Request(
                f"http://{_procs.HOST}:{port}/_lab/reset",
                method="POST",
                data=b"{}",
                headers={"Authorization": f"Bearer {ctx.secrets['kube_admin']}"},
            )
            urllib.request.urlopen(req, timeout=10).close()  # noqa: S310
    except (OSError, ValueError) as exc:
        log.debug("could not read the emulator's faults: %s", exc)
    from vcci_lab.kube import write_kubeconfig

    fl = ctx.flavour
    write_kubeconfig(
        kdir / "kubeconfig",
        f"http://{_procs.HOST}:{port}",
        ctx.secrets["kube_view"],
        ctx.secrets["kube_admin"],
        contexts=(fl.kube_context, fl.kube_admin_context),
        namespace=fl.namespace,
        cluster=fl.cluster,
    )
    return proc_entry(proc, port=port)


# --- Prometheus, the fake vcci-api, Alertmanager ------------------------------------------------


def _api_pods(kube_metrics: str | None, fl: Flavour) -> list[str]:
    pods = set()
    for line in (kube_metrics or "").splitlines():
        if line.startswith("kube_pod_status_phase{") and f'namespace="{fl.namespace}"' in line:
            pod = line.split('pod="', 1)[1].split('"', 1)[0]
            if pod.startswith(f"{fl.api}-"):
                pods.add(pod)
    return sorted(pods) or [f"{fl.api}-0", f"{fl.api}-1", f"{fl.api}-2"]


def _prometheus_start(ctx: Ctx) -> Entry:
    prom_dir = ctx.dir / "prometheus"
    prom_dir.mkdir(parents=True, exist_ok=True)
    kube_metrics = None
    if "kube" in ctx.state["components"]:
        try:
            kube_metrics = _kube_get(ctx, "/_lab/metrics").decode()
        except OSError as exc:
            log.warning("no Kubernetes metrics for the history: %s", exc)
    ctx.progress("prometheus: backfilling 6.25 h of history with promtool")
    fl = ctx.flavour
    info = _monitoring.backfill(prom_dir, ctx.ports, _api_pods(kube_metrics, fl), kube_metrics, ctx.dir / "run", fl)
    _monitoring.write_prometheus_config(prom_dir, ctx.ports, ctx.secrets["kube_view"], fl)
    proc = _monitoring.start_prometheus(prom_dir, ctx.ports["prometheus"], ctx.log_path("prometheus"))
    return proc_entry(proc, port=ctx.ports["prometheus"], **info)


def _fakeapi_start(ctx: Ctx) -> Entry:
    from vcci_lab import _fakeapi

    argv = [sys.executable, _fakeapi.__file__, "--dir", str(ctx.dir)]
    argv += ["--api-port", str(ctx.ports["vcci_api"]), "--external-port", str(ctx.ports["external_api"])]
    argv += ["--flavour", ctx.flavour.name]
    # The API token its authenticated endpoints accept (the smoke checks send it): from the environment,
    # never the command line.
    proc = _procs.spawn(
        "vcci-api", argv, ctx.log_path("vcci-api"), env={"VCCI_LAB_API_TOKEN": ctx.secrets["vcci_api_token"]}
    )
    for key in ("vcci_api", "external_api"):
        _procs.wait_until(
            "vcci-api",
            lambda k=key: _procs.port_is_listening(ctx.ports[k]),  # type: ignore[misc]
            timeout=15,
            proc=proc,
            log_path=ctx.log_path("vcci-api"),
        )
    return proc_entry(proc, port=ctx.ports["vcci_api"], external_port=ctx.ports["external_api"])


def _alertmanager_start(ctx: Ctx) -> Entry:
    proc = _monitoring.start_alertmanager(
        ctx.dir / "alertmanager", ctx.ports["alertmanager"], ctx.log_path("alertmanager"), ctx.state.get("webhook")
    )
    return proc_entry(proc, port=ctx.ports["alertmanager"])


def _aws_start(ctx: Ctx) -> Entry:
    proc = _aws.start(ctx.ports["aws"], ctx.log_path("aws"))
    seeded = _aws.seed(
        ctx.ports["aws"], ctx.secrets["aws_secret"], str(ctx.state.get("profile") or ctx.flavour.profile)
    )
    return proc_entry(proc, port=ctx.ports["aws"], **seeded)


def _git_start(ctx: Ctx) -> Entry:
    _gitrepo.create(ctx.dir / "repo")
    return {"done": True}


SPECS: list[Spec] = [
    Spec(
        "postgres",
        ("postgres",),
        (),
        _pg_start,
        _pg_health,
        lambda c: f"postgresql://127.0.0.1:{c.ports['postgres']}/{c.flavour.database}",
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
    Spec(
        "postgres-exporter",
        ("postgres_exporter",),
        ("postgres",),
        _pg_exporter_start,
        _http("postgres_exporter", "/metrics"),
        _url("postgres_exporter", "/metrics"),
    ),
    Spec(
        "redis-exporter",
        ("redis_exporter",),
        ("redis",),
        _redis_exporter_start,
        _http("redis_exporter", "/metrics"),
        _url("redis_exporter", "/metrics"),
    ),
    Spec("epmd", ("epmd",), (), _epmd_start, _tcp("epmd"), lambda c: f"epmd 127.0.0.1:{c.ports.get('epmd', 0)}"),
    Spec(
        "rabbitmq",
        ("rabbitmq", "rabbitmq_dist", "rabbitmq_mgmt"),
        ("epmd",),
        _rabbitmq_start,
        _http("rabbitmq_mgmt", "/"),
        _url("rabbitmq_mgmt"),
        stop_timeout=20.0,
    ),
    Spec("kube", ("kube",), (), _kube_start, _http("kube", "/readyz"), _url("kube")),
    Spec(
        "alertmanager",
        ("alertmanager",),
        (),
        _alertmanager_start,
        _http("alertmanager", "/-/ready"),
        _url("alertmanager"),
    ),
    Spec(
        "prometheus",
        ("prometheus",),
        ("kube",),
        _prometheus_start,
        _http("prometheus", "/-/ready"),
        _url("prometheus"),
    ),
    Spec(
        "vcci-api",
        ("vcci_api", "external_api"),
        ("prometheus",),
        _fakeapi_start,
        _http("vcci_api", "/metrics"),
        lambda c: f"{_url('vcci_api')(c)} (external API {_url('external_api')(c)})",
    ),
    Spec("aws", ("aws",), (), _aws_start, _http("aws", "/moto-api/"), _url("aws")),
    Spec("git", (), (), _git_start, lambda c: (c.dir / "repo" / ".git").exists(), lambda c: str(c.dir / "repo")),
]


def specs() -> list[Spec]:
    return list(SPECS)

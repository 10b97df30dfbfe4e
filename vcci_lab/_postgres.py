"""PostgreSQL 15 for the lab: a ``vcci_production`` database shaped like the platform's.

Building the database (initdb, 500,000 emissions rows, indexes, ANALYZE) takes about 4 s, so the
finished data directory is kept as a template in a cache and copied (about 0.5 s) into each new
lab. The cache key covers ``schema.sql`` and the server version, so a change to either rebuilds it.

As root, initdb and the server run as the ``postgres`` user (they refuse root), which therefore
must be able to reach the data directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vcci_lab import _procs
from vcci_lab._state import PG_LOGIN_ROLES
from vcci_lab.flavour import DEFAULT, Flavour
from vcci_nb.errors import LabError

log = logging.getLogger(__name__)

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
#: The product's least-privilege roles, loaded after the schema as on a platform (one file, not a copy).
RBAC_SQL = Path(__file__).resolve().parent.parent / "parameters" / "rbac" / "postgres.sql"
DATABASE = "vcci_production"
#: The runbook's index as the template names it (a flavour may rename it).
INDEX = "idx_emissions_tenant_date"
MAX_CONNECTIONS = 50
#: Roles that log in, with the password key each uses in the lab's state.
LOGIN_ROLES = ("postgres", *PG_LOGIN_ROLES)
APP_CONNECTION_LIMIT = 20


def server_user() -> str | None:
    """The user PostgreSQL must run as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise LabError(
            "running as root, PostgreSQL must run as the 'postgres' user, which does not exist. "
            "Install postgresql-15 (it creates the user) or run the lab as an ordinary user."
        ) from exc
    return "postgres"


def _reachable(path: Path, user: str) -> bool:
    """Whether ``user`` can traverse every directory down to ``path`` (classic mode bits)."""
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid} | {g for g in os.getgrouplist(user, entry.pw_gid)}
    for part in [path, *path.parents]:
        try:
            st = part.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == entry.pw_uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return False
    return True


def choose_root(lab_dir: Path) -> Path:
    """Where the cluster lives: ``<lab>/postgres``, or a postgres-owned directory in /tmp as root
    when the postgres user cannot reach the lab directory (``/root/...`` is mode 0700)."""
    user = server_user()
    root = lab_dir / "postgres"
    if user is None or _reachable(lab_dir, user):
        return root
    digest = hashlib.sha1(str(lab_dir).encode()).hexdigest()[:12]  # noqa: S324 - a name, not security
    alt = Path("/tmp") / f"vcci-nb-pg-{digest}"  # noqa: S108 - owned by postgres, mode 0700
    log.info("the postgres user cannot reach %s; keeping the cluster in %s", lab_dir, alt)
    return alt


def _chown(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(argv: list[str], user: str | None, what: str, env: dict[str, str] | None = None) -> None:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    uid, gid, groups = _procs.run_as(user)
    res = subprocess.run(
        argv, capture_output=True, text=True, env=full_env, check=False, user=uid, group=gid, extra_groups=groups
    )
    if res.returncode != 0:
        raise LabError(f"PostgreSQL {what} failed (exit {res.returncode}): {(res.stderr or res.stdout).strip()[-800:]}")


def cache_dir() -> Path:
    env = os.environ.get("VCCI_NB_LAB_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vcci-nb" / "lab"


def _template_key() -> str:
    version = subprocess.run(
        [_procs.find_binary("postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    h = hashlib.sha256(SCHEMA_SQL.read_bytes() + RBAC_SQL.read_bytes() + version.encode() + b"v2")
    return h.hexdigest()[:16]


def server_argv(data: Path, sock: Path, port: int, listen: str = _procs.HOST) -> list[str]:
    return [
        _procs.find_binary("postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(sock),
        "-c",
        f"listen_addresses={listen}",
        "-c",
        f"max_connections={MAX_CONNECTIONS}",
        "-c",
        "superuser_reserved_connections=3",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        # replica, not minimal: a replication slot (wal-slot) and a streaming standby (replica-lag) need it;
        # prepared transactions for prepared-xact.
        "-c",
        "wal_level=replica",
        "-c",
        "max_wal_senders=4",
        "-c",
        "max_replication_slots=4",
        "-c",
        "max_prepared_transactions=10",
        "-c",
        "shared_buffers=48MB",
        "-c",
        "shared_preload_libraries=pg_stat_statements",
        "-c",
        "pg_stat_statements.track=all",
        "-c",
        "track_io_timing=on",
        "-c",
        "log_min_duration_statement=1000",
        "-c",
        "log_lock_waits=on",
        "-c",
        "deadlock_timeout=500ms",
        "-c",
        "client_connection_check_interval=1000",
    ]


def _connect_socket(sock: Path, port: int, dbname: str = "postgres") -> Any:
    import psycopg

    return psycopg.connect(
        host=str(sock), port=port, user="postgres", dbname=dbname, connect_timeout=2, autocommit=True
    )


def _ready(sock: Path, port: int) -> bool:
    with _connect_socket(sock, port) as conn:
        conn.execute("SELECT 1")
    return True


def _build(data: Path, sock: Path, user: str | None, log_path: Path, progress: Callable[[str], None]) -> None:
    """initdb and load the schema and data into ``data`` (server stopped afterwards)."""
    progress("building the vcci_production database (first run only)")
    _run(
        [
            _procs.find_binary("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        user,
        "initdb",
    )
    port = _procs.PortAllocator().get()
    proc = _procs.spawn("postgres (build)", server_argv(data, sock, port, listen=""), log_path, user=user)
    try:
        _procs.wait_until("postgres (build)", lambda: _ready(sock, port), timeout=30, proc=proc, log_path=log_path)
        with _connect_socket(sock, port) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        psql = shutil.which("psql") or str(Path(_procs.find_binary("postgres")).with_name("psql"))
        conn_args = ["-h", str(sock), "-p", str(port), "-U", "postgres", "-d", DATABASE]
        _run(
            [psql, "-q", "-X", "-v", "ON_ERROR_STOP=1", *conn_args, "-f", str(SCHEMA_SQL)],
            None,
            "schema load",
        )
        _run([psql, "-q", "-X", "-v", "ON_ERROR_STOP=1", *conn_args, *rbac_variables(), "-f", str(RBAC_SQL)],
             None, "loading parameters/rbac/postgres.sql")  # fmt: skip
        with _connect_socket(sock, port) as conn:
            conn.execute("CHECKPOINT")
    finally:
        _procs.stop_group(proc.pid, None, sig=2, timeout=20)
        with contextlib.suppress(Exception):
            proc.wait(timeout=1)


def rbac_variables(flavour: Flavour = DEFAULT) -> list[str]:
    """psql ``-v`` options naming the roles for ``parameters/rbac/postgres.sql``.

    The template is built under the default flavour's names (another flavour renames its copy).
    The diagnostics role keeps its session defaults off in the lab: the least-privilege tests show
    each write refused for want of privilege, which a read-only transaction would hide.
    """
    names = {
        "owner_role": flavour.owner_role,
        "xact_roles": f"{flavour.app_role},{flavour.worker_role}",
        "diag_role": flavour.diag_role,
        "mitigate_role": flavour.mitigate_role,
        "maintainer_role": flavour.maintainer_role,
        "index_builder_role": flavour.index_builder_role,
        "xact_resolver_role": flavour.xact_resolver_role,
        "slot_dropper_role": flavour.slot_dropper_role,
        "diag_session_defaults": "off",
    }
    return [opt for k, v in names.items() for opt in ("-v", f"{k}={v}")]


def prepare_data(pg_root: Path, log_path: Path, progress: Callable[[str], None]) -> Path:
    """Make sure ``pg_root/data`` holds a cluster, from the template cache when there is one."""
    user = server_user()
    pg_root.mkdir(parents=True, exist_ok=True)
    os.chmod(pg_root, 0o700)
    _chown(pg_root, user)
    data = pg_root / "data"
    if (data / "PG_VERSION").exists():
        return data
    if data.exists():
        shutil.rmtree(data)
    cache = cache_dir()
    template = cache / f"pgdata-{_template_key()}"
    if (template / "PG_VERSION").exists():
        progress("copying the database from the template cache")
        subprocess.run(["cp", "-a", str(template), str(data)], check=True)
        _chown(data, user)
        return data
    _build(data, pg_root, user, log_path, progress)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".pgdata-{secrets.token_hex(4)}"
        subprocess.run(["cp", "-a", str(data), str(tmp)], check=True)
        try:
            tmp.rename(template)
        except OSError:  # another lab cached it first
            shutil.rmtree(tmp, ignore_errors=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        log.warning("could not cache the database template in %s: %s", cache, exc)
    return data


def apply_flavour(conn: Any, pg_root: Path, port: int, flavour: Flavour) -> None:
    """Give the database, its roles and the runbook's index the flavour's names (idempotent).

    The template is built once under the default names; a lab of another flavour renames its copy
    (ALTER … RENAME keeps every grant, limit and membership: they follow the role's OID).
    """
    from psycopg import sql

    roles = {r for (r,) in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
    for old in (*LOGIN_ROLES[1:], "vcci_owner"):
        new = flavour.login_role(old)
        if new != old and old in roles and new not in roles:
            conn.execute(sql.SQL("ALTER ROLE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))
    dbs = {d for (d,) in conn.execute("SELECT datname FROM pg_database").fetchall()}
    if flavour.database != DATABASE and DATABASE in dbs and flavour.database not in dbs:
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(DATABASE), sql.Identifier(flavour.database))
        )
    if flavour.index_name != INDEX:
        with _connect_socket(pg_root, port, flavour.database) as db:
            db.execute(
                sql.SQL("ALTER INDEX IF EXISTS {} RENAME TO {}").format(
                    sql.Identifier(INDEX), sql.Identifier(flavour.index_name)
                )
            )


def start(
    pg_root: Path, port: int, log_path: Path, passwords: dict[str, str], flavour: Flavour = DEFAULT
) -> subprocess.Popen[bytes]:
    """Start the server on 127.0.0.1:port, give it the flavour's names and set every login role's
    password for this lab (``passwords`` is keyed by the default flavour's role names)."""
    user = server_user()
    data = pg_root / "data"
    # A postmaster.pid left by a killed server would stop a new one from starting.
    stale = data / "postmaster.pid"
    if stale.exists():
        with contextlib.suppress(OSError, ValueError, IndexError):
            old = int(stale.read_text().splitlines()[0])
            if not _procs.pid_alive(old):
                stale.unlink()
    proc = _procs.spawn("postgres", server_argv(data, pg_root, port), log_path, user=user)
    _procs.wait_until("postgres", lambda: _ready(pg_root, port), timeout=30, proc=proc, log_path=log_path)
    from psycopg import sql

    with _connect_socket(pg_root, port) as conn:
        conn.execute("SET log_min_duration_statement = -1")  # a slow ALTER ROLE would log the password
        conn.execute("SET log_statement = 'none'")
        apply_flavour(conn, pg_root, port, flavour)
        for role in LOGIN_ROLES:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(flavour.login_role(role)), sql.Literal(passwords[role])
                )
            )
    return proc


def admin_connect(pg_root: Path, port: int, dbname: str = DATABASE) -> Any:
    """A superuser connection over the lab's socket (trust auth), for set-up and faults."""
    return _connect_socket(pg_root, port, dbname)


def start_standby(pg_root: Path, port: int, standby_port: int, log_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A streaming standby of the lab's server (pg_basebackup over the socket, then a second server)."""
    user = server_user()
    root = pg_root / "standby"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(mode=0o700)
    _chown(root, user)
    data = root / "data"
    _run(
        [_procs.find_binary("pg_basebackup"), "-h", str(pg_root), "-p", str(port), "-U", "postgres", "-D", str(data),
         "-X", "stream", "-R", "-c", "fast", "--no-sync"],
        user,
        "pg_basebackup for the standby",
    )  # fmt: skip
    (data / "postmaster.pid").unlink(missing_ok=True)
    argv = [*server_argv(data, root, standby_port), "-c", "hot_standby=on", "-c", "cluster_name=vcci-replica-1"]
    proc = _procs.spawn("postgres standby", argv, log_path, user=user)
    _procs.wait_until("postgres standby", lambda: _ready(root, standby_port), timeout=60, proc=proc, log_path=log_path)
    return proc, root


def standby_connect(root: Path, port: int) -> Any:
    return _connect_socket(root, port, DATABASE)

"""Environment profiles and connection settings, read in one place.

A profile (``parameters/environments/NAME.yaml``) holds names and non-secret settings. It may
``extends:`` another profile; mappings merge, lists and scalars replace. Connections come from
environment variables that the profile names (``connections.postgres.url_env`` and so on), or
from a file given by ``<VAR>_FILE`` (as Kubernetes Secrets are mounted). Secret values found
there are registered with :mod:`vcci_nb.redact` the moment they are read.

Resolution order for a connection: the ``<VAR>_FILE`` file, then ``<VAR>``, then (PostgreSQL only)
libpq's own ``PG*`` variables and ``~/.pgpass``, which psycopg reads by itself.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from vcci_nb import runenv
from vcci_nb.errors import ConfigError
from vcci_nb.policy import (
    ALERT_LEVELS,
    CADENCE_MINUTES,
    DEFAULT_ALERT_LEVEL,
    INITIAL_UPDATE_MINUTES,
    SEVERITIES,
    is_dns1123_label,
    is_dns1123_subdomain,
)
from vcci_nb.redact import register_secret


#: Where profiles and the other YAML files live; ``VCCI_NB_PARAMETERS`` overrides it.
def parameters_dir() -> Path:
    env = runenv.current().parameters
    if env:
        return env
    return Path(__file__).resolve().parent.parent / "parameters"


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of a copy of ``base``: mappings merge, lists and scalars replace."""
    return _merge(copy.deepcopy(base), over)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, turning every failure into a ConfigError that names the file and line."""
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}. Fix the file and run again.") from exc


@dataclass(frozen=True)
class Profile:
    """A resolved environment profile."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def require(self, dotted: str) -> Any:
        value = self.get(dotted)
        if value is None:
            raise ConfigError(f"profile {self.name!r} has no setting {dotted!r}; add it to its YAML file")
        return value

    @property
    def namespace(self) -> str:
        return str(self.require("kubernetes.namespace"))

    @property
    def names(self) -> Names:
        """Every name of the platform this profile describes (checked when the profile loads)."""
        return Names.from_profile(self)

    def promql(self, template: str) -> str:
        """A PromQL template from the profile with ``{job}`` and ``{namespace}`` filled in."""
        job = str(self.get("prometheus.job") or "")
        ns = str(self.get("prometheus.namespace") or self.get("kubernetes.namespace") or "")
        return template.replace("{job}", job).replace("{namespace}", ns)

    def query(self, name: str) -> str:
        """``prometheus.queries.NAME`` (or ``prometheus.series.NAME``) with its placeholders filled in."""
        for section in ("queries", "series"):
            value = self.get(f"prometheus.{section}.{name}")
            if value:
                return self.promql(str(value))
        raise ConfigError(
            f"profile {self.name!r} has no PromQL 'prometheus.queries.{name}'; add it to "
            f"{parameters_dir() / 'environments' / (self.name + '.yaml')}"
        )

    def threshold(self, name: str) -> float:
        value = self.get(f"thresholds.{name}")
        if value is None:
            raise ConfigError(f"profile {self.name!r} has no threshold {name!r} under 'thresholds:'")
        return float(value)

    def escalation(self) -> dict[str, Any]:
        """The profile's ``escalation:`` section (empty when it has none)."""
        conf = self.get("escalation") or {}
        if not isinstance(conf, dict):
            raise ConfigError(f"profile {self.name!r}: 'escalation:' must be a mapping")
        return conf

    def cadence_minutes(self, severity: str) -> float | None:
        """Minutes between stakeholder updates for ``severity`` (None: as needed).

        ``escalation.cadence_minutes`` of the profile over :data:`vcci_nb.policy.CADENCE_MINUTES`.
        """
        table = self.escalation().get("cadence_minutes")
        if table is not None and not isinstance(table, dict):
            raise ConfigError(f"profile {self.name!r}: 'escalation.cadence_minutes' must map P0..P3 to minutes")
        value = {**CADENCE_MINUTES, **(table or {})}.get(severity)
        return float(value) if value else None

    def initial_update_minutes(self) -> float:
        """Minutes after detection the first stakeholder message is due."""
        value = self.escalation().get("initial_update_minutes")
        return float(INITIAL_UPDATE_MINUTES if value is None else value)

    def connection_env(self, name: str) -> dict[str, Any]:
        """The ``connections.NAME`` mapping (which env vars to read), or an empty one."""
        conn = self.get(f"connections.{name}") or {}
        if not isinstance(conn, dict):
            raise ConfigError(f"profile {self.name!r}: connections.{name} must be a mapping")
        return conn

    def connection_url(self, name: str) -> str | None:
        """The URL for connection ``name`` from its env var (or ``<VAR>_FILE``); None when unset."""
        conn = self.connection_env(name)
        var = conn.get("url_env")
        if not var:
            return None
        return env_secret(str(var))


# --- The names a platform uses: the profile schema ----------------------------------------------

_LABEL_SELECTOR = re.compile(r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]+(,[A-Za-z0-9./_-]+=[A-Za-z0-9._-]+)*$")
_PG_IDENT = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")
_METRIC_OR_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

#: Every name the product reads from a profile: dotted key -> (kind, what it is). No code outside
#: ``parameters/environments/`` (and the lab) spells one of these; a profile that lacks one, or
#: holds a value of the wrong shape, fails to load with an error naming the key and the file.
NAME_KEYS: dict[str, tuple[str, str]] = {
    "kubernetes.namespace": ("dns1123", "the application's namespace"),
    "kubernetes.api_deployment": ("dns1123_subdomain", "the API's Deployment"),
    "kubernetes.api_container": ("dns1123", "the API's container in its pods"),
    "kubernetes.deployments": ("dns1123_list", "the application's Deployments"),
    "kubernetes.app_selector": ("selector", "the label selector of the API's pods, like app=NAME"),
    "kubernetes.ingress": ("dns1123_subdomain", "the API's Ingress"),
    "kubernetes.maintenance_configmap": ("dns1123_subdomain", "the ConfigMap with the maintenance switch"),
    "kubernetes.data_pvc": ("dns1123_subdomain", "the API's data PersistentVolumeClaim"),
    "postgres.database": ("pg_ident", "the application's database"),
    "postgres.app_role": ("pg_ident", "the role the application connects as"),
    "postgres.app_name": ("text", "the application_name the application sets"),
    "postgres.diagnostics_role": ("pg_ident", "the read-only diagnostics role"),
    "postgres.mitigation_role": ("pg_ident", "the mitigation role"),
    "redis.cache_pattern": ("text", "the glob of the application's cache keys, like cache:*"),
    "prometheus.job": ("text", "the Prometheus job of the API"),
    "prometheus.series.requests": ("promql", 'the API\'s request counter, e.g. http_requests_total{job="{job}"}'),
    "prometheus.series.errors_5xx": ("promql", "the same counter restricted to 5xx answers"),
    "prometheus.series.tenant_label": ("label", "the label of the request counter naming the tenant"),
    "prometheus.queries.dependency_up": ("promql", "1/0 per dependency, by a label called dependency"),
    "prometheus.queries.volume_available": ("promql", "available bytes per PVC"),
    "prometheus.queries.volume_capacity": ("promql", "capacity bytes per PVC"),
}


def _check_name(kind: str, value: Any) -> bool:
    if kind == "dns1123":
        return is_dns1123_label(value)
    if kind == "dns1123_subdomain":
        return is_dns1123_subdomain(value)
    if kind == "dns1123_list":
        return isinstance(value, list) and bool(value) and all(_check_name("dns1123_subdomain", v) for v in value)
    if not isinstance(value, str) or not value.strip():
        return False
    patterns = {
        "selector": _LABEL_SELECTOR,
        "pg_ident": _PG_IDENT,
        "label": _METRIC_OR_LABEL,
    }
    pattern = patterns.get(kind)
    return pattern is None or bool(pattern.match(value))


def validate_profile(name: str, data: dict[str, Any], files: list[Path]) -> None:
    """Check the names and panels of a loaded profile; raise one ConfigError listing every problem."""
    prof = Profile(name=name, data=data)
    where = str(files[0]) + (f" (extends {', '.join(str(f) for f in files[1:])})" if len(files) > 1 else "")
    problems = []
    for key, (kind, what) in NAME_KEYS.items():
        value = prof.get(key)
        if value is None:
            problems.append(f"{key} is missing ({what})")
        elif not _check_name(kind, value):
            shape = {
                "dns1123": "a Kubernetes name (lower-case letters, digits, '-')",
                "dns1123_subdomain": "a Kubernetes name (lower-case letters, digits, '-', '.')",
                "dns1123_list": "a non-empty list of Kubernetes names",
                "selector": "a label selector like app=NAME (key=value, comma-separated)",
                "pg_ident": "a PostgreSQL identifier (lower-case letters, digits, '_')",
                "label": "a Prometheus label name",
            }.get(kind, "a non-empty string")
            problems.append(f"{key} must be {shape} ({what}), not {value!r}")
    panels = prof.get("prometheus.panels")
    if panels is not None:
        if not isinstance(panels, dict):
            problems.append("prometheus.panels must map panel names to {title, unit, query}")
        else:
            for panel, spec in panels.items():
                if not isinstance(spec, dict) or not isinstance(spec.get("query"), str) or not spec["query"].strip():
                    problems.append(f"prometheus.panels.{panel} needs a 'query:' (PromQL)")
    expected = prof.get("postgres.expected_indexes")
    if expected is not None:
        ok = isinstance(expected, list) and all(
            isinstance(e, dict) and all(isinstance(e.get(k), str) and e.get(k) for k in ("table", "name", "columns"))
            for e in expected
        )
        if not ok:
            problems.append("postgres.expected_indexes must be a list of {table, name, columns}")
    if problems:
        raise ConfigError(
            f"profile {name!r} in {where} is not usable:\n  - "
            + "\n  - ".join(problems)
            + "\nFix the file and run again."
        )


@dataclass(frozen=True)
class Names:
    """The names a platform uses, from its profile (see :data:`NAME_KEYS`)."""

    namespace: str
    api_deployment: str
    api_container: str
    deployments: tuple[str, ...]
    app_selector: str
    ingress: str
    maintenance_configmap: str
    data_pvc: str
    database: str
    app_role: str
    app_name: str
    diagnostics_role: str
    mitigation_role: str
    cache_pattern: str
    job: str
    expected_indexes: tuple[tuple[str, str, str], ...]

    @classmethod
    def from_profile(cls, prof: Profile) -> Names:
        def s(key: str) -> str:
            return str(prof.require(key))

        return cls(
            namespace=s("kubernetes.namespace"),
            api_deployment=s("kubernetes.api_deployment"),
            api_container=s("kubernetes.api_container"),
            deployments=tuple(str(d) for d in prof.require("kubernetes.deployments")),
            app_selector=s("kubernetes.app_selector"),
            ingress=s("kubernetes.ingress"),
            maintenance_configmap=s("kubernetes.maintenance_configmap"),
            data_pvc=s("kubernetes.data_pvc"),
            database=s("postgres.database"),
            app_role=s("postgres.app_role"),
            app_name=s("postgres.app_name"),
            diagnostics_role=s("postgres.diagnostics_role"),
            mitigation_role=s("postgres.mitigation_role"),
            cache_pattern=s("redis.cache_pattern"),
            job=s("prometheus.job"),
            expected_indexes=tuple(
                (str(e["table"]), str(e["name"]), str(e["columns"]))
                for e in prof.get("postgres.expected_indexes") or []
            ),
        )


def env_secret(var: str) -> str | None:
    """Read ``VAR`` (or the file named by ``VAR_FILE``) and register any password in it as secret."""
    file_var = os.environ.get(f"{var}_FILE")
    value: str | None
    if file_var:
        try:
            value = Path(file_var).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{var}_FILE points at {file_var}, which cannot be read: {exc.strerror}") from exc
    else:
        value = os.environ.get(var) or None
    if value:
        register_url_secrets(value)
    return value


def register_url_secrets(url: str) -> None:
    """Register the password (and the whole userinfo) of a URL as secrets."""
    try:
        parts = urlsplit(url)
        pw = parts.password
    except ValueError:
        return
    if pw:
        register_secret(pw)
        register_secret(unquote(pw))


def alert_levels() -> tuple[dict[str, str], str]:
    """``routes.yaml``'s alert-label → severity mapping and its default level (the one severity rule).

    Falls back to :data:`vcci_nb.policy.ALERT_LEVELS` and P2 when the file has no mapping; a broken
    routes.yaml is serve's error to report, so triage still suggests (with the fallback).
    """
    path = parameters_dir() / "routes.yaml"
    try:
        data = read_yaml(path) if path.exists() else {}
    except Exception:  # a broken routes.yaml is serve's error to report; triage still suggests
        data = {}
    data = data if isinstance(data, dict) else {}
    mapping = data.get("severity")
    levels = (
        {str(k).lower(): str(v) for k, v in mapping.items() if str(v) in SEVERITIES}
        if isinstance(mapping, dict) and mapping
        else dict(ALERT_LEVELS)
    )
    default = str(data.get("default_severity") or DEFAULT_ALERT_LEVEL)
    return levels, default if default in SEVERITIES else DEFAULT_ALERT_LEVEL


def list_profiles() -> list[str]:
    return sorted(p.stem for p in (parameters_dir() / "environments").glob("*.yaml"))


def adopt_lab_env() -> list[str]:
    """Take the lab's connection variables from ``$VCCI_NB_LAB_DIR/env.sh`` when that is set and exists.

    On Binder the notebook server starts before the lab is up (``binder/start`` writes ``env.sh``
    once it is), so kernels never inherit the lab's variables. Every profile load calls this:
    variables already set win, nothing is overwritten, and a missing file changes nothing, so a
    kernel started before the lab was ready finds its connections on the next cell. Returns the
    names it set.
    """
    lab_dir = runenv.current().lab_dir
    if not lab_dir:
        return []
    path = lab_dir / "env.sh"
    try:
        text = path.read_text()
    except OSError:
        return []
    import shlex

    added: list[str] = []
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if len(words) != 2 or words[0] != "export" or "=" not in words[1]:
            continue
        key, value = words[1].split("=", 1)
        if key.isidentifier() and key not in os.environ:
            os.environ[key] = value
            register_url_secrets(value)
            added.append(key)
    return added


def load_profile(name: str | None = None) -> Profile:
    """Load a profile by name (default: ``VCCI_NB_PROFILE`` or ``lab``), following ``extends``.

    With ``VCCI_NB_LAB_DIR`` set, the running lab's variables are adopted first (:func:`adopt_lab_env`).
    """
    adopt_lab_env()
    name = name or runenv.current().profile or "lab"
    seen: list[str] = []
    data: dict[str, Any] = {}
    current: str | None = name
    chain: list[dict[str, Any]] = []
    files: list[Path] = []
    while current:
        if current in seen:
            raise ConfigError(f"profile {name!r}: 'extends' loops through {' -> '.join([*seen, current])}")
        seen.append(current)
        path = parameters_dir() / "environments" / f"{current}.yaml"
        if not path.exists():
            known = ", ".join(list_profiles()) or "none"
            raise ConfigError(f"unknown profile {current!r}; known profiles: {known}")
        loaded = read_yaml(path) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping at the top level")
        chain.append(loaded)
        files.append(path)
        parent = loaded.get("extends")
        current = str(parent) if parent else None
    for layer in reversed(chain):
        data = _merge(data, layer)
    data.pop("extends", None)
    data["name"] = name
    validate_profile(name, data, files)
    return Profile(name=name, data=data)


# --- Resolution helpers used by vcci_nb.sources -------------------------------------------------

#: Seconds a single gathering call may take unless the caller says otherwise.
DEFAULT_TIMEOUT_S = 5.0

ProfileLike = Profile | str | None


def resolve_profile(profile: ProfileLike | Any = None) -> Profile:
    """Accept a Profile, a profile name, None (``VCCI_NB_PROFILE``, then ``lab``), or anything with
    a ``.profile`` Profile (a notebook's ``Context``).

    Every gather function takes this as its first argument so that a notebook can pass its
    context or the name it was parameterised with, and a library caller a loaded Profile.
    """
    if isinstance(profile, Profile):
        return profile
    inner = getattr(profile, "profile", None)
    if isinstance(inner, Profile):
        return inner
    if profile is not None and not isinstance(profile, str):
        raise ConfigError(f"expected a profile name, a Profile or a notebook Context, not {type(profile).__name__}")
    return load_profile(profile)


@dataclass(frozen=True)
class KubeSettings:
    """Where the Kubernetes client reads its credentials from (never loaded at import time).

    Either a kubeconfig file and context, or (running in a pod without one) the API server the
    pod's environment names with the service account's token and CA.
    """

    kubeconfig: str | None
    context: str | None
    server: str | None = None
    token_file: str | None = None
    ca_file: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.kubeconfig or self.server)

    def describe(self) -> str:
        if self.kubeconfig:
            return f"context {self.context or '(current)'} in {self.kubeconfig}"
        if self.server:
            return f"the in-cluster service account at {self.server}"
        return "no Kubernetes credentials"


#: Where a pod's service account is mounted (token, ca.crt); tests point it elsewhere.
SERVICEACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_settings(serviceaccount_dir: Path | str | None = None) -> KubeSettings | None:
    """The pod's own identity: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the mounted token and CA.

    None when not running in a cluster (no service host, or no token file).
    """
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT") or "443"
    folder = Path(serviceaccount_dir) if serviceaccount_dir is not None else SERVICEACCOUNT_DIR
    token = folder / "token"
    if not host or not token.is_file():
        return None
    server_host = f"[{host}]" if ":" in host else host
    ca = folder / "ca.crt"
    return KubeSettings(
        kubeconfig=None,
        context=None,
        server=f"https://{server_host}:{port}",
        token_file=str(token),
        ca_file=str(ca) if ca.is_file() else None,
    )


def kube_settings(
    profile: ProfileLike = None,
    *,
    mitigation: bool = False,
    kubeconfig: str | None = None,
    context: str | None = None,
    serviceaccount_dir: Path | str | None = None,
    connection: str | None = None,
) -> KubeSettings:
    """The credentials of the read-only (or, with ``mitigation``, the on-call) Kubernetes identity.

    The one resolver for reads and mitigation. In order: ``kubeconfig``/``context`` given by the
    caller; the file the profile's variable names (``connections.kubernetes[_mitigation].kubeconfig_env``,
    default ``KUBECONFIG``; only its first path is used) with the profile's context;
    ``~/.kube/config``; and, running in a pod with none of those, the pod's service account.
    ``connection`` names another ``connections.*`` entry (``kubernetes_jobs``: serve's Job executor).
    """
    conn: dict[str, Any] = {}
    if kubeconfig is None or context is None:
        name = connection or ("kubernetes_mitigation" if mitigation else "kubernetes")
        conn = resolve_profile(profile).connection_env(name)
    path = kubeconfig
    if path is None:
        var = str(conn.get("kubeconfig_env") or "KUBECONFIG")
        raw = os.environ.get(var) or ""
        path = raw.split(os.pathsep)[0] if raw else None
    else:
        path = path.split(os.pathsep)[0]
    if path is None:
        default = Path.home() / ".kube" / "config"
        path = str(default) if default.exists() else None
    ctx = context or conn.get("context")
    if path is None:
        found = in_cluster_settings(serviceaccount_dir)
        if found is not None:
            return found
    return KubeSettings(kubeconfig=path, context=str(ctx) if ctx else None)


def postgres_dsn(profile: ProfileLike = None, *, mitigation: bool = False) -> str:
    """The libpq connection string for diagnostics (or mitigation).

    An empty string is valid: psycopg then reads libpq's ``PG*`` variables and ``~/.pgpass``.
    Passwords found here are registered as secrets before anything can print them.
    """
    prof = resolve_profile(profile)
    url = prof.connection_url("postgres_mitigation" if mitigation else "postgres")
    for var in ("PGPASSWORD",):
        register_secret(os.environ.get(var))
    return url or ""


def redis_url(profile: ProfileLike = None, *, mitigation: bool = False) -> str | None:
    """The Redis URL for diagnostics (or mitigation), or None when the variable is unset."""
    prof = resolve_profile(profile)
    return prof.connection_url("redis_mitigation" if mitigation else "redis")


def service_url(profile: ProfileLike, name: str) -> str | None:
    """A URL named under ``connections.NAME.url_env`` (prometheus, alertmanager, rabbitmq, ...)."""
    return resolve_profile(profile).connection_url(name)


def git_repo(profile: ProfileLike = None) -> str | None:
    """The path of the deployment repository (``connections.git.repo_env``), or None."""
    prof = resolve_profile(profile)
    var = prof.connection_env("git").get("repo_env")
    return os.environ.get(str(var)) or None if var else None


@dataclass(frozen=True)
class AwsSettings:
    """Where boto3 takes its credentials from: named variables, a named AWS profile, or its own chain.

    ``connections.aws`` (read-only) and ``connections.aws_mitigation`` (the guarded actions) may name
    ``access_key_id_env``/``secret_access_key_env``/``session_token_env``, ``profile_env`` (a variable
    holding the AWS profile name) and ``endpoint_env`` (a variable holding an endpoint URL, e.g. a VPC
    endpoint). When none is set, boto3's own chain applies (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``,
    an instance role; ``AWS_ENDPOINT_URL``). Secret values are registered for redaction on reading;
    ``repr`` never shows them.
    """

    region: str | None
    profile_name: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    source: str = "boto3's default chain"


def aws_settings(profile: ProfileLike = None, *, mitigation: bool = False) -> AwsSettings:
    """The AWS identity for diagnostics (or, with ``mitigation``, for the AWS actions)."""
    prof = resolve_profile(profile)
    conn = prof.connection_env("aws_mitigation" if mitigation else "aws")
    if mitigation and not conn:
        conn = prof.connection_env("aws")
    region = (
        os.environ.get(str(conn.get("region_env") or ""), "")
        or str(prof.get("aws.region") or "")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or None
    )
    for var in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        register_secret(os.environ.get(var))
    endpoint = os.environ.get(str(conn.get("endpoint_env") or ""), "") or None
    key_var, secret_var = conn.get("access_key_id_env"), conn.get("secret_access_key_env")
    if key_var and secret_var and os.environ.get(str(key_var)) and (env_secret(str(secret_var)) or ""):
        secret = env_secret(str(secret_var))
        token = env_secret(str(conn["session_token_env"])) if conn.get("session_token_env") else None
        for value in (secret, token):
            register_secret(value)
        return AwsSettings(
            region,
            access_key_id=os.environ.get(str(key_var)),
            secret_access_key=secret,
            session_token=token,
            endpoint_url=endpoint,
            source=f"{key_var} / {secret_var}",
        )
    profile_var = conn.get("profile_env")
    if profile_var and os.environ.get(str(profile_var)):
        name = os.environ[str(profile_var)]
        return AwsSettings(
            region, profile_name=name, endpoint_url=endpoint, source=f"AWS profile {name} ({profile_var})"
        )
    return AwsSettings(region, endpoint_url=endpoint)

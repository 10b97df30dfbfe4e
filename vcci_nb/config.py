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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from vcci_nb.errors import ConfigError
from vcci_nb.redact import register_secret


#: Where profiles and the other YAML files live; ``VCCI_NB_PARAMETERS`` overrides it.
def parameters_dir() -> Path:
    env = os.environ.get("VCCI_NB_PARAMETERS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "parameters"


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

    def threshold(self, name: str) -> float:
        value = self.get(f"thresholds.{name}")
        if value is None:
            raise ConfigError(f"profile {self.name!r} has no threshold {name!r} under 'thresholds:'")
        return float(value)

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


def list_profiles() -> list[str]:
    return sorted(p.stem for p in (parameters_dir() / "environments").glob("*.yaml"))


def load_profile(name: str | None = None) -> Profile:
    """Load a profile by name (default: ``VCCI_NB_PROFILE`` or ``lab``), following ``extends``."""
    name = name or os.environ.get("VCCI_NB_PROFILE") or "lab"
    seen: list[str] = []
    data: dict[str, Any] = {}
    current: str | None = name
    chain: list[dict[str, Any]] = []
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
        parent = loaded.get("extends")
        current = str(parent) if parent else None
    for layer in reversed(chain):
        data = _merge(data, layer)
    data.pop("extends", None)
    data["name"] = name
    return Profile(name=name, data=data)

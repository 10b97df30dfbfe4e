"""Connections for actions, made with the *mitigation* identities of the profile.

Diagnostics read with the read-only identities (``DATABASE_URL``'s ``vcci_diag``, ``REDIS_URL``'s
``vcci-diag``, the ``vcci-lab`` context). Actions are the only code that writes, so they are the
only code that reaches for ``connections.*_mitigation`` of the profile. An action may also be given
an explicit URL or context, which is how the tests show that the read-only identities are refused.
"""

from __future__ import annotations

from typing import Any

from vcci_nb.config import Profile, env_secret, load_profile, register_url_secrets
from vcci_nb.errors import ConfigError
from vcci_nb.redact import redact_url

#: ``application_name`` of our own sessions, so that they are easy to recognise in pg_stat_activity.
APPLICATION_NAME = "vcci-nb-mitigate"


def _profile(profile: Profile | str | None) -> Profile:
    if isinstance(profile, Profile):
        return profile
    return load_profile(profile)


#: The PostgreSQL identities of the actions: profile connection -> (default variable, role, what it may do).
#: The mitigation role terminates sessions and raises ``max_connections``, and nothing else; each
#: action that needs more has its own identity for that one action (``parameters/rbac/postgres.sql``).
POSTGRES_IDENTITIES: dict[str, tuple[str, str, str]] = {
    "postgres_mitigation": (
        "VCCI_MITIGATION_DATABASE_URL",
        "vcci_mitigate",
        "terminate sessions, ALTER SYSTEM SET max_connections",
    ),
    "postgres_slot_dropper": (
        "VCCI_SLOT_DROPPER_DATABASE_URL",
        "vcci_slot_dropper",
        "vcci_ops.drop_inactive_replication_slot()",
    ),
    "postgres_maintainer": ("VCCI_MAINTAINER_DATABASE_URL", "vcci_maintainer", "VACUUM (ANALYZE)"),
    "postgres_index_builder": (
        "VCCI_INDEX_BUILDER_DATABASE_URL",
        "vcci_index_builder",
        "CREATE INDEX CONCURRENTLY",
    ),
    "postgres_xact_resolver": (
        "VCCI_XACT_RESOLVER_DATABASE_URL",
        "vcci_xact_resolver",
        "ROLLBACK PREPARED / COMMIT PREPARED",
    ),
}


def postgres_url(
    url: str | None = None, profile: Profile | str | None = None, *, connection: str = "postgres_mitigation"
) -> str:
    """An action's database URL: ``url``, else the profile's ``connections.<connection>``.

    ``connection`` names the action's identity (:data:`POSTGRES_IDENTITIES`); there is no fallback
    to another identity, so a missing one is a clear error rather than a different role.
    """
    if url:
        register_url_secrets(url)
        return url
    prof = _profile(profile)
    default_var, role, what = POSTGRES_IDENTITIES.get(connection, ("VCCI_MITIGATION_DATABASE_URL", "?", "?"))
    # A profile that does not name this connection reads the identity's usual variable.
    found = prof.connection_url(connection) if prof.connection_env(connection) else env_secret(default_var)
    if not found:
        var = prof.connection_env(connection).get("url_env", default_var)
        raise ConfigError(
            f"no database URL for the {connection} identity ({role} in parameters/rbac/postgres.sql: {what}): "
            f"set {var}, or connections.{connection}.url_env in profile {prof.name!r} "
            '(in the lab: eval "$(vcci-nb lab env)").'
        )
    return found


def pg_connect(url: str, *, timeout_s: float = 5.0) -> Any:
    """An autocommit psycopg connection (VACUUM and CREATE INDEX CONCURRENTLY need autocommit)."""
    import psycopg

    try:
        return psycopg.connect(
            url, autocommit=True, application_name=APPLICATION_NAME, connect_timeout=max(1, int(timeout_s))
        )
    except psycopg.Error as exc:
        raise ConfigError(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {str(exc).strip().splitlines()[0]}. "
            "Check the URL and that the server is up."
        ) from exc


def redis_url(url: str | None = None, profile: Profile | str | None = None) -> str:
    """The mitigation Redis URL: ``url``, else the profile's ``connections.redis_mitigation``."""
    if url:
        register_url_secrets(url)
        return url
    prof = _profile(profile)
    found = prof.connection_url("redis_mitigation")
    if not found:
        var = prof.connection_env("redis_mitigation").get("url_env", "VCCI_MITIGATION_REDIS_URL")
        raise ConfigError(f'no mitigation Redis URL: set {var} (in the lab: eval "$(vcci-nb lab env)").')
    return found


def redis_connect(url: str, *, timeout_s: float = 5.0) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True)

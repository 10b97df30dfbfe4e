"""Connections for actions, made with the *mitigation* identities of the profile.

Diagnostics read with the read-only identities (``DATABASE_URL``'s ``vcci_diag``, ``REDIS_URL``'s
``vcci-diag``, the ``vcci-lab`` context). Actions are the only code that writes, so they are the
only code that reaches for ``connections.*_mitigation`` of the profile. An action may also be given
an explicit URL or context, which is how the tests show that the read-only identities are refused.
"""

from __future__ import annotations

from typing import Any

from vcci_nb.config import Profile, load_profile, register_url_secrets
from vcci_nb.errors import ConfigError
from vcci_nb.redact import redact_url

#: ``application_name`` of our own sessions, so that they are easy to recognise in pg_stat_activity.
APPLICATION_NAME = "vcci-nb-mitigate"


def _profile(profile: Profile | str | None) -> Profile:
    if isinstance(profile, Profile):
        return profile
    return load_profile(profile)


def postgres_url(url: str | None = None, profile: Profile | str | None = None) -> str:
    """The mitigation database URL: ``url``, else the profile's ``connections.postgres_mitigation``."""
    if url:
        register_url_secrets(url)
        return url
    prof = _profile(profile)
    found = prof.connection_url("postgres_mitigation")
    if not found:
        var = prof.connection_env("postgres_mitigation").get("url_env", "VCCI_MITIGATION_DATABASE_URL")
        raise ConfigError(
            f"no mitigation database URL: set {var} to a URL for the mitigation role "
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

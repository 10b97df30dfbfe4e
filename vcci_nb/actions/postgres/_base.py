"""What every PostgreSQL action shares: one autocommit connection, row helpers, identifier checks."""

from __future__ import annotations

import re
from typing import Any

from vcci_nb.actions._connect import pg_connect, postgres_url
from vcci_nb.actions._model import Action
from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ActionRefused

_STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class _PostgresAction(Action):
    """Shared connection handling: one autocommit connection per action, opened on first use.

    ``connection`` is the profile connection (the identity) the action uses: the mitigation role
    by default; an action that needs more names its own (``_connect.POSTGRES_IDENTITIES``).
    """

    connection = "postgres_mitigation"
    _reader: Any = None

    def __init__(self, *, url: str | None = None, profile: Profile | str | None = None) -> None:
        self._url_arg = url
        self._profile = profile
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = pg_connect(postgres_url(self._url_arg, self._profile, connection=self.connection))
        return self._conn

    @property
    def reader(self) -> Any:
        """A connection that can see every session's state and query.

        Seeing other roles' ``state``, ``query_start`` and ``query`` needs ``pg_read_all_stats``
        (``pg_signal_backend`` alone shows them as NULL). When the action's identity lacks it, plans
        and re-checks read through the diagnostics identity (``DATABASE_URL``, ``pg_monitor``);
        only the change itself uses the action's identity.
        """
        if self.scalar("SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"):
            return self.conn
        if self._reader is None or self._reader.closed:
            prof = self._profile if isinstance(self._profile, Profile) else load_profile(self._profile)
            url = prof.connection_url("postgres")
            if not url:
                raise ActionRefused(
                    f"the {self.connection} identity cannot see other sessions' state (it lacks pg_read_all_stats) "
                    "and no diagnostics URL is set: set DATABASE_URL, or GRANT pg_read_all_stats to that identity"
                )
            self._reader = pg_connect(url)
        return self._reader

    def _own_pids(self) -> list[int]:
        pids = [int(self.conn.info.backend_pid)]
        if self._reader is not None and not self._reader.closed:
            pids.append(int(self._reader.info.backend_pid))
        return pids

    def rows(self, sql: str, params: Any = None, *, conn: Any = None) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with (conn or self.conn).cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def scalar(self, sql: str, params: Any = None) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return row[0] if row else None

    def identity(self) -> str:
        return f"postgres:{self.scalar('SELECT current_user')}@{self.scalar('SELECT current_database()')}"

    def identity_note(self) -> str:
        """Which identity the plan will run as: the role and the profile connection it comes from."""
        return f"as {self.scalar('SELECT current_user')} (connections.{self.connection})"

    def database_target(self) -> str:
        try:
            return f"postgres/{self.scalar('SELECT current_database()')}"
        except Exception:
            return "postgres"

    def close(self) -> None:
        for c in (self._conn, getattr(self, "_reader", None)):
            if c is not None and not c.closed:
                c.close()


def _ident(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ActionRefused(
            f"{what} {name!r} is not a plain SQL identifier (letters, digits, underscore); "
            "give the bare name, e.g. emissions."
        )
    return name

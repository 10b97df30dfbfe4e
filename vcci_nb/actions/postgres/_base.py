"""What every PostgreSQL action shares: one autocommit connection, row helpers, identifier checks."""

from __future__ import annotations

import re
from typing import Any

from vcci_nb.actions._connect import pg_connect, postgres_url
from vcci_nb.actions._model import Action
from vcci_nb.config import Profile
from vcci_nb.errors import ActionRefused

_STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class _PostgresAction(Action):
    """Shared connection handling: one autocommit connection per action, opened on first use."""

    def __init__(self, *, url: str | None = None, profile: Profile | str | None = None) -> None:
        self._url_arg = url
        self._profile = profile
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = pg_connect(postgres_url(self._url_arg, self._profile))
        return self._conn

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

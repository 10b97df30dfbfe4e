"""Server settings: :class:`SetMaxConnections` (``ALTER SYSTEM``, reload, ``pending_restart``)."""

from __future__ import annotations

import time
from typing import Any

from vcci_nb.actions._model import Plan, Verification, whole_number
from vcci_nb.actions.postgres._base import _PostgresAction
from vcci_nb.config import Profile
from vcci_nb.errors import ActionRefused


class SetMaxConnections(_PostgresAction):
    """``ALTER SYSTEM SET max_connections = N`` (seed 4.1, "temporary"), then reload.

    ``max_connections`` only changes at a restart: the verification shows the new value written
    and ``pending_restart`` true. The plan warns about it so nobody waits for relief that only a
    restart brings.
    """

    name = "postgres.max_connections"

    def __init__(
        self, value: int, *, url: str | None = None, profile: Profile | str | None = None, maximum: int = 5000
    ) -> None:
        super().__init__(url=url, profile=profile)
        self.value: Any = value  # converted by preflight
        self.maximum: Any = maximum

    @property
    def target(self) -> str:
        return self.database_target() + "/setting/max_connections"

    def parameters(self) -> dict[str, Any]:
        return {"value": self.value}

    def preflight(self) -> None:
        self.maximum = whole_number(self.maximum, "maximum", minimum=10)
        self.value = whole_number(self.value, "max_connections")
        if self.value < 10 or self.value > self.maximum:
            raise ActionRefused(
                f"max_connections={self.value} is outside 10..{self.maximum}; each connection costs memory, "
                "so a very high value can stop the server from starting"
            )

    def _state(self) -> dict[str, Any]:
        row = self.rows(
            "SELECT setting::int AS current, pending_restart FROM pg_settings WHERE name = 'max_connections'"
        )[0]
        row["sessions"] = self.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        return row

    def plan(self) -> Plan:
        st = self._state()
        if self.value < int(st["sessions"]):
            raise ActionRefused(
                f"max_connections={self.value} is below the {st['sessions']} client sessions open now; "
                "after the restart clients would be refused"
            )
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"ALTER SYSTEM SET max_connections = {self.value} (now {st['current']})",
            changes=[{"setting": "max_connections", "from": st["current"], "to": self.value}],
            warnings=[
                "max_connections takes effect only after a PostgreSQL restart: after this, the setting is "
                "pending_restart until someone restarts the server",
                "on a managed database (RDS) change the parameter group instead; ALTER SYSTEM is not allowed there",
            ],
            noop=st["current"] == self.value and not st["pending_restart"],
            details={"before": st},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        from psycopg import sql

        self.conn.execute(sql.SQL("ALTER SYSTEM SET max_connections = {}").format(sql.Literal(self.value)))
        reloaded = True
        reload_error = ""
        try:
            self.conn.execute("SELECT pg_reload_conf()")
        except Exception as exc:
            reloaded = False
            reload_error = str(exc).strip().splitlines()[0]
        return {"written": self.value, "reloaded": reloaded, "reload_error": reload_error}

    def _file_setting(self) -> dict[str, Any] | None:
        """The last ``max_connections`` line of the configuration files, if this role may read them."""
        try:
            rows = self.rows(
                "SELECT sourcefile, setting, applied, error FROM pg_file_settings "
                "WHERE name = 'max_connections' ORDER BY seqno DESC LIMIT 1"
            )
        except Exception:  # pg_file_settings is superuser-only unless granted (parameters/rbac/postgres.sql)
            return None
        return rows[0] if rows else {}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        v = Verification()
        if not result.get("reloaded"):
            v.add(
                "configuration reloaded",
                False,
                f"pg_reload_conf() failed ({result.get('reload_error')}); ask a superuser to run "
                "SELECT pg_reload_conf(), then restart",
            )
            return v
        st: dict[str, Any] = {}
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            st = self._state()
            if st["pending_restart"]:
                break
            time.sleep(0.1)
        v.add(
            "new value pending restart",
            bool(st.get("pending_restart")),
            f"running value {st.get('current')}, written {self.value}; pending_restart={st.get('pending_restart')}. "
            "Restart PostgreSQL for it to apply.",
        )
        line = self._file_setting()
        if line is None:
            v.add(
                "written to postgresql.auto.conf",
                True,
                "not checked: this role may not read pg_file_settings (see parameters/rbac/postgres.sql)",
            )
        else:
            ok = bool(line) and str(line.get("sourcefile", "")).endswith("postgresql.auto.conf")
            ok = ok and str(line.get("setting")) == str(self.value)
            v.add(
                "written to postgresql.auto.conf",
                ok,
                f"last max_connections line: {line.get('setting')!r} in {line.get('sourcefile')} "
                f"({line.get('error') or 'applied' if line.get('applied') else line.get('error') or 'not applied'})",
            )
        return v

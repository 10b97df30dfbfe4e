"""Prepared (two-phase) transactions: :class:`FinishPrepared` (``ROLLBACK PREPARED`` / ``COMMIT PREPARED``)."""

from __future__ import annotations

from typing import Any

from vcci_nb.actions._model import Plan, Verification
from vcci_nb.actions.postgres._base import _PostgresAction
from vcci_nb.config import Profile
from vcci_nb.errors import ActionRefused


class FinishPrepared(_PostgresAction):
    """``ROLLBACK PREPARED`` (default) or ``COMMIT PREPARED`` of one prepared transaction, by gid.

    A prepared transaction has no backend, so ``pg_terminate_backend`` cannot end it and
    ``pg_blocking_pids`` shows its waiters blocked by PID 0. PostgreSQL lets only the role that
    prepared it, or a superuser, finish it: the action does ``SET ROLE <owner>`` for exactly this
    statement. It runs as its own identity, ``connections.postgres_xact_resolver``
    (``vcci_xact_resolver``, a member of the roles that prepare transactions and nothing else;
    ``parameters/rbac/postgres.sql``), never as the mitigation role, and
    refuses with what to grant when it is not. The plan lists the transaction's owner, database, age
    and locks, and the sessions waiting on it; the verification checks the gid is gone and nobody
    waits on it any more.
    """

    name = "postgres.rollback_prepared"
    connection = "postgres_xact_resolver"

    def __init__(
        self, gid: str, *, commit: bool = False, url: str | None = None, profile: Profile | str | None = None
    ) -> None:
        super().__init__(url=url, profile=profile)
        self.gid = gid
        self.commit = bool(commit)

    @property
    def target(self) -> str:
        return self.database_target() + f"/prepared/{self.gid}"

    def parameters(self) -> dict[str, Any]:
        return {"gid": self.gid, "commit": self.commit}

    def preflight(self) -> None:
        if not isinstance(self.gid, str) or not self.gid or len(self.gid) > 200 or "\x00" in self.gid:
            raise ActionRefused(f"gid={self.gid!r} is not a prepared transaction's gid (see pg_prepared_xacts)")

    def _row(self) -> dict[str, Any] | None:
        rows = self.rows(
            """
            SELECT p.gid, p.owner, p.database, p.transaction::text AS xid, p.prepared,
                   round(extract(epoch FROM now() - p.prepared)::numeric, 1)::float AS age_s,
                   (SELECT count(*) FROM pg_locks l WHERE l.pid IS NULL AND l.granted AND l.virtualtransaction IN
                      (SELECT x.virtualtransaction FROM pg_locks x WHERE x.pid IS NULL
                          AND x.locktype = 'transactionid' AND x.transactionid = p.transaction))::int AS locks_held,
                   (SELECT count(*) FROM pg_locks w WHERE NOT w.granted AND w.locktype = 'transactionid'
                       AND w.transactionid = p.transaction)::int AS sessions_waiting,
                   pg_has_role(p.owner, 'MEMBER') AS may_set_role,
                   p.database = current_database() AS same_database
            FROM pg_prepared_xacts p WHERE p.gid = %s
            """,
            (self.gid,),
        )
        return rows[0] if rows else None

    def plan(self) -> Plan:
        row = self._row()
        verb = "COMMIT PREPARED" if self.commit else "ROLLBACK PREPARED"
        if row is None:
            raise ActionRefused(f"no prepared transaction with gid {self.gid!r} (pg_prepared_xacts); nothing to finish")
        if not row["same_database"]:
            raise ActionRefused(
                f"prepared transaction {self.gid!r} belongs to database {row['database']!r}; connect the "
                "xact resolver's URL (connections.postgres_xact_resolver) to that database to finish it"
            )
        if not row["may_set_role"]:
            raise ActionRefused(
                f"only {row['owner']} (who prepared {self.gid!r}) or a superuser may finish it, and this role is not a "
                f"member of {row['owner']}: GRANT {row['owner']} TO the xact resolver identity (the xact_roles "
                "variable of parameters/rbac/postgres.sql)"
            )
        warnings = [
            "ROLLBACK PREPARED discards the transaction's changes; make sure its coordinator (the application "
            "or transaction manager) will not try to commit it"
            if not self.commit
            else "COMMIT PREPARED makes the transaction's changes permanent; do it only when its coordinator "
            "decided to commit"
        ]
        identity = self.identity_note()
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"{verb} {self.gid!r} (owner {row['owner']}, prepared {row['age_s']:.0f} s ago, "
            f"{row['locks_held']} locks, {row['sessions_waiting']} sessions waiting), {identity}",
            changes=[
                {
                    "gid": row["gid"],
                    "statement": f"{verb} '{self.gid}'",
                    "owner": row["owner"],
                    "database": row["database"],
                    "xid": row["xid"],
                    "prepared": str(row["prepared"]),
                    "locks_held": row["locks_held"],
                    "sessions_waiting": row["sessions_waiting"],
                }
            ],
            warnings=warnings,
            destructive=not self.commit,
            details={"owner": row["owner"], "xid": row["xid"], "identity": identity},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        from psycopg import sql

        verb = "COMMIT PREPARED" if self.commit else "ROLLBACK PREPARED"
        self.conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(plan.details["owner"])))
        try:
            self.conn.execute(sql.SQL(verb + " {}").format(sql.Literal(self.gid)))
        finally:
            self.conn.execute("RESET ROLE")
        return {"finished": self.gid, "statement": verb}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        gone = self._row() is None
        waiting = self.scalar(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid' "
            "AND transactionid::text = %s",
            (plan.details["xid"],),
        )
        return (
            Verification()
            .add("prepared transaction gone", gone, f"pg_prepared_xacts has {'no' if gone else 'still a'} {self.gid!r}")
            .add("nobody waits on it", int(waiting or 0) == 0, f"{int(waiting or 0)} sessions waiting on its lock")
        )


def rollback_prepared(gid: str, **kwargs: Any) -> FinishPrepared:
    """``ROLLBACK PREPARED gid`` (the usual fix of an abandoned prepared transaction)."""
    return FinishPrepared(gid, commit=False, **kwargs)

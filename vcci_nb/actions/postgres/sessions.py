"""Ending sessions: :class:`TerminateSessions` (seed 4.1, long-running queries and idle connections)."""

from __future__ import annotations

import time
from typing import Any

from vcci_nb.actions._model import Plan, Verification, real_number, whole_number
from vcci_nb.actions.postgres._base import _STATES, _PostgresAction
from vcci_nb.config import Profile
from vcci_nb.errors import ActionRefused
from vcci_nb.redact import redact

_ACTIVITY_SQL = """
SELECT a.pid, a.backend_start, a.usename AS "user", a.application_name AS application,
       host(a.client_addr) AS client, a.datname AS database, a.state, a.backend_type,
       round(extract(epoch FROM now() - CASE WHEN a.state = 'active' THEN a.query_start
                                                 ELSE a.state_change END)::numeric, 1)::float AS age_s,
       left(a.query, 300) AS query,
       coalesce(r.rolsuper, false) AS superuser,
       a.pid = ANY(%s) AS self,
       coalesce(r.rolreplication, false) AS replication_role
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid IS NOT NULL
ORDER BY age_s DESC NULLS LAST, a.pid
"""


class TerminateSessions(_PostgresAction):
    """Terminate sessions by state, minimum age, application, user, database (or explicit PIDs).

    The seed's two forms:

    - long-running queries: ``TerminateSessions(state="active", min_age_s=600)``;
    - idle connections (pool exhaustion): ``TerminateSessions(state="idle", min_age_s=300)``.

    Args:
        state: one state or several (``active``, ``idle``, ``idle in transaction``, …).
        min_age_s: only sessions in that state for at least this long (``query_start`` for active
            ones, ``state_change`` otherwise).
        application: only this ``application_name``; ``user``: only this role; ``database``: only
            this database (default: every database).
        pids: only these PIDs. Asking for a protected PID (superuser, replication, ourselves) is
            refused rather than silently skipped.
        limit: refuse if more sessions than this would be terminated (a safety net against a
            filter that is too wide).
    """

    name = "postgres.terminate"

    def __init__(
        self,
        state: str | list[str] | tuple[str, ...] = "idle",
        min_age_s: float = 300,
        *,
        application: str | None = None,
        user: str | None = None,
        database: str | None = None,
        pids: list[int] | None = None,
        limit: int = 500,
        url: str | None = None,
        profile: Profile | str | None = None,
    ) -> None:
        super().__init__(url=url, profile=profile)
        self.states = [state] if isinstance(state, str) else list(state)
        # Kept as given; preflight converts them (a bad one is refused and audited there).
        self.min_age_s: Any = min_age_s
        self.application = application
        self.user = user
        self.database = database
        self.pids: Any = list(pids) if isinstance(pids, list | tuple) else pids
        self.limit: Any = limit

    @property
    def target(self) -> str:
        return self.database_target() + "/sessions"

    def parameters(self) -> dict[str, Any]:
        return {
            "state": self.states,
            "min_age_s": self.min_age_s,
            "application": self.application,
            "user": self.user,
            "database": self.database,
            "pids": self.pids,
            "limit": self.limit,
        }

    def preflight(self) -> None:
        bad = [s for s in self.states if s not in _STATES]
        if bad or not self.states:
            raise ActionRefused(f"unknown session state(s) {bad or self.states}; use one of {', '.join(_STATES)}")
        self.min_age_s = real_number(self.min_age_s, "min_age_s", minimum=0)
        self.limit = whole_number(self.limit, "limit", minimum=1)
        if self.pids is not None:
            if not isinstance(self.pids, list):
                raise ActionRefused(f"pids={self.pids!r} is not a list of process IDs")
            self.pids = [whole_number(p, "a PID in pids", minimum=1, maximum=2**31 - 1) for p in self.pids]
        for name in ("application", "user", "database"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or "\x00" in value):
                raise ActionRefused(f"{name}={value!r} is not a name")

    @staticmethod
    def _protection(row: dict[str, Any]) -> str | None:
        if row["self"]:
            return "this is the session doing the terminating"
        if row["backend_type"] == "walsender":
            return "replication (walsender) session"
        if row["backend_type"] != "client backend":
            return f"{row['backend_type']} process, not a client session"
        if row["superuser"]:
            return "superuser session"
        return None

    def _matches(self, row: dict[str, Any], *, any_age: bool = False) -> bool:
        if self.pids is not None and row["pid"] not in self.pids:
            return False
        if self.pids is None and row["state"] not in self.states:
            return False
        if self.pids is None and (row["age_s"] is None or (row["age_s"] < self.min_age_s and not any_age)):
            return False
        if self.application is not None and row["application"] != self.application:
            return False
        if self.user is not None and row["user"] != self.user:
            return False
        return not (self.database is not None and row["database"] != self.database)

    def plan(self) -> Plan:
        reader = self.reader
        every = self.rows(_ACTIVITY_SQL, (self._own_pids(),), conn=reader)
        rows = [r for r in every if self._matches(r)]
        # Sessions that match but are younger than the threshold: present, not yet old enough.
        young = [r for r in every if self._matches(r, any_age=True) and not self._matches(r)]
        young = [r for r in young if self._protection(r) is None]
        targets: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        for r in rows:
            view = {
                "pid": r["pid"],
                "user": r["user"],
                "application": r["application"],
                "client": r["client"],
                "database": r["database"],
                "state": r["state"] or r["backend_type"],
                "age_s": r["age_s"],
                "query": redact(r["query"] or ""),
            }
            reason = self._protection(r)
            if reason:
                skipped.append({**view, "reason": reason})
            else:
                targets.append({**view, "backend_start": r["backend_start"].isoformat()})
        if self.pids is not None and skipped:
            raise ActionRefused(
                "refusing to terminate protected sessions: "
                + "; ".join(f"pid {s['pid']} ({s['reason']})" for s in skipped)
                + ". Only ordinary client sessions can be terminated."
            )
        if len(targets) > self.limit:
            raise ActionRefused(
                f"{len(targets)} sessions match, more than limit={self.limit}; narrow the filter "
                "(application=, user=, min_age_s=) or raise limit= if that is really intended"
            )
        what = "/".join(self.states) if self.pids is None else f"pids {self.pids}"
        age = f" for ≥ {self.min_age_s:g} s" if self.pids is None else ""
        summary = f"terminate {len(targets)} {what} session(s){age}"
        if self.application:
            summary += f" of application {self.application!r}"
        if self.user:
            summary += f" of user {self.user!r}"
        if not targets and young and self.pids is None:
            oldest = max(float(r["age_s"] or 0) for r in young)
            apps = sorted({str(r["application"] or "?") for r in young})
            summary += (
                f"; {len(young)} {what} session(s) from {', '.join(apps)} are younger (oldest {oldest:.0f} s): "
                f"the {self.min_age_s:g} s threshold is not reached yet. In about {self.min_age_s - oldest:.0f} s "
                f"this step would end them, because by then they have held connection slots unused for "
                f"{self.min_age_s:g} s; plan it again then, or end them now by PID if the pool is exhausted"
            )
        return Plan(
            action=self.name,
            target=self.target,
            summary=summary,
            changes=targets,
            skipped=skipped,
            noop=not targets,
            warnings=["clients lose these connections; their open transactions roll back"] if targets else [],
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        pids = [int(c["pid"]) for c in plan.changes]
        starts = [c["backend_start"] for c in plan.changes]
        # Re-check right before terminating: same PID *and* same backend start (a PID may have been
        # reused since the plan), still an ordinary client session, not a superuser, not ours.
        still = self.rows(
            """
            SELECT a.pid
            FROM pg_stat_activity a
            JOIN unnest(%s::int[], %s::timestamptz[]) AS p(pid, started) ON p.pid = a.pid
            LEFT JOIN pg_roles r ON r.oid = a.usesysid
            WHERE a.backend_start = p.started AND a.backend_type = 'client backend'
              AND NOT (a.pid = ANY(%s)) AND NOT coalesce(r.rolsuper, false)
            """,
            (pids, starts, self._own_pids()),
            conn=self.reader,
        )
        terminated = []
        for row in still:
            if self.scalar("SELECT pg_terminate_backend(%s)", (int(row["pid"]),)):
                terminated.append(int(row["pid"]))
        gone_before = sorted(set(pids) - {int(r["pid"]) for r in still})
        return {"terminated": sorted(terminated), "already_gone": gone_before, "requested": sorted(pids)}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        pids = [int(c["pid"]) for c in plan.changes]
        starts = [c["backend_start"] for c in plan.changes]
        left: list[int] = []
        deadline = time.monotonic() + 5.0
        while True:
            left = [
                int(r["pid"])
                for r in self.rows(
                    "SELECT a.pid FROM pg_stat_activity a "
                    "JOIN unnest(%s::int[], %s::timestamptz[]) AS p(pid, started) "
                    "ON p.pid = a.pid AND a.backend_start = p.started",
                    (pids, starts),
                    conn=self.reader,
                )
            ]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        v = Verification()
        v.add(
            "sessions gone",
            not left,
            f"{len(pids) - len(left)} of {len(pids)} planned sessions are gone"
            + (f"; still there: {left}" if left else ""),
        )
        return v


def idle_in_transaction_sessions(min_age_s: float = 60, **kwargs: Any) -> TerminateSessions:
    """End sessions idle *in a transaction* for at least ``min_age_s`` (their locks and snapshot go with them)."""
    return TerminateSessions(
        state=["idle in transaction", "idle in transaction (aborted)"], min_age_s=min_age_s, **kwargs
    )

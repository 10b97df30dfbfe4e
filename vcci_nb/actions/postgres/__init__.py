"""PostgreSQL emergency actions of seed 4.1 and 4.2, guarded.

- :class:`TerminateSessions`: kill long-running queries and idle connections by age, application,
  user and state. Never a superuser's session, never a replication (walsender) or background
  process, never the session doing the terminating. The plan lists the exact PIDs, users,
  applications and queries; execution only touches planned sessions that still match (same PID
  *and* same backend start, so a PID reused since the plan is left alone).
- :class:`SetMaxConnections`: ``ALTER SYSTEM SET max_connections``, then ``pg_reload_conf()``;
  the verification reports ``pending_restart``, because this setting only applies after a restart.
- :class:`VacuumAnalyze`: ``VACUUM (ANALYZE)`` of one table or every table the role may vacuum.
- :class:`CreateIndex`: ``CREATE INDEX CONCURRENTLY`` (the seed's ``idx_emissions_tenant_date`` is
  :func:`emissions_tenant_date_index`); checks ``indisvalid`` afterwards and drops an invalid
  leftover of a failed build, reporting it.

Each connects with its own identity of the profile (``_connect.POSTGRES_IDENTITIES``,
``parameters/rbac/postgres.sql``) and its plan names it: the mitigation role ``vcci_mitigate``
(``VCCI_MITIGATION_DATABASE_URL``) terminates sessions and sets ``max_connections``;
``vcci_maintainer`` runs VACUUM, ``vcci_index_builder`` CREATE INDEX CONCURRENTLY,
``vcci_xact_resolver`` ROLLBACK PREPARED and ``vcci_slot_dropper`` the inactive-slot drop, each
used for that one action only.
"""

from vcci_nb.actions.postgres._base import _ident, _PostgresAction
from vcci_nb.actions.postgres.index import CreateIndex, emissions_tenant_date_index, expected_index
from vcci_nb.actions.postgres.prepared import FinishPrepared, rollback_prepared
from vcci_nb.actions.postgres.sessions import TerminateSessions, idle_in_transaction_sessions
from vcci_nb.actions.postgres.settings import SetMaxConnections
from vcci_nb.actions.postgres.slots import DropReplicationSlot
from vcci_nb.actions.postgres.vacuum import VacuumAnalyze

__all__ = [
    "CreateIndex",
    "DropReplicationSlot",
    "FinishPrepared",
    "SetMaxConnections",
    "TerminateSessions",
    "VacuumAnalyze",
    "_PostgresAction",
    "_ident",
    "emissions_tenant_date_index",
    "expected_index",
    "idle_in_transaction_sessions",
    "rollback_prepared",
]

"""Replication slots: :class:`DropReplicationSlot` (an inactive slot retaining WAL)."""

from __future__ import annotations

from typing import Any

from vcci_nb.actions._model import Plan, Verification
from vcci_nb.actions.postgres._base import _ident, _PostgresAction
from vcci_nb.config import Profile
from vcci_nb.errors import ActionRefused


class DropReplicationSlot(_PostgresAction):
    """Drop an *inactive* replication slot that retains WAL (the disk fills while it stays).

    Uses ``vcci_ops.drop_inactive_replication_slot`` (SECURITY DEFINER, ``parameters/rbac``) as its
    own identity, ``connections.postgres_slot_dropper`` (``vcci_slot_dropper``, which may execute
    that function and nothing else), so it needs neither REPLICATION nor superuser. Destructive: the replica or consumer
    that used the slot must be rebuilt from a new base backup afterwards.
    """

    name = "postgres.drop_replication_slot"
    connection = "postgres_slot_dropper"

    def __init__(self, slot: str, *, url: str | None = None, profile: Profile | str | None = None) -> None:
        super().__init__(url=url, profile=profile)
        self.slot = slot

    @property
    def target(self) -> str:
        return self.database_target() + f"/slot/{self.slot}"

    def parameters(self) -> dict[str, Any]:
        return {"slot": self.slot}

    def preflight(self) -> None:
        _ident(self.slot, "slot")

    def _row(self) -> dict[str, Any] | None:
        rows = self.rows(
            "SELECT slot_name, slot_type, database, active, active_pid, wal_status, "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        )
        return rows[0] if rows else None

    def plan(self) -> Plan:
        row = self._row()
        if row is None:
            raise ActionRefused(f"no replication slot {self.slot!r} (pg_replication_slots)")
        if row["active"]:
            raise ActionRefused(
                f"slot {self.slot!r} is active (pid {row['active_pid']}): its consumer is connected; stop it first, "
                "or keep the slot"
            )
        mib = float(row["retained_bytes"] or 0) / 1024**2
        identity = self.identity_note()
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"drop inactive {row['slot_type']} slot {self.slot} (retains {mib:,.0f} MiB of WAL), {identity}",
            changes=[{**row, "retained_mib": round(mib, 1)}],
            warnings=[
                "the replica or consumer that used this slot cannot resume: rebuild it from a new base backup",
                "the retained WAL is removed at the next checkpoint",
            ],
            destructive=True,
            details={"identity": identity},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        self.conn.execute("SELECT vcci_ops.drop_inactive_replication_slot(%s)", (self.slot,))
        return {"dropped": self.slot}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        gone = self._row() is None
        return Verification().add(
            "slot gone", gone, f"pg_replication_slots {'no longer has' if gone else 'still has'} {self.slot}"
        )

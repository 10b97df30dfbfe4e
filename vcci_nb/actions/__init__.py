"""Guarded mitigation: every state-changing operation of runbook Phase 4 goes through :func:`run`.

    plan (dry run, diff, exact targets) → confirm (typed incident ID or a Confirm click)
    → execute → verify → audit entry in ``record.json``

Usage in a notebook::

    from vcci_nb import actions
    actions.run(actions.RolloutUndo("vcci-api"), incident_id, dry_run=dry_run, confirm=confirm)

Action classes live in one module per system (:mod:`.kube`, :mod:`.traffic`, :mod:`.disk`,
:mod:`.postgres`, :mod:`.cache`, :mod:`.aws`) and are re-exported here. Client libraries are imported when an
action first connects, so importing this package is cheap.
"""

from __future__ import annotations

from vcci_nb.actions._gateway import Outcome, run
from vcci_nb.actions._model import Action, Check, Plan, Status, Verification
from vcci_nb.actions.aws import EbsExpandVolume, RdsModifyInstanceClass
from vcci_nb.actions.cache import ClearCachePattern, FlushDB
from vcci_nb.actions.choose import choose_rollback
from vcci_nb.actions.disk import CleanupFiles, ExpandVolume
from vcci_nb.actions.kube import (
    DeletePod,
    DeletePodsRolling,
    RolloutRestart,
    RolloutUndo,
    Scale,
    SetEnv,
    SetResources,
)
from vcci_nb.actions.postgres import (
    CreateIndex,
    DropReplicationSlot,
    FinishPrepared,
    SetMaxConnections,
    TerminateSessions,
    VacuumAnalyze,
    emissions_tenant_date_index,
    expected_index,
    idle_in_transaction_sessions,
    rollback_prepared,
)
from vcci_nb.actions.steps import after_chart, mark_action, step, window_since
from vcci_nb.actions.traffic import AllowSourceRanges, BlockSourceRanges, MaintenanceMode, RateLimit
from vcci_nb.errors import ActionFailed, ActionRefused, ActionRefusedWithOutcome

#: Every action by its dotted name, for the CLI (``vcci-nb action run k8s.scale ...``).
ACTIONS: dict[str, type[Action]] = {
    cls.name: cls
    for cls in (
        RolloutUndo,
        Scale,
        SetResources,
        SetEnv,
        RolloutRestart,
        DeletePod,
        DeletePodsRolling,
        ClearCachePattern,
        FlushDB,
        TerminateSessions,
        SetMaxConnections,
        VacuumAnalyze,
        CreateIndex,
        FinishPrepared,
        DropReplicationSlot,
        RateLimit,
        AllowSourceRanges,
        BlockSourceRanges,
        MaintenanceMode,
        CleanupFiles,
        ExpandVolume,
        RdsModifyInstanceClass,
        EbsExpandVolume,
    )
}

__all__ = [
    "ACTIONS",
    "Action",
    "ActionFailed",
    "ActionRefused",
    "ActionRefusedWithOutcome",
    "AllowSourceRanges",
    "BlockSourceRanges",
    "Check",
    "CleanupFiles",
    "ClearCachePattern",
    "CreateIndex",
    "DeletePod",
    "DeletePodsRolling",
    "DropReplicationSlot",
    "EbsExpandVolume",
    "ExpandVolume",
    "FinishPrepared",
    "FlushDB",
    "MaintenanceMode",
    "Outcome",
    "Plan",
    "RateLimit",
    "RdsModifyInstanceClass",
    "RolloutRestart",
    "RolloutUndo",
    "Scale",
    "SetEnv",
    "SetMaxConnections",
    "SetResources",
    "Status",
    "TerminateSessions",
    "VacuumAnalyze",
    "Verification",
    "after_chart",
    "choose_rollback",
    "emissions_tenant_date_index",
    "expected_index",
    "idle_in_transaction_sessions",
    "mark_action",
    "rollback_prepared",
    "run",
    "step",
    "window_since",
]

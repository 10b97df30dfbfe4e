"""Overdue-update reminders from ``serve``: the extension point to :mod:`vcci_nb.escalation`.

The receiver already runs all the time during an incident, so it is where a missed stakeholder
update gets noticed. The policy (cadence per severity, who to remind, through which channel,
once per missed update) belongs to ``vcci_nb.escalation``; this module only calls it on a timer.
It prefers ``escalation.send_reminders(outputs, send=…)``, which renders, records and (with
``send``) delivers; with only ``escalation.overdue_reminders(records, now)`` available it logs
what is overdue. Reminders are a dry run unless ``vcci-nb serve --send-reminders`` is given.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


def reminder_callable(outputs: Path | None, *, send: bool = False) -> Callable[[], int] | None:
    """A no-argument function that runs one round of reminders and returns how many were due.

    None when ``vcci_nb.escalation`` offers neither entry point (the loop is then not started).
    """
    try:
        escalation = importlib.import_module("vcci_nb.escalation")
    except ImportError:
        log.warning("vcci_nb.escalation is not installed; overdue-update reminders are off")
        return None
    send_reminders = getattr(escalation, "send_reminders", None)
    overdue = getattr(escalation, "overdue_reminders", None)
    if send_reminders is not None:

        def run_send() -> int:
            results = send_reminders(outputs, send=send)
            if results:
                log.info("sent %d overdue-update reminder(s)%s", len(results), "" if send else " (dry run)")
            return len(results)

        return run_send
    if overdue is not None:
        from vcci_nb.record import list_records

        def run_overdue() -> int:
            due = [
                d for d in overdue(list_records(outputs, open_only=True), datetime.now(UTC)) if not d.get("reminded")
            ]
            for item in due:
                log.warning("stakeholder update overdue for %s: %s", item.get("incident_id"), item)
            return len(due)

        return run_overdue
    log.warning("vcci_nb.escalation has no send_reminders or overdue_reminders; reminders are off")
    return None

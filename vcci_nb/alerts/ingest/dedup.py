"""Step 1, *dedup* (reads only): each delivery's alerts not seen before, and the duplicates' keys.

An alert whose (fingerprint, startsAt, status) is already in ``alerts`` is a duplicate
(Alertmanager's at-least-once delivery, an HA pair's second copy). The keys are written with the
batch's commit (``commit.finish``); if the process dies before that, the delivery is taken again
and the record, which skips what it already holds, gets nothing twice.
"""

from __future__ import annotations

import sqlite3

from vcci_nb.alerts.ingest.model import Dedup, Delivery
from vcci_nb.alerts.payload import Alert, Notification


def new_alerts(db: sqlite3.Connection, batch: list[Delivery]) -> Dedup:
    """Each delivery's alerts not seen before (in this batch or in ``alerts``), and the keys of the duplicates."""
    seen: set[tuple[str, str, str]] = set()
    duplicates: list[tuple[str, str, str]] = []
    out: list[tuple[Notification, list[Alert]]] = []
    for item in batch:
        mine: list[Alert] = []
        for alert in item.note.alerts:
            key = (alert.fingerprint, alert.starts_at, alert.status)
            known = (
                key in seen
                or db.execute(
                    "SELECT 1 FROM alerts WHERE fingerprint = ? AND starts_at = ? AND status = ?", key
                ).fetchone()
            )
            if known:
                duplicates.append(key)
                continue
            seen.add(key)
            mine.append(alert)
        out.append((item.note, mine))
    return out, duplicates

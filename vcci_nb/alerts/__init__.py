"""Alert-triggered runs: Alertmanager webhook → durable queue → incident → bundle run.

payload.py    Alertmanager webhook v4, parsed strictly (PayloadError → 400)
routing.py    parameters/routes.yaml: alert labels → bundle, parameters, P0..P3
store.py      the SQLite state: deliveries, dedup keys, groups, jobs, attempts
incidents.py  ingest: dedup, group → incident (open / join / reopen), queue runs
worker.py     bounded pool running ``vcci-nb run`` subprocesses, restart recovery
server.py     the HTTP receiver and the service that ties the threads together
metrics.py    /metrics in the Prometheus text format
reminders.py  the hook that calls vcci_nb.escalation for overdue-update reminders
"""

from __future__ import annotations

from vcci_nb.alerts.payload import Alert, Notification, PayloadError, parse_notification
from vcci_nb.alerts.routing import Routes, RunPlan, check_value
from vcci_nb.alerts.server import ServeConfig, Service, read_token
from vcci_nb.alerts.store import Store, StoreError

__all__ = [
    "Alert",
    "Notification",
    "PayloadError",
    "Routes",
    "RunPlan",
    "ServeConfig",
    "Service",
    "Store",
    "StoreError",
    "check_value",
    "parse_notification",
    "read_token",
]

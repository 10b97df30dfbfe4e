"""The receiver's own /metrics, in the Prometheus text format (version 0.0.4).

Counters that must survive a restart (alerts received, deduplicated, runs by state) and the
histograms the back-end process observes (alert received → record written, run duration) live
in the state database's ``counters`` table and are read at scrape time; the acknowledgement
histogram is the front's own, kept in memory since start.
Written by hand rather than with prometheus_client so that the receiver needs nothing beyond
the standard library and what the package already depends on.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from collections.abc import Sequence

from vcci_nb.alerts.store import Store, bump

#: Buckets for the request acknowledgement time (seconds).
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Buckets for alert received → record written (seconds).
RECORD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
RECORD_HISTOGRAM = "vcci_nb_serve_alert_to_record_seconds"
RUN_HISTOGRAM = "vcci_nb_serve_run_seconds"
#: Buckets for run duration (seconds).
RUN_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def observe(db: sqlite3.Connection, name: str, buckets: Sequence[float], value: float) -> None:
    """Count one observation of a persisted histogram, inside the caller's transaction."""
    index = bisect.bisect_left(buckets, value)
    bump(db, f"{name}:le={buckets[index]:g}" if index < len(buckets) else f"{name}:le=+Inf")
    bump(db, f"{name}:count")
    bump(db, f"{name}:sum_us", int(value * 1_000_000))


class Histogram:
    """A thread-safe cumulative histogram."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.help = help_text
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sum += value

    def load(self, counters: dict[str, int]) -> Histogram:
        """This histogram's counts as persisted by :func:`observe` (replacing what it held)."""
        with self._lock:
            self._counts = [counters.get(f"{self.name}:le={b:g}", 0) for b in self.buckets]
            self._counts.append(counters.get(f"{self.name}:le=+Inf", 0))
            self._sum = counters.get(f"{self.name}:sum_us", 0) / 1_000_000
        return self

    def render(self) -> list[str]:
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, count in zip(self.buckets, counts, strict=False):
            running += count
            lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {running}')
        running += counts[-1]
        lines += [
            f'{self.name}_bucket{{le="+Inf"}} {running}',
            f"{self.name}_sum {total:.6f}",
            f"{self.name}_count {running}",
        ]
        return lines


class Metrics:
    """Everything /metrics shows."""

    def __init__(self) -> None:
        self.ack_seconds = Histogram(
            "vcci_nb_serve_ack_seconds", "Time to persist a notification and answer Alertmanager.", ACK_BUCKETS
        )
        self.record_seconds = Histogram(
            RECORD_HISTOGRAM,
            "Time from a notification being received to its alerts being written into the incident record.",
            RECORD_BUCKETS,
        )
        self.run_seconds = Histogram(RUN_HISTOGRAM, "Duration of bundle runs.", RUN_BUCKETS)
        self._responses: dict[int, int] = {}
        self._lock = threading.Lock()

    def response(self, code: int) -> None:
        with self._lock:
            self._responses[code] = self._responses.get(code, 0) + 1

    def render(self, store: Store | None) -> str:
        lines: list[str] = []

        def counter(name: str, help_text: str, value: int) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"])

        if store is not None:
            counters = store.counters()
            self.record_seconds.load(counters)
            self.run_seconds.load(counters)
            counter(
                "vcci_nb_serve_alerts_received_total",
                "Alerts in accepted notifications.",
                counters.get("alerts_received", 0),
            )
            counter(
                "vcci_nb_serve_alerts_deduplicated_total",
                "Alerts dropped as duplicates (same fingerprint, startsAt and status seen before).",
                counters.get("alerts_deduplicated", 0),
            )
            counter(
                "vcci_nb_serve_notifications_received_total",
                "Accepted webhook notifications.",
                counters.get("deliveries_received", 0),
            )
            counter(
                "vcci_nb_serve_alerts_truncated_total",
                "Alerts Alertmanager left out of notifications (truncatedAlerts).",
                counters.get("alerts_truncated", 0),
            )
            counter(
                "vcci_nb_serve_incidents_opened_total",
                "Incidents opened from alerts.",
                counters.get("incidents_opened", 0),
            )
            counter(
                "vcci_nb_serve_incidents_reopened_total",
                "Resolved incidents reopened because their group fired again.",
                counters.get("incidents_reopened", 0),
            )
            counter(
                "vcci_nb_serve_alert_groups_correlated_total",
                "Alert groups that joined an open incident of the same namespace instead of opening one.",
                counters.get("alert_groups_correlated", 0),
            )
            counter(
                "vcci_nb_serve_runs_skipped_total",
                "Bundles not queued because the incident already had them, or every notebook of them, "
                "queued, running or done.",
                counters.get("runs_skipped", 0),
            )
            counter(
                "vcci_nb_serve_notebooks_skipped_total",
                "Notebooks left out of queued bundles (run --skip) because another bundle of the incident runs them.",
                counters.get("notebooks_skipped", 0),
            )
            counter(
                "vcci_nb_serve_deliveries_failed_total",
                "Notifications set aside as failed after their last ingest attempt (vcci-nb deliveries list).",
                counters.get("deliveries_failed", 0),
            )
            counter(
                "vcci_nb_serve_resolves_without_record_total",
                "Resolved notifications for an incident whose record is gone (archived or moved); dropped.",
                counters.get("resolves_without_record", 0),
            )
            lines += [
                "# HELP vcci_nb_serve_deliveries_failed Notifications set aside as failed now (retry one with "
                "vcci-nb deliveries retry ID).",
                "# TYPE vcci_nb_serve_deliveries_failed gauge",
                f"vcci_nb_serve_deliveries_failed {store.failed_deliveries()}",
                "# HELP vcci_nb_serve_oldest_pending_seconds Age of the oldest notification not yet ingested.",
                "# TYPE vcci_nb_serve_oldest_pending_seconds gauge",
                f"vcci_nb_serve_oldest_pending_seconds {store.oldest_pending_age():.3f}",
            ]
            lines += ["# HELP vcci_nb_serve_queue_depth Work waiting.", "# TYPE vcci_nb_serve_queue_depth gauge"]
            states = store.job_states()
            lines.append(f'vcci_nb_serve_queue_depth{{queue="notifications"}} {store.pending_deliveries()}')
            lines.append(f'vcci_nb_serve_queue_depth{{queue="runs"}} {states.get("queued", 0)}')
            lines += ["# HELP vcci_nb_serve_runs Bundle runs by state.", "# TYPE vcci_nb_serve_runs gauge"]
            for state in ("queued", "running", "succeeded", "failed", "timeout", "interrupted", "refused"):
                lines.append(f'vcci_nb_serve_runs{{state="{state}"}} {states.get(state, 0)}')
        with self._lock:
            responses = dict(self._responses)
        lines += [
            "# HELP vcci_nb_serve_responses_total HTTP responses by code.",
            "# TYPE vcci_nb_serve_responses_total counter",
        ]
        for code in sorted(responses):
            lines.append(f'vcci_nb_serve_responses_total{{code="{code}"}} {responses[code]}')
        for hist in (self.ack_seconds, self.record_seconds, self.run_seconds):
            lines += hist.render()
        return "\n".join(lines) + "\n"

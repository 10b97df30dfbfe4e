"""End to end on the lab: a fault, a real Prometheus rule, the real Alertmanager, `serve`, the runner.

The lab's example_incident preset (seed scenario 1: the application's connections held up to its
limit, and vcci-api answering 5xx) makes Prometheus' VcciApiHighErrorRate rule (labels
severity=critical, bundle=triage) fire; the lab's Alertmanager posts to `vcci-nb serve` with its
bearer token; serve opens an incident and runs `vcci-nb run triage` for real; the record under
outputs/INC-…/ holds the executed notebooks and the database finding that names the exhausted
pool. (The error-spike alone is not named: the lab's rule fires on a 1-minute rate, and a triage
started seconds later reads the 5-minute panels before they move. Production rules use 5-minute
windows and `for: 2m`, so there the panels have moved by the time the alert fires.)
The times from the alert firing (its startsAt) to each step are printed, not asserted.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.alerts._support import ROOT, start_serve, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _missing_piece() -> str | None:
    try:
        from vcci_lab import FAULTS, Lab
    except ImportError:
        return "the lab (vcci_lab) is not there yet"
    if not hasattr(Lab, "set_webhook"):
        return "the lab cannot route its Alertmanager to a webhook yet (Lab.set_webhook)"
    from vcci_lab import PRESETS

    if "example_incident" not in PRESETS or not set(PRESETS["example_incident"]) <= set(FAULTS):
        return "the lab has no example_incident preset"
    try:
        import vcci_nb.runner  # noqa: F401
    except ImportError:
        return "the runner (vcci_nb.runner, `vcci-nb run`) is not there yet"
    if not (ROOT / "notebooks" / "01_triage.ipynb").exists():
        return "the triage notebooks are not there yet"
    return None


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.mark.timeout(1200)
def test_lab_fault_to_executed_triage_record(lab: Any, lab_env: dict[str, str], tmp_path: Path) -> None:
    missing = _missing_piece()
    if missing:
        pytest.skip(missing)
    root = tmp_path / "serve"
    root.mkdir()
    serve = start_serve(root, "--concurrency", "2", real_runner=True)
    try:
        lab.set_webhook(f"{serve.url}/alertmanager", serve.token)
        injected = time.time()
        with lab.fault("example_incident"):

            def triage_done() -> dict[str, Any] | None:
                for record in serve.records():
                    names = {a["labels"].get("alertname") for a in record["alerts"]}
                    if "VcciApiHighErrorRate" not in names:
                        continue
                    jobs = [j for j in serve.jobs() if j["incident_id"] == record["id"] and j["bundle"] == "triage"]
                    if jobs and jobs[0]["state"] not in ("queued", "running") and jobs[0]["announced"]:
                        return record
                return None

            record = wait_for(triage_done, timeout=900, interval=1.0, what="the alert-triggered triage record")
    finally:
        lab.set_webhook(None)
        serve.stop()

    folder = serve.outputs / record["id"]
    record = json.loads((folder / "record.json").read_text())
    [job] = [j for j in serve.jobs() if j["incident_id"] == record["id"] and j["bundle"] == "triage"]
    log = (serve.state_dir / "runs" / f"job-{job['id']}-attempt-{job['attempts']}.log").read_text()
    assert job["state"] == "succeeded", log[-3000:]
    assert record["source"] == "alertmanager" and record["severity"] == "P1"  # critical: the seed's P1
    executed = sorted(p.name for p in folder.glob("*.ipynb"))
    assert any("01_triage" in name for name in executed), executed
    assert any("03_investigate_metrics" in name for name in executed), executed
    assert (folder / "index.html").exists()
    keys = {f.get("key") for f in record["findings"]}
    assert "db.pool_exhaustion" in keys, sorted(k for k in keys if k)
    pool = next(f for f in record["findings"] if f["key"] == "db.pool_exhaustion")
    assert "vcci-api" in pool["summary"] or "vcci_app" in pool["summary"], pool

    alert = next(a for a in record["alerts"] if a["labels"]["alertname"] == "VcciApiHighErrorRate")
    fired = _ts(alert["startsAt"])
    with serve.db() as db:
        received = db.execute("SELECT min(received_at) FROM deliveries").fetchone()[0]
    figures = {
        "fault_injected_to_alert_firing_s": fired - injected,
        "firing_to_webhook_received_s": received - fired,
        "firing_to_incident_opened_s": _ts(record["created_at"]) - fired,
        "firing_to_triage_started_s": job["started_at"] - fired,
        "firing_to_record_complete_s": job["finished_at"] - fired,
        "triage_run_s": job["finished_at"] - job["started_at"],
        "notebooks": len(executed),
        "findings": len(record["findings"]),
    }
    print("\nalert → record timings:", json.dumps(figures, indent=2))
    print("runs:", [(j["bundle"], j["incident_id"], j["state"]) for j in serve.jobs()])
    (tmp_path / "e2e-timings.json").write_text(json.dumps(figures, indent=2))

"""A stand-in for `python -m vcci_nb run` in the receiver's tests: a real process that leaves marks.

Usage (as the receiver calls the runner): fake_runner.py BUNDLE --incident ID [-p k=v ...] [--profile P]
It writes markers/start-<incident>-<bundle>-<pid>.json when it starts and done-….json when it
finishes (after FAKE_RUNNER_SLEEP seconds), then exits with FAKE_RUNNER_EXIT, or with 1 when
the bundle is one of FAKE_RUNNER_FAIL_BUNDLES (comma-separated). The receiver's --skip and
--skip-reason arguments are kept in the markers' argv.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    argv = sys.argv[1:]
    bundle = argv[0]
    incident = argv[argv.index("--incident") + 1]
    markers = Path(os.environ["FAKE_RUNNER_MARKERS"])
    info = {
        "argv": argv,
        "bundle": bundle,
        "incident": incident,
        "pid": os.getpid(),
        "attempt": os.environ.get("VCCI_NB_SERVE_ATTEMPT"),
        "outputs": os.environ.get("VCCI_NB_OUTPUTS"),
        "sees_serve_token": any(k.startswith("VCCI_NB_SERVE_TOKEN") for k in os.environ),
        "started": time.time(),
    }
    name = f"{incident}-{bundle}-{os.getpid()}.json"
    record = None
    if os.environ.get("FAKE_RUNNER_NOTEBOOK"):  # link a notebook in the record, as the runner does
        from vcci_nb.record import IncidentRecord, utc_iso

        record = IncidentRecord.load(incident)
        entry = {"name": f"01_{bundle}", "status": "running", "started_at": utc_iso()}
        record.upsert_notebook(entry)
    (markers / f"start-{name}").write_text(json.dumps(info))
    time.sleep(float(os.environ.get("FAKE_RUNNER_SLEEP", "0")))
    if record is not None:
        record.upsert_notebook({**entry, "status": "succeeded", "finished_at": utc_iso()})
    info["finished"] = time.time()
    (markers / f"done-{name}").write_text(json.dumps(info))
    if bundle in os.environ.get("FAKE_RUNNER_FAIL_BUNDLES", "").split(","):
        return 1
    return int(os.environ.get("FAKE_RUNNER_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())

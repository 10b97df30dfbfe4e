"""`vcci-nb serve --reminder-interval` reminds the commander of an overdue update, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.notify.conftest import Receiver
from vcci_nb.record import IncidentRecord


def test_serve_sends_one_reminder_per_missed_update(
    notify_env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    outputs = Path(notify_env["VCCI_NB_OUTPUTS"])
    late = IncidentRecord.open("P1", "API returning 500 errors", "alice", now=datetime.now(UTC) - timedelta(minutes=45))
    IncidentRecord.open("P1", "Just opened", "bob")  # its first update is not due yet
    cmd = [
        sys.executable,
        "-m",
        "vcci_nb",
        "serve",
        "--no-auth",
        "--port",
        "0",
        "--state-dir",
        str(tmp_path / "state"),
        "--outputs",
        str(outputs),
        "--reminder-interval",
        "0.3",
        "--send-reminders",
    ]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=log, text=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline(), (tmp_path / "serve.log").read_text()
        deadline = time.monotonic() + 60
        while not late.data["notifications"] and time.monotonic() < deadline:
            time.sleep(0.1)  # sent, then recorded
        time.sleep(1.5)  # several more reminder rounds
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        log.close()
    calls = receiver.calls("/slack/webhook/")
    assert len(calls) == 1, (tmp_path / "serve.log").read_text()
    text = calls[0].body["text"]
    assert f"*{late.id}* (P1): the stakeholder update was due at" in text and "alice, please send one" in text
    (reminder,) = late.data["notifications"]
    assert reminder["template"] == "reminder" and reminder["status"] == "sent" and reminder["actor"] == "vcci-nb serve"

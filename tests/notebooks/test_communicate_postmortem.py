"""02_communicate, 07_postmortem and the incident commands that tell people, on records with known times.

No lab is needed: the messages go to a real HTTP receiver on 127.0.0.1 (standing in for Slack's
incoming webhook, configured through the profile's ``VCCI_SLACK_WEBHOOK_URL``), and the
postmortem runs with no Prometheus, which the report must say instead of inventing an impact.
The webhook URL carries a canary secret that must never show up in a notebook or the record.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _nbtools import errors, output_text, run_notebook

from vcci_nb.cli import main as cli
from vcci_nb.record import IncidentRecord

CANARY = "canary-slack-hook-8e1f0c2d"
HOOK_PATH = f"/services/T0LAB/B0LAB/{CANARY}"


@dataclass
class Hook:
    """A Slack incoming webhook on 127.0.0.1: checks the documented shape, answers ``ok``, remembers."""

    url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != HOOK_PATH or "application/json" not in (self.headers.get("Content-Type") or ""):
                state.other.append(f"{self.command} {self.path}")
                self.send_response(404)
                self.end_headers()
                return
            payload = json.loads(body)
            state.posts.append(payload)
            ok = isinstance(payload.get("text"), str) and payload["text"].strip()
            self.send_response(200 if ok else 400)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if ok else b"no_text")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}{HOOK_PATH}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def env(tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The lab profile with outputs in a temp folder and Slack pointing at the local receiver."""
    for name in ("VCCI_NB_INCIDENT_ID", "PROMETHEUS_URL", "VCCI_NB_EVIDENCE_DIR", "VCCI_NB_EVIDENCE_FROM"):
        monkeypatch.delenv(name, raising=False)
    values = {
        "VCCI_NB_OUTPUTS": str(tmp_path / "outputs"),
        "VCCI_NB_PROFILE": "lab",
        "VCCI_SLACK_WEBHOOK_URL": hook.url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _open(outputs: str, severity: str, minutes_ago: float, title: str = "API returning 500 errors") -> IncidentRecord:
    return IncidentRecord.open(
        severity, title, "alice", outputs=outputs, now=datetime.now(UTC) - timedelta(minutes=minutes_ago)
    )


def _run(rel: str, tmp_path: Path, env: dict[str, str], name: str, **parameters: Any) -> tuple[dict[str, Any], str]:
    nb = run_notebook(rel, tmp_path / f"{name}.ipynb", parameters, env=env)
    assert not errors(nb), errors(nb)
    return nb, output_text(nb)


def _section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_communicate_renders_from_the_record_and_sends_only_when_both_flags_allow(
    tmp_path: Path, env: dict[str, str], hook: Hook
) -> None:
    record = _open(env["VCCI_NB_OUTPUTS"], "P0", minutes_ago=45)
    record.set_status("identified", note="connection pool exhausted")

    # Defaults: a dry run. The message is rendered from the record, the clock is read, nothing leaves.
    _, text = _run("02_communicate.ipynb", tmp_path, env, "dry", incident_id=record.id, channels="slack")
    message = _section(text, "── slack (slack_webhook)", "slack ")
    assert record.id in message and "P0" in message and "Identified" in message
    assert "connection pool exhausted" in message  # the impact line comes from the record's status note
    assert "Next update:* 30 minutes" in message  # the cadence chosen for P0/P1
    status = _section(text, "Last update sent:", "──")
    assert "none yet" in status and "OVERDUE" in status  # first message was due 10 min after detection
    manager = next(ln for ln in status.splitlines() if "Engineering Manager" in ln)
    cto = next(ln for ln in status.splitlines() if "CTO" in ln)
    assert "DUE since" in manager and "P0 lasting more than 30 minutes" in manager
    assert "not due" in cto  # P0 for 45 min: not yet the CTO's hour
    assert "DRY RUN" in text and "nothing was sent" in text
    assert hook.posts == [] and hook.other == []
    notes = record.data["notifications"]
    assert [(n["channel"], n["status"], n["template"]) for n in notes] == [("slack", "dry_run", "initial")]

    # send=True alone is still a dry run: dry_run must be turned off as well.
    _, text = _run("02_communicate.ipynb", tmp_path, env, "half", incident_id=record.id, channels="slack", send=True)
    assert "Dry run (dry_run=True)" in text
    assert hook.posts == []

    # Both: exactly one post, with the rendered text, recorded as sent, and the clock restarts.
    _, text = _run(
        "02_communicate.ipynb",
        tmp_path,
        env,
        "sent",
        incident_id=record.id,
        channels="slack",
        template="update",
        message="pool raised to 40; error rate falling",
        send=True,
        dry_run=False,
    )
    assert len(hook.posts) == 1 and hook.other == []
    posted = hook.posts[0]["text"]
    assert record.id in posted and "P0" in posted and "pool raised to 40; error rate falling" in posted
    assert "SENT" in text and "Sent 1 of 1" in text
    sent = [n for n in record.data["notifications"] if n["status"] == "sent"]
    assert [(n["channel"], n["template"]) for n in sent] == [("slack", "update")]
    after = text.rsplit("Last update sent:", 1)[1]
    assert not after.lstrip().startswith("none yet")
    assert "OVERDUE" not in after.split("Escalations:", 1)[0]  # just sent: next one due in 30 minutes

    # The webhook URL is the secret: it is in no notebook and not in the record.
    for path in [*tmp_path.glob("*.ipynb"), record.folder / "record.json"]:
        assert CANARY not in path.read_text(), path


def test_communicate_without_an_incident_opens_nothing_and_says_what_to_pass(
    tmp_path: Path, env: dict[str, str], hook: Hook
) -> None:
    _, text = _run("02_communicate.ipynb", tmp_path, env, "none")
    assert "No incident given" in text and "incident_id=INC-YYYYMMDD-NNN" in text
    outputs = Path(env["VCCI_NB_OUTPUTS"])
    assert not outputs.exists() or not any(p.name.startswith("INC-") for p in outputs.iterdir())
    assert hook.posts == []


def test_postmortem_notebook_writes_the_report_with_the_right_duration(tmp_path: Path, env: dict[str, str]) -> None:
    start = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)
    record = IncidentRecord.open("P1", "API returning 500 errors", "alice", outputs=env["VCCI_NB_OUTPUTS"], now=start)
    record.add_findings(
        [{"key": "db.pool_exhaustion", "severity": "critical", "summary": "Connection pool exhausted (20/20)"}],
        notebook="01_triage",
    )

    def resolve(d: dict[str, Any]) -> None:
        for minutes, status, stamp in ((12, "identified", "identified_at"), (73, "resolved", "resolved_at")):
            at = (start + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
            d["status"], d[stamp] = status, at
            d["status_history"].append({"status": status, "at": at, "actor": "alice", "note": ""})
            d["timeline"].append(
                {"at": at, "kind": "status", "actor": "alice", "summary": f"Status → {status}", "data": {}}
            )

    record.update(resolve)

    _, text = _run("07_postmortem.ipynb", tmp_path, env, "pm", incident_id=record.id)
    md = (record.folder / "postmortem.md").read_text()
    assert (record.folder / "postmortem.html").exists()
    assert "**Duration**: 1 h 13 min" in md and "**Severity**: P1" in md
    assert "**Duration**: 1 h 13 min" in text  # the notebook shows the summary it wrote
    assert "Impact not measured" in text and "no Prometheus URL" in text  # not an invented figure
    assert "Connection pool exhausted" in _section(text, "## Root Cause Analysis", "## What Went Well")
    assert "To complete:" in text and "Lessons Learned" in text.split("To complete:", 1)[1]
    assert str(record.folder / "postmortem.md") in text
    timeline = _section(text, "## Timeline", "## Measured Response")
    assert timeline.index("+0:12:00") < timeline.index("+1:13:00")


def test_postmortem_without_an_incident_drafts_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    _, text = _run("07_postmortem.ipynb", tmp_path, env, "pm_none")
    assert "No incident given: nothing is drafted" in text
    assert not list(tmp_path.rglob("postmortem.md"))


def test_incident_status_command(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    record = _open(env["VCCI_NB_OUTPUTS"], "P1", minutes_ago=130)
    assert cli(["incident", "status", record.id]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{record.id}  P1  investigating")
    assert "OVERDUE by 2 hours" in out  # opened 130 min ago, first message due after 10
    manager = next(ln for ln in out.splitlines() if "Engineering Manager" in ln)
    assert "DUE since" in manager and f"vcci-nb escalate {record.id} --to manager" in manager
    assert cli(["incident", "status", record.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["next_update"]["overdue"] is True
    assert [e["target"] for e in data["escalations"] if e["due"]] == ["manager"]
    assert cli(["incident", "status", "INC-20990101-001"]) == 2
    assert "INC-20990101-001" in capsys.readouterr().err


def test_incident_update_notifies_in_the_same_step(
    env: dict[str, str], hook: Hook, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _open(env["VCCI_NB_OUTPUTS"], "P2", minutes_ago=20)
    args = ["incident", "update", record.id, "--status", "mitigating", "--note", "cache flushed", "--notify", "slack"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "update → slack" in out and "dry_run" in out and "Dry run" in out
    assert hook.posts == []
    assert record.data["status"] == "mitigating"

    assert (
        cli(
            [
                "incident",
                "update",
                record.id,
                "--status",
                "resolved",
                "--note",
                "all green",
                "--notify",
                "all",
                "--send",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "resolution → slack" in out and "sent" in out
    assert "statuspage" in out and "skipped" in out  # customers hear only of P0/P1
    assert len(hook.posts) == 1
    assert record.id in hook.posts[0]["text"] and "all green" in hook.posts[0]["text"]
    data = record.data
    assert data["status"] == "resolved"
    assert [(n["template"], n["status"]) for n in data["notifications"]] == [
        ("update", "dry_run"),
        ("resolution", "sent"),
    ]
    assert cli(["incident", "update", record.id, "--send"]) == 2
    assert "--notify" in capsys.readouterr().err

"""The incident record: IDs, locked atomic validated writes, the CLI, a full disk, redaction."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from vcci_nb.errors import RecordError
from vcci_nb.record import SCHEMA_PATH, IncidentRecord, list_records
from vcci_nb.redact import register_secret

CLI = [sys.executable, "-m", "vcci_nb"]


def _cli(args: list[str], outputs: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "VCCI_NB_OUTPUTS": str(outputs), **env}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full_env, timeout=120)


def _valid(path: Path) -> dict:
    data = json.loads(path.read_text())
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    return data


def test_open_allocates_seed_format_ids_per_utc_day(tmp_path: Path) -> None:
    day = datetime(2026, 1, 6, 23, 59, tzinfo=UTC)
    a = IncidentRecord.open("P1", "API 5xx spike", "alice", outputs=tmp_path, now=day)
    b = IncidentRecord.open("P2", "slow queries", outputs=tmp_path, now=day)
    c = IncidentRecord.open("P3", "next day", outputs=tmp_path, now=datetime(2026, 1, 7, 0, 1, tzinfo=UTC))
    assert (a.id, b.id, c.id) == ("INC-20260106-001", "INC-20260106-002", "INC-20260107-001")
    data = _valid(a.path)
    assert data["severity"] == "P1" and data["commander"] == "alice" and data["status"] == "investigating"
    assert data["timeline"][0]["kind"] == "status" and data["timeline"][0]["actor"]


def _open_at_barrier(outputs: str, barrier: Any, queue: Any) -> None:
    barrier.wait()
    queue.put(IncidentRecord.open("P1", "storm", outputs=outputs).id)


def test_twenty_parallel_opens_get_twenty_distinct_ids(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(20), ctx.Queue()
    procs = [ctx.Process(target=_open_at_barrier, args=(str(tmp_path), barrier, queue)) for _ in range(20)]
    for p in procs:
        p.start()
    ids = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(set(ids)) == 20
    assert all(re.fullmatch(r"INC-\d{8}-\d{3}", i) for i in ids)
    for i in ids:
        _valid(tmp_path / i / "record.json")


def test_parallel_cli_opens_get_distinct_ids(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [*CLI, "incident", "open", "--severity", "P1", "--title", f"storm {i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "VCCI_NB_OUTPUTS": str(tmp_path)},
        )
        for i in range(5)
    ]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        ids.append(out.strip())
    assert len(set(ids)) == 5


def _add_events(args: tuple[str, str, int]) -> None:
    outputs, incident, worker = args
    record = IncidentRecord.load(incident, outputs)
    for n in range(15):
        record.add_event("note", f"worker {worker} note {n}", actor=f"w{worker}")


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    record = IncidentRecord.open("P1", "busy", outputs=tmp_path)
    with ProcessPoolExecutor(max_workers=6) as pool:
        list(pool.map(_add_events, [(str(tmp_path), record.id, w) for w in range(6)]))
    data = _valid(record.path)
    notes = [e["summary"] for e in data["timeline"] if e["kind"] == "note"]
    assert len(notes) == 90
    assert {f"worker {w} note {n}" for w in range(6) for n in range(15)} == set(notes)
    assert not list(record.folder.glob(".*.tmp"))


def test_invalid_change_is_refused_and_record_unchanged(tmp_path: Path) -> None:
    record = IncidentRecord.open("P1", "x", outputs=tmp_path)
    before = record.path.read_bytes()
    with pytest.raises(RecordError, match="severity"):
        record.update(lambda d: d.__setitem__("severity", "P9"))
    with pytest.raises(RecordError, match="kind"):
        record.add_event("gossip", "not a kind")
    with pytest.raises(RecordError, match="Severity"):
        IncidentRecord.open("SEV1", "bad", outputs=tmp_path)
    assert record.path.read_bytes() == before


def test_bad_ids_are_refused(tmp_path: Path) -> None:
    for bad in ("../etc", "INC-2026-1", "inc-20260106-001"):
        with pytest.raises(RecordError, match="not an incident ID"):
            IncidentRecord.load(bad, tmp_path)
    with pytest.raises(RecordError, match="No incident INC-20260106-009"):
        IncidentRecord.load("INC-20260106-009", tmp_path)


def test_lifecycle_through_the_cli(tmp_path: Path) -> None:
    opened = _cli(["incident", "open", "--severity", "P1", "--title", "DB pool", "--commander", "bob"], tmp_path)
    assert opened.returncode == 0, opened.stderr
    incident = opened.stdout.strip()
    for status in ("identified", "mitigating", "monitoring"):
        r = _cli(["incident", "update", incident, "--status", status, "--note", f"now {status}"], tmp_path)
        assert r.returncode == 0, r.stderr
    listed = _cli(["incident", "list", "--open"], tmp_path)
    assert incident in listed.stdout
    closed = _cli(["incident", "close", incident, "--resolution", "pool raised to 50"], tmp_path)
    assert closed.returncode == 0, closed.stderr
    assert incident not in _cli(["incident", "list", "--open"], tmp_path).stdout
    assert incident in _cli(["incident", "list"], tmp_path).stdout
    shown = _cli(["incident", "show", incident], tmp_path).stdout
    assert "CLOSED" in shown and "pool raised to 50" in shown and "monitoring → " not in shown
    data = _valid(tmp_path / incident / "record.json")
    assert [h["status"] for h in data["status_history"]] == [
        "investigating",
        "identified",
        "mitigating",
        "monitoring",
        "closed",
    ]
    assert data["identified_at"] and data["mitigated_at"] and data["resolved_at"] and data["closed_at"]
    again = _cli(["incident", "update", incident, "--status", "investigating"], tmp_path)
    assert again.returncode == 2 and "closed" in again.stderr
    missing = _cli(["incident", "show", "INC-20200101-001"], tmp_path)
    assert missing.returncode == 2 and "vcci-nb incident list" in missing.stderr


def test_typed_entries_land_in_timeline_and_index(tmp_path: Path) -> None:
    record = IncidentRecord.open("P0", "everything down", outputs=tmp_path)
    alert = {"labels": {"alertname": "HighErrorRate", "severity": "critical"}, "annotations": {"summary": "5xx"}}
    record.add_alert(alert)
    record.add_findings(
        [
            {"key": "db.pool", "severity": "critical", "summary": "pool exhausted"},
            {"key": "cache.hit", "severity": "low", "summary": "hit rate dipped"},
        ],
        notebook="03_investigate_database",
    )
    record.add_action({"action": "scale deployment vcci-api to 6", "result": "ok", "actor": "carol"})
    record.add_notification({"channel": "slack", "summary": "P0 posted"})
    record.add_escalation({"to": "engineering manager", "reason": "P0 over 15 min"})
    data = _valid(record.path)
    kinds = [e["kind"] for e in data["timeline"]]
    for kind in ("alert", "finding", "action", "notification", "escalation"):
        assert kind in kinds
    assert len(data["alerts"]) == len(data["actions"]) == len(data["notifications"]) == len(data["escalations"]) == 1
    index = (record.folder / "index.html").read_text()
    assert index.index("pool exhausted") < index.index("hit rate dipped")  # the more severe first
    assert "pool exhausted" in index and "P0" in index and "HighErrorRate" in index


def test_index_shows_a_finding_raised_by_several_notebooks_once(tmp_path: Path) -> None:
    record = IncidentRecord.open("P1", "pool exhausted", outputs=tmp_path)
    same = {"key": "db.pool_exhaustion", "severity": "critical", "summary": "vcci_app holds 20 of 20 connections"}
    for notebook in ("01_triage", "03_investigate_database", "03_decision_tree"):
        record.add_findings([dict(same)], notebook=notebook)
    assert len(record.data["findings"]) == 3  # the record keeps each notebook's finding
    index = (record.folder / "index.html").read_text()
    assert index.count("vcci_app holds 20 of 20 connections</b>") == 1
    assert "Cause (1)" in index
    assert "seen in 01_triage, 03_investigate_database, 03_decision_tree" in index


def test_secrets_never_reach_the_record(tmp_path: Path) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    register_secret(canary)
    record = IncidentRecord.open("P1", "leaky", outputs=tmp_path)
    record.add_event("note", f"connected with postgresql://diag:{canary}x@db/vcci and token {canary}")
    record.add_action({"action": "restart", "data": {canary: canary}})
    for path in record.folder.iterdir():
        assert canary not in path.read_text(errors="replace"), path


def test_list_skips_a_damaged_record(tmp_path: Path) -> None:
    good = IncidentRecord.open("P2", "good", outputs=tmp_path)
    bad = IncidentRecord.open("P2", "bad", outputs=tmp_path)
    bad.path.write_text("{not json")
    assert [r["id"] for r in list_records(tmp_path)] == [good.id]
    with pytest.raises(RecordError, match="not valid JSON"):
        bad.add_event("note", "x")


@pytest.fixture
def small_fs(tmp_path: Path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_keeps_previous_record_and_says_so(small_fs: Path) -> None:
    record = IncidentRecord.open("P1", "disk", outputs=small_fs)
    record.add_event("note", "before the disk filled")
    before = record.path.read_bytes()
    filler = small_fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    with pytest.raises(RecordError, match="No space left") as info:
        record.add_event("note", "y" * 20000)
    assert "previous version is intact" in str(info.value)
    assert record.path.read_bytes() == before
    _valid(record.path)
    assert not list(record.folder.glob(".*.tmp"))
    r = _cli(["incident", "update", record.id, "--note", "z" * 20000], small_fs)
    assert r.returncode == 2 and "No space left" in r.stderr and "Traceback" not in r.stderr
    assert record.path.read_bytes() == before
    # and opening a new incident on the full disk fails cleanly, leaving no half-made folder
    with pytest.raises(RecordError):
        IncidentRecord.open("P1", "t" * 20000, outputs=small_fs)
    assert [p.name for p in small_fs.iterdir() if p.name.startswith("INC-")] == [record.id]


def test_show_lists_the_alert_groups_an_incident_holds(tmp_path: Path) -> None:
    record = IncidentRecord.open("P1", "pool exhausted", outputs=tmp_path)
    groups = [
        {"group_key": "{}:{alertname=\"PoolLow\"}", "name": "PoolLow", "role": "opened", "status": "resolved",
         "joined_at": "2026-11-28T03:00:00Z", "reason": "first alert of this group"},
        {"group_key": "{}:{alertname=\"HighErrors\"}", "name": "HighErrors", "role": "joined", "status": "firing",
         "joined_at": "2026-11-28T03:00:04Z", "reason": "same namespace vcci-production, incident opened 4 s earlier"},
    ]  # fmt: skip
    record.update(lambda d: d.__setitem__("alert_groups", groups))
    shown = _cli(["incident", "show", record.id], tmp_path).stdout
    assert "Alert groups (2, 1 firing):" in shown
    assert "resolved  opened  PoolLow  since 2026-11-28T03:00:00Z" in shown
    assert "firing    joined  HighErrors  since 2026-11-28T03:00:04Z  — same namespace vcci-production" in shown

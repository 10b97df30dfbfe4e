"""SIGKILL the receiver in the middle of things, start it again: nothing lost, nothing finished twice."""

from __future__ import annotations

import os
from typing import Any

from tests.alerts._support import Serve, alert, notification, wait_for


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _kill_during_run(serve: Serve) -> dict[str, Any]:
    assert serve.post(notification([alert()])).status_code == 200
    [start] = wait_for(lambda: serve.runs("start"), what="the run to start")
    serve.kill()
    # The run dies with the receiver (it must not finish behind our back and then run again).
    wait_for(lambda: not _alive(start["pid"]), timeout=10, what="the orphaned run to die")
    return start


def test_sigkill_during_a_run_requeues_it_and_it_completes_once(make_serve: Any) -> None:
    serve = make_serve("--concurrency", "1", sleep=4.0, env_extra={"FAKE_RUNNER_NOTEBOOK": "1"})
    first = _kill_during_run(serve)
    assert serve.runs("done") == []
    serve.start()
    wait_for(lambda: serve.settled() and serve.runs("done"), timeout=60, what="the re-queued run")
    starts = serve.runs("start")
    done = serve.runs("done")
    assert len(starts) == 2 and len(done) == 1
    [job] = serve.jobs()
    assert first["attempt"] == f"{job['id']}-1"
    assert done[0]["attempt"] == f"{job['id']}-2"
    assert (job["state"], job["attempts"]) == ("succeeded", 2)
    with serve.db() as db:
        outcomes = [r[0] for r in db.execute("SELECT outcome FROM attempts ORDER BY attempt")]
    assert outcomes == ["interrupted", "succeeded"]
    [record] = wait_for(
        lambda: [r for r in serve.records() if any("succeeded" in e["summary"] for e in r["timeline"])],
        what="the run's result in the record",
    )
    summaries = [e["summary"] for e in record["timeline"] if e["kind"] == "run"]
    assert any("was interrupted when the receiver stopped; queued again" in s for s in summaries), summaries
    assert sum("succeeded" in s for s in summaries) == 1
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [("01_triage", "succeeded")]


def test_sigkill_with_no_attempts_left_marks_the_run_interrupted(make_serve: Any) -> None:
    serve = make_serve("--concurrency", "1", "--max-attempts", "1", sleep=4.0, env_extra={"FAKE_RUNNER_NOTEBOOK": "1"})
    _kill_during_run(serve)
    serve.start()
    wait_for(serve.settled, what="recovery")
    [job] = serve.jobs()
    assert job["state"] == "interrupted"
    assert serve.runs("done") == []
    assert serve.metrics()['vcci_nb_serve_runs{state="interrupted"}'] == 1
    [record] = serve.records()
    assert any("not retried (1 of 1 attempts used)" in e["summary"] for e in record["timeline"])
    [notebook] = record["notebooks"]  # the runner died mid-notebook; the record says so
    assert notebook["status"] == "failed" and notebook["error"].startswith("interrupted"), notebook


def test_sigkill_right_after_acknowledging_loses_no_alert(make_serve: Any) -> None:
    serve = make_serve("--concurrency", "2", sleep=0.2)
    total, groups, namespaces = 300, 10, 2
    for i in range(total):
        g = i % groups
        ns = f"vcci-ns{g % namespaces}"
        body = notification(
            [alert(name=f"Kill{g}", fingerprint=f"{i:016x}", namespace=ns)],
            group_key=f'{{}}:{{alertname="Kill{g}", namespace="{ns}"}}',
        )
        assert serve.post(body).status_code == 200
    serve.kill()  # every one of them was acknowledged, most not yet written into an incident
    serve.start()
    wait_for(lambda: serve.settled() and len(serve.runs()) >= namespaces, timeout=120, what="recovery")
    records = serve.records()
    # The 10 groups fall in 2 namespaces: one incident each, whatever the kill interrupted.
    assert len(records) == namespaces
    assert sorted(len(r["alert_groups"]) for r in records) == [groups // namespaces] * namespaces
    fingerprints = [a["fingerprint"] for r in records for a in r["alerts"]]
    assert sorted(fingerprints) == [f"{i:016x}" for i in range(total)]  # all there, none twice
    done = serve.runs()
    assert sorted(r["incident"] for r in done) == sorted(r["id"] for r in records)  # one finished run each


def test_a_second_receiver_on_the_same_state_is_refused(make_serve: Any, tmp_path: Any) -> None:
    serve = make_serve()
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "vcci_nb", "serve", "--port", "0", "--state-dir", str(serve.state_dir)],
        env=serve.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "another vcci-nb serve is using" in proc.stderr
    assert os.path.exists(serve.state_dir / "serve.sqlite3")

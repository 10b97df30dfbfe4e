"""Overlapping bundles: a notebook one bundle of the incident already runs is not run again by another.

`investigate` is `triage` without `01_triage`, and the scenario bundles share the 03_ notebooks,
so a fault whose alert groups name different bundles ran most notebooks twice in one incident.
A real `vcci-nb serve` gets real HTTP posts; runs go to the fake runner (which keeps the
`--skip` arguments it was given), except in the test that checks the runner's own timeline entry.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import nbformat
import yaml

from tests.alerts._support import notebooks_run, skipped, wait_for
from tests.alerts.test_correlation import _settle, _summaries, group
from vcci_nb.runner.bundles import load_bundles

BUNDLES = load_bundles()
TRIAGE = [Path(nb).stem for nb in BUNDLES["triage"].notebooks]
INVESTIGATE = [Path(nb).stem for nb in BUNDLES["investigate"].notebooks]
POOL = [Path(nb).stem for nb in BUNDLES["connection_pool_exhausted"].notebooks]


def _events(record: dict[str, Any], start: str) -> list[dict[str, Any]]:
    return [e for e in record["timeline"] if e["summary"].startswith(start)]


def test_triage_queued_first_then_investigate_joins_investigate_is_not_queued(make_serve: Any) -> None:
    # Runs take a while, so triage is still queued or running when investigate's group joins.
    serve = make_serve("--concurrency", "1", sleep=1.5)
    assert serve.post(group("HighErrorRate", bundle="triage")).status_code == 200
    wait_for(serve.records, what="the incident")
    assert serve.post(group("VcciApiHighLatency", bundle="investigate")).status_code == 200
    runs = _settle(serve, 1)

    [record] = serve.records()
    assert [r["bundle"] for r in serve.runs("start")] == ["triage"]
    assert skipped(runs[0]["argv"]) == [] and "--skip-reason" not in runs[0]["argv"]
    assert sorted(notebooks_run(runs, record["id"])) == sorted(TRIAGE)
    [event] = _events(record, "Bundle 'investigate' not queued")
    assert event["summary"] == (
        "Bundle 'investigate' not queued for alert group VcciApiHighLatency: "
        "its 8 notebooks already run in bundle 'triage' of this incident"
    )
    assert event["data"]["notebooks"] == INVESTIGATE and event["data"]["covered_by"] == ["triage"]
    assert [(j["bundle"], j["skip"]) for j in serve.jobs()] == [("triage", "[]")]
    metrics = serve.metrics()
    assert metrics["vcci_nb_serve_runs_skipped_total"] == 1
    assert metrics["vcci_nb_serve_notebooks_skipped_total"] == 0


def test_investigate_first_then_triage_runs_only_01_triage_and_a_third_bundle_skips_what_ran(
    make_serve: Any,
) -> None:
    serve = make_serve()
    assert serve.post(group("VcciApiHighLatency", bundle="investigate")).status_code == 200
    _settle(serve, 1)  # investigate succeeded: within the window it still covers its notebooks
    assert serve.post(group("HighErrorRate", bundle="triage")).status_code == 200
    _settle(serve, 2)
    # The pool's bundle: its two 03_ notebooks ran in investigate (triage left them out).
    assert serve.post(group("DatabaseConnectionsHigh", bundle="connection_pool_exhausted")).status_code == 200
    runs = _settle(serve, 3)

    [record] = serve.records()
    by_bundle = {r["bundle"]: r["argv"] for r in runs}
    assert sorted(by_bundle) == ["connection_pool_exhausted", "investigate", "triage"]
    assert skipped(by_bundle["investigate"]) == []
    assert skipped(by_bundle["triage"]) == INVESTIGATE
    reason = by_bundle["triage"][by_bundle["triage"].index("--skip-reason") + 1]
    assert reason == "already run in bundle 'investigate' of this incident"
    assert skipped(by_bundle["connection_pool_exhausted"]) == ["03_investigate_database", "03_investigate_metrics"]
    pool_reason = by_bundle["connection_pool_exhausted"]
    assert pool_reason[pool_reason.index("--skip-reason") + 1] == reason  # investigate ran them, not triage
    # Every notebook of the three bundles ran once in the incident.
    ran = notebooks_run(runs, record["id"])
    assert sorted(ran) == sorted(set(TRIAGE) | set(POOL))

    jobs = {j["bundle"]: j for j in serve.jobs()}
    assert json.loads(jobs["triage"]["skip"]) == INVESTIGATE
    assert jobs["triage"]["skip_reason"] == reason
    [queued] = _events(record, "Bundle 'triage' queued")
    assert queued["summary"] == (
        "Bundle 'triage' queued for alert group HighErrorRate (route rule-names-bundle) without 8 of its 9 notebooks, "
        f"already run in bundle 'investigate' of this incident: {', '.join(INVESTIGATE)}"
    )
    assert queued["data"]["skip"] == INVESTIGATE
    started = [s for s in _summaries(record, "run") if s.startswith("Started bundle 'triage'")]
    assert started == ["Started bundle 'triage' (attempt 1, route rule-names-bundle; without 8 notebooks)"]
    metrics = serve.metrics()
    assert metrics["vcci_nb_serve_runs_skipped_total"] == 0
    assert metrics["vcci_nb_serve_notebooks_skipped_total"] == 8 + 2


def test_a_failed_bundle_covers_nothing_its_notebooks_run_again(make_serve: Any) -> None:
    serve = make_serve(env_extra={"FAKE_RUNNER_FAIL_BUNDLES": "investigate"})
    assert serve.post(group("VcciApiHighLatency", bundle="investigate")).status_code == 200
    _settle(serve, 1)
    assert serve.post(group("HighErrorRate", bundle="triage")).status_code == 200
    _settle(serve, 2)
    assert serve.post(group("DatabaseConnectionsHigh", bundle="connection_pool_exhausted")).status_code == 200
    runs = _settle(serve, 3)

    [record] = serve.records()
    states = {j["bundle"]: j["state"] for j in serve.jobs()}
    assert states == {"investigate": "failed", "triage": "succeeded", "connection_pool_exhausted": "succeeded"}
    by_bundle = {r["bundle"]: r["argv"] for r in runs}
    assert skipped(by_bundle["triage"]) == []  # investigate failed: triage runs all 9
    assert "--skip-reason" not in by_bundle["triage"]
    # The pool's 03_ notebooks: covered by triage, which succeeded, not by the failed investigate.
    pool = by_bundle["connection_pool_exhausted"]
    assert skipped(pool) == ["03_investigate_database", "03_investigate_metrics"]
    assert pool[pool.index("--skip-reason") + 1] == "already run in bundle 'triage' of this incident"
    assert not _events(record, "Bundle 'triage' queued for alert group HighErrorRate (route rule-names-bundle) without")
    assert serve.metrics()["vcci_nb_serve_notebooks_skipped_total"] == 2


def _notebook(path: Path, text: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('incident_id = ""  # the incident this run belongs to')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(f"print({text!r})")]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, path)


def test_the_real_runner_leaves_out_the_shared_notebooks_and_says_why(make_serve: Any, tmp_path: Path) -> None:
    """Two bundles sharing two of their three notebooks, run by the real runner: the second runs one."""
    project = tmp_path / "proj"
    (project / "notebooks").mkdir(parents=True)
    (project / "parameters").mkdir()
    for stem in ("01_alpha", "02_beta", "03_gamma", "04_delta"):
        _notebook(project / "notebooks" / f"{stem}.ipynb", f"ran {stem}")
    bundles = {
        "version": 1,
        "bundles": {
            "first": {"notebooks": [f"notebooks/{s}.ipynb" for s in ("01_alpha", "02_beta", "03_gamma")]},
            "second": {"notebooks": [f"notebooks/{s}.ipynb" for s in ("02_beta", "03_gamma", "04_delta")]},
        },
    }
    (project / "parameters" / "bundles.yaml").write_text(yaml.safe_dump(bundles))
    routes = "routes:\n  - name: by-label\n    match_re: {bundle: '.+'}\n    bundle_from_label: bundle\n"
    serve = make_serve(
        root=tmp_path / "serve",
        routes=routes,
        real_runner=True,
        env_extra={"VCCI_NB_BUNDLES": str(project / "parameters" / "bundles.yaml")},
    )
    assert serve.post(group("HighErrorRate", bundle="first")).status_code == 200
    wait_for(lambda: serve.settled() and serve.jobs(), timeout=180, what="the first bundle")
    assert serve.post(group("VcciApiHighLatency", bundle="second")).status_code == 200
    wait_for(lambda: serve.settled() and len(serve.jobs()) == 2, timeout=180, what="the second bundle")

    assert [(j["bundle"], j["state"]) for j in serve.jobs()] == [("first", "succeeded"), ("second", "succeeded")]
    [record] = serve.records()
    names = sorted(nb["name"] for nb in record["notebooks"])
    assert len(names) == 4 and all(any(stem in n for n in names) for stem in ("alpha", "beta", "gamma", "delta"))
    assert {nb["status"] for nb in record["notebooks"]} == {"succeeded"}
    [second] = [s for s in _summaries(record, "run") if s.startswith("Run ") and ": second " in s]
    assert "not run: 02_beta, 03_gamma (already run in bundle 'first' of this incident)" in second
    assert any(
        s.startswith("Bundle 'second' queued for alert group VcciApiHighLatency (route by-label) without 2 of its 3")
        for s in _summaries(record, "run")
    )


def test_a_version_2_state_database_is_upgraded_and_its_jobs_skip_nothing(tmp_path: Path) -> None:
    from vcci_nb.alerts.store import SCHEMA_VERSION, Job, Store
    from vcci_nb.alerts.worker import Worker

    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "serve.sqlite3") as db:  # the jobs table as version 2 wrote it
        db.executescript(
            """
            CREATE TABLE jobs (
                id INTEGER PRIMARY KEY AUTOINCREMENT, incident_id TEXT NOT NULL, group_key TEXT,
                kind TEXT NOT NULL, bundle TEXT NOT NULL, params TEXT NOT NULL, profile TEXT, route TEXT,
                episode INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT, attempts INTEGER NOT NULL DEFAULT 0,
                max_attempts INTEGER NOT NULL, lease_owner TEXT, lease_expires REAL, pid INTEGER,
                created_at REAL NOT NULL, started_at REAL, finished_at REAL, exit_code INTEGER,
                announced INTEGER NOT NULL DEFAULT 0, round INTEGER NOT NULL DEFAULT 0,
                UNIQUE (incident_id, kind, bundle, episode, round)
            );
            CREATE INDEX jobs_state ON jobs(state, id);
            INSERT INTO jobs(incident_id, kind, bundle, params, episode, state, max_attempts, created_at)
            VALUES ('INC-20260106-001', 'alert', 'investigate', '{"namespace": "vcci-production"}',
                    1, 'queued', 2, 1.0);
            PRAGMA user_version = 2;
            """
        )
    store = Store(state)
    try:
        assert store.connection().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        [old] = store.jobs()
        assert (old["bundle"], old["state"], old["skip"], old["skip_reason"]) == ("investigate", "queued", [], None)
        # The queued job from before the upgrade runs whole, exactly as it was queued.
        worker = Worker(store, command=["runner"])
        job = Job.from_row(store.connection().execute("SELECT * FROM jobs").fetchone())
        assert worker.argv(job) == [
            "runner",
            "investigate",
            "--incident",
            "INC-20260106-001",
            "-p",
            "namespace=vcci-production",
        ]
        with store.transaction() as db:  # a new job carries its skip list
            db.execute(
                "INSERT INTO jobs(incident_id, kind, bundle, params, episode, state, max_attempts, created_at, skip, "
                "skip_reason) VALUES ('INC-20260106-001', 'alert', 'triage', '{}', 1, 'queued', 2, 2.0, ?, ?)",
                (json.dumps(INVESTIGATE), "already run in bundle 'investigate' of this incident"),
            )
        row = store.connection().execute("SELECT * FROM jobs WHERE bundle = 'triage'").fetchone()
        args = worker.argv(Job.from_row(row))
        assert skipped(args) == INVESTIGATE
        assert args[-2:] == ["--skip-reason", "already run in bundle 'investigate' of this incident"]
    finally:
        store.close()
    again = Store(state)  # opening it again changes nothing
    try:
        assert len(again.jobs()) == 2
    finally:
        again.close()

"""`vcci-nb run`: bad input stops everything; failures, timeouts and dead kernels are kept; the record fills in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest
import yaml

from vcci_nb.record import IncidentRecord

HERE = Path(__file__).parent
NOTEBOOKS = HERE / "notebooks"
CLI = [sys.executable, "-m", "vcci_nb"]

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root with parameters/bundles.yaml pointing at the test notebooks."""
    root = tmp_path / "proj"
    (root / "parameters").mkdir(parents=True)
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    bundles = {
        "version": 1,
        "bundles": {
            "mixed": {
                "description": "one of each outcome",
                "notebooks": [
                    "notebooks/params.ipynb",
                    "notebooks/findings.ipynb",
                    "notebooks/fails.ipynb",
                    "notebooks/killed.ipynb",
                ],
            },
            "good": {"notebooks": ["notebooks/params.ipynb", "notebooks/findings.ipynb"]},
            "planned": {"notebooks": ["notebooks/params.ipynb", "notebooks/03_not_written_yet.ipynb"]},
        },
    }
    (root / "parameters" / "bundles.yaml").write_text(yaml.safe_dump(bundles))
    return root


def _env(project: Path, outputs: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "VCCI_NB_OUTPUTS": str(outputs),
        "VCCI_NB_BUNDLES": str(project / "parameters" / "bundles.yaml"),
        **extra,
    }
    return env


def _cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def _open(outputs: Path) -> IncidentRecord:
    return IncidentRecord.open("P2", "runner test", outputs=outputs)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------------------
# bad input: a clear error, exit 2, and nothing runs


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["no_such_thing"], "No notebook or bundle named 'no_such_thing'"),
        (["planned"], "03_not_written_yet.ipynb"),
        (["good", "-p", "colour=blue"], "Unknown parameter 'colour'"),
        (["notebooks/params.ipynb", "-p", "namespace=default; rm -rf /"], "not a valid Kubernetes name"),
        (["notebooks/params.ipynb", "-p", "window_minutes=an hour"], "is an integer"),
        (["notebooks/params.ipynb", "-p", "dry_run=maybe"], "is a boolean"),
        (["notebooks/params.ipynb", "-p", "pods=[ok, 'Bad_Pod']"], "not a valid Kubernetes name"),
        (["notebooks/params.ipynb", "-p", "__import__('os').system('id')=1"], "Unknown parameter"),
        (["notebooks/params.ipynb", "-p", "namespace"], "-p name=value"),
        (["notebooks/params.ipynb", "-f", "BAD_YAML"], "is not valid YAML at line"),
        (["notebooks/params.ipynb", "-f", "LIST_YAML"], "must hold a YAML mapping"),
        (["notebooks/params.ipynb", "--evidence-from", "/nonexistent/evidence"], "no such folder"),
        (["notebooks/params.ipynb", "--profile", "nowhere"], "unknown profile 'nowhere'"),
        (["notebooks/params.ipynb", "--timeout", "0"], "--timeout must be a positive number"),
        (["good", "--skip", "03_fails"], "--skip 03_fails: not in 'good', which runs params, findings"),
        (["good", "--skip", "params", "--skip", "notebooks/findings.ipynb"], "--skip leaves nothing of 'good'"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    project: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    outputs = tmp_path / "out"
    record = _open(outputs)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("namespace: vcci-production\nwindow_minutes: [1, 2\n")
    list_yaml = tmp_path / "list.yaml"
    list_yaml.write_text("- namespace\n")
    args = [{"BAD_YAML": str(bad_yaml), "LIST_YAML": str(list_yaml)}.get(a, a) for a in args]
    before_files = _files(record.folder)
    before = record.data
    r = _cli(["run", *args, "--incident", record.id], _env(project, outputs), project)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert _files(record.folder) == before_files
    assert record.data["timeline"] == before["timeline"]


def test_skip_leaves_out_what_another_bundle_already_ran_and_says_why(project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    record = _open(outputs)
    why = "already run by bundle 'investigate' of this incident"
    r = _cli(
        ["run", "good", "--incident", record.id, "--skip", "findings", "--skip-reason", why],
        _env(project, outputs),
        project,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert [nb["name"] for nb in record.data["notebooks"]] == ["params"]
    started = next(ev for ev in record.data["timeline"] if ev["summary"].startswith("Run "))
    assert f"not run: findings ({why})" in started["summary"]
    assert started["data"]["skipped"] == ["findings"]


def test_unknown_incident_is_refused(project: Path, tmp_path: Path) -> None:
    r = _cli(["run", "good", "--incident", "INC-20200101-001"], _env(project, tmp_path / "out"), project)
    assert r.returncode == 2 and "No incident INC-20200101-001" in r.stderr


def test_declared_parameters_are_read_without_running_the_cell() -> None:
    from vcci_nb.runner.params import declared_parameters

    nb = nbformat.read(NOTEBOOKS / "params.ipynb", as_version=4)
    params = declared_parameters(nb)
    assert params["namespace"].default == "vcci-production"
    assert params["namespace"].help == "Kubernetes namespace to inspect"
    assert params["window_minutes"].type_name == "int"
    assert params["dry_run"].type_name == "bool"
    assert params["window_start"].default is None


# ------------------------------------------------------------------------------------------
# a bundle with every outcome


def test_bundle_keeps_failures_and_collects_findings(project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    record = _open(outputs)
    r = _cli(
        ["run", "mixed", "--incident", record.id, "-p", "namespace=kube-system", "-p", "window_minutes=15"],
        _env(project, outputs),
        project,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    for name in ("params", "findings", "fails", "killed"):
        assert f"{name}" in r.stderr  # progress per notebook
    data = record.data
    status = {nb["name"]: nb for nb in data["notebooks"]}
    assert status["params"]["status"] == "succeeded"
    assert status["findings"]["status"] == "succeeded"
    assert status["fails"]["status"] == "failed"
    assert "RuntimeError: the database said no" in status["fails"]["error"]
    assert status["killed"]["status"] == "failed"
    assert "kernel died" in status["killed"]["error"]

    # parameters reached the notebook, coerced; the incident ID was filled in; evidence dir set
    params_nb = nbformat.read(record.folder / "params.ipynb", as_version=4)
    printed = json.loads(params_nb.cells[-1].outputs[0]["text"])
    assert printed["namespace"] == "kube-system" and printed["window_minutes"] == 15
    assert printed["incident_id"] == record.id == printed["env_incident"]
    assert printed["evidence_dir"] == str((record.folder / "evidence" / "params").resolve())
    assert params_nb.metadata.papermill.parameters["window_minutes"] == 15

    # the failed notebook is kept, its error visible, later cells not run
    failed_nb = nbformat.read(record.folder / "fails.ipynb", as_version=4)
    text = json.dumps(failed_nb)
    assert "before the failure" in text and "the database said no" in text and "never" not in _outputs(failed_nb)

    # the dead kernel's notebook is kept up to the cell that killed it
    killed_nb = nbformat.read(record.folder / "killed.ipynb", as_version=4)
    assert "partial output before the kernel dies" in _outputs(killed_nb)
    assert "did not finish" in killed_nb.cells[0].source

    # findings collected into record.json and the timeline
    keys = {(f["key"], f["severity"], f["notebook"]) for f in data["findings"]}
    assert keys == {("db.pool_exhaustion", "high", "findings"), ("api.error_rate", "medium", "findings")}
    kinds = [e["kind"] for e in data["timeline"]]
    assert kinds.count("finding") == 2 and kinds.count("run") == 6

    # the folder: notebooks, HTML, one plotly.js, evidence, index linking everything
    for name in status:
        assert (record.folder / f"{name}.ipynb").is_file()
        assert (record.folder / f"{name}.html").is_file()
    assert (record.folder / "assets" / "plotly.min.js").is_file()
    assert len(list(record.folder.rglob("plotly*.js"))) == 1
    index = (record.folder / "index.html").read_text()
    for name in status:
        assert f'href="{name}.html"' in index and f'href="{name}.ipynb"' in index
    assert "Connection pool at 100 %" in index


def _outputs(nb: nbformat.NotebookNode) -> str:
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def test_timeout_stops_one_notebook_only(project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    record = _open(outputs)
    bundles = project / "parameters" / "bundles.yaml"
    spec = yaml.safe_load(bundles.read_text())
    spec["bundles"]["slow"] = {"notebooks": ["notebooks/sleeps.ipynb", "notebooks/params.ipynb"]}
    bundles.write_text(yaml.safe_dump(spec))
    r = _cli(["run", "slow", "--incident", record.id, "--timeout", "8"], _env(project, outputs), project)
    assert r.returncode == 1
    status = {nb["name"]: nb for nb in record.data["notebooks"]}
    assert status["sleeps"]["status"] == "timed_out"
    assert "Timed out after 8 s" in status["sleeps"]["error"]
    assert status["params"]["status"] == "succeeded"
    kept = nbformat.read(record.folder / "sleeps.ipynb", as_version=4)
    assert "sleeping" in _outputs(kept) and "woke" not in _outputs(kept)


def test_two_runs_of_one_incident_at_once_both_land(project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    record = _open(outputs)
    env = _env(project, outputs)
    procs = [
        subprocess.Popen(
            [*CLI, "run", "good", "--incident", record.id, "--jobs", "1"],
            env=env,
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, out + err
    data = record.data
    runs = [e for e in data["timeline"] if e["kind"] == "run" and "started" in e["summary"]]
    assert len(runs) == 2 and runs[0]["data"]["run_id"] != runs[1]["data"]["run_id"]
    names = sorted(nb["name"] for nb in data["notebooks"])
    assert names == ["findings", "findings_2", "params", "params_2"]  # each keeps its own name
    assert any("repeated runs write params_2 (again: params ran before)" in e["summary"] for e in runs)
    assert all(nb["status"] == "succeeded" for nb in data["notebooks"])
    assert len(data["findings"]) == 4
    for name in names:
        assert (record.folder / f"{name}.ipynb").is_file()


def test_evidence_from_replays_without_live_sources(project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    record = _open(outputs)
    first = _cli(["run", "notebooks/params.ipynb", "--incident", record.id], _env(project, outputs), project)
    assert first.returncode == 0, first.stderr
    evidence = record.folder / "evidence"
    (evidence / "params" / "marker.json").write_text("{}")
    replay = _open(outputs)
    env = _env(project, outputs, DATABASE_URL="postgresql://diag:pw@127.0.0.1:1/x", KUBECONFIG="/nonexistent")
    r = _cli(["run", "notebooks/params.ipynb", "--incident", replay.id, "--evidence-from", str(evidence)], env, project)
    assert r.returncode == 0, r.stderr
    printed = json.loads(nbformat.read(replay.folder / "params.ipynb", as_version=4).cells[-1].outputs[0]["text"])
    assert printed["evidence_from"] == str((evidence / "params").resolve())
    assert printed["evidence_dir"] is None
    started = next(e for e in replay.data["timeline"] if "started" in e["summary"])
    assert "on evidence from" in started["summary"]


# ------------------------------------------------------------------------------------------
# secrets


def test_no_canary_secret_reaches_any_file(project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    record = _open(outputs)
    canaries = {k: f"canary{k}{uuid.uuid4().hex[:12]}" for k in ("db", "redis", "token", "kube", "param", "smtp")}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": canaries["kube"]}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    smtp_file = tmp_path / "smtp_password"
    smtp_file.write_text(canaries["smtp"] + "\n")
    env = _env(
        project,
        outputs,
        # a credential whose connection fails: nothing listens on port 1
        DATABASE_URL=f"postgresql://vcci_diag:{canaries['db']}@127.0.0.1:1/vcci_production",
        REDIS_URL=f"redis://vcci-diag:{canaries['redis']}@127.0.0.1:1/0",
        VCCI_TEST_API_TOKEN=canaries["token"],
        VCCI_SMTP_PASSWORD_FILE=str(smtp_file),
        KUBECONFIG=str(kubeconfig),
    )
    # a notebook that prints every credential, including the kubeconfig and the SMTP password file
    nb = nbformat.read(project / "notebooks" / "secrets.ipynb", as_version=4)
    nb.cells.insert(
        2,
        nbformat.v4.new_code_cell(
            "print(open(os.environ['KUBECONFIG']).read())\nprint(open(os.environ['VCCI_SMTP_PASSWORD_FILE']).read())"
        ),
    )
    nbformat.write(nb, project / "notebooks" / "secrets.ipynb")
    r = _cli(
        ["run", "notebooks/secrets.ipynb", "--incident", record.id, "-p", f"api_token={canaries['param']}"],
        env,
        project,
    )
    assert r.returncode == 1  # the connection fails, as it should
    written = record.folder / "secrets.ipynb"
    assert "connection failed" in written.read_text()
    assert "***" in written.read_text()
    leaks = []
    for path in record.folder.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            leaks += [(str(path), k) for k, v in canaries.items() if v in text]
    assert leaks == []
    for stream in (r.stdout, r.stderr):
        assert not any(v in stream for v in canaries.values())
    params = nbformat.read(written, as_version=4).metadata.papermill.parameters
    assert params["api_token"] == "***"


# ------------------------------------------------------------------------------------------
# the HTML draws its charts offline, from a copy of the folder


def test_html_chart_draws_offline_in_a_copied_folder(project: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed")
    outputs = tmp_path / "out"
    record = _open(outputs)
    r = _cli(["run", "notebooks/findings.ipynb", "--incident", record.id], _env(project, outputs), project)
    assert r.returncode == 0, r.stderr
    copy = tmp_path / "elsewhere" / record.id
    shutil.copytree(record.folder, copy)
    html = copy / "findings.html"
    assert 'src="assets/plotly.min.js"' in html.read_text()
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--proxy-server=http://127.0.0.1:9",  # any network request fails
            "--virtual-time-budget=5000",
            "--dump-dom",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "main-svg" in dom  # plotly.js ran and drew the figure
    assert "p95 latency (s)" in dom


# ------------------------------------------------------------------------------------------
# the incident's window, not the clock's (issue 13, item 7)


def test_a_later_run_uses_the_incidents_own_window(project: Path, tmp_path: Path) -> None:
    """An alert that started 3 h ago and resolved 2 h ago: the window is its own, with the 30 min lead."""
    from datetime import UTC, datetime, timedelta

    from vcci_nb.policy import iso

    outputs = tmp_path / "out"
    record = _open(outputs)
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    record.add_alert({"status": "firing", "startsAt": iso(began), "labels": {"alertname": "HighErrorRate"}})
    record.add_alert({"status": "firing", "startsAt": iso(began + timedelta(minutes=7)), "labels": {}})
    record.set_status("resolved", note="fixed")
    record.update(lambda d: d.update(resolved_at=iso(began + timedelta(hours=1))))
    r = _cli(["run", "notebooks/params.ipynb", "--incident", record.id], _env(project, outputs), project)
    assert r.returncode == 0, r.stdout + r.stderr
    nb = json.loads((record.folder / "params.ipynb").read_text())
    printed = next(
        json.loads("".join(o["text"])) for c in nb["cells"] for o in c.get("outputs", []) if o.get("name") == "stdout"
    )
    assert printed["window_start"] == iso(began - timedelta(minutes=30))
    started = next(ev for ev in record.data["timeline"] if ev["summary"].startswith("Run "))
    assert started["data"]["window"]["start"] == iso(began - timedelta(minutes=30))
    assert started["data"]["window"]["end"] == iso(began + timedelta(hours=1))
    assert "30 min before the earliest alert's startsAt" in started["summary"]

    # A window given by hand wins.
    given = "2026-01-06T14:00:00Z"
    r = _cli(
        ["run", "notebooks/params.ipynb", "--incident", record.id, "-p", f"window_start={given}"],
        _env(project, outputs),
        project,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    runs = [ev for ev in record.data["timeline"] if ev["summary"].startswith("Run ") and " started" in ev["summary"]]
    assert runs[-1]["data"]["window"] == {"start": given, "end": "", "why": "as given"}


def test_the_lead_before_the_earliest_alert_comes_from_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from vcci_nb.config import parameters_dir
    from vcci_nb.policy import iso
    from vcci_nb.runner.core import incident_run_window

    (tmp_path / "environments").mkdir()
    shutil.copy(parameters_dir() / "environments" / "lab.yaml", tmp_path / "environments" / "lab.yaml")
    (tmp_path / "environments" / "tiny.yaml").write_text("extends: lab\nincident: {window_lead_minutes: 45}\n")
    monkeypatch.setenv("VCCI_NB_PARAMETERS", str(tmp_path))
    now = datetime.now(UTC)
    began = now.replace(microsecond=0) - timedelta(hours=2)
    data = {"alerts": [{"startsAt": iso(began + timedelta(minutes=5))}, {"startsAt": iso(began)}], "created_at": iso()}
    (start, end), why = incident_run_window(data, "tiny")
    assert start == iso(began - timedelta(minutes=45))
    assert datetime.fromisoformat(end.replace("Z", "+00:00")) >= now  # still open: up to now
    assert why.startswith("45 min before the earliest alert's startsAt")
    (start, _), _ = incident_run_window({"created_at": iso(began)}, "tiny")
    assert start == iso(began - timedelta(minutes=45))  # no alert: from the incident's detection


def test_a_failed_notebook_keeps_cell_index_exception_name_and_value(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like papermill's PapermillExecutionError: which cell, ``In [n]``, the exception's name and value."""
    from vcci_nb.errors import NotebookFailed, RunError
    from vcci_nb.runner import run

    outputs = tmp_path / "out"
    record = _open(outputs)
    monkeypatch.chdir(project)
    result = run(str(project / "notebooks" / "fails.ipynb"), record.id, outputs=outputs, warm=False, export_html=False)
    [nb] = result.notebooks
    assert nb.status == "failed"
    failure = nb.failure
    assert isinstance(failure, NotebookFailed) and isinstance(failure, RunError)
    # The index is the cell's as it ran (papermill's), not counting the error banners it adds afterwards.
    written = nbformat.read(outputs / record.id / "fails.ipynb", as_version=4)
    ran = [c for c in written.cells if "papermill-error-cell-tag" not in (c.metadata.get("tags") or [])]
    raising = next(i for i, c in enumerate(ran) if "raise RuntimeError" in c.source)
    assert failure.cell_index == raising
    assert failure.exec_count == ran[raising].execution_count
    assert (failure.ename, failure.evalue) == ("RuntimeError", "the database said no")
    assert failure.notebook == "fails" and str(failure) == nb.error


def test_a_deep_tmpdir_still_runs_kernels(project: Path, tmp_path: Path) -> None:
    """A Job pod's TMPDIR can be deeper than a Unix socket path allows (107 bytes); kernels still start."""
    outputs = tmp_path / "out"
    record = _open(outputs)
    deep = tmp_path / ("d" * 40) / ("e" * 40) / "tmp"
    deep.mkdir(parents=True)
    r = _cli(["run", "good", "--incident", record.id], _env(project, outputs, TMPDIR=str(deep)), project)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {nb["status"] for nb in record.data["notebooks"]} == {"succeeded"}

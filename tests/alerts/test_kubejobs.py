"""serve's Kubernetes executor, without a cluster: the Job spec (pure), Job states, the record merge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vcci_nb.alerts.kubejobs import JobSettings, build_job, job_name, job_phase, label_value
from vcci_nb.config import load_profile
from vcci_nb.errors import ConfigError
from vcci_nb.recordstore import merge_result, place_files, plan_renames
from vcci_nb.redact import register_secret
from vcci_nb.runner.bundles import load_bundles

CANARY = "canary-secret-5f1d9a7c3e"


def _settings(**over: Any) -> JobSettings:
    base = JobSettings.from_profile(load_profile("lab"))
    return JobSettings(**{**base.__dict__, **over})


def _job(settings: JobSettings | None = None, **over: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "name": job_name("0a1b2c3d", 7, 1),
        "instance": "0a1b2c3d",
        "incident": "INC-20260106-001",
        "bundle": "connection_pool_exhausted",
        "run": "7-1",
        "params": {"namespace": "vcci-production"},
        "profile": "lab",
        "timeout_s": 1800.0,
        "resources": load_bundles()["connection_pool_exhausted"].resources,
    }
    kw.update(over)
    return build_job(settings or _settings(), **kw)


def test_the_job_carries_what_the_issue_lists() -> None:
    job = _job(skip=["03_investigate_metrics"], skip_reason="already run by triage")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["namespace"] == "monitoring"
    labels = job["metadata"]["labels"]
    assert labels["incident"] == "INC-20260106-001"
    assert labels["bundle"] == "connection_pool_exhausted" and labels["run"] == "7-1"
    assert spec["template"]["metadata"]["labels"] == labels  # the pods carry them too
    assert spec["activeDeadlineSeconds"] == 1800
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == 86400
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "vcci-nb-run"
    assert container["image"] == "registry.example.com/vcci/vcci-nb:0.1.0"
    assert container["command"] == ["vcci-nb"]
    args = container["args"]
    assert args[:4] == ["job-run", "connection_pool_exhausted", "--incident", "INC-20260106-001"]
    assert args[args.index("--job") + 1] == job["metadata"]["name"]
    assert args[args.index("--store") + 1] == "s3://vcci-nb-records/runs"
    assert args[args.index("-p") : args.index("-p") + 2] == ["-p", "namespace=vcci-production"]
    assert args[args.index("--skip") + 1] == "03_investigate_metrics"
    # resources from bundles.yaml, not the profile's default
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    assert _job(resources=None)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"memory": "2Gi"}
    assert container["envFrom"] == [{"secretRef": {"name": "vcci-nb-sources"}}]
    # the same input gives the same manifest (pure)
    assert _job() == _job()


def test_triage_gets_more_than_a_scenario() -> None:
    bundles = load_bundles()
    triage = _job(bundle="triage", resources=bundles["triage"].resources)
    res = triage["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res["requests"]["memory"] == "2Gi"


def test_secrets_only_as_references() -> None:
    settings = _settings(secret_env={"AWS_SECRET_ACCESS_KEY": ("vcci-nb-records", "secret_access_key")})
    [container] = _job(settings)["spec"]["template"]["spec"]["containers"]
    ref = next(e for e in container["env"] if e["name"] == "AWS_SECRET_ACCESS_KEY")
    assert ref == {
        "name": "AWS_SECRET_ACCESS_KEY",
        "valueFrom": {"secretKeyRef": {"name": "vcci-nb-records", "key": "secret_access_key"}},
    }
    assert "value" not in ref
    register_secret(CANARY)
    for env in ({"DATABASE_PASSWORD": "x"}, {"REDIS_URL": "redis://u:p@h/0"}, {"HARMLESS": CANARY}):
        with pytest.raises(ConfigError, match="by reference"):
            _job(_settings(env=env))
    with pytest.raises(ConfigError, match="holds a secret"):
        _job(params={"namespace": CANARY})
    assert CANARY not in json.dumps(_job())


def test_label_values_are_valid_whatever_the_input() -> None:
    assert label_value("INC-20260106-001") == "INC-20260106-001"
    assert label_value("scenarios/disk full!") == "scenarios-disk-full"
    assert len(label_value("x" * 100)) == 63
    assert label_value("-_.a_") == "a"
    name = job_name("0a1b2c3d", 123456, 2)
    assert len(name) <= 63 and name == "vcci-nb-0a1b2c3d-123456-2"


def test_profile_without_executor_settings_is_a_clear_error() -> None:
    class Bare:
        name = "bare"

        def get(self, key: str) -> Any:
            return None

    with pytest.raises(ConfigError, match="namespace, image, record_store missing"):
        JobSettings.from_profile(Bare())


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ({}, "created"),
        ({"active": 1}, "running"),
        ({"active": 1, "conditions": [{"type": "FailureTarget", "status": "True"}]}, "running"),
        ({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}, "succeeded"),
        (
            {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
            "failed",
        ),
        ({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}, "deadline"),
    ],
)
def test_job_phase_reads_the_terminal_conditions(status: dict[str, Any], phase: str) -> None:
    assert job_phase({"metadata": {"name": "j"}, "status": status}) == phase
    assert job_phase(None) == "gone"


def _record(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "INC-20260106-001", "status": "investigating", "timeline": [], "findings": [],
                            "notebooks": [], "contacts": None, "updated_at": "x"}  # fmt: skip
    base.update(over)
    return base


def _event(at: str, summary: str) -> dict[str, Any]:
    return {"at": at, "kind": "run", "actor": "t", "summary": summary, "data": None}


def test_merge_keeps_what_others_wrote_meanwhile() -> None:
    base = _record(timeline=[_event("2026-01-06T10:00:00Z", "opened")])
    final = _record(
        timeline=[
            *base["timeline"],
            _event("2026-01-06T10:01:00Z", "run started"),
            _event("2026-01-06T10:03:00Z", "done"),
        ],
        findings=[{"key": "db.pool_exhaustion", "severity": "critical", "summary": "pool", "notebook": "a"}],
        notebooks=[{"name": "a", "path": "a.ipynb", "html": "a.html", "status": "succeeded", "run_id": "r1"}],
        contacts={"on_call": "x"},
    )
    current = _record(timeline=[*base["timeline"], _event("2026-01-06T10:02:00Z", "alert joined")], status="identified")
    merge_result(current, base, final)
    assert [e["summary"] for e in current["timeline"]] == ["opened", "run started", "alert joined", "done"]
    assert current["findings"][0]["key"] == "db.pool_exhaustion"
    assert current["notebooks"][0]["name"] == "a" and current["contacts"] == {"on_call": "x"}
    assert current["status"] == "identified"  # the run did not change it; serve's change stays


def test_merge_renames_a_notebook_name_taken_meanwhile(tmp_path: Path) -> None:
    base = _record()
    entry = {"name": "a", "path": "a.ipynb", "html": "a.html", "status": "succeeded", "run_id": "r2"}
    final = _record(notebooks=[entry], findings=[{"key": "k", "severity": "info", "summary": "s", "notebook": "a"}])
    current = _record(notebooks=[{"name": "a", "path": "a.ipynb", "html": None, "status": "succeeded", "run_id": "r1"}])
    renames = plan_renames(current, base, final)
    assert renames == {"a": "a_2"}
    staging = tmp_path / "staging"
    (staging / "evidence" / "a").mkdir(parents=True)
    (staging / "a.ipynb").write_text("{}")
    (staging / "a.html").write_text("<html>")
    (staging / "evidence" / "a" / "x.json").write_text("{}")
    folder = tmp_path / "record"
    folder.mkdir()
    place_files(staging, folder, renames)
    merge_result(current, base, final, renames)
    assert sorted(p.name for p in folder.iterdir()) == ["a_2.html", "a_2.ipynb", "evidence"]
    assert (folder / "evidence" / "a_2" / "x.json").exists()
    assert [nb["name"] for nb in current["notebooks"]] == ["a", "a_2"]
    assert current["notebooks"][1]["path"] == "a_2.ipynb" and current["findings"][0]["notebook"] == "a_2"

"""A source that is down, hung, or refusing us becomes the right Evidence status, within the timeout.

Real clients against real sockets: a closed port (nothing listening), a socket that accepts and
never answers, the lab's PostgreSQL and Redis with a wrong password, and the Kubernetes API
emulator with a token it does not know. No exception ever reaches the caller.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from vcci_nb.evidence import Evidence
from vcci_nb.sources import health, kube, postgres, prometheus, rabbitmq, redis

TIMEOUT = 1.0
#: The hard deadline is the timeout plus one second; allow scheduling slack on a busy 2-core box.
BOUND = TIMEOUT + 2.5


def _check(ev: Evidence, status: str) -> None:
    assert ev.status == status, f"{ev.name}: expected {status}, got {ev.status}: {ev.message}"
    assert ev.message, "a failed gather must say what happened and what to do"
    assert ev.frame.empty


# --- down: nothing listens -------------------------------------------------------------------------


def test_postgres_down_is_unavailable(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vcci_diag:pw@127.0.0.1:{closed_port}/vcci_production")
    ev = postgres.gather_connections("lab", timeout=TIMEOUT)
    _check(ev, "unavailable")
    assert "Check that postgres is running" in ev.message


def test_redis_down_is_unavailable(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:pw@127.0.0.1:{closed_port}/0")
    _check(redis.gather_info("lab", timeout=TIMEOUT), "unavailable")


def test_prometheus_and_rabbitmq_down_are_unavailable(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("RABBITMQ_URL", f"http://vcci:pw@127.0.0.1:{closed_port}")
    _check(prometheus.gather_instant("lab", "up", timeout=TIMEOUT), "unavailable")
    _check(rabbitmq.gather_overview("lab", timeout=TIMEOUT), "unavailable")


def test_kubernetes_down_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, kube_emu: object, closed_port: int, tmp_path: Path
) -> None:
    from vcci_lab.kube import write_kubeconfig

    kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{closed_port}", "view-token", "admin-token", ca_pem=b"")
    monkeypatch.setenv("KUBECONFIG", str(kc))
    _check(kube.gather_pods("lab", timeout=TIMEOUT), "unavailable")


def test_unset_variables_say_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_URL", "RABBITMQ_URL"):
        monkeypatch.delenv(var, raising=False)
    ev = redis.gather_ping("lab")
    _check(ev, "unavailable")
    assert "REDIS_URL is not set" in ev.message and "vcci-nb lab env" in ev.message


# --- hung: accepts, never answers ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["postgres", "redis", "prometheus", "rabbitmq", "kubernetes"])
def test_a_hung_server_is_timeout_within_the_timeout(
    which: str, monkeypatch: pytest.MonkeyPatch, hanging_port: int, tmp_path: Path
) -> None:
    url = f"127.0.0.1:{hanging_port}"
    if which == "postgres":
        monkeypatch.setenv("DATABASE_URL", f"postgresql://vcci_diag:pw@{url}/vcci_production")
        call = lambda: postgres.gather_connections("lab", timeout=TIMEOUT)  # noqa: E731
    elif which == "redis":
        monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:pw@{url}/0")
        call = lambda: redis.gather_info("lab", timeout=TIMEOUT)  # noqa: E731
    elif which == "prometheus":
        monkeypatch.setenv("PROMETHEUS_URL", f"http://{url}")
        call = lambda: prometheus.gather_instant("lab", "up", timeout=TIMEOUT)  # noqa: E731
    elif which == "rabbitmq":
        monkeypatch.setenv("RABBITMQ_URL", f"http://vcci:pw@{url}")
        call = lambda: rabbitmq.gather_queues("lab", timeout=TIMEOUT)  # noqa: E731
    else:
        from vcci_lab.kube import write_kubeconfig

        kc = write_kubeconfig(tmp_path / "kc", f"http://{url}", "view-token", "admin-token", ca_pem=b"")
        monkeypatch.setenv("KUBECONFIG", str(kc))
        call = lambda: kube.gather_pods("lab", timeout=TIMEOUT)  # noqa: E731
    started = time.monotonic()
    ev = call()
    took = time.monotonic() - started
    _check(ev, "timeout")
    assert took < BOUND, f"{which} took {took:.1f} s to give up, the timeout was {TIMEOUT} s"
    assert "did not answer within" in ev.message


# --- refused: wrong credentials --------------------------------------------------------------------


@pytest.mark.lab
def test_wrong_postgres_password_is_forbidden(lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(lab_env["DATABASE_URL"])
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://vcci_diag:not-the-password@{parts.hostname}:{parts.port}{parts.path}"
    )
    ev = postgres.gather_connections("lab", timeout=3)
    _check(ev, "forbidden")
    assert "refused our credentials" in ev.message


@pytest.mark.lab
def test_wrong_redis_password_is_forbidden(lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(lab_env["REDIS_URL"])
    monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:not-the-password@{parts.hostname}:{parts.port}/0")
    _check(redis.gather_info("lab", timeout=3), "forbidden")


@pytest.mark.lab
def test_redis_diag_user_cannot_run_keys_and_we_never_need_it(lab_env: dict[str, str]) -> None:
    """The ACL user may not run KEYS; big keys are found with SCAN, so gathering still works."""
    import redis as redis_client

    r = redis_client.Redis.from_url(lab_env["REDIS_URL"], socket_timeout=3)
    with pytest.raises(redis_client.exceptions.NoPermissionError):
        r.keys("cache:*")
    r.close()
    ev = redis.gather_big_keys("lab", sample=200)
    assert ev.ok, ev.message
    assert len(ev.frame) > 0 and ev.frame["key"].str.startswith("cache:emissions:").all()
    assert ev.meta["sampled"] == 200


def test_kubernetes_unknown_token_is_forbidden(kube_env: object, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = kube_env.kubeconfig_with_token("a-token-the-emulator-never-issued", "kc-bad")  # type: ignore[attr-defined]
    monkeypatch.setenv("KUBECONFIG", str(bad))
    ev = kube.gather_pods("lab", timeout=3)
    _check(ev, "forbidden")
    assert "401" in ev.message


def test_kubernetes_view_token_reads_fine(kube_env: object) -> None:
    ev = kube.gather_pods("lab", timeout=5)
    assert ev.ok, ev.message
    assert set(ev.frame["app"]) >= {"vcci-api"}


# --- vcci-nb check ----------------------------------------------------------------------------------


def test_check_reports_each_source_concurrently_even_when_one_hangs(
    monkeypatch: pytest.MonkeyPatch, hanging_port: int, closed_port: int, kube_env: object
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vcci_diag:pw@127.0.0.1:{hanging_port}/vcci_production")
    monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:pw@127.0.0.1:{closed_port}/0")
    monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{hanging_port}")
    monkeypatch.delenv("RABBITMQ_URL", raising=False)
    started = time.monotonic()
    frame = health.reachability("lab", timeout=2.0, deadline=3.0)
    took = time.monotonic() - started
    status = dict(zip(frame["source"], frame["status"], strict=True))
    assert status["kubernetes"] == "reachable"
    assert status["postgres"] == "timeout"
    assert status["prometheus"] == "timeout"
    assert status["redis"] == "unreachable"
    assert status["rabbitmq"] == "not configured"
    assert took < 4.5, f"vcci-nb check took {took:.1f} s with a hung source"
    assert (frame["latency_ms"] >= 0).all()


def test_check_probes_the_profiles_s3_bucket(
    lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    if "AWS_ENDPOINT_URL" not in lab_env:
        pytest.skip("this lab runs without its AWS API (moto)")
    # Generous bounds: the machine is shared; these are not timing claims.
    frame = health.reachability("lab", timeout=10.0, deadline=30.0, only=["s3"])
    [row] = frame.to_dict("records")
    assert (row["source"], row["status"], row["detail"]) == ("s3", "reachable", "")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")  # S3 down
    [row] = health.reachability("lab", timeout=10.0, deadline=30.0, only=["s3"]).to_dict("records")
    assert row["status"] in ("unreachable", "timeout") and lab_env["AWS_SECRET_ACCESS_KEY"] not in row["detail"]
    # Another bucket than the lab's: S3 answers that it does not exist.
    monkeypatch.setenv("AWS_ENDPOINT_URL", lab_env["AWS_ENDPOINT_URL"])
    import copy
    import dataclasses

    from vcci_nb.config import load_profile

    lab_profile = load_profile("lab")
    other = dataclasses.replace(lab_profile, data=copy.deepcopy(lab_profile.data))
    other.data["dependencies"]["s3"]["bucket"] = "no-such-bucket-here"
    [row] = health.reachability(other, timeout=10.0, deadline=30.0, only=["s3"]).to_dict("records")
    assert row["status"] == "unreachable" and "no-such-bucket-here" in row["detail"], row


def test_check_cli_exit_code_and_table(monkeypatch: pytest.MonkeyPatch, closed_port: int, kube_env: object) -> None:
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "KUBECONFIG": str(kube_env.kubeconfig),  # type: ignore[attr-defined]
        "REDIS_URL": f"redis://vcci-diag:pw@127.0.0.1:{closed_port}/0",
        # Several HTTP sources at once in a fresh interpreter: their client library must not be
        # imported concurrently by the check threads (it once failed with a circular import).
        "PROMETHEUS_URL": f"http://127.0.0.1:{closed_port}",
        "ALERTMANAGER_URL": f"http://127.0.0.1:{closed_port}",
        "EXTERNAL_API_URL": f"http://127.0.0.1:{closed_port}",
        "VCCI_NB_PROFILE": "lab",
        "HOME": "/tmp",
    }
    started = time.monotonic()
    cp = subprocess.run(
        [sys.executable, "-m", "vcci_nb", "check", "--json"], capture_output=True, text=True, env=env, timeout=30
    )
    took = time.monotonic() - started
    assert cp.returncode == 1, cp.stderr  # redis is down
    import json

    rows = {r["source"]: r for r in json.loads(cp.stdout)}
    assert rows["kubernetes"]["status"] == "reachable"
    assert rows["redis"]["status"] == "unreachable"
    # No DATABASE_URL: libpq's own defaults (PG* variables, local socket) are tried, and fail here.
    assert rows["postgres"]["status"] == "unreachable"
    assert rows["rabbitmq"]["status"] == "not configured"
    assert rows["s3"]["status"] == "not configured" and "no AWS credentials" in rows["s3"]["detail"]
    for name in ("prometheus", "alertmanager", "external-api"):
        assert rows[name]["status"] == "unreachable", rows[name]
    assert took < 10, took  # interpreter start and imports included


def test_gather_never_raises_even_on_a_bug_in_fetch(caplog: pytest.LogCaptureFixture) -> None:
    from vcci_nb.sources._core import collect

    def broken() -> object:
        raise KeyError("column 'x' missing")

    with caplog.at_level(logging.INFO):
        ev = collect("demo.broken", "demo", "SELECT x", broken, timeout=1)  # type: ignore[arg-type]
    assert ev.status == "error" and "column 'x' missing" in ev.message


def test_gather_takes_a_notebook_context_and_ctx_ask_names_the_evidence(kube_env: object, tmp_path: Path) -> None:
    from vcci_nb.evidence import EvidenceStore
    from vcci_nb.notebook import setup

    ctx = setup(environment="lab", store=EvidenceStore(save_to=tmp_path), show=False)
    direct = kube.gather_pods(ctx)
    assert direct.ok, direct.message
    asked = ctx.ask(kube.gather_rollout_history)
    assert asked.ok and asked.name == "kubernetes.rollout_history"
    assert (tmp_path / "kubernetes.rollout_history.json").exists()

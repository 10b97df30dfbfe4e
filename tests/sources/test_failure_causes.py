"""Each way a source can fail gives its own cause and fix, against real servers (issue 13, item 5).

- a kube context the kubeconfig lacks: the context wanted, the contexts there are, the profile key;
- wrong credentials: which variable holds them;
- refused (a closed port), timeout (a socket that accepts and never answers), TLS (the emulator's
  own certificate, which nothing here trusts): which one it was.

Only a real bug says "failed unexpectedly … report it".
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from vcci_nb.evidence import Evidence
from vcci_nb.sources import kube, postgres, prometheus, redis
from vcci_nb.sources._core import collect

TIMEOUT = 1.0


def _failed(ev: Evidence, status: str, cause: str) -> str:
    assert ev.status == status, f"{ev.name}: expected {status}, got {ev.status}: {ev.message}"
    assert ev.meta.get("cause") == cause, f"{ev.name}: expected cause {cause}, got {ev.meta.get('cause')}: {ev.message}"
    assert "report it" not in ev.message and "unexpectedly" not in ev.message, ev.message
    return ev.message


def _kubeconfig_with_contexts(src: Path, dest: Path, names: list[str]) -> Path:
    doc = json.loads(src.read_text())
    template = doc["contexts"][0]["context"]
    doc["contexts"] = [{"name": n, "context": dict(template)} for n in names]
    doc["current-context"] = names[0]
    dest.write_text(json.dumps(doc))
    return dest


def test_missing_kube_context_names_wanted_context_those_there_and_the_profile_key(
    kube_env: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kc = _kubeconfig_with_contexts(kube_env.kubeconfig, tmp_path / "kc", ["prod-east", "prod-west"])  # type: ignore[attr-defined]
    monkeypatch.setenv("KUBECONFIG", str(kc))
    msg = _failed(kube.gather_pods("lab", timeout=3), "unavailable", "config")
    assert "'vcci-lab'" in msg  # the context the profile wants
    assert "prod-east, prod-west" in msg  # the contexts the kubeconfig has
    assert "connections.kubernetes.context in parameters/environments/lab.yaml" in msg


def test_kube_credentials_and_refused_and_tls_are_told_apart(
    kube_env: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, closed_port: int
) -> None:
    bad = kube_env.kubeconfig_with_token("a-token-the-emulator-never-issued", "kc-bad")  # type: ignore[attr-defined]
    monkeypatch.setenv("KUBECONFIG", str(bad))
    msg = _failed(kube.gather_pods("lab", timeout=3), "forbidden", "credentials")
    assert "KUBECONFIG" in msg and "vcci-lab" in msg

    # The emulator speaks TLS with a CA of its own; a kubeconfig without that CA cannot trust it.
    doc = json.loads(kube_env.kubeconfig.read_text())  # type: ignore[attr-defined]
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"].startswith("https://")
    cluster.pop("certificate-authority-data")
    (tmp_path / "kc-noca").write_text(json.dumps(doc))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kc-noca"))
    msg = _failed(kube.gather_pods("lab", timeout=3), "unavailable", "tls")
    assert "TLS" in msg and "certificate-authority" in msg

    cluster["server"] = f"https://127.0.0.1:{closed_port}"
    (tmp_path / "kc-closed").write_text(json.dumps(doc))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kc-closed"))
    msg = _failed(kube.gather_pods("lab", timeout=TIMEOUT), "unavailable", "refused")
    assert "Connection refused" in msg


def test_prometheus_refused_timeout_and_tls(
    monkeypatch: pytest.MonkeyPatch, closed_port: int, hanging_port: int, kube_emu: object
) -> None:
    monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{closed_port}")
    msg = _failed(prometheus.gather_instant("lab", "up", timeout=TIMEOUT), "unavailable", "refused")
    assert "PROMETHEUS_URL" in msg
    monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{hanging_port}")
    msg = _failed(prometheus.gather_instant("lab", "up", timeout=TIMEOUT), "timeout", "timeout")
    assert "not refused, it hung" in msg
    # A TLS server whose certificate nobody here trusts (the emulator's).
    port = urlsplit(kube_emu.url).port  # type: ignore[attr-defined]
    monkeypatch.setenv("PROMETHEUS_URL", f"https://127.0.0.1:{port}")
    msg = _failed(prometheus.gather_instant("lab", "up", timeout=3), "unavailable", "tls")
    assert "PROMETHEUS_URL" in msg


def test_redis_refused_and_timeout(monkeypatch: pytest.MonkeyPatch, closed_port: int, hanging_port: int) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:pw@127.0.0.1:{closed_port}/0")
    assert "REDIS_URL" in _failed(redis.gather_info("lab", timeout=TIMEOUT), "unavailable", "refused")
    monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:pw@127.0.0.1:{hanging_port}/0")
    _failed(redis.gather_info("lab", timeout=TIMEOUT), "timeout", "timeout")


def test_postgres_refused_and_timeout(monkeypatch: pytest.MonkeyPatch, closed_port: int, hanging_port: int) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vcci_diag:pw@127.0.0.1:{closed_port}/vcci_production")
    assert "DATABASE_URL" in _failed(postgres.gather_connections("lab", timeout=TIMEOUT), "unavailable", "refused")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vcci_diag:pw@127.0.0.1:{hanging_port}/vcci_production")
    _failed(postgres.gather_connections("lab", timeout=TIMEOUT), "timeout", "timeout")


@pytest.mark.lab
def test_wrong_passwords_name_the_variable_that_holds_them(
    lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = urlsplit(lab_env["DATABASE_URL"])
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vcci_diag:not-the-password@{pg.hostname}:{pg.port}{pg.path}")
    msg = _failed(postgres.gather_connections("lab", timeout=3), "forbidden", "credentials")
    assert "DATABASE_URL" in msg and "DATABASE_URL_FILE" in msg and "not-the-password" not in msg
    rd = urlsplit(lab_env["REDIS_URL"])
    monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:not-the-password@{rd.hostname}:{rd.port}/0")
    msg = _failed(redis.gather_info("lab", timeout=3), "forbidden", "credentials")
    assert "REDIS_URL" in msg and "not-the-password" not in msg


def test_only_a_real_bug_says_report_it() -> None:
    def broken() -> object:
        raise KeyError("a column the code expected")

    ev = collect("x.y", "postgres", "SELECT 1", broken, timeout=1)  # type: ignore[arg-type]
    assert ev.status == "error" and ev.meta["cause"] == "bug"
    assert "report it" in ev.message

"""A canary password in DATABASE_URL, REDIS_URL and RABBITMQ_URL appears nowhere we write.

Not in the Evidence's message, query or repr, not in a log line, not in the saved evidence files,
not in a finding — including when connecting fails, which is exactly when client libraries like
to echo the connection string back.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from vcci_nb.analysis import find_all
from vcci_nb.evidence import Evidence
from vcci_nb.sources import health, postgres, rabbitmq, redis

CANARY = "Canary-7f3Q-pw-z91"


def _assert_clean(evs: list[Evidence], tmp: Path, caplog: pytest.LogCaptureFixture) -> None:
    for ev in evs:
        assert CANARY not in ev.message, ev.message
        assert CANARY not in ev.query
        assert CANARY not in repr(ev)
        assert CANARY not in str(ev.meta)
        ev.save(tmp)
    for f in tmp.iterdir():
        assert CANARY.encode() not in f.read_bytes(), f"canary in saved evidence {f.name}"
    for rec in caplog.records:
        assert CANARY not in rec.getMessage()
    assert CANARY not in caplog.text
    for finding in find_all(evs):
        assert CANARY not in str(finding.to_dict())


def test_canary_never_leaks_when_servers_are_down(
    monkeypatch: pytest.MonkeyPatch, closed_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vcci_diag:{CANARY}@127.0.0.1:{closed_port}/vcci_production")
    monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:{CANARY}@127.0.0.1:{closed_port}/0")
    monkeypatch.setenv("RABBITMQ_URL", f"http://vcci:{CANARY}@127.0.0.1:{closed_port}")
    with caplog.at_level(logging.DEBUG):
        evs = [
            postgres.gather_connections("lab", timeout=1),
            redis.gather_info("lab", timeout=1),
            rabbitmq.gather_overview("lab", timeout=1),
            health.gather_reachability("lab", timeout=1, deadline=2),
        ]
    assert [e.status for e in evs[:3]] == ["unavailable"] * 3
    # The reachability table carries every message too.
    assert CANARY not in evs[3].frame.to_csv()
    _assert_clean(evs, tmp_path, caplog)


def test_canary_never_leaks_when_servers_hang(
    monkeypatch: pytest.MonkeyPatch, hanging_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vcci_diag:{CANARY}@127.0.0.1:{hanging_port}/vcci_production")
    monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:{CANARY}@127.0.0.1:{hanging_port}/0")
    monkeypatch.setenv("RABBITMQ_URL", f"http://vcci:{CANARY}@127.0.0.1:{hanging_port}")
    with caplog.at_level(logging.DEBUG):
        evs = [
            postgres.gather_ping("lab", timeout=1),
            redis.gather_ping("lab", timeout=1),
            rabbitmq.gather_queues("lab", timeout=1),
        ]
    assert [e.status for e in evs] == ["timeout"] * 3
    _assert_clean(evs, tmp_path, caplog)


@pytest.mark.lab
def test_canary_never_leaks_when_the_password_is_refused(
    lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pg = urlsplit(lab_env["DATABASE_URL"])
    rd = urlsplit(lab_env["REDIS_URL"])
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vcci_diag:{CANARY}@{pg.hostname}:{pg.port}{pg.path}")
    monkeypatch.setenv("REDIS_URL", f"redis://vcci-diag:{CANARY}@{rd.hostname}:{rd.port}/0")
    with caplog.at_level(logging.DEBUG):
        evs = [postgres.gather_connections("lab", timeout=3), redis.gather_info("lab", timeout=3)]
    assert [e.status for e in evs] == ["forbidden", "forbidden"]
    _assert_clean(evs, tmp_path, caplog)


@pytest.mark.lab
def test_lab_password_never_leaks_from_a_healthy_gather(
    lab_env: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real lab passwords do not end up in queries, targets or saved evidence either."""
    secrets = [urlsplit(lab_env[v]).password for v in ("DATABASE_URL", "REDIS_URL")]
    with caplog.at_level(logging.DEBUG):
        evs = list(postgres.gather_all("lab").values()) + list(redis.gather_all("lab").values())
    assert all(e.ok for e in evs), [(e.name, e.message) for e in evs if not e.ok]
    for ev in evs:
        ev.save(tmp_path)
    blob = b"".join(f.read_bytes() for f in tmp_path.iterdir()) + caplog.text.encode()
    for pw in secrets:
        assert pw and pw.encode() not in blob

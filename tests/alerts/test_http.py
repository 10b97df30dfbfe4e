"""The webhook endpoint against bad, hostile and odd input: real HTTP to a real `vcci-nb serve`."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.alerts._support import Serve, alert, notification, wait_for


@pytest.fixture
def serve(make_serve: Any) -> Serve:
    return make_serve("--max-body", "65536")


def test_health_and_metrics_answer(serve: Serve) -> None:
    assert serve.session.get(f"{serve.url}/healthz", timeout=5).json() == {"status": "ok", "oldest_pending_s": 0}
    metrics = serve.metrics()
    assert metrics["vcci_nb_serve_alerts_received_total"] == 0
    assert metrics['vcci_nb_serve_queue_depth{queue="runs"}'] == 0
    assert "vcci_nb_serve_alert_to_record_seconds_count" in metrics
    assert serve.session.get(f"{serve.url}/nope", timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "no Authorization header"),
        ("Bearer wrong-token-0123456789abcdef", "wrong token"),
        ("Basic dXNlcjpwYXNz", "wrong scheme"),
        ("Bearer ", "empty token"),
    ],
)
def test_bad_token_gets_401_and_nothing_is_kept(shared_serve: Serve, header: str | None, why: str) -> None:
    serve = shared_serve
    headers = {"Authorization": header} if header is not None else {}
    resp = serve.post(notification([alert()]), token=None, headers=headers)
    assert resp.status_code == 401, why
    assert "token" in resp.json()["error"]
    assert serve.metrics()["vcci_nb_serve_alerts_received_total"] == 0
    assert not serve.outputs.exists() or not list(serve.outputs.glob("INC-*"))


def test_token_prefix_is_not_enough(serve: Serve) -> None:
    assert serve.post(notification([alert()]), token=serve.token[:-1]).status_code == 401
    assert serve.post(notification([alert()]), token=serve.token + "x").status_code == 401


def test_oversized_body_gets_413_before_it_is_read(serve: Serve) -> None:
    big = notification([alert(description="x" * 100_000)])
    resp = serve.post(big)
    assert resp.status_code == 413
    assert "65536" in resp.json()["error"]
    # A client that announces a huge body is answered without the server waiting for it.
    with socket.create_connection((serve.url.split("//")[1].split(":")[0], int(serve.url.rsplit(":", 1)[1])), 5) as s:
        s.sendall(
            b"POST /alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {serve.token}\r\nContent-Length: 999999999\r\n\r\n".encode()
        )
        assert s.recv(100).startswith(b"HTTP/1.1 413")


def _valid() -> dict[str, Any]:
    return notification([alert()])


def _without(field: str) -> dict[str, Any]:
    body = _valid()
    del body[field]
    return body


def _alert_without(field: str) -> dict[str, Any]:
    body = _valid()
    del body["alerts"][0][field]
    return body


def _with(path: list[str | int], value: Any) -> dict[str, Any]:
    body: Any = _valid()
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("not JSON", b"{not json", "not JSON"),
    ("empty body", b"", "not JSON"),
    ("a JSON list", b"[]", "JSON object"),
    ("NaN", json.dumps(_with(["truncatedAlerts"], 1)).replace("1}", "NaN}").encode(), "NaN"),
    ("version 3", json.dumps(_with(["version"], "3")).encode(), "version"),
    ("version as a number", json.dumps(_with(["version"], 4)).encode(), "version"),
    ("alerts not a list", json.dumps(_with(["alerts"], {"a": 1})).encode(), "alerts must be a list"),
    ("no alerts", json.dumps(_with(["alerts"], [])).encode(), "alerts is empty"),
    ("no groupKey", json.dumps(_without("groupKey")).encode(), "groupKey"),
    ("no version", json.dumps(_without("version")).encode(), "version"),
    ("alert without fingerprint", json.dumps(_alert_without("fingerprint")).encode(), "fingerprint"),
    ("alert without startsAt", json.dumps(_alert_without("startsAt")).encode(), "startsAt"),
    ("bad fingerprint", json.dumps(_with(["alerts", 0, "fingerprint"], "../../etc")).encode(), "fingerprint"),
    ("bad timestamp", json.dumps(_with(["alerts", 0, "startsAt"], "yesterday")).encode(), "RFC 3339"),
    ("impossible date", json.dumps(_with(["alerts", 0, "startsAt"], "2026-02-30T10:00:00Z")).encode(), "real date"),
    (
        "startsAt before year 1 in UTC",
        json.dumps(_with(["alerts", 0, "startsAt"], "0001-01-01T00:30:00+01:00")).encode(),
        "outside the calendar",
    ),
    (
        "endsAt after year 9999 in UTC",
        json.dumps(_with(["alerts", 0, "endsAt"], "9999-12-31T23:59:59-01:00")).encode(),
        "outside the calendar",
    ),
    ("NUL in a label", json.dumps(_with(["alerts", 0, "labels", "service"], "api\x00")).encode(), "NUL"),
    ("NUL byte in the body", json.dumps(_valid()).encode() + b"\x00", "NUL"),
    ("bad label name", json.dumps(_with(["alerts", 0, "labels", "bad-name"], "x")).encode(), "label name"),
    ("label value not a string", json.dumps(_with(["alerts", 0, "labels", "service"], 7)).encode(), "string"),
    ("bad alert status", json.dumps(_with(["alerts", 0, "status"], "exploded")).encode(), "status"),
    ("negative truncatedAlerts", json.dumps(_with(["truncatedAlerts"], -1)).encode(), "truncatedAlerts"),
    ("not UTF-8", b'{"version": "\xff"}', "UTF-8"),
]


@pytest.mark.parametrize(("name", "body", "reason"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_payload_gets_400_with_a_reason(shared_serve: Serve, name: str, body: bytes, reason: str) -> None:
    resp = shared_serve.post(None, raw=body)
    assert resp.status_code == 400, (name, resp.text)
    assert reason in resp.json()["error"], resp.json()["error"]


def test_bad_payloads_leave_no_trace(serve: Serve) -> None:
    for _, body, _ in BAD_BODIES:
        assert serve.post(None, raw=body).status_code == 400
    metrics = serve.metrics()
    assert metrics["vcci_nb_serve_alerts_received_total"] == 0
    assert metrics['vcci_nb_serve_responses_total{code="400"}'] == len(BAD_BODIES)


def test_wrong_content_type_and_method(serve: Serve) -> None:
    resp = serve.post(_valid(), headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415
    assert serve.session.put(f"{serve.url}/alertmanager", data=b"{}", timeout=5).status_code == 405


def test_valid_payload_is_accepted_and_persisted(serve: Serve) -> None:
    resp = serve.post(_valid())
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "accepted"
    with serve.db() as db:
        assert db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 1
    assert serve.metrics()["vcci_nb_serve_alerts_received_total"] == 1


def test_truncated_alerts_are_recorded(serve: Serve) -> None:
    resp = serve.post(notification([alert()], truncatedAlerts=7))
    assert resp.status_code == 200
    assert serve.metrics()["vcci_nb_serve_alerts_truncated_total"] == 7
    wait_for(lambda: serve.settled() and serve.records(), what="the incident record")
    record = serve.records()[0]
    notes = [e["summary"] for e in record["timeline"] if e["kind"] == "note"]
    assert any("7 alerts" in n and "max_alerts" in n for n in notes), notes
    [group] = record["alert_groups"]
    assert group["truncatedAlerts"] == 7
    page = (serve.outputs / record["id"] / "index.html").read_text()
    assert "Alertmanager left out 7 alerts of this group" in page


def test_serve_refuses_to_start_without_a_token(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("VCCI_NB_SERVE_TOKEN")}
    proc = subprocess.run(
        [sys.executable, "-m", "vcci_nb", "serve", "--port", "0", "--state-dir", str(tmp_path / "s")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "VCCI_NB_SERVE_TOKEN_FILE" in proc.stderr


def test_token_from_file_and_it_never_reaches_the_log(make_serve: Any, tmp_path: Any) -> None:
    serve = make_serve()
    serve.stop()
    token_file = tmp_path / "token"
    token_file.write_text("canary-token-" + "7" * 30 + "\n")
    serve.env["VCCI_NB_SERVE_TOKEN_FILE"] = str(token_file)
    serve.env.pop("VCCI_NB_SERVE_TOKEN", None)
    serve.verbose = True
    serve.token = token_file.read_text().strip()
    serve.start()
    assert serve.post(_valid(), token="wrong-token-but-long-enough").status_code == 401
    assert serve.post(_valid()).status_code == 200
    serve.stop()
    assert serve.token not in (tmp_path / "serve.log").read_text()


def test_a_body_that_never_arrives_gets_408(make_serve: Any) -> None:
    serve = make_serve("--read-timeout", "1")
    host, port = serve.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), 5) as s:
        s.sendall(
            b"POST /alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {serve.token}\r\nContent-Length: 500\r\n\r\n".encode()
            + b'{"version": "4"'
        )
        s.settimeout(30)
        assert s.recv(100).startswith(b"HTTP/1.1 408")
    assert serve.post(_valid()).status_code == 200  # and the receiver still answers others


def test_back_end_killed_alone_is_restarted_and_nothing_is_lost(make_serve: Any) -> None:
    import os
    import signal
    from pathlib import Path

    serve = make_serve()
    assert serve.proc is not None
    tasks = Path(f"/proc/{serve.proc.pid}/task")

    def children() -> list[int]:  # the back end is a child of the front's supervising thread
        return [int(p) for t in tasks.iterdir() for p in (t / "children").read_text().split()]

    backend = wait_for(children, what="the back-end process")
    os.kill(backend[0], signal.SIGKILL)
    # The front keeps accepting while the back end is down ...
    assert serve.post(_valid()).status_code == 200
    # ... and the restarted back end takes what was accepted.
    wait_for(lambda: serve.settled() and serve.runs(), timeout=60, what="the restarted back end")
    assert len(serve.records()) == 1
    assert serve.session.get(f"{serve.url}/healthz", timeout=5).status_code == 200
    assert "starting it again" in (serve.root / "serve.log").read_text()

"""Slow clients are cut off (issue 16, item 2): one deadline per request, capped connections.

Bounded in count (at most 20 sockets) and in time (every wait has a bound), all on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from tests.alerts._support import Serve, alert, notification, wait_for


def _addr(serve: Serve) -> tuple[str, int]:
    host, port = serve.url.split("//")[1].split(":")
    return host, int(port)


def _threads(serve: Serve) -> int:
    assert serve.proc is not None
    for line in Path(f"/proc/{serve.proc.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")


def _trickle(sock: socket.socket, stop: threading.Event, token: str) -> None:
    """A request line, then one header byte every 0.3 s, never finishing the headers."""
    header = f"POST /alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nX-Slow: " + "a" * 500
    try:
        for ch in header:
            if stop.is_set():
                return
            sock.sendall(ch.encode())
            if ch == "a":
                stop.wait(0.3)
    except OSError:
        return


def test_a_request_trickled_byte_by_byte_gets_408(make_serve: Any) -> None:
    serve = make_serve("--read-timeout", "2")
    stop = threading.Event()
    with socket.create_connection(_addr(serve), 5) as s:
        sender = threading.Thread(target=_trickle, args=(s, stop, serve.token), daemon=True)
        sender.start()
        s.settimeout(30)  # a bound for the test, far above the 2 s deadline
        try:
            answer = s.recv(200)
        finally:
            stop.set()
            sender.join(5)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert serve.post(notification([alert()])).status_code == 200


def test_connections_past_the_caps_get_503_and_slow_ones_hold_no_threads(make_serve: Any) -> None:
    serve = make_serve("--read-timeout", "3", "--max-connections", "8", "--max-client-connections", "6")
    baseline = _threads(serve)
    stop = threading.Event()
    slow: list[socket.socket] = []
    senders: list[threading.Thread] = []
    answers: list[bytes] = []
    try:
        for _ in range(20):  # 20 slow clients from one address: 6 get a slot, 14 a 503
            s = socket.create_connection(_addr(serve), 5)
            slow.append(s)
            t = threading.Thread(target=_trickle, args=(s, stop, serve.token), daemon=True)
            t.start()
            senders.append(t)
        time.sleep(0.5)
        assert _threads(serve) <= baseline + 6 + 2  # a thread per admitted connection, the rest none
        for s in slow:
            s.settimeout(30)
            try:
                answers.append(s.recv(200))
            except OSError as exc:
                answers.append(repr(exc).encode())
    finally:
        stop.set()
        for s in slow:
            s.close()
        for t in senders:
            t.join(5)
    codes = sorted(a[9:12].decode(errors="replace") for a in answers)
    assert codes == ["408"] * 6 + ["503"] * 14, answers
    assert all(b"Retry-After: 5" in a for a in answers if a.startswith(b"HTTP/1.1 503"))
    # Every slot is free again: a normal notification is accepted.
    wait_for(lambda: serve.post(notification([alert()])).status_code == 200, timeout=15, what="a free slot")
    assert serve.metrics()['vcci_nb_serve_responses_total{code="503"}'] == 14


def test_a_wrong_token_is_answered_after_the_headers_without_reading_the_body(make_serve: Any) -> None:
    serve = make_serve("--read-timeout", "30")
    with socket.create_connection(_addr(serve), 5) as s:
        s.sendall(
            b"POST /alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer wrong-token-0123456789\r\nContent-Length: 100000\r\n\r\n"
        )
        s.settimeout(10)  # the body never comes; the answer must not wait for it (30 s deadline)
        answer = s.recv(200)
        assert answer.startswith(b"HTTP/1.1 401")
        rest = b""
        while chunk := s.recv(4096):  # and the connection is closed
            rest += chunk

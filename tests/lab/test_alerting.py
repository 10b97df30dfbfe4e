"""An alert rule on the lab's live data reaches a webhook receiver through the real Alertmanager."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.lab]

TOKEN = "canary-webhook-token-5f1e2d"


class Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alertmanager"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, alertname: str, status: str, timeout: float = 60.0) -> tuple[dict[str, str], dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for headers, payload in list(self.posts):
                for alert in payload.get("alerts", []):
                    if alert["labels"].get("alertname") == alertname and alert["status"] == status:
                        return headers, alert
            time.sleep(0.2)
        seen = [(a["labels"].get("alertname"), a["status"]) for _, p in self.posts for a in p.get("alerts", [])]
        raise AssertionError(f"no {status} {alertname} within {timeout:.0f}s; received {seen}")


@pytest.fixture
def receiver(lab: Any) -> Iterator[Receiver]:
    rec = Receiver()
    lab.set_webhook(rec.url, TOKEN)
    try:
        yield rec
    finally:
        lab.set_webhook(None)
        rec.server.shutdown()


def test_error_spike_alert_reaches_the_webhook_with_its_labels(lab: Any, receiver: Receiver) -> None:
    with lab.fault("error-spike"):
        headers, alert = receiver.wait_for("VcciApiHighErrorRate", "firing")
    assert headers.get("Authorization") == f"Bearer {TOKEN}"
    labels = alert["labels"]
    assert labels["severity"] == "critical"
    assert labels["service"] == "vcci-api"
    assert labels["namespace"] == "vcci-production"
    assert labels["bundle"] == "triage"
    assert "5xx" in alert["annotations"]["summary"]
    # once healed, the 1-minute window drains and Alertmanager sends the resolution
    receiver.wait_for("VcciApiHighErrorRate", "resolved", timeout=120)


def test_every_rule_carries_routing_labels(lab: Any) -> None:
    rules = yaml.safe_load((lab.dir / "prometheus" / "rules.yml").read_text())
    routes = yaml.safe_load((Path(__file__).resolve().parents[2] / "parameters" / "routes.yaml").read_text())
    mapped = set(routes["severity"])  # every severity a rule uses maps to a P-level, not the default
    names = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            names.add(rule["alert"])
            assert rule["labels"]["severity"] in mapped, rule["alert"]
            assert rule["labels"]["service"]
            assert rule["labels"]["namespace"] == "vcci-production"
            assert rule["labels"]["bundle"]
    # the runbook's symptoms are all covered
    for needed in (
        "VcciApiHighErrorRate",
        "VcciApiHighLatency",
        "PostgresConnectionsNearLimit",
        "VcciPodOOMKilled",
        "VcciPodRestarting",
        "RedisMemoryHigh",
        "VcciDependencyDown",
        "VcciVolumeAlmostFull",
    ):
        assert needed in names


def test_the_webhook_token_stays_out_of_the_alertmanager_config(lab: Any, receiver: Receiver) -> None:
    config = (lab.dir / "alertmanager" / "alertmanager.yml").read_text()
    assert receiver.url in config
    assert TOKEN not in config
    token_file = lab.dir / "alertmanager" / "webhook-token"
    assert token_file.stat().st_mode & 0o777 == 0o600


def test_a_lab_brought_up_again_sends_the_same_alert_again() -> None:
    """Alertmanager starts with no notification log, as Prometheus starts with fresh history.

    A kept nflog remembered the group as notified and, within repeat_interval (1 h), sent nothing
    when the same alert fired after `down` and `up`: a second `./dev demo` then waited in vain.
    """
    import os

    from tests.labs import own_lab

    with own_lab("vcci-nb-am-again-", up=False) as own:
        for attempt in (1, 2):
            rec = Receiver()
            try:
                own.up(stop_with=os.getpid())
                own.set_webhook(rec.url, TOKEN)
                with own.fault("error-spike"):
                    rec.wait_for("VcciApiHighErrorRate", "firing", timeout=90)
            finally:
                rec.server.shutdown()
            if attempt == 1:
                own.down()

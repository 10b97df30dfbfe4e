"""Property-based fuzzing of POST /alertmanager: whatever arrives, the answer is never a 5xx.

A 5xx makes Alertmanager retry a payload that will never succeed, so bad input must always be
a 4xx. Three generators: arbitrary bytes, arbitrary JSON, and a valid payload with one field
replaced by an arbitrary JSON value (the most likely way to reach deep into the parser).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.alerts._support import Serve, alert, notification

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)

TOP_FIELDS = ["receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations"]
TOP_FIELDS += ["externalURL", "version", "groupKey", "truncatedAlerts"]
ALERT_FIELDS = ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"]

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _check(resp: Any) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.text)
    if resp.status_code != 200:
        assert resp.json()["error"], resp.text  # every refusal says why


@FUZZ
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_never_5xx(shared_serve: Serve, body: bytes) -> None:
    _check(shared_serve.post(None, raw=body))


@FUZZ
@given(value=json_values)
def test_arbitrary_json_never_5xx(shared_serve: Serve, value: Any) -> None:
    _check(shared_serve.post(None, raw=json.dumps(value).encode()))


@FUZZ
@given(
    where=st.sampled_from([("top", f) for f in TOP_FIELDS] + [("alert", f) for f in ALERT_FIELDS]),
    value=json_values,
    drop=st.booleans(),
)
def test_one_field_mutated_never_5xx(shared_serve: Serve, where: tuple[str, str], value: Any, drop: bool) -> None:
    body = notification([alert(fingerprint="0123456789abcdef")], group_key='{}:{alertname="Fuzz"}')
    target = body if where[0] == "top" else body["alerts"][0]
    if drop:
        target.pop(where[1], None)
    else:
        target[where[1]] = value
    _check(shared_serve.post(None, raw=json.dumps(body).encode()))


@FUZZ
@given(labels=st.dictionaries(st.text(max_size=20), st.text(max_size=60), max_size=5))
def test_arbitrary_labels_never_5xx(shared_serve: Serve, labels: dict[str, str]) -> None:
    body = notification([alert(fingerprint="fedcba9876543210")], group_key='{}:{alertname="FuzzLabels"}')
    body["alerts"][0]["labels"].update(labels)
    _check(shared_serve.post(None, raw=json.dumps(body).encode()))


def test_the_receiver_survived_the_fuzzing(shared_serve: Serve) -> None:
    """Runs last in this module: every accepted payload was ingested without an error behind the scenes."""
    from tests.alerts._support import wait_for

    wait_for(shared_serve.settled, timeout=120, what="the fuzzed notifications to be ingested")
    log = (shared_serve.root / "serve.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert shared_serve.session.get(f"{shared_serve.url}/healthz", timeout=5).status_code == 200

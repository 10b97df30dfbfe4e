"""06_resolve's smoke tests against the lab's API itself: health, an authenticated read, a calculation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vcci_nb.analysis.verdict import judge_resolution
from vcci_nb.sources import http

pytestmark = pytest.mark.lab


def _rows(ev: Any) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in ev.frame.to_dict("records")}


def test_smoke_checks_pass_on_the_healthy_lab(lab_env: dict[str, str]) -> None:
    ev = http.gather_smoke()
    assert ev.status == "ok", ev.message
    rows = _rows(ev)
    assert set(rows) == {"health", "authenticated read", "refuses without a token", "calculation"}
    assert all(r["up"] for r in rows.values()), rows
    assert rows["calculation"]["method"] == "POST" and rows["refuses without a token"]["status_code"] == 401


def test_smoke_checks_fail_during_the_fault_and_the_verdict_says_not_yet(lab: Any, lab_env: dict[str, str]) -> None:
    with lab.fault("pool-exhaustion"):
        ev = http.gather_smoke()
    rows = _rows(ev)
    assert not rows["authenticated read"]["up"] and rows["authenticated read"]["status_code"] == 503
    assert "too many connections" in rows["authenticated read"]["detail"]
    healthy = http.gather_health(urls={"api": lab_env["VCCI_API_URL"] + "/metrics"})
    verdict = judge_resolution(ev, {}, healthy, stable_minutes=1, api_smoke=ev)
    assert not verdict.resolved
    assert any("API smoke tests pass" in r and "authenticated read" in r for r in verdict.reasons)


def test_a_wrong_token_fails_the_read_and_never_shows(lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "canary-smoke-token-Zq81xP0"
    monkeypatch.setenv("VCCI_API_SMOKE_TOKEN", canary)
    ev = http.gather_smoke()
    rows = _rows(ev)
    assert not rows["authenticated read"]["up"] and rows["authenticated read"]["status_code"] == 401
    assert not rows["calculation"]["up"]
    assert canary not in json.dumps(ev.frame.to_dict("records"), default=str) + ev.message + ev.query

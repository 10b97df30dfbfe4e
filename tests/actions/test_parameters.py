"""Every action parameter is checked before planning, and a refusal is audited (issue 16, item 9).

No server is needed: a bad parameter is refused by ``preflight``, before any connection.
"""

from __future__ import annotations

from typing import Any

import pytest

from vcci_nb.actions import ActionRefused, ClearCachePattern, run
from vcci_nb.actions.kube import DeletePodsRolling, Scale
from vcci_nb.actions.postgres import SetMaxConnections, TerminateSessions
from vcci_nb.record import IncidentRecord

PG = "postgresql://vcci_mitigate@127.0.0.1:1/vcci"
REDIS = "redis://127.0.0.1:1/0"

BAD: list[tuple[str, Any, str]] = [
    ("a PID that is not a number", lambda: TerminateSessions(pids=["12a"], url=PG), "a PID in pids='12a'"),
    ("a PID that is a bool", lambda: TerminateSessions(pids=[True], url=PG), "is not a whole number"),
    ("pids not a list", lambda: TerminateSessions(pids="123", url=PG), "not a list"),  # type: ignore[arg-type]
    ("a negative PID", lambda: TerminateSessions(pids=[-4], url=PG), "below 1"),
    ("min_age_s not a number", lambda: TerminateSessions(min_age_s="soon", url=PG), "min_age_s='soon'"),
    ("limit as NaN", lambda: TerminateSessions(limit=float("nan"), url=PG), "limit"),
    ("max_connections text", lambda: SetMaxConnections("lots", url=PG), "max_connections='lots'"),
    ("batch text", lambda: ClearCachePattern("cache:*", batch="big", url=REDIS), "batch='big'"),
    ("replicas text", lambda: Scale("vcci-api", "three", namespace="vcci-production"), "replicas='three'"),
    (
        "max_unavailable fraction",
        lambda: DeletePodsRolling("app=vcci-api", namespace="vcci-production", max_unavailable=1.5),
        "max_unavailable='1.5'",
    ),
]


@pytest.mark.parametrize(("name", "make", "reason"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_parameter_is_refused_and_audited(record: IncidentRecord, name: str, make: Any, reason: str) -> None:
    action = make()  # building it never raises: the gateway decides
    with pytest.raises(ActionRefused) as refused:
        run(action, record.id, dry_run=False, confirm=record.id)
    assert reason in str(refused.value)
    [entry] = record.data["actions"]
    assert entry["result"] == "refused" and entry["action"] == action.name
    assert reason in entry["message"]
    assert any(e["kind"] == "action" and "refused" in e["summary"].lower() for e in record.data["timeline"])

"""Each PostgreSQL action connects as its own identity of the profile, never silently as another.

No server is needed: the URL is resolved before any connection (issue 16, item 3).
"""

from __future__ import annotations

from typing import Any

import pytest

from vcci_nb.actions import CreateIndex, DropReplicationSlot, FinishPrepared, TerminateSessions, VacuumAnalyze
from vcci_nb.errors import ConfigError

CANARY = "canary-pw-7f3a9e"
IDENTITIES = [
    (lambda: VacuumAnalyze("tenants", profile="lab"), "VCCI_MAINTAINER_DATABASE_URL", "vcci_maintainer"),
    (lambda: CreateIndex("t", ["x"], "ix", profile="lab"), "VCCI_INDEX_BUILDER_DATABASE_URL", "vcci_index_builder"),
    (lambda: FinishPrepared("g", profile="lab"), "VCCI_XACT_RESOLVER_DATABASE_URL", "vcci_xact_resolver"),
    (lambda: DropReplicationSlot("s", profile="lab"), "VCCI_SLOT_DROPPER_DATABASE_URL", "vcci_slot_dropper"),
]


@pytest.mark.parametrize(("make", "var", "role"), IDENTITIES, ids=[i[2] for i in IDENTITIES])
def test_an_action_without_its_identity_says_which_to_set_and_does_not_use_the_mitigation_role(
    monkeypatch: pytest.MonkeyPatch, make: Any, var: str, role: str
) -> None:
    for _, other, _ in IDENTITIES:
        monkeypatch.delenv(other, raising=False)
        monkeypatch.delenv(f"{other}_FILE", raising=False)
    # The mitigation role's URL is set (and points nowhere): it must not be used instead.
    monkeypatch.setenv("VCCI_MITIGATION_DATABASE_URL", f"postgresql://vcci_mitigate:{CANARY}@127.0.0.1:1/x")
    action = make()
    with pytest.raises(ConfigError) as refused:
        action.conn  # noqa: B018 - opening the connection resolves the identity
    message = str(refused.value)
    assert var in message and role in message and "parameters/rbac/postgres.sql" in message
    assert CANARY not in message


def test_the_mitigation_role_stays_the_identity_of_terminate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VCCI_MITIGATION_DATABASE_URL", raising=False)
    monkeypatch.delenv("VCCI_MITIGATION_DATABASE_URL_FILE", raising=False)
    with pytest.raises(ConfigError, match=r"set VCCI_MITIGATION_DATABASE_URL"):
        TerminateSessions(profile="lab").conn  # noqa: B018

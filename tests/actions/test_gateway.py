"""The gateway's rules, with an action on an in-memory object (no server involved in these rules).

What a user would notice: nothing changes without a dry_run=False + confirm, or a click; a wrong
ID is refused; destructive actions need the typed ID even when clicking; every run, refusals
included, leaves a complete audit entry in record.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vcci_nb.actions import Action, ActionFailed, ActionRefused, Plan, Verification, run
from vcci_nb.record import IncidentRecord
from vcci_nb.redact import register_secret

AUDIT_KEYS = {
    "id",
    "action",
    "target",
    "parameters",
    "result",
    "message",
    "actor",
    "identity",
    "dry_run",
    "confirmation",
    "requested_at",
    "started_at",
    "finished_at",
    "duration_s",
    "plan",
    "details",
    "verification",
    "at",
}


class SetValue(Action):
    """Sets ``store[key] = value``; destructive when value is None (deletes the key)."""

    name = "test.set_value"

    def __init__(self, store: dict[str, Any], key: str, value: Any, *, fail: bool = False, lie: bool = False) -> None:
        self.store = store
        self.key = key
        self.value = value
        self.fail = fail
        self.lie = lie

    @property
    def target(self) -> str:
        return f"memory/{self.key}"

    def parameters(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}

    def preflight(self) -> None:
        if self.key == "kube-system":
            raise ActionRefused("refusing to touch kube-system")

    def identity(self) -> str:
        return "memory:tester"

    def plan(self) -> Plan:
        before = self.store.get(self.key)
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"{self.key}: {before!r} → {self.value!r}",
            changes=[{"key": self.key, "from": before, "to": self.value}],
            destructive=self.value is None,
            noop=before == self.value,
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        if self.fail:
            raise RuntimeError("backend exploded, password=canary-gw-551")
        if not self.lie:
            if self.value is None:
                self.store.pop(self.key, None)
            else:
                self.store[self.key] = self.value
        return {"set": self.key}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        return Verification().add("value set", self.store.get(self.key) == self.value, repr(self.store.get(self.key)))


def actions_of(record: IncidentRecord) -> list[dict[str, Any]]:
    return list(record.data["actions"])


def test_default_is_a_dry_run_that_records_the_plan_and_changes_nothing(record: IncidentRecord) -> None:
    store = {"replicas": 3}
    out = run(SetValue(store, "replicas", 12), record.id)
    assert store == {"replicas": 3}
    assert out.status == "planned" and "dry run" in out.message and f"confirm={record.id!r}" in out.message
    [entry] = actions_of(record)
    assert entry["result"] == "planned" and entry["dry_run"] is True
    assert entry["plan"]["changes"] == [{"key": "replicas", "from": 3, "to": 12}]


def test_headless_without_confirm_changes_nothing_even_with_dry_run_false(record: IncidentRecord) -> None:
    store = {"replicas": 3}
    out = run(SetValue(store, "replicas", 12), record.id, dry_run=False)
    assert store == {"replicas": 3}
    assert out.status == "planned" and "not confirmed" in out.message


def test_confirm_with_dry_run_true_still_changes_nothing(record: IncidentRecord) -> None:
    store = {"replicas": 3}
    out = run(SetValue(store, "replicas", 12), record.id, confirm=record.id, dry_run=True)
    assert store == {"replicas": 3} and out.status == "planned"


def test_confirmed_run_executes_verifies_and_writes_a_complete_audit_entry(record: IncidentRecord) -> None:
    store = {"replicas": 3}
    out = run(SetValue(store, "replicas", 12), record.id, dry_run=False, confirm=record.id)
    assert store == {"replicas": 12}
    assert out.status == "succeeded" and out.verification is not None and out.verification.ok
    [entry] = actions_of(record)
    assert set(entry) >= AUDIT_KEYS
    assert entry["actor"] == "alice" and entry["identity"] == "memory:tester"
    assert entry["action"] == "test.set_value" and entry["target"] == "memory/replicas"
    assert entry["parameters"] == {"key": "replicas", "value": 12}
    assert entry["result"] == "succeeded" and entry["dry_run"] is False
    assert entry["confirmation"] == {"mode": "parameter", "typed_incident_id": True}
    assert entry["duration_s"] is not None and entry["started_at"] and entry["finished_at"]
    assert entry["verification"]["ok"] is True
    data = record.data
    assert any(e["kind"] == "action" and "test.set_value" in e["summary"] for e in data["timeline"])
    assert data["status"] == "mitigating"


def test_wrong_confirm_is_refused_and_audited(record: IncidentRecord) -> None:
    store = {"replicas": 3}
    with pytest.raises(ActionRefused, match="not this incident's ID"):
        run(SetValue(store, "replicas", 12), record.id, dry_run=False, confirm="INC-20200101-001")
    assert store == {"replicas": 3}
    [entry] = actions_of(record)
    assert entry["result"] == "refused" and "not this incident's ID" in entry["message"]


def test_preflight_refusal_is_audited_with_its_reason(record: IncidentRecord) -> None:
    store: dict[str, Any] = {}
    with pytest.raises(ActionRefused, match="kube-system"):
        run(SetValue(store, "kube-system", 1), record.id, dry_run=False, confirm=record.id)
    [entry] = actions_of(record)
    assert entry["result"] == "refused" and "kube-system" in entry["message"] and entry["plan"] is None


def test_destructive_headless_without_confirm_is_refused(record: IncidentRecord) -> None:
    store = {"k": 1}
    with pytest.raises(ActionRefused, match="destroys data or capacity"):
        run(SetValue(store, "k", None), record.id, dry_run=False)
    assert store == {"k": 1}
    assert actions_of(record)[-1]["result"] == "refused"
    out = run(SetValue(store, "k", None), record.id, dry_run=False, confirm=record.id)
    assert out.status == "succeeded" and store == {}


def test_noop_plan_does_not_execute(record: IncidentRecord) -> None:
    store = {"replicas": 3}
    action = SetValue(store, "replicas", 3, fail=True)  # would raise if executed
    out = run(action, record.id, dry_run=False, confirm=record.id)
    assert out.status == "planned" and "nothing to do" in out.message


def test_failure_is_audited_redacted_and_raised(record: IncidentRecord) -> None:
    register_secret("canary-gw-551")
    with pytest.raises(ActionFailed) as info:
        run(SetValue({}, "x", 1, fail=True), record.id, dry_run=False, confirm=record.id)
    assert "canary-gw-551" not in str(info.value)
    [entry] = actions_of(record)
    assert entry["result"] == "failed" and "backend exploded" in entry["message"]
    assert "canary-gw-551" not in record.path.read_text()


def test_unverified_execution_is_reported_not_hidden(record: IncidentRecord) -> None:
    out = run(SetValue({}, "x", 1, lie=True), record.id, dry_run=False, confirm=record.id)
    assert out.status == "unverified" and "verification did not pass" in out.message
    assert actions_of(record)[0]["verification"]["ok"] is False


def test_no_record_no_action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCCI_NB_OUTPUTS", str(tmp_path))
    store = {"a": 1}
    with pytest.raises(Exception, match="No incident INC-20260101-001"):
        run(SetValue(store, "a", 2), "INC-20260101-001", dry_run=False, confirm="INC-20260101-001")
    assert store == {"a": 1}


# -- the widget path ------------------------------------------------------------------------------


def test_widget_click_executes_and_without_click_nothing_happens(record: IncidentRecord) -> None:
    store = {"replicas": 3}
    out = run(SetValue(store, "replicas", 12), record.id, dry_run=False, interactive=True)
    assert out.status == "awaiting_confirmation" and out.widget is not None
    assert store == {"replicas": 3}
    assert out.widget.id_box is None  # not destructive: a click is enough
    out.widget.confirm_button.click()
    assert store == {"replicas": 12}
    assert out.widget.outcome.status == "succeeded"
    assert out.widget.confirm_button.disabled  # no second execution by a double click
    entries = actions_of(record)
    assert [e["result"] for e in entries] == ["awaiting_confirmation", "succeeded"]
    assert entries[1]["confirmation"] == {"mode": "widget", "typed_incident_id": False}


def test_widget_destructive_needs_the_typed_id(record: IncidentRecord) -> None:
    store = {"k": 1}
    out = run(SetValue(store, "k", None), record.id, dry_run=False, interactive=True)
    panel = out.widget
    assert panel.id_box is not None
    assert panel.confirm_button.disabled  # nothing typed: the button cannot be pressed
    panel.confirm_button.click()  # a click that reaches the kernel anyway is refused by the gateway
    assert store == {"k": 1}
    assert panel.outcome.status == "refused" and "type the incident ID" in panel.status_html.value
    panel.id_box.value = "INC-19990101-001"
    assert panel.confirm_button.disabled  # a wrong ID does not enable it
    panel.confirm_button.click()
    assert store == {"k": 1}
    panel.id_box.value = f" {record.id} "
    assert not panel.confirm_button.disabled  # the right ID does
    panel.confirm_button.click()
    assert panel.confirm_button.disabled  # and after it ran, never again
    assert store == {} and panel.outcome.status == "succeeded"
    results = [e["result"] for e in actions_of(record)]
    assert results == ["awaiting_confirmation", "refused", "refused", "succeeded"]


def test_interactive_with_dry_run_shows_no_button(record: IncidentRecord) -> None:
    out = run(SetValue({}, "a", 1), record.id, interactive=True)
    assert out.status == "planned" and out.widget is None


def test_a_target_that_cannot_be_asked_is_audited_as_failed_without_its_secret(
    record: IncidentRecord, tmp_path: Path
) -> None:
    from vcci_nb.actions import ClearCachePattern

    # A closed port and a password that must never be written anywhere.
    url = "redis://default:canary-rd-8812@127.0.0.1:9/0"
    with pytest.raises(ActionFailed) as info:
        run(ClearCachePattern("cache:x:*", url=url), record.id, dry_run=False, confirm=record.id)
    assert "canary-rd-8812" not in str(info.value) and "Nothing was changed" in str(info.value)
    [entry] = record.data["actions"]
    assert entry["result"] == "failed" and entry["plan"] is None
    for f in record.folder.rglob("*"):
        if f.is_file():
            assert b"canary-rd-8812" not in f.read_bytes(), f

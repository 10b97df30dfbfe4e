"""Update cadence and escalation rules, on records with controlled timestamps."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.notify.conftest import CANARY, Receiver
from vcci_nb import escalation
from vcci_nb.config import Profile, load_profile
from vcci_nb.record import IncidentRecord

T0 = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)


def iso(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make(severity: str = "P1", change: Callable[[dict[str, Any]], None] | None = None) -> IncidentRecord:
    rec = IncidentRecord.open(severity, "API returning 500 errors", "alice", now=T0)
    if change:
        rec.update(change)
    return rec


def sent(*minutes: float, template: str = "update", status: str = "sent") -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        for m in minutes:
            d["notifications"].append(
                {
                    "at": iso(m),
                    "channel": "slack",
                    "template": template,
                    "status": status,
                    "dry_run": status == "dry_run",
                }
            )

    return change


def test_first_update_is_due_ten_minutes_after_detection(notify_env: dict[str, str]) -> None:
    rec = make("P1")
    nu = escalation.next_update(rec.data, now=at(5))
    assert nu["due_at"] == at(10) and not nu["overdue"]
    nu = escalation.next_update(rec.data, now=at(12))
    assert nu["overdue"] and nu["overdue_minutes"] == 2.0
    report = escalation.status_report(rec, now=at(12))
    assert "Next update: OVERDUE by 2 minutes (was due 2026-01-06 14:40 UTC, initial notification)" in report
    assert f"vcci-nb notify all --incident {rec.id} --template initial --send" in report


def test_p0_and_p1_updates_every_30_minutes_after_the_last_one_sent(notify_env: dict[str, str]) -> None:
    for sev in ("P0", "P1"):
        rec = make(sev, sent(8, template="initial"))
        assert escalation.next_update(rec.data, now=at(20))["due_at"] == at(38)
        # a dry-run draft is not an update: nobody received it
        rec.update(sent(36, status="dry_run"))
        nu = escalation.next_update(rec.data, now=at(40))
        assert nu["due_at"] == at(38) and nu["overdue"] and nu["overdue_minutes"] == 2.0
        rec.update(sent(41))
        assert escalation.next_update(rec.data, now=at(42))["due_at"] == at(71)


def test_p2_daily_p3_as_needed(notify_env: dict[str, str]) -> None:
    p2 = make("P2", sent(5, template="initial"))
    assert escalation.next_update(p2.data, now=at(60))["due_at"] == at(5 + 1440)
    p3 = make("P3", sent(5, template="initial"))
    nu = escalation.next_update(p3.data, now=at(600))
    assert nu["due_at"] is None and not nu["overdue"] and "as needed" in nu["note"]


def test_cadence_is_configurable_in_the_profile(notify_env: dict[str, str]) -> None:
    base = load_profile("lab")
    data = copy.deepcopy(base.data)
    data["escalation"]["cadence_minutes"]["P1"] = 120  # the seed's severity table, for a team that wants it
    prof = Profile("lab", data)
    rec = make("P1", sent(8, template="initial"))
    assert escalation.next_update(rec.data, prof, now=at(60))["due_at"] == at(128)
    assert escalation.cadence_minutes("P1", prof) == 120


def test_a_resolved_incident_owes_only_the_resolution_message(notify_env: dict[str, str]) -> None:
    def resolve(d: dict[str, Any]) -> None:
        d["status"] = "resolved"
        d["resolved_at"] = iso(45)

    rec = make("P1", resolve)
    nu = escalation.next_update(rec.data, now=at(300))
    assert not nu["overdue"] and "send the resolution message" in nu["note"]
    rec.update(sent(46, template="resolution"))
    assert "no further updates due" in escalation.next_update(rec.data, now=at(300))["note"]
    assert escalation.overdue_reminders([rec.data], now=at(300)) == []


@pytest.mark.parametrize(
    ("severity", "minute", "manager", "cto"),
    [
        ("P0", 29, False, False),
        ("P0", 31, True, False),
        ("P0", 61, True, True),
        ("P1", 119, False, False),
        ("P1", 121, True, False),
        ("P1", 600, True, False),
        ("P2", 600, False, False),
    ],
)
def test_time_based_escalations(
    notify_env: dict[str, str], severity: str, minute: float, manager: bool, cto: bool
) -> None:
    rec = make(severity)
    due = {e["target"]: e for e in escalation.escalations(rec.data, now=at(minute))}
    assert due["manager"]["due"] is manager and due["cto"]["due"] is cto
    if manager:
        limit = {"P0": "30 minutes", "P1": "2 hours"}[severity]
        assert due["manager"]["reasons"] == [f"{severity} lasting more than {limit}"]
        assert due["manager"]["missed"]


def test_an_incident_resolved_in_time_needs_no_escalation(notify_env: dict[str, str]) -> None:
    def resolve(d: dict[str, Any]) -> None:
        d["status"] = "resolved"
        d["resolved_at"] = iso(100)

    rec = make("P1", resolve)
    assert not any(e["due"] for e in escalation.escalations(rec.data, now=at(500)))


def test_judgement_flags_and_security_findings_make_escalations_due(notify_env: dict[str, str]) -> None:
    rec = make("P2")
    rec.add_event(
        "note",
        "Customer ACME escalated to their account manager",
        at=at(5),
        data={"escalation_flag": "customer_escalation"},
    )
    rec.add_findings(
        [
            {
                "key": "security.unexpected_admin_login",
                "severity": "critical",
                "summary": "Admin login from an unknown network",
                "at": iso(7),
            }
        ]
    )
    due = {e["target"]: e for e in escalation.escalations(rec.data, now=at(20))}
    assert due["manager"]["due_at"] == at(5) and due["manager"]["reasons"] == ["customer escalation received"]
    assert due["cto"]["due_at"] == at(7)
    assert due["cto"]["reasons"] == ["security finding: Admin login from an unknown network"]


def test_escalate_pages_the_manager_and_is_recorded(notify_env: dict[str, str], receiver: Receiver) -> None:
    rec = make("P0")
    draft = escalation.escalate(rec, "manager", now=at(35))
    assert draft["escalation"]["status"] == "dry_run" and receiver.requests == []
    report = escalation.status_report(rec, now=at(36))
    assert "Engineering Manager  DUE since 2026-01-06 15:00 UTC: P0 lasting more than 30 minutes" in report
    assert "[1 dry-run draft(s), not sent]" in report

    result = escalation.escalate(rec, "manager", send=True, now=at(36))
    assert result["ok"] and result["escalation"]["status"] == "sent"
    assert result["escalation"]["reason"] == "P0 lasting more than 30 minutes"
    (page,) = receiver.calls("/pagerduty/")
    assert page.body["routing_key"] == CANARY["pd_manager_key"]
    assert page.body["dedup_key"] == f"{rec.id}-manager" and page.body["payload"]["severity"] == "critical"
    assert "ESCALATION to Engineering Manager" in page.body["payload"]["summary"]
    (slack,) = receiver.calls("/slack/webhook/")
    assert slack.body["text"].startswith(":sos: @engineering-manager Need immediate assistance with")
    assert receiver.violations == []

    state = {e["target"]: e for e in escalation.escalations(rec.data, now=at(40))}
    assert state["manager"]["done"] and not state["manager"]["missed"]
    assert escalation.status(rec, now=at(40))["escalations"][0]["done"]
    assert "Engineering Manager  done" in escalation.status_report(rec, now=at(40))
    assert [e["kind"] for e in rec.data["timeline"]].count("escalation") == 2


def test_overdue_reminders_find_late_updates_and_remind_once(notify_env: dict[str, str], receiver: Receiver) -> None:
    from vcci_nb.record import list_records

    late = make("P1", sent(5, template="initial"))  # next due +35: overdue at +50
    on_time = make(
        "P1",
        sent(
            5,
            template="initial",
        ),
    )
    on_time.update(sent(30))  # next due +60
    quiet = make("P3")  # first update due +10, overdue too

    items = escalation.overdue_reminders(list_records(open_only=True), now=at(50))
    assert {i["incident_id"]: i["overdue_minutes"] for i in items} == {late.id: 15.0, quiet.id: 40.0}
    assert not any(i["reminded"] for i in items)

    results = escalation.send_reminders(send=True, now=at(50))
    assert len(results) == 2 and all(r["ok"] for r in results)
    texts = [r.body["text"] for r in receiver.calls("/slack/webhook/")]
    assert any(
        f"*{late.id}* (P1): the stakeholder update was due at 15:05 UTC and is *15 minutes late*" in t for t in texts
    )
    assert escalation.send_reminders(send=True, now=at(55)) == []  # once per missed update, not per tick
    assert len(receiver.calls("/slack/webhook/")) == 2
    assert all(i["reminded"] for i in escalation.overdue_reminders(list_records(open_only=True), now=at(55)))


def test_status_command(notify_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    from vcci_nb.cli import main

    rec = make("P1")
    with pytest.raises(SystemExit):  # one status command: `incident status` (the top-level copy is gone)
        main(["status", rec.id])
    capsys.readouterr()
    assert main(["incident", "status", rec.id]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{rec.id}  P1  investigating  commander alice")
    assert "Last update sent: none yet" in out and "Escalations:" in out
    assert main(["escalate", rec.id, "--flag", "unsure"]) == 0
    assert "Engineering Manager  DUE since" in capsys.readouterr().out


def test_a_missed_escalation_is_reported_as_missed_after_resolution(notify_env: dict[str, str]) -> None:
    def resolve(d: dict[str, Any]) -> None:
        d["status"] = "resolved"
        d["resolved_at"] = iso(45)

    rec = make("P0", resolve)
    report = escalation.status_report(rec, now=at(300))
    assert (
        "Engineering Manager  MISSED: was due 2026-01-06 15:00 UTC (P0 lasting more than 30 minutes) and was not made"
    ) in report
    assert "CTO                  not due" in report
    assert "vcci-nb escalate" not in report  # nothing to run any more


def test_status_is_a_dict_that_shows_its_report_in_a_notebook(notify_env: dict[str, str]) -> None:
    rec = make("P0")
    st = escalation.status(rec, now=at(31))
    assert st["escalations"][0]["due"] and st["next_update"]["overdue"]
    assert str(st) == escalation.status_report(rec, now=at(31))
    assert escalation.status_report(rec.id, now=at(31)) == str(st)  # a notebook passes the ID
    assert st._repr_markdown_().startswith("```\n" + rec.id)


def test_the_cto_escalation_email_goes_to_the_cto(notify_env: dict[str, str], receiver: Receiver, smtp: Any) -> None:
    import email
    import email.policy

    rec = make("P0")
    rec.add_event("note", "Possible data exfiltration", data={"escalation_flag": "data_breach"})
    result = escalation.escalate(rec, "cto", send=True)
    assert result["ok"] and result["escalation"]["reason"].startswith("P0 lasting more than 1 hour; data breach")
    (mail,) = smtp.messages
    msg = email.message_from_string(mail["content"], policy=email.policy.default)
    assert msg["To"] == "cto@company.com" and msg["Subject"].startswith("[P0] ESCALATION to CTO:")
    assert mail["rcpt_tos"][0] == "cto@company.com"
    (page,) = receiver.calls("/pagerduty/")
    assert page.body["dedup_key"] == f"{rec.id}-cto"

"""The end of an incident: the thank-you post and the review meeting invite, sent to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta

import pytest

from tests.notify.conftest import Smtp
from vcci_nb import notify, review
from vcci_nb.cli import main
from vcci_nb.errors import RecordError
from vcci_nb.record import IncidentRecord, render_index


def _resolved(at: datetime | None = None) -> IncidentRecord:
    rec = IncidentRecord.open("P1", "API returning 500 errors", "alice")
    rec.set_status("identified", "pool exhausted", actor="bob")
    rec.set_status("resolved", "pool raised to 50", actor="alice")
    if at is not None:
        rec.update(lambda d: d.__setitem__("resolved_at", at.isoformat()))
    return rec


@pytest.mark.parametrize(
    ("resolved", "expected"),
    [
        (datetime(2026, 12, 7, 9, 30, tzinfo=UTC), datetime(2026, 12, 7, 14, 0, tzinfo=UTC)),  # Monday morning
        (datetime(2026, 12, 7, 12, 0, tzinfo=UTC), datetime(2026, 12, 8, 14, 0, tzinfo=UTC)),  # too soon today
        (datetime(2026, 12, 4, 18, 0, tzinfo=UTC), datetime(2026, 12, 5, 14, 0, tzinfo=UTC)),  # Friday: no weekday fits
    ],
)
def test_the_meeting_is_within_48_hours_on_a_weekday_when_one_fits(resolved: datetime, expected: datetime) -> None:
    at = review.meeting_time(resolved)
    assert at == expected and resolved < at <= resolved + timedelta(hours=48)


def test_review_invite_is_attached_and_emailed_with_send(notify_env: dict[str, str], smtp: Smtp) -> None:
    resolved = datetime.now(UTC).replace(microsecond=0)
    rec = _resolved(resolved)
    assert main(["review", rec.id]) == 0  # dry run: attached, not emailed
    assert smtp.messages == []
    ics = (rec.folder / "review.ics").read_text()
    assert rec.data["attachments"][0]["name"] == "review.ics"
    assert "review.ics" in render_index(rec.data)

    assert main(["review", rec.id, "--send", "--attendee", "dba@company.com"]) == 0
    [sent] = smtp.messages
    assert "dba@company.com" in sent["rcpt_tos"] and "engineering-manager@company.com" in sent["rcpt_tos"]
    mail = email.message_from_string(sent["content"])
    parts = {p.get_content_type(): p for p in mail.walk()}
    cal = parts["text/calendar"]
    assert cal.get_filename() == "review.ics" and cal.get_param("method") == "REQUEST"
    ics = cal.get_payload(decode=True).decode()
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and ics.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n"))
    unfolded = ics.replace("\r\n ", "")
    start = datetime.strptime(next(x for x in unfolded.split("\r\n") if x.startswith("DTSTART:"))[8:], "%Y%m%dT%H%M%SZ")
    start = start.replace(tzinfo=UTC)
    assert resolved < start <= resolved + timedelta(hours=48)
    assert f"SUMMARY:Post-incident review: {rec.id} API returning 500 errors" in unfolded
    assert "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:dba@company.com" in unfolded
    assert "Timeline  2. Root cause  3. Action items" in unfolded
    assert "Post-incident review" in mail["Subject"]


def test_review_of_an_open_incident_is_refused_with_what_to_do(notify_env: dict[str, str]) -> None:
    rec = IncidentRecord.open("P2", "slow", "alice")
    with pytest.raises(RecordError, match="not resolved yet"):
        review.invite(rec, "lab")


def test_thank_the_team_names_the_people_who_responded(notify_env: dict[str, str]) -> None:
    rec = _resolved()
    text = notify.render(rec, "thanks", "slack").messages[0].text
    assert text.startswith("Thanks everyone for the quick response!")
    assert "alice" in text and "bob" in text and "alertmanager" not in text

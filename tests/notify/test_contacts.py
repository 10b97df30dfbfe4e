"""Contacts and links from the profile: filled with the incident window, free of secrets, shown where the seed does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vcci_nb import contacts, notify
from vcci_nb.cli import main
from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ConfigError
from vcci_nb.record import IncidentRecord, render_index

START = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def _profile(**over: Any) -> Profile:
    data = dict(load_profile("lab").data)
    data.update(over)
    return Profile("t", data)


def test_links_open_on_the_incident_window_and_live_while_it_is_open() -> None:
    live = {ln.name: ln.url for ln in contacts.links("lab", start=START, end=None, incident_id="INC-20261206-001")}
    grafana = live["Grafana (VCCI API)"]
    assert f"from={int(START.timestamp() * 1000)}" in grafana and "to=now" in grafana
    assert "var-namespace=vcci-production" in grafana
    assert "from:'2026-12-06T01:00:00Z',to:'now'" in live["Kibana (logs)"]
    end = START + timedelta(minutes=45)
    closed = {ln.name: ln.url for ln in contacts.links("lab", start=START, end=end)}
    assert f"to={int(end.timestamp() * 1000)}" in closed["Grafana (VCCI API)"]


@pytest.mark.parametrize(
    "url",
    [
        "https://grafana.example.com/d/x?from={from_ms}&token=abc123",
        "https://admin:hunter22@grafana.example.com/d/x",
        "https://grafana.example.com/d/x?api_key=zzz",
    ],
)
def test_a_link_carrying_a_secret_is_refused_naming_the_entry(url: str) -> None:
    prof = _profile(links=[{"name": "Grafana", "url": url}])
    with pytest.raises(ConfigError, match=r"links\[0\] \(Grafana\).*no secrets"):
        contacts.links(prof, start=START)


def test_unknown_placeholder_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown placeholder"):
        contacts.links(_profile(links=[{"name": "G", "url": "https://g.example.com/?f={start}"}]))


def test_messages_carry_the_hotline_and_the_dashboards(notify_env: dict[str, str]) -> None:
    rec = IncidentRecord.open("P1", "API returning 500 errors", "alice")
    extra = {"escalation_target": "Engineering Manager", "escalation_reason": "P1 for 2 h", "mention": "@em"}
    esc = notify.render(rec, "escalation", "slack", extra=extra).messages[0].text
    assert "+1-555-0123" in esc and "#vcci-oncall" in esc
    initial = notify.render(rec, "initial", "email").messages[0].text
    assert "Grafana (VCCI API): http://grafana.vcci-platform.com/d/vcci-api/vcci-api?from=" in initial


def test_record_and_index_html_show_contacts_and_reopen_links_on_the_resolved_window(
    notify_env: dict[str, str],
) -> None:
    rec = IncidentRecord.open("P1", "API returning 500 errors", "alice")
    rec.set_contacts(contacts.for_record("lab", start=START, end=None, namespace=None, incident_id=rec.id))
    page = (rec.folder / "index.html").read_text()
    assert "+1-555-0123" in page and "to=now" in page and "Engineering Manager" in page
    rec.set_status("resolved", "pool raised")
    data = dict(rec.data)
    page = render_index(data)
    assert "to=now" not in page and "Grafana (VCCI API)" in page


def test_escalate_and_contacts_commands_print_who_to_call(
    notify_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rec = IncidentRecord.open("P1", "API returning 500 errors", "alice")
    assert main(["escalate", rec.id, "--to", "manager"]) == 0
    out = capsys.readouterr().out
    assert "Hotline (24/7): +1-555-0123" in out and "Engineering Manager on call" in out
    assert main(["contacts", "--incident", rec.id]) == 0
    out = capsys.readouterr().out
    assert "On call: #vcci-oncall" in out and "Grafana (VCCI API): http" in out

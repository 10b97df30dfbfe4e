"""Notifications against real protocol peers: what each provider receives, dry runs, failures, retries."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.notify.conftest import CANARY, PAGE_ID, SLACK_WEBHOOK_PATH, Receiver, Smtp
from vcci_nb import notify
from vcci_nb.errors import ConfigError
from vcci_nb.record import IncidentRecord


def _open(severity: str = "P1", title: str = "API returning 500 errors") -> IncidentRecord:
    return IncidentRecord.open(severity, title, "alice")


def _by_channel(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["channel"]: d for d in result["deliveries"]}


def test_dry_run_sends_nothing_reads_no_credentials_and_is_recorded(
    notify_env: dict[str, str], receiver: Receiver, smtp: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in (
        "VCCI_SLACK_BOT_TOKEN",
        "VCCI_PAGERDUTY_ROUTING_KEY",
        "VCCI_STATUSPAGE_API_KEY",
        "VCCI_SMTP_PASSWORD_FILE",
    ):
        monkeypatch.delenv(var)
    rec = _open()
    result = notify.notify(rec, "all", "initial")
    assert result["dry_run"] and result["ok"]
    assert receiver.requests == []
    assert smtp.data_calls == 0 and smtp.auth_attempts == []
    assert {d["channel"] for d in result["deliveries"]} == {"slack", "slack_api", "email", "statuspage", "pagerduty"}
    data = rec.data
    assert len(data["notifications"]) == 5
    assert all(n["dry_run"] and n["status"] == "dry_run" for n in data["notifications"])
    assert sum(1 for e in data["timeline"] if e["kind"] == "notification") == 5


def test_p3_goes_to_slack_only_and_statuspage_only_for_p0_p1(notify_env: dict[str, str], receiver: Receiver) -> None:
    rec = _open("P3", "Docs typo")
    result = notify.notify(rec, "all", "initial")
    assert [d["channel"] for d in result["deliveries"]] == ["slack"]
    assert "statuspage" in result["skipped"]


def test_send_initial_reaches_every_provider_in_its_documented_shape(
    notify_env: dict[str, str], receiver: Receiver, smtp: Smtp
) -> None:
    rec = _open()
    result = notify.notify(rec, "all", "initial", send=True)
    assert result["ok"], result
    assert receiver.violations == []
    by = _by_channel(result)

    (hook,) = receiver.calls("/slack/webhook/")
    assert hook.path == SLACK_WEBHOOK_PATH
    assert "[P1 INCIDENT] API returning 500 errors" in hook.body["text"]
    assert rec.id in hook.body["text"] and "Incident Commander:* alice" in hook.body["text"]

    (api,) = receiver.calls("/slack/api/chat.postMessage")
    assert api.body["channel"] == "#vcci-incidents" and "thread_ts" not in api.body
    assert by["slack_api"]["response"]["ts"] == "1700000000.000001"

    (sp,) = receiver.calls(f"/statuspage/v1/pages/{PAGE_ID}/incidents", "POST")
    inc = sp.body["incident"]
    assert inc["status"] == "investigating" and inc["impact_override"] == "major"
    assert inc["components"] == {"vcci-api-component": "partial_outage"}
    assert by["statuspage"]["response"]["incident_id"] == "sp0001"

    (pd,) = receiver.calls("/pagerduty/v2/enqueue")
    assert pd.body["event_action"] == "trigger" and pd.body["dedup_key"] == rec.id
    assert pd.body["payload"]["severity"] == "error" and pd.body["payload"]["source"] == "vcci-nb/lab"
    assert by["pagerduty"]["response"] == {
        "status_code": 202,
        "dedup_key": rec.id,
        "pd_status": "success",
        "event_action": "trigger",
    }

    # Seed 2.1's email, over STARTTLS with AUTH.
    (mail,) = smtp.messages
    assert mail["tls"] and mail["authenticated"]
    msg = email.message_from_string(mail["content"], policy=email.policy.default)
    assert msg["To"] == "platform-team@company.com, engineering@company.com"
    assert msg["Cc"] == "leadership@company.com"
    assert msg["Subject"] == "[P1] Production Incident - API returning 500 errors"
    assert set(mail["rcpt_tos"]) == {"platform-team@company.com", "engineering@company.com", "leadership@company.com"}
    body = msg.get_content()
    for line in (
        f"Incident ID: {rec.id}",
        "Severity: P1",
        "Status: Investigating",
        "Next Update: 30 minutes",
        "Incident Commander: alice",
    ):
        assert line in body

    sent = rec.data["notifications"]
    assert {n["status"] for n in sent} == {"sent"} and not any(n["dry_run"] for n in sent)
    assert all(n["response"].get("status_code") in (200, 201, 202, 250) for n in sent)


def test_updates_follow_the_first_message_and_say_what_changed(
    notify_env: dict[str, str], receiver: Receiver, smtp: Smtp
) -> None:
    rec = _open()
    notify.notify(rec, "all", "initial", send=True)
    rec.set_status("identified", "connection pool exhausted")
    result = notify.notify(
        rec, ["statuspage", "slack_api", "slack"], "update", send=True, message="Increased the connection pool"
    )
    assert result["ok"], result
    patch = receiver.calls(f"/statuspage/v1/pages/{PAGE_ID}/incidents/sp0001", "PATCH")
    assert len(patch) == 1 and patch[0].body["incident"]["status"] == "identified"
    assert "name" not in patch[0].body["incident"]
    assert receiver.calls("/slack/api/chat.postMessage")[-1].body["thread_ts"] == "1700000000.000001"
    text = receiver.calls("/slack/webhook/")[-1].body["text"]
    assert "Update #1" in text and "Increased the connection pool" in text
    assert "Status investigating → identified: connection pool exhausted" in text  # what changed since the last update
    assert "Incident opened" not in text  # that was before the last sent update
    # one update sent on three channels is one update: the next is #2
    assert "Update #2" in notify.render(rec, "update", "slack").messages[0].text


def test_resolution_resolves_pagerduty_and_sets_components_operational(
    notify_env: dict[str, str], receiver: Receiver
) -> None:
    rec = _open("P0", "Database unavailable")
    notify.notify(rec, ["pagerduty", "statuspage"], "initial", send=True)
    rec.close("Database failed over; all systems operational")
    result = notify.notify(rec, ["pagerduty", "statuspage"], "resolution", send=True)
    assert result["ok"], result
    resolve = receiver.calls("/pagerduty/v2/enqueue")[-1].body
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == rec.id
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"}
    sp = receiver.statuspage_incidents["sp0001"]
    assert sp["status"] == "resolved" and sp["components"] == {"vcci-api-component": "operational"}
    assert receiver.violations == []


def test_degraded_status_page_for_external_api_down(notify_env: dict[str, str], receiver: Receiver) -> None:
    rec = _open("P1", "External data provider down")
    assert notify.notify(rec, "statuspage", "degraded", send=True)["ok"]
    (sp,) = receiver.calls("/statuspage/", "POST")
    inc = sp.body["incident"]
    assert inc["components"] == {"vcci-api-component": "degraded_performance"}
    assert inc["impact_override"] == "minor"
    assert inc["body"] == "External data provider unavailable. Some features limited."


# -- failures and the retry rules --------------------------------------------------------------


def test_pagerduty_5xx_is_retried_because_the_dedup_key_makes_it_idempotent(
    notify_env: dict[str, str], receiver: Receiver, fast_profile: Any
) -> None:
    receiver.fail("/pagerduty/", (500, {}, {"error": "boom"}), (503, {}, {"error": "busy"}))
    rec = _open()
    d = _by_channel(notify.notify(rec, "pagerduty", "initial", send=True, profile=fast_profile))["pagerduty"]
    assert d["status"] == "sent" and len(d["attempts"]) == 3
    assert [a.get("status_code") for a in d["attempts"]] == [500, 503, 202]
    assert len(receiver.calls("/pagerduty/")) == 3


def test_slack_webhook_5xx_is_not_retried_and_the_failure_is_recorded(
    notify_env: dict[str, str], receiver: Receiver, fast_profile: Any
) -> None:
    receiver.fail("/slack/webhook/", (500, {}, "rollup_error"))
    rec = _open()
    result = notify.notify(rec, "slack", "initial", send=True, profile=fast_profile)
    assert not result["ok"]
    assert len(receiver.calls("/slack/webhook/")) == 1
    (entry,) = rec.data["notifications"]
    assert entry["status"] == "failed" and entry["response"]["status_code"] == 500
    assert "not retried" in entry["error"] and "rollup_error" in entry["error"]
    failed_event = [e for e in rec.data["timeline"] if e["kind"] == "notification"][-1]
    assert failed_event["summary"].startswith("slack: FAILED")


def test_rate_limit_waits_for_retry_after_then_delivers(
    notify_env: dict[str, str], receiver: Receiver, fast_profile: Any
) -> None:
    receiver.fail("/slack/webhook/", (429, {"Retry-After": "1"}, "rate_limited"))
    waits: list[float] = []
    rec = _open()
    result = notify.notify(rec, "slack", "initial", send=True, profile=fast_profile, sleep=waits.append)
    d = result["deliveries"][0]
    assert d["status"] == "sent" and waits == [1.0]
    assert d["attempts"][0]["retry_after_s"] == 1.0 and d["attempts"][1]["status_code"] == 200
    assert len(receiver.calls("/slack/webhook/")) == 2


def test_a_retry_after_longer_than_we_wait_is_reported_not_slept(
    notify_env: dict[str, str], receiver: Receiver, fast_profile: Any
) -> None:
    receiver.fail("/statuspage/", (429, {"Retry-After": "3600"}, {"error": "rate limited"}))
    waits: list[float] = []
    rec = _open()
    d = notify.notify(rec, "statuspage", "initial", send=True, profile=fast_profile, sleep=waits.append)["deliveries"][
        0
    ]
    assert d["status"] == "failed" and waits == []
    assert "Retry-After 3600 s" in d["error"] and "send again later" in d["error"]


def test_statuspage_create_is_not_retried_but_an_update_is(
    notify_env: dict[str, str], receiver: Receiver, fast_profile: Any
) -> None:
    rec = _open()
    receiver.fail("/statuspage/", (502, {}, {"error": "bad gateway"}))
    first = notify.notify(rec, "statuspage", "initial", send=True, profile=fast_profile)["deliveries"][0]
    assert first["status"] == "failed" and len(receiver.calls("/statuspage/")) == 1  # could have created it
    assert notify.notify(rec, "statuspage", "initial", send=True, profile=fast_profile)["ok"]
    receiver.fail("/statuspage/", (502, {}, {"error": "bad gateway"}))
    upd = notify.notify(rec, "statuspage", "update", send=True, profile=fast_profile)["deliveries"][0]
    assert upd["status"] == "sent" and len(upd["attempts"]) == 2
    assert [r.method for r in receiver.calls("/statuspage/")] == ["POST", "POST", "PATCH", "PATCH"]


def test_a_provider_refusing_the_request_is_not_retried(
    notify_env: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCCI_SLACK_BOT_TOKEN", "xoxb-wrong-token-0000")
    rec = _open()
    d = notify.notify(rec, "slack_api", "initial", send=True)["deliveries"][0]
    assert d["status"] == "failed" and "invalid_auth" in d["error"] and "bot token" in d["error"]
    assert len(receiver.calls("/slack/api/")) == 1


def test_a_refused_connection_is_retried_then_recorded(
    notify_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, fast_profile: Any
) -> None:
    from tests.notify.conftest import free_port

    monkeypatch.setenv("VCCI_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/hook")
    rec = _open()
    d = notify.notify(rec, "webhook", "initial", send=True, profile=fast_profile)["deliveries"][0]
    assert d["status"] == "failed" and len(d["attempts"]) == 3
    assert all(a["error"] == "connection refused" for a in d["attempts"])
    assert "could not be reached" in d["error"]


def test_missing_credential_fails_that_channel_only_with_a_clear_message(
    notify_env: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VCCI_PAGERDUTY_ROUTING_KEY")
    rec = _open()
    result = notify.notify(rec, ["pagerduty", "slack"], "initial", send=True)
    by = _by_channel(result)
    assert by["slack"]["status"] == "sent"
    assert by["pagerduty"]["status"] == "failed"
    assert "set VCCI_PAGERDUTY_ROUTING_KEY (or VCCI_PAGERDUTY_ROUTING_KEY_FILE)" in by["pagerduty"]["error"]


# -- SMTP rules ----------------------------------------------------------------------------------


def test_smtp_transient_4xx_is_retried(notify_env: dict[str, str], smtp: Smtp, fast_profile: Any) -> None:
    smtp.data_replies.append("451 4.3.0 Try again later")
    rec = _open()
    d = notify.notify(rec, "email", "initial", send=True, profile=fast_profile)["deliveries"][0]
    assert d["status"] == "sent" and [a.get("status_code") for a in d["attempts"]] == [451, 250]
    assert smtp.data_calls == 2 and len(smtp.messages) == 1


def test_smtp_permanent_5xx_is_not_retried(notify_env: dict[str, str], smtp: Smtp, fast_profile: Any) -> None:
    smtp.data_replies.append("554 5.6.0 Message rejected")
    rec = _open()
    d = notify.notify(rec, "email", "initial", send=True, profile=fast_profile)["deliveries"][0]
    assert d["status"] == "failed" and smtp.data_calls == 1 and "554" in d["error"]


def test_smtp_wrong_password_says_so_and_is_not_retried(
    notify_env: dict[str, str], smtp: Smtp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad-pw"
    bad.write_text("not-the-password")
    monkeypatch.setenv("VCCI_SMTP_PASSWORD_FILE", str(bad))
    rec = _open()
    d = notify.notify(rec, "email", "initial", send=True)["deliveries"][0]
    assert d["status"] == "failed" and "535" in d["error"] and "username and password" in d["error"]
    assert len(d["attempts"]) == 1  # smtplib tries each mechanism once in that one login; no second login
    assert smtp.auth_attempts and not any(ok for _, ok in smtp.auth_attempts)
    assert smtp.messages == []


def test_smtp_without_starttls_gets_no_credentials(
    notify_env: dict[str, str], smtp_plain: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCCI_SMTP_PORT", str(smtp_plain.port))
    rec = _open()
    d = notify.notify(rec, "email", "initial", send=True)["deliveries"][0]
    assert d["status"] == "failed" and "does not offer STARTTLS" in d["error"]
    assert smtp_plain.auth_attempts == [] and smtp_plain.messages == []


# -- templates and configuration ------------------------------------------------------------------


def test_unknown_template_and_channel_are_named(notify_env: dict[str, str]) -> None:
    rec = _open()
    with pytest.raises(ConfigError, match=r"No template 'updat'.*Known templates: .*update"):
        notify.render(rec, "updat", "slack")
    with pytest.raises(notify.NotifyError, match=r"unknown notify channel teams; profile 'lab' has slack"):
        notify.render(rec, "update", "teams")


def test_a_team_can_edit_the_templates(notify_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "initial.text.j2").write_text("{{ incident_id }} is {{ status }} for {{ elapsed }}; ask {{ commander }}")
    rec = _open()
    preview = notify.render(rec, "initial", "slack", templates=folder)
    assert preview.messages[0].text.startswith(f"{rec.id} is investigating for ")
    (folder / "initial.text.j2").write_text("{{ no_such_thing }}")
    with pytest.raises(ConfigError, match="unknown variable"):
        notify.render(rec, "initial", "slack", templates=folder)


def test_preview_shows_in_a_notebook(notify_env: dict[str, str]) -> None:
    rec = _open()
    preview = notify.render(rec, "initial", "all")
    page = preview._repr_html_()
    assert "nothing is sent until you call send" in page and "Subject:" in page
    assert "[P1] Production Incident - API returning 500 errors" in page
    assert rec.data["notifications"] == []  # rendering alone records nothing


# -- secrets ----------------------------------------------------------------------------------------


def test_canary_secrets_never_reach_record_messages_logs_or_errors(
    notify_env: dict[str, str], receiver: Receiver, smtp: Smtp, capsys: pytest.CaptureFixture[str]
) -> None:
    from vcci_nb.cli import main

    rec = _open()
    # Providers that echo what they got in their error bodies: the worst case for a leak.
    receiver.fail("/statuspage/", (400, {}, {"error": f"bad key OAuth {CANARY['statuspage_key']}"}))
    receiver.fail("/slack/api/", (403, {}, {"ok": False, "error": f"token {CANARY['slack_token']} revoked"}))
    rc = main(["-vv", "notify", "all", "--incident", rec.id, "--template", "initial", "--send"])
    assert rc == 1  # two channels failed
    rc2 = main(["-vv", "notify", "all", "--incident", rec.id, "--template", "update", "--send", "--json"])
    assert rc2 == 0
    main(["postmortem", rec.id])
    out = capsys.readouterr()
    texts = [out.out, out.err]
    for path in rec.folder.rglob("*"):
        if path.is_file():
            texts.append(path.read_text(errors="replace"))
    texts.append(str(notify.render(rec, "update", "all")))
    blob = "\n".join(texts)
    assert "slack:" in out.out.lower() or "slack " in out.out  # the run did print its results
    for name, value in CANARY.items():
        assert value not in blob, f"canary {name} leaked"
    assert json.loads(rec.path.read_text())["notifications"]


def test_a_missing_ca_file_fails_email_only_and_says_which_file(
    notify_env: dict[str, str], receiver: Receiver, smtp: Smtp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCCI_SMTP_CA_FILE", str(tmp_path / "no-such-ca.pem"))
    rec = _open()
    by = _by_channel(notify.notify(rec, ["email", "slack"], "initial", send=True))
    assert by["email"]["status"] == "failed" and "no-such-ca.pem does not exist" in by["email"]["error"]
    assert by["slack"]["status"] == "sent" and smtp.data_calls == 0


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    from email.utils import format_datetime

    assert notify.parse_retry_after("7") == 7.0
    later = datetime.now(UTC) + timedelta(seconds=90)
    assert 85 <= (notify.parse_retry_after(format_datetime(later, usegmt=True)) or 0) <= 90
    assert notify.parse_retry_after("soon") is None and notify.parse_retry_after(None) is None


def test_record_text_cannot_ping_a_whole_slack_channel(notify_env: dict[str, str], receiver: Receiver) -> None:
    rec = IncidentRecord.open("P1", "Errors <!channel> & <https://evil.example|click>", "alice")
    notify.notify(rec, ["slack", "email"], "initial", send=True)
    text = receiver.calls("/slack/webhook/")[0].body["text"]
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text and "<!channel>" not in text
    assert rec.data["notifications"][1]["subject"].endswith("Errors <!channel> & <https://evil.example|click>")


def test_a_multi_line_title_gives_a_one_line_subject_and_the_mail_goes(
    notify_env: dict[str, str], smtp: Smtp, fast_profile: Any
) -> None:
    rec = _open(title="API 5xx:\n  error rate above 5%\r\nBcc: evil@example.com")
    assert rec.data["title"] == "API 5xx: error rate above 5% Bcc: evil@example.com"
    # A record written before titles were collapsed (or edited by hand) still mails.
    data = json.loads(rec.path.read_text())
    data["title"] = "API 5xx:\nerror rate\nBcc: evil@example.com"
    rec.path.write_text(json.dumps(data))
    d = notify.notify(rec, "email", "initial", send=True, profile=fast_profile)["deliveries"][0]
    assert d["status"] == "sent", d
    (mail,) = smtp.messages
    msg = email.message_from_string(mail["content"], policy=email.policy.default)
    assert msg["Subject"] == "[P1] Production Incident - API 5xx: error rate Bcc: evil@example.com"
    assert msg["Bcc"] is None and "evil@example.com" not in mail["rcpt_tos"]

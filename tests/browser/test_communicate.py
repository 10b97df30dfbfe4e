"""02_communicate in JupyterLab: each channel's message previewed; Send delivers to Slack and SMTP, once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser._jl import JupyterLab, append_to_cell, errors, open_notebook, output_of, run_all, shot
from tests.browser.conftest import NotifyPeers
from vcci_nb.record import IncidentRecord

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_preview_then_send_reaches_slack_and_smtp(page: Any, jupyterlab: JupyterLab, notify_peers: NotifyPeers) -> None:
    hook, smtp = notify_peers.receiver, notify_peers.smtp
    record = IncidentRecord.open("P1", "Checkout answers 500", "browser-test", outputs=jupyterlab.outputs)
    record.set_status("identified", note="connection pool exhausted", actor="browser-test")
    slack_before, mail_before = len(hook.calls("/slack/webhook/", "POST")), len(smtp.messages)

    open_notebook(page, jupyterlab, "02_communicate.ipynb")
    append_to_cell(page, "dry_run = True  # ... and False", f'incident_id = "{record.id}"\nchannels = "slack,email"')
    run_all(page)
    assert errors(page) == []

    # each channel's message, as its reader will see it; nothing has left yet
    preview = output_of(page, "preview = notify.render(")
    text = preview.inner_text()
    assert "slack (slack_webhook)" in text and "email (email)" in text
    assert record.id in text and "connection pool exhausted" in text
    assert "Subject:" in text  # the email's subject line
    drafts = output_of(page, 'why = "send=False"')
    assert "DRY RUN" in drafts.inner_text()
    assert len(hook.calls("/slack/webhook/", "POST")) == slack_before and len(smtp.messages) == mail_before
    notes = IncidentRecord.load(record.id, jupyterlab.outputs).data["notifications"]
    assert sorted(n["status"] for n in notes) == ["dry_run", "dry_run"]

    send = drafts.get_by_role("button", name="Send 2 message(s)")
    send.scroll_into_view_if_needed()
    shot(page, "communicate-send")
    send.click()
    drafts.get_by_text("Sent 2 of 2 message(s)").wait_for(timeout=120_000)

    posts = hook.calls("/slack/webhook/", "POST")[slack_before:]
    assert len(posts) == 1 and record.id in posts[0].body["text"]
    mails = smtp.messages[mail_before:]
    assert len(mails) == 1 and record.id in mails[0]["content"] and mails[0]["tls"] and mails[0]["authenticated"]
    notes = IncidentRecord.load(record.id, jupyterlab.outputs).data["notifications"]
    sent = [n for n in notes if n["status"] == "sent"]
    assert sorted(n["channel"] for n in sent) == ["email", "slack"]
    assert send.is_disabled()  # a second click cannot send twice

"""Telling people about an incident: Slack, email, the status page, PagerDuty, webhooks.

Messages come from the editable templates in ``parameters/templates/`` filled from the
incident record; channels come from the profile's ``notify:`` section; credentials come from
the environment. Everything is a dry run unless ``send=True``, and every message, sent or not,
is recorded in the incident. In a notebook::

    preview = notify.render("INC-20260106-001", "initial")   # shows each channel's message
    result = preview.send()                                  # sends, records, returns a dict

Retry rules per provider are in :mod:`vcci_nb.notify._http`.
"""

from __future__ import annotations

from vcci_nb.errors import NotifyError
from vcci_nb.notify._channels import (
    KINDS,
    Channel,
    Email,
    Message,
    Outcome,
    PagerDuty,
    SlackApi,
    SlackWebhook,
    Statuspage,
    Webhook,
    make_channel,
)
from vcci_nb.notify._core import (
    Preview,
    channels_from_profile,
    deliver,
    notify,
    render,
    select_channels,
)
from vcci_nb.notify._http import RetryRule, parse_retry_after
from vcci_nb.notify._templates import UPDATE_TEMPLATES, list_templates, templates_dir

__all__ = [
    "KINDS",
    "UPDATE_TEMPLATES",
    "Channel",
    "Email",
    "Message",
    "NotifyError",
    "Outcome",
    "PagerDuty",
    "Preview",
    "RetryRule",
    "SlackApi",
    "SlackWebhook",
    "Statuspage",
    "Webhook",
    "channels_from_profile",
    "deliver",
    "list_templates",
    "make_channel",
    "notify",
    "parse_retry_after",
    "render",
    "select_channels",
    "templates_dir",
]

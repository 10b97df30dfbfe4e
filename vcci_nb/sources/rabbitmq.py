"""RabbitMQ through its management API: the seed's ``curl .../api/overview``, plus the queues.

``RABBITMQ_URL`` is the management API base with credentials (``http://user:pw@host:15672``);
they are sent as HTTP basic auth and never appear in a query, message or saved file.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pandas as pd
import requests

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, service_url
from vcci_nb.evidence import Evidence
from vcci_nb.redact import redact_url
from vcci_nb.sources._core import collect, not_configured, setting_for

SOURCE = "rabbitmq"


def _split(url: str) -> tuple[str, tuple[str, str] | None]:
    parts = urlsplit(url)
    auth = (unquote(parts.username or ""), unquote(parts.password or "")) if parts.username else None
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), auth


def _get(url: str, path: str, timeout: float) -> Any:
    base, auth = _split(url)
    resp = requests.get(f"{base}{path}", auth=auth, timeout=(timeout, timeout))
    resp.raise_for_status()
    return resp.json()


def _gather(profile: ProfileLike, what: str, path: str, build: Any, timeout: float) -> Evidence:
    name = f"rabbitmq.{what}"
    url = service_url(profile, "rabbitmq")
    if not url:
        return not_configured(name, SOURCE, "RABBITMQ_URL is not set", query=f"GET {path}")
    return collect(
        name,
        SOURCE,
        f"GET {_split(url)[0]}{path}",
        lambda: build(_get(url, path, timeout)),
        timeout=timeout,
        target=redact_url(url),
        setting=setting_for(profile, "rabbitmq"),
    )


def gather_overview(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``/api/overview``: version, totals of messages (ready, unacknowledged), connections, consumers, rates."""

    def build(o: dict[str, Any]) -> pd.DataFrame:
        totals = o.get("queue_totals") or {}
        objects = o.get("object_totals") or {}
        stats = o.get("message_stats") or {}
        row = {
            "rabbitmq_version": o.get("rabbitmq_version"),
            "cluster": o.get("cluster_name"),
            "messages": totals.get("messages"),
            "messages_ready": totals.get("messages_ready"),
            "messages_unacknowledged": totals.get("messages_unacknowledged"),
            "queues": objects.get("queues"),
            "connections": objects.get("connections"),
            "consumers": objects.get("consumers"),
            "publish_rate": (stats.get("publish_details") or {}).get("rate"),
            "deliver_rate": (stats.get("deliver_get_details") or {}).get("rate"),
        }
        return pd.DataFrame([row])

    return _gather(profile, "overview", "/api/overview", build, timeout)


def gather_queues(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """``/api/queues``: depth, consumers and rates per queue, deepest first."""

    def build(items: list[dict[str, Any]]) -> pd.DataFrame:
        rows = [
            {
                "vhost": q.get("vhost"),
                "queue": q.get("name"),
                "state": q.get("state"),
                "messages": q.get("messages"),
                "messages_ready": q.get("messages_ready"),
                "messages_unacknowledged": q.get("messages_unacknowledged"),
                "consumers": q.get("consumers"),
                "publish_rate": ((q.get("message_stats") or {}).get("publish_details") or {}).get("rate"),
                "deliver_rate": ((q.get("message_stats") or {}).get("deliver_get_details") or {}).get("rate"),
            }
            for q in items
        ]
        cols = ["vhost", "queue", "state", "messages", "messages_ready", "messages_unacknowledged", "consumers",
                "publish_rate", "deliver_rate"]  # fmt: skip
        frame = pd.DataFrame(rows, columns=cols)
        return frame.sort_values("messages", ascending=False, na_position="last").reset_index(drop=True)

    return _gather(profile, "queues", "/api/queues", build, timeout)

"""The kubeconfig that points kubectl and the Python client at the emulator (contract B).

kubectl sends a kubeconfig's bearer token only to an ``https://`` server (client-go applies user
credentials only over TLS). So when it is given the emulator's ``http://`` URL, :func:`write_kubeconfig`
fetches the emulator's CA from ``/_lab/ca.crt`` and writes the ``https://`` URL of the same port with
that CA embedded; the emulator answers TLS and plain HTTP on one port.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)


def fetch_ca(server_url: str, timeout: float = 5.0) -> bytes | None:
    """The emulator's CA certificate (PEM), read over plain HTTP; None if it serves HTTP only."""
    plain = "http://" + server_url.split("://", 1)[-1].rstrip("/")
    try:
        with urllib.request.urlopen(plain + "/_lab/ca.crt", timeout=timeout) as resp:  # noqa: S310 - our own URL
            data: bytes = resp.read()
            return data if b"BEGIN CERTIFICATE" in data else None
    except (urllib.error.URLError, OSError):
        return None


def kubeconfig_text(
    server_url: str, view_token: str | None, admin_token: str | None, ca_pem: bytes | None = None
) -> str:
    """Kubeconfig text with contexts ``vcci-lab`` (view, current) and ``vcci-lab-admin`` (admin).

    JSON is valid YAML, so the file is written as JSON: no YAML library is needed and no quoting
    question can arise with tokens.
    """

    def user(token: str | None) -> dict[str, object]:
        return {"token": token} if token else {}

    cluster: dict[str, object] = {"server": server_url}
    if ca_pem:
        cluster = {
            "server": "https://" + server_url.split("://", 1)[-1],
            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
        }
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "vcci-lab", "cluster": cluster}],
        "users": [
            {"name": "vcci-lab-view", "user": user(view_token)},
            {"name": "vcci-lab-admin", "user": user(admin_token)},
        ],
        "contexts": [
            {
                "name": "vcci-lab",
                "context": {"cluster": "vcci-lab", "user": "vcci-lab-view", "namespace": "vcci-production"},
            },
            {
                "name": "vcci-lab-admin",
                "context": {"cluster": "vcci-lab", "user": "vcci-lab-admin", "namespace": "vcci-production"},
            },
        ],
        "current-context": "vcci-lab",
        "preferences": {},
    }
    return json.dumps(doc, indent=2) + "\n"


def write_kubeconfig(
    path: Path | str, server_url: str, view_token: str | None, admin_token: str | None, *, ca_pem: bytes | None = None
) -> Path:
    """Write the lab kubeconfig (mode 0600: it holds tokens) and return its path.

    The emulator must be running when ``ca_pem`` is not given: its CA is fetched from it, and the
    kubeconfig then points at ``https://`` on the same port. Without a CA (no openssl on the machine)
    the URL is written as given, and kubectl will not send the tokens (the Python client still does).
    """
    if ca_pem is None and (view_token or admin_token):
        # without tokens stay on plain HTTP: over https with no credentials kubectl prompts for a password
        ca_pem = fetch_ca(server_url)
        if ca_pem is None and (view_token or admin_token):
            log.warning("the emulator at %s serves no TLS; kubectl will not send tokens over plain HTTP", server_url)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(kubeconfig_text(server_url, view_token, admin_token, ca_pem))
    os.replace(tmp, p)
    return p

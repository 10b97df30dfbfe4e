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
    server_url: str,
    view_token: str | None,
    admin_token: str | None,
    ca_pem: bytes | None = None,
    *,
    contexts: tuple[str, str] = ("vcci-lab", "vcci-lab-admin"),
    namespace: str = "vcci-production",
    cluster: str = "vcci-lab",
) -> str:
    """Kubeconfig text with a view context (current; default ``vcci-lab``) and an admin one
    (default ``vcci-lab-admin``): a lab flavour names its own.

    JSON is valid YAML, so the file is written as JSON: no YAML library is needed and no quoting
    question can arise with tokens.
    """

    def user(token: str | None) -> dict[str, object]:
        return {"token": token} if token else {}

    view_ctx, admin_ctx = contexts
    server: dict[str, object] = {"server": server_url}
    if ca_pem:
        server = {
            "server": "https://" + server_url.split("://", 1)[-1],
            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
        }
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": server}],
        "users": [
            {"name": f"{view_ctx}-view", "user": user(view_token)},
            {"name": admin_ctx, "user": user(admin_token)},
        ],
        "contexts": [
            {
                "name": view_ctx,
                "context": {"cluster": cluster, "user": f"{view_ctx}-view", "namespace": namespace},
            },
            {
                "name": admin_ctx,
                "context": {"cluster": cluster, "user": admin_ctx, "namespace": namespace},
            },
        ],
        "current-context": view_ctx,
        "preferences": {},
    }
    return json.dumps(doc, indent=2) + "\n"


def write_kubeconfig(
    path: Path | str,
    server_url: str,
    view_token: str | None,
    admin_token: str | None,
    *,
    ca_pem: bytes | None = None,
    contexts: tuple[str, str] = ("vcci-lab", "vcci-lab-admin"),
    namespace: str = "vcci-production",
    cluster: str = "vcci-lab",
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
        fh.write(
            kubeconfig_text(
                server_url, view_token, admin_token, ca_pem, contexts=contexts, namespace=namespace, cluster=cluster
            )
        )
    os.replace(tmp, p)
    return p

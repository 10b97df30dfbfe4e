"""The kubeconfig that points kubectl and the Python client at the emulator (contract B)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def kubeconfig_text(server_url: str, view_token: str | None, admin_token: str | None) -> str:
    """Kubeconfig text with contexts ``vcci-lab`` (view, current) and ``vcci-lab-admin`` (admin).

    JSON is valid YAML, so the file is written as JSON: no YAML library is needed and no quoting
    question can arise with tokens.
    """

    def user(token: str | None) -> dict[str, object]:
        return {"token": token} if token else {}

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "vcci-lab", "cluster": {"server": server_url}}],
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


def write_kubeconfig(path: Path | str, server_url: str, view_token: str | None, admin_token: str | None) -> Path:
    """Write the lab kubeconfig with mode 0600 (it holds tokens) and return its path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(kubeconfig_text(server_url, view_token, admin_token))
    os.replace(tmp, p)
    return p

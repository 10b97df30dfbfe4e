"""The git repository of ``VCCI_GIT_REPO``: manifests and Terraform with changes in the last 24 h."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from vcci_lab import _procs
from vcci_nb.errors import LabError

_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: vcci-api
  namespace: vcci-production
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: vcci-api}}
  template:
    metadata:
      labels: {{app: vcci-api}}
    spec:
      containers:
        - name: vcci-api
          image: registry.example.com/vcci/api:{tag}
          env:
            - {{name: DATABASE_POOL_SIZE, value: "{pool}"}}
          resources:
            requests: {{cpu: 500m, memory: 1Gi}}
            limits: {{cpu: "2", memory: 2Gi}}
"""

_TF = """module "rds" {{
  source            = "../../modules/rds"
  identifier        = "vcci-production"
  instance_class    = "{instance}"
  max_connections   = {maxconn}
}}
"""

#: (hours ago, message, files) — three changes inside the last 24 h, the rest older.
_COMMITS: list[tuple[float, str, dict[str, str]]] = [
    (
        24 * 9,
        "Initial production manifests and Terraform",
        {
            "k8s/deployment.yaml": _DEPLOYMENT.format(replicas=3, tag="2.13.0", pool=20),
            "k8s/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vcci-maintenance}\n"
            'data: {enabled: "false"}\n',
            "terraform/environments/production/main.tf": _TF.format(instance="db.r6g.large", maxconn=200),
            "README.md": "# vcci-platform (lab copy)\n",
        },
    ),
    (24 * 3, "Bump vcci-api to 2.14.0", {"k8s/deployment.yaml": _DEPLOYMENT.format(replicas=3, tag="2.14.0", pool=20)}),
    (
        20,
        "terraform: smaller RDS instance class for production (cost review)",
        {"terraform/environments/production/main.tf": _TF.format(instance="db.t4g.large", maxconn=100)},
    ),
    (6, "Bump vcci-api to 2.15.0", {"k8s/deployment.yaml": _DEPLOYMENT.format(replicas=3, tag="2.15.0", pool=20)}),
    (
        2.5,
        "Enable marketing campaign banner; scale vcci-api to 4",
        {"k8s/deployment.yaml": _DEPLOYMENT.format(replicas=4, tag="2.15.0", pool=20)},
    ),
]


def create(repo: Path) -> None:
    """Create the repository once (idempotent); its commits are dated relative to now."""
    if (repo / ".git").exists():
        return
    git = _procs.find_binary("git")
    repo.mkdir(parents=True, exist_ok=True)
    base_env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "VCCI Platform Team",
        "GIT_AUTHOR_EMAIL": "platform@vcci.example.com",
        "GIT_COMMITTER_NAME": "VCCI Platform Team",
        "GIT_COMMITTER_EMAIL": "platform@vcci.example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo),
    }

    def run(*args: str, env: dict[str, str] | None = None) -> None:
        res = subprocess.run([git, *args], cwd=repo, env=env or base_env, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise LabError(f"creating the lab's git repository failed: git {args[0]}: {res.stderr.strip()}")

    run("init", "-q", "-b", "main")
    now = time.time()
    for hours_ago, message, files in _COMMITS:
        for rel, text in files.items():
            path = repo / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        run("add", "-A")
        when = f"@{int(now - hours_ago * 3600)} +0000"
        run("commit", "-q", "-m", message, env={**base_env, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})

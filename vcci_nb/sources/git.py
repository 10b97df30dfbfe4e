"""Recent changes in the deployment repository: the seed's ``git log --since="24 hours ago" -- k8s/``.

The repository comes from the profile's variable (``VCCI_GIT_REPO``); paths and the look-back
from ``changes:``. ``git`` runs with a timeout and no pager, prompts or hooks.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

import pandas as pd

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, git_repo, resolve_profile
from vcci_nb.errors import SourceError, SourceUnavailable
from vcci_nb.evidence import Evidence
from vcci_nb.redact import redact
from vcci_nb.sources._core import collect, not_configured

SOURCE = "git"
_SEP = "\x1f"


def gather_git_log(
    profile: ProfileLike = None,
    *,
    paths: Sequence[str] | None = None,
    since_hours: float | None = None,
    repo: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """Commits touching ``paths`` in the last ``since_hours``: ``commit, at, author, subject, paths``.

    ``paths`` default to the profile's ``changes.git_paths`` (the seed's ``k8s/`` and
    ``terraform/environments/production``); each row lists which of them the commit touched.
    """
    prof = resolve_profile(profile)
    where = repo or git_repo(prof)
    hours = float(since_hours if since_hours is not None else prof.get("changes.since_hours") or 24)
    wanted = list(paths if paths is not None else prof.get("changes.git_paths") or [])
    call = f'git log --since="{hours:g} hours ago" --oneline -- {" ".join(wanted)}'.strip()
    if not where:
        return not_configured("git.log", SOURCE, "VCCI_GIT_REPO is not set", query=call)

    def fetch() -> pd.DataFrame:
        if not os.path.isdir(where):
            raise SourceUnavailable(f"the repository {where} does not exist")
        fmt = _SEP.join(["%H", "%aI", "%an", "%s"])
        cmd = ["git", "-C", where, "--no-pager", "log", f"--since={hours:g} hours ago", f"--format=@@{fmt}",
               "--name-only", "--", *wanted]  # fmt: skip
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat"}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if proc.returncode != 0:
            raise SourceError(f"git log failed: {redact(proc.stderr.strip()[:300])}")
        rows = []
        for block in proc.stdout.split("@@")[1:]:
            head, *files = block.strip("\n").split("\n")
            commit, at, author, subject = [*head.split(_SEP), "", "", "", ""][:4]
            files = [f for f in files if f]
            touched = sorted({p for p in wanted if any(f.startswith(p.rstrip("/")) for f in files)})
            rows.append(
                {
                    "commit": commit[:12],
                    "at": pd.Timestamp(at).tz_convert("UTC") if at else pd.NaT,
                    "author": author,
                    "subject": redact(subject),
                    "paths": ", ".join(touched) or ", ".join(files[:3]),
                    "files": len(files),
                }
            )
        return pd.DataFrame(rows, columns=["commit", "at", "author", "subject", "paths", "files"])

    return collect("git.log", SOURCE, call, fetch, timeout=timeout, target=where, meta={"since_hours": hours})

"""A kernel that only has VCCI_NB_LAB_DIR adopts the lab's variables from its env.sh (Binder, issue 13 item 6)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from vcci_nb.config import adopt_lab_env, load_profile
from vcci_nb.redact import redact

CANARY = "canary-pw-7f3a9"


def test_env_sh_fills_what_is_unset_and_overwrites_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"redis://vcci-diag:{CANARY}@127.0.0.1:6390/0"
    (tmp_path / "env.sh").write_text(
        f"export REDIS_URL={shlex.quote(url)}\nexport PROMETHEUS_URL=http://127.0.0.1:9999\n# a comment\n"
    )
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PROMETHEUS_URL", "http://mine:9090")
    monkeypatch.setenv("VCCI_NB_LAB_DIR", str(tmp_path))
    load_profile("lab")
    import os

    assert os.environ["REDIS_URL"] == url
    assert os.environ["PROMETHEUS_URL"] == "http://mine:9090"  # what was set wins
    assert CANARY not in redact(f"connecting to {url}")  # the password is a known secret now
    assert adopt_lab_env() == []  # idempotent


def test_no_lab_dir_or_no_file_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCCI_NB_LAB_DIR", str(tmp_path / "not-up-yet"))
    assert adopt_lab_env() == []
    monkeypatch.delenv("VCCI_NB_LAB_DIR")
    assert adopt_lab_env() == []

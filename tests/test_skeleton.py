"""The pieces every other part builds on: errors, redaction, evidence, profiles, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from vcci_nb import ConfigError, Evidence, EvidenceStore
from vcci_nb.config import load_profile
from vcci_nb.redact import redact, redact_url, register_secret

ROOT = Path(__file__).resolve().parent.parent


def test_redact_masks_url_passwords_tokens_and_registered_secrets() -> None:
    register_secret("canary-Zq81x")
    text = "postgresql://vcci:s3cr3t@db:5432/x Authorization: Bearer abc.def token=xyz canary-Zq81x"
    out = redact(text)
    assert "s3cr3t" not in out and "abc.def" not in out and "xyz" not in out and "canary-Zq81x" not in out
    assert "postgresql://vcci:***@db:5432/x" in out
    assert redact_url("redis://u:pw1234@h:6379/0") == "redis://u:***@h:6379/0"


def test_evidence_round_trip_and_redaction(tmp_path: Path) -> None:
    register_secret("canary-ev-991")
    frame = pd.DataFrame({"pid": [1, 2], "query": ["select 1", "password canary-ev-991"]})
    ev = Evidence(
        name="pg.activity",
        source="postgres",
        query="postgresql://a:canary-ev-991@h/db",
        frame=frame,
        message="failed with canary-ev-991",
    )
    assert "canary-ev-991" not in repr(ev)
    ev.save(tmp_path)
    for f in tmp_path.iterdir():
        assert b"canary-ev-991" not in f.read_bytes(), f
    back = Evidence.load(tmp_path, "pg.activity")
    assert list(back.frame["pid"]) == [1, 2]
    assert back.status == "ok" and back.source == "postgres"


def test_evidence_store_replays_frozen_evidence_without_calling_the_source(tmp_path: Path) -> None:
    Evidence(name="redis.ping", source="redis", query="PING", frame=pd.DataFrame({"ms": [0.3]})).save(tmp_path)

    def boom() -> Evidence:
        raise AssertionError("a replay must not touch the live source")

    store = EvidenceStore(replay_from=str(tmp_path))
    assert store.gather("redis.ping", boom).frame["ms"].iloc[0] == 0.3
    missing = store.gather("kube.pods", boom)
    assert missing.status == "unavailable" and "not captured" in missing.message


def test_evidence_rejects_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="status"):
        Evidence(name="x", source="y", query="z", status="broken")  # type: ignore[arg-type]


def test_profiles_load_and_extend() -> None:
    lab = load_profile("lab")
    prod = load_profile("production")
    assert lab.namespace == "vcci-production"
    assert prod.namespace == "vcci-production"
    assert prod.get("postgres.database") == "vcci_production"
    assert prod.get("postgres.app_role") == lab.get("postgres.app_role")
    assert lab.threshold("latency_p95_s") == 2.0


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known profiles: .*lab"):
        load_profile("nope")


def test_cli_help_lists_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "vcci_nb", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "vcci-nb" in out.stdout


def test_the_product_package_never_imports_the_lab() -> None:
    import ast

    offenders = []
    for path in sorted((ROOT / "vcci_nb").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "vcci_lab"]
    assert offenders == []


def test_lab_commands_come_from_the_lab_s_entry_points() -> None:
    out = subprocess.run([sys.executable, "-m", "vcci_nb", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "start, inspect, break and stop the local VCCI platform" in out.stdout
    assert "drive an incident through it" in out.stdout


def test_a_missing_lab_says_to_install_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    from vcci_nb.cli import main

    broken = importlib.metadata.EntryPoint("demo", "vcci_lab_gone.cli:register", "vcci_nb.commands")
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group: [broken] if group == "vcci_nb.commands" else []
    )
    assert main(["lab", "--dir", "somewhere", "up", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "`vcci-nb lab` is not available: the lab (package vcci_lab) is not installed" in err
    assert "./dev setup" in err
    assert main(["demo", "--keep"]) == 2
    err = capsys.readouterr().err
    assert "`vcci-nb demo` is not available: its package cannot be imported" in err and "vcci_lab_gone" in err

"""The run environment: every ``VCCI_NB_*`` variable is read through ``vcci_nb.runenv``, and documented.

A notebook run gets its incident, record folder, run and evidence folders from the variables the
runner writes; a Kubernetes Job gets the same list. These check that what the runner writes is
what a run reads back, that nothing reads a ``VCCI_NB_*`` variable behind the typed object's back
(so the one table in docs/ARCHITECTURE.md is the whole list), and that serve's token stays out of
reprs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from vcci_nb import runenv
from vcci_nb.runenv import SERVE_ATTEMPT, ZYGOTE_RESTORE, RunEnv, ServeEnv

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\bVCCI_NB_[A-Z0-9_]*[A-Z0-9]\b")


def test_what_the_runner_writes_is_what_a_run_reads_back() -> None:
    written = RunEnv.for_run(
        incident_id="INC-20260106-001",
        outputs=Path("/records"),
        run_id="r-1",
        profile="prod",
        evidence_dir=Path("/records/INC-20260106-001/evidence/01_triage"),
    )
    env = written.to_env()
    assert env == {
        "VCCI_NB_INCIDENT_ID": "INC-20260106-001",
        "VCCI_NB_OUTPUTS": "/records",
        "VCCI_NB_RUN_ID": "r-1",
        "VCCI_NB_PROFILE": "prod",
        "VCCI_NB_EVIDENCE_DIR": "/records/INC-20260106-001/evidence/01_triage",
    }
    assert RunEnv.from_environ(env) == written
    assert {"name": "VCCI_NB_INCIDENT_ID", "value": "INC-20260106-001"} in written.to_container_env()
    inherited = RunEnv.from_environ({"VCCI_NB_ACTOR": "alice", "VCCI_NB_PROFILE": "lab"})
    merged = written.over(inherited)
    assert merged.actor == "alice" and merged.profile == "prod"  # the run's own values win


def test_values_are_typed_and_empty_means_unset() -> None:
    assert RunEnv.from_environ({"VCCI_NB_INTERACTIVE": "0"}).interactive is False
    assert RunEnv.from_environ({"VCCI_NB_INTERACTIVE": " Yes "}).interactive is True
    assert RunEnv.from_environ({"VCCI_NB_INTERACTIVE": " "}).interactive is None
    assert RunEnv.from_environ({"VCCI_NB_OUTPUTS": ""}).outputs is None
    assert RunEnv.from_environ({"VCCI_NB_PARAMETERS": "/etc/vcci"}).parameters == Path("/etc/vcci")
    assert RunEnv(interactive=False).to_env() == {"VCCI_NB_INTERACTIVE": "0"}


def test_the_serve_token_never_shows_in_a_repr() -> None:
    canary = "canary-token-8f2e61c0d9"
    said = ServeEnv.from_environ({"VCCI_NB_SERVE_TOKEN": canary, "VCCI_NB_STATE_DIR": "/state"})
    assert said.token == canary and said.state_dir == Path("/state")
    assert canary not in repr(said) and canary not in str(said)


def _reads_outside_runenv() -> list[str]:
    """``os.environ[...]``/``.get(...)``/``os.getenv(...)`` with a ``VCCI_NB_*`` literal, outside runenv.py."""
    found = []
    for path in sorted((ROOT / "vcci_nb").rglob("*.py")):
        if path.name == "runenv.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    return found


def test_no_module_names_a_variable_the_run_environment_does_not_declare() -> None:
    # A VCCI_NB_* string in code (not prose) outside runenv.py is a read or write behind its back.
    assert _reads_outside_runenv() == []
    declared = {v.env for v in runenv.table()} | {SERVE_ATTEMPT, ZYGOTE_RESTORE}
    mentioned = set()
    for path in (ROOT / "vcci_nb").rglob("*.py"):
        mentioned |= set(NAME.findall(path.read_text()))
    assert mentioned - declared == set()


def test_the_architecture_doc_lists_every_variable() -> None:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    rows = set(re.findall(r"^\| `(VCCI_NB_[A-Z_]+)` \|", doc, re.M))
    assert rows == {v.env for v in runenv.table()}

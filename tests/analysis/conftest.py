"""The analysis tests use the same real-server fixtures as the sources tests (tests/sources/conftest.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "vcci_nb_test_source_fixtures", Path(__file__).resolve().parent.parent / "sources" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _fixtures  # dataclasses look their module up there
_spec.loader.exec_module(_fixtures)

kube_emu = _fixtures.kube_emu
kube_env = _fixtures.kube_env
hanging_port = _fixtures.hanging_port
closed_port = _fixtures.closed_port
KubeEmu = _fixtures.KubeEmu


# --- cause above symptom --------------------------------------------------------------------------

import pytest  # noqa: E402

from vcci_nb.analysis.model import Finding  # noqa: E402

#: What every real incident also records: alerts, error rate, latency and loud logs, all critical.
#: None of them may outrank the fault's own causal finding.
INCIDENT_SYMPTOMS = [
    Finding("alerts.firing", "critical", "4 alert(s) firing: VcciApiHighErrorRate, VcciDbPoolNearlyExhausted, ..."),
    Finding("metrics.error_rate", "critical", "5xx share of requests 7.1 % (threshold 5 %)"),
    Finding("metrics.latency", "high", "p95 latency 2.4 s (threshold 2 s)"),
    Finding("logs.errors", "critical", "37 ERROR lines in 5 min; loudest: external API 503"),
]


@pytest.fixture
def cause_first() -> object:
    """``cause_first(evidence, findings, {"db.pool_exhaustion"})``: with an incident's symptoms
    added, the decision tree's most likely branch and the postmortem's root cause are the
    expected cause."""
    from vcci_nb.analysis import evaluate
    from vcci_nb.story import facts, root_cause

    def check(evidence: object, findings: list[Finding], expected: set[str]) -> str:
        found = list(findings) + INCIDENT_SYMPTOMS
        tree = evaluate(evidence or {}, findings=found)  # type: ignore[arg-type]
        assert tree.top is not None, "no branch of the tree is likely"
        assert set(tree.top.findings) & expected, (tree.top.cause, tree.top.findings)
        root = root_cause(facts(found), tree.top.to_dict())
        assert root is not None and root.key in expected, root
        return tree.top.cause

    return check

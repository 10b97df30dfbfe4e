"""Honest degraded mode (issue 13, item 5): a notebook whose kube context is missing says so.

Before: six "[ERROR] … failed unexpectedly … report it" lines, then "Findings: none. Nothing here
crossed a threshold." although nothing had been checked. Now the findings name the source, the
cause and the fix, and the headline counts the checks that could not run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _nbtools import RunNb, errors, findings, output_text

pytestmark = pytest.mark.lab


def test_system_notebook_with_a_kubeconfig_lacking_the_context(
    run_nb: RunNb, lab_env: dict[str, str], tmp_path: Path
) -> None:
    doc = json.loads(Path(lab_env["KUBECONFIG"]).read_text())
    template = doc["contexts"][0]["context"]
    doc["contexts"] = [{"name": name, "context": dict(template)} for name in ("prod-east", "prod-west")]
    doc["current-context"] = "prod-east"
    kc = tmp_path / "kubeconfig"
    kc.write_text(json.dumps(doc))

    nb = run_nb("03_investigate_system.ipynb", env={"KUBECONFIG": str(kc)})
    assert not errors(nb)
    text = output_text(nb)
    assert "report it" not in text and "failed unexpectedly" not in text
    assert "Nothing here crossed a threshold" not in text

    [not_run] = [f for f in findings(nb) if f["key"] == "checks.not_run"]
    assert not_run["details"]["source"] == "kubernetes" and not_run["details"]["cause"] == "config"
    summary = not_run["summary"]
    assert "'vcci-lab'" in summary and "prod-east, prod-west" in summary
    assert "connections.kubernetes.context in parameters/environments/lab.yaml" in summary
    failed = len(not_run["details"]["checks_failed"])
    total = not_run["details"]["checks_total"]
    assert 0 < failed < total  # Prometheus still answered
    assert f"{failed} of {total} checks could not run: kubernetes (misconfigured)" in text

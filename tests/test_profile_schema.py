"""The profile names every platform name; a profile that lacks one, or holds a bad one, says which
key in which file (issue 13 item 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vcci_nb.config import NAME_KEYS, load_profile
from vcci_nb.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "parameters" / "environments", tmp_path / "environments")
    monkeypatch.setenv("VCCI_NB_PARAMETERS", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("name", ["lab", "staging", "production", "lab-other"])
def test_every_shipped_profile_names_everything(name: str) -> None:
    names = load_profile(name).names
    assert names.api_deployment and names.app_selector and names.job and names.expected_indexes


def test_a_missing_and_a_malformed_name_are_both_reported_with_the_file(params: Path) -> None:
    (params / "environments" / "acme.yaml").write_text(
        "extends: lab\nkubernetes:\n  app_selector: 'not a selector'\nprometheus:\n  series: {tenant_label: 'a-b'}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_profile("acme")
    text = str(err.value)
    assert "acme.yaml" in text and "lab.yaml" in text
    assert "kubernetes.app_selector must be a label selector" in text
    assert "prometheus.series.tenant_label must be a Prometheus label name" in text


def test_a_profile_without_the_names_lists_each_missing_key(params: Path) -> None:
    (params / "environments" / "bare.yaml").write_text("name: bare\nkubernetes: {namespace: x}\n")
    with pytest.raises(ConfigError) as err:
        load_profile("bare")
    for key in NAME_KEYS:
        if key != "kubernetes.namespace":
            assert f"{key} is missing" in str(err.value)


def test_the_other_flavour_profile_shares_no_name_with_the_lab() -> None:
    lab, other = load_profile("lab").names, load_profile("lab-other").names
    for field in ("namespace", "api_deployment", "api_container", "app_selector", "ingress", "maintenance_configmap",
                  "data_pvc", "database", "app_role", "app_name", "diagnostics_role", "mitigation_role",
                  "cache_pattern", "job"):  # fmt: skip
        assert getattr(lab, field) != getattr(other, field), field
    assert not set(lab.deployments) & set(other.deployments)
    lab_p, other_p = load_profile("lab"), load_profile("lab-other")
    assert lab_p.query("errors_5xx") != other_p.query("errors_5xx") and "code=" in other_p.query("errors_5xx")

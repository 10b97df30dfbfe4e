"""One grammar for Kubernetes names: a profile, an alert route's parameter and an action agree.

They used to carry three patterns: the profile's let ``a..b`` through, the route's a 64-character
part of a dotted name, both of which the API server refuses. Now all three ask vcci_nb.policy.
"""

from __future__ import annotations

import pytest

from vcci_nb.alerts.routing import check_value
from vcci_nb.config import _check_name
from vcci_nb.kubeapi import is_dns1123_subdomain as client_check
from vcci_nb.policy import is_dns1123_label, is_dns1123_subdomain

TOO_LONG_PART = "a" * 64 + ".svc"


@pytest.mark.parametrize("name", ["a..b", TOO_LONG_PART, "-api", "API", "a" * 254])
def test_names_kubernetes_refuses_are_refused_everywhere(name: str) -> None:
    assert not is_dns1123_subdomain(name) and not client_check(name)
    assert check_value("dns1123_subdomain", name) == "is not a DNS-1123 subdomain"
    assert not _check_name("dns1123_subdomain", name)


@pytest.mark.parametrize("name", ["vcci-api", "ledger-web.v2", "a" * 63 + ".b"])
def test_valid_names_pass_everywhere(name: str) -> None:
    assert is_dns1123_subdomain(name) and check_value("dns1123_subdomain", name) is None
    assert _check_name("dns1123_subdomain", name)
    assert is_dns1123_label("vcci-production") and not is_dns1123_label("a" * 64)

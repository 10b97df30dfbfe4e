"""Pure functions from Evidence to Findings: no I/O here."""

from vcci_nb.analysis.model import FINDING_MIME, SEVERITY_ORDER, Finding, Severity, sort_findings

__all__ = ["FINDING_MIME", "SEVERITY_ORDER", "Finding", "Severity", "sort_findings"]

"""vcci_nb: the helper library behind the VCCI incident-response notebooks.

Layering (see DESIGN.md): sources → evidence → analysis/charts → notebooks; state changes only
through ``vcci_nb.actions``; the runner and the alert receiver never reach into sources.
"""

from vcci_nb.analysis.model import Finding
from vcci_nb.errors import (
    ActionRefused,
    ConfigError,
    LabError,
    ParameterError,
    RecordError,
    RunError,
    SourceError,
    VcciNbError,
)
from vcci_nb.evidence import Evidence, EvidenceStore, Window

__version__ = "0.1.0"

__all__ = [
    "ActionRefused",
    "ConfigError",
    "Evidence",
    "EvidenceStore",
    "Finding",
    "LabError",
    "ParameterError",
    "RecordError",
    "RunError",
    "SourceError",
    "VcciNbError",
    "Window",
    "__version__",
]

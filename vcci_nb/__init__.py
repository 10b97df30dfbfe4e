"""vcci_nb: the helper library behind the VCCI incident-response notebooks.

Layering (see DESIGN.md): sources → evidence → analysis/charts → notebooks; state changes only
through ``vcci_nb.actions``; the runner and the alert receiver never reach into sources.

Names are imported lazily: ``import vcci_nb.errors`` or ``vcci-nb --help`` must not pay for
pandas, which ``Evidence`` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from vcci_nb.analysis.model import Finding
    from vcci_nb.evidence import Evidence, EvidenceStore, Window

__version__ = "0.1.0"

_LAZY = {
    "Evidence": "vcci_nb.evidence",
    "EvidenceStore": "vcci_nb.evidence",
    "Window": "vcci_nb.evidence",
    "Finding": "vcci_nb.analysis.model",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vcci_nb' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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

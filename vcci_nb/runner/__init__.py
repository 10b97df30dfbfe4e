"""The runner: notebooks and bundles executed with papermill into the incident record.

Public API::

    from vcci_nb.runner import run, resolve_target, load_bundles
    result = run("triage", "INC-20260106-001", params={"namespace": "vcci-production"})
    result.ok  # every notebook succeeded

See :mod:`vcci_nb.runner.core` for the order of work, :mod:`vcci_nb.runner.worker` for how a
notebook is executed, :mod:`vcci_nb.runner.params` for parameter checking and
:mod:`vcci_nb.runner.html` for the offline HTML copies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vcci_nb.runner.bundles import Bundle, bundles_file, load_bundles, resolve_target
    from vcci_nb.runner.core import DEFAULT_TIMEOUT, NotebookResult, RunResult, default_jobs, run
    from vcci_nb.runner.params import Parameter, declared_parameters

#: Where each public name lives. Imported on first use, so that ``vcci-nb serve``, which only
#: needs :mod:`vcci_nb.runner.bundles`, does not load the runner core and what it imports.
_HOMES: dict[str, str] = {
    "Bundle": "bundles",
    "bundles_file": "bundles",
    "load_bundles": "bundles",
    "resolve_target": "bundles",
    "DEFAULT_TIMEOUT": "core",
    "NotebookResult": "core",
    "RunResult": "core",
    "default_jobs": "core",
    "run": "core",
    "Parameter": "params",
    "declared_parameters": "params",
}

__all__ = [
    "DEFAULT_TIMEOUT",
    "Bundle",
    "NotebookResult",
    "Parameter",
    "RunResult",
    "bundles_file",
    "declared_parameters",
    "default_jobs",
    "load_bundles",
    "resolve_target",
    "run",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value

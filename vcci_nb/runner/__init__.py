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

from vcci_nb.runner.bundles import Bundle, bundles_file, load_bundles, resolve_target
from vcci_nb.runner.core import DEFAULT_TIMEOUT, NotebookResult, RunResult, default_jobs, run
from vcci_nb.runner.params import Parameter, declared_parameters

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

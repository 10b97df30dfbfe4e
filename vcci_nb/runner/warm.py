"""Imported by each pre-started kernel before a notebook runs, so its first cells start warm.

The runner starts kernels ahead of time with ``IPKernelApp.exec_lines`` importing this module;
the notebook then finds pandas, Plotly and vcci_nb already in ``sys.modules``. Nothing is bound in
the notebook's namespace. A failed import is ignored: the notebook's own import reports it.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)

WARM_MODULES: tuple[str, ...] = ("pandas", "plotly.graph_objects", "plotly.io", "vcci_nb")

for _name in WARM_MODULES:
    try:
        importlib.import_module(_name)
    except Exception as exc:  # the notebook's own import will say what is wrong
        log.debug("warm import of %s failed: %s", _name, exc)

# Plotly loads its validators and templates on first use (~0.5 s): pay that while booting.
try:
    import plotly.graph_objects as _go
    import plotly.io as _pio

    _pio.to_json(_go.Figure(_go.Scatter(x=[0, 1], y=[0, 1]), layout={"title": {"text": "warm"}}))
    del _go, _pio
except Exception as exc:
    log.debug("warming plotly failed: %s", exc)

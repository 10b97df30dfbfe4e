"""Imported by each kernel before a notebook runs, so its first cells start warm.

The runner starts kernels with ``IPKernelApp.exec_lines`` importing this module (and the kernel
fork server imports it once for all the kernels it forks); the notebook then finds pandas, Plotly
and vcci_nb already in ``sys.modules``. Nothing is bound in the notebook's namespace. A failed
import is ignored: the notebook's own import reports it.
"""

from __future__ import annotations

import importlib
import logging
import sys

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


def _renderers() -> None:
    """Import Plotly's renderers (its first ``fig.show()`` does: nbformat, jsonschema) now.

    jsonschema would import rfc3987_syntax, which builds a grammar at import (1.4 s quiet, 5 s
    under load) only for its "iri" format checker; like :mod:`vcci_nb.record`, go without it.
    The sentinel is removed afterwards, so ``import rfc3987_syntax`` in a notebook still works;
    jsonschema's format checker in these kernels has no "iri" check.
    """
    blocked = "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        import plotly.io as pio

        _ = pio.renderers.default  # imports plotly.io._renderers; inside a kernel it picks the kernel's renderer
    except Exception as exc:
        log.debug("warming plotly's renderers failed: %s", exc)
    finally:
        if blocked and sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]


_renderers()

"""The lab: a local VCCI platform of real servers (and a Kubernetes API emulator) on 127.0.0.1.

    from vcci_lab import Lab
    lab = Lab(".lab")
    lab.up(progress=print)
    with lab.fault("pool-exhaustion"):
        ...
    lab.down()

The product package ``vcci_nb`` never imports this one: it is for demos, drills and tests. Its
commands (``vcci-nb lab ...``, ``vcci-nb demo``) reach the CLI through the ``vcci_nb.commands``
entry points declared in pyproject.toml.

Names are imported lazily, so that ``vcci-nb --help`` (which loads ``vcci_lab.cli``) and
``python -m vcci_lab.kube`` do not pay for the lab's servers' modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vcci_lab._faults import PRESET_SUMMARIES, PRESETS
    from vcci_lab._lab import Lab

    #: Fault names ``Lab.inject`` accepts, in the issue's order.
    FAULTS: tuple[str, ...]

_LAZY = {"Lab": "vcci_lab._lab", "PRESETS": "vcci_lab._faults", "PRESET_SUMMARIES": "vcci_lab._faults"}


def __getattr__(name: str) -> Any:
    if name == "FAULTS":
        return tuple(importlib.import_module("vcci_lab._faults").FAULTS)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vcci_lab' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["FAULTS", "PRESETS", "PRESET_SUMMARIES", "Lab"]

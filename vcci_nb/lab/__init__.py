"""The lab: a local VCCI platform of real servers (and a Kubernetes API emulator) on 127.0.0.1.

    from vcci_nb.lab import Lab
    lab = Lab(".lab")
    lab.up(progress=print)
    with lab.fault("pool-exhaustion"):
        ...
    lab.down()

Nothing else in ``vcci_nb`` imports this package: it is for demos, drills and tests.
"""

from __future__ import annotations

from vcci_nb.lab._faults import FAULTS as _FAULT_SPECS
from vcci_nb.lab._faults import PRESET_SUMMARIES, PRESETS
from vcci_nb.lab._lab import Lab

#: Fault names ``Lab.inject`` accepts, in the issue's order.
FAULTS: tuple[str, ...] = tuple(_FAULT_SPECS)

__all__ = ["FAULTS", "PRESETS", "PRESET_SUMMARIES", "Lab"]

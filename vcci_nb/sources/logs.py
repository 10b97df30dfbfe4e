"""Log-line parsing and error signatures: :mod:`vcci_nb.logparse` (a shared leaf), re-exported here.

The parsing is pure, so it lives below both the sources (which gather logs) and the charts and
analysis (which read them); this module keeps ``vcci_nb.sources.logs`` importable as before.
"""

from __future__ import annotations

from vcci_nb.logparse import (
    ERROR_LEVELS,
    LEVELS,
    MASKS,
    SIGNATURE_MAX_CHARS,
    group_signatures,
    parse_lines,
    signatures_of,
)

__all__ = ["ERROR_LEVELS", "LEVELS", "MASKS", "SIGNATURE_MAX_CHARS", "group_signatures", "parse_lines", "signatures_of"]

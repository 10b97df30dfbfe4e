"""A lab of a test's own, beside the session's: for tests that must not see what others did to it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vcci_lab import Lab


@contextmanager
def own_lab(prefix: str, *, up: bool = True, flavour: str | None = None) -> Iterator[Lab]:
    """A Lab in a fresh folder (started unless ``up`` is false), stopped and removed afterwards.

    It stops with this process even if the session is killed (``stop_with``), and its folder is
    traversable by the postgres user (root runs PostgreSQL as postgres).
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o711)
    lab = Lab(path)
    try:
        if up:
            lab.up(stop_with=os.getpid(), remove_dir_on_stop=True, flavour=flavour)
        yield lab
    finally:
        lab.down()
        shutil.rmtree(path, ignore_errors=True)

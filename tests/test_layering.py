"""The import-linter contracts (pyproject.toml, docs/ARCHITECTURE.md) hold, and they can fail.

``./dev test`` runs ``lint-imports`` on the tree; this checks the contracts are not vacuous: the
same contracts, run on a copy of the packages into which one upward import is injected (a source
importing the notebook helpers, an analysis module reading the config), report it and exit non-zero.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def _copy(tmp: Path) -> Path:
    for pkg in ("vcci_nb", "vcci_lab"):
        shutil.copytree(ROOT / pkg, tmp / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--config", "pyproject.toml", "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _inject(tree: Path, module: str, line: str) -> None:
    path = tree / module
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "\n" + rest)


def test_the_contracts_hold_on_the_tree_as_it_is(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("vcci_nb/sources/http.py", "import vcci_nb.notebook  # upward", "sources gather"),
        ("vcci_nb/analysis/compare.py", "import vcci_nb.config  # I/O in analysis", "analysis judges"),
        ("vcci_nb/policy.py", "import vcci_nb.evidence  # a leaf importing up", "nothing imports upward"),
        ("vcci_nb/record.py", "import vcci_lab  # the product importing the lab", "does not import the lab"),
    ],
)
def test_an_injected_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    tree = _copy(tmp_path)
    _inject(tree, module, line)
    done = _lint(tree)
    assert done.returncode != 0, done.stdout[-3000:]
    report = done.stdout.split("Broken contracts", 1)[-1]
    assert broken in report, done.stdout[-3000:]

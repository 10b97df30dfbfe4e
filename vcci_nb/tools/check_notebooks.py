"""Fail when a notebook under the given folders carries outputs, lacks a ``parameters`` cell, or hides
what it should not.

Notebooks in ``notebooks/`` are committed clean; executed copies belong in ``outputs/``.

Code one click away: a cell that only imports starts collapsed in JupyterLab (cell metadata
``jupyter.source_hidden``; a click on the "…" shows it, and it runs with Run All like any other).
Nothing else may be hidden by metadata: not the parameters cell (a person edits it), not prose,
and never outputs (``jupyter.outputs_hidden``), because the results are what the reader came for.
Exported HTML ignores this metadata and shows every cell's source, queries included.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

_IMPORT_LINE = re.compile(r"^(from \S+ import |import |\s+\S|\))")


def import_only(cell: dict[str, Any]) -> bool:
    """A code cell whose every line is an import (continuation lines of a parenthesised import count)."""
    if cell.get("cell_type") != "code":
        return False
    source = cell.get("source") or ""
    lines = [ln for ln in ("".join(source) if isinstance(source, list) else source).splitlines() if ln.strip()]
    return (
        bool(lines)
        and re.match(r"^(from|import) ", lines[0]) is not None
        and all(_IMPORT_LINE.match(ln) for ln in lines)
    )


def _hidden(cell: dict[str, Any], what: str) -> bool:
    return bool((cell.get("metadata", {}).get("jupyter") or {}).get(what))


def visibility_problems(path: Path, cells: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for i, c in enumerate(cells):
        tags = c.get("metadata", {}).get("tags") or []
        if _hidden(c, "outputs_hidden"):
            found.append(f"{path}: cell {i} hides its outputs (jupyter.outputs_hidden); results stay visible")
        if _hidden(c, "source_hidden"):
            if "parameters" in tags:
                found.append(f"{path}: cell {i} is the parameters cell and is collapsed; a person edits it")
            elif not import_only(c):
                found.append(f"{path}: cell {i} is collapsed (jupyter.source_hidden) but does more than import")
        elif import_only(c):
            found.append(
                f"{path}: cell {i} only imports; collapse it (metadata jupyter.source_hidden: true) "
                "so the reader sees prose and results first"
            )
    return found


def problems(folder: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        try:
            nb = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            found.append(f"{path}: not a readable notebook ({exc})")
            continue
        code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        if any(c.get("outputs") or c.get("execution_count") is not None for c in code):
            found.append(f"{path}: has outputs or execution counts (clear them before committing)")
        if code and "parameters" not in (code[0].get("metadata", {}).get("tags") or []):
            found.append(f"{path}: first code cell is not tagged 'parameters'")
        found += visibility_problems(path, nb.get("cells", []))
    return found


def main(argv: list[str]) -> int:
    folders = [Path(a) for a in argv] or [Path("notebooks")]
    found = [p for f in folders if f.exists() for p in problems(f)]
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

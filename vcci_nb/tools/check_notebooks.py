"""Fail when a notebook under the given folders carries outputs or lacks a ``parameters`` cell.

Notebooks in ``notebooks/`` are committed clean; executed copies belong in ``outputs/``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


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
    return found


def main(argv: list[str]) -> int:
    folders = [Path(a) for a in argv] or [Path("notebooks")]
    found = [p for f in folders if f.exists() for p in problems(f)]
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

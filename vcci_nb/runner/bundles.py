"""Bundles (``parameters/bundles.yaml``) and turning a run TARGET into notebook paths.

A TARGET is a notebook path (``notebooks/01_triage.ipynb``), a notebook name
(``01_triage``, ``scenarios/disk_full``) or a bundle name (``triage``). Every notebook a
bundle lists is checked before anything runs, and each missing one is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcci_nb import runenv
from vcci_nb.config import parameters_dir, read_yaml
from vcci_nb.errors import ConfigError, RunError


@dataclass(frozen=True)
class Bundle:
    name: str
    description: str
    notebooks: tuple[str, ...]
    #: Kubernetes resources of the Job that runs this bundle (``serve --executor kubernetes``):
    #: ``{requests: {cpu, memory}, limits: {memory}}``; None: the profile's default.
    resources: dict[str, dict[str, str]] | None = None


def bundles_file() -> Path:
    """``$VCCI_NB_BUNDLES`` or ``parameters/bundles.yaml``."""
    return runenv.current().bundles or parameters_dir() / "bundles.yaml"


def project_root(path: Path) -> Path:
    """Bundle paths are relative to the folder that holds ``parameters/`` (the repository root)."""
    return path.resolve().parent.parent


def load_bundles(path: Path | None = None) -> dict[str, Bundle]:
    """Read and check the bundles file; a malformed one is a :class:`ConfigError` naming the problem."""
    path = path or bundles_file()
    raw: Any = read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("bundles"), dict):
        raise ConfigError(f"{path} must hold a mapping with a 'bundles:' mapping of name → {{notebooks: [...]}}.")
    out: dict[str, Bundle] = {}
    for name, spec in raw["bundles"].items():
        if isinstance(spec, list):
            spec = {"notebooks": spec}
        notebooks = spec.get("notebooks") if isinstance(spec, dict) else None
        if not isinstance(notebooks, list) or not notebooks or not all(isinstance(n, str) for n in notebooks):
            raise ConfigError(f"Bundle {name!r} in {path} needs a non-empty 'notebooks:' list of notebook paths.")
        resources = _resources(name, spec.get("resources"), path)
        out[str(name)] = Bundle(str(name), str(spec.get("description") or ""), tuple(notebooks), resources)
    return out


def _resources(bundle: object, raw: Any, path: Path) -> dict[str, dict[str, str]] | None:
    """A bundle's ``resources:`` (requests/limits of cpu, memory, ephemeral-storage), checked."""
    if raw is None:
        return None
    from vcci_nb.kubeapi import quantity

    where = f"Bundle {bundle!r} in {path}"
    if not isinstance(raw, dict) or not set(raw) <= {"requests", "limits"}:
        raise ConfigError(f"{where}: 'resources:' must be a mapping with requests: and/or limits:.")
    out: dict[str, dict[str, str]] = {}
    for part, values in raw.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: resources.{part} must map cpu/memory to quantities (500m, 2Gi).")
        for res, value in values.items():
            if res not in ("cpu", "memory", "ephemeral-storage"):
                raise ConfigError(f"{where}: resources.{part}.{res}: only cpu, memory and ephemeral-storage.")
            try:
                quantity(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: resources.{part}.{res}: {exc}") from exc
        out[str(part)] = {str(k): str(v) for k, v in values.items()}
    for res, limit in out.get("limits", {}).items():
        request = out.get("requests", {}).get(res)
        if request is not None and quantity(request) > quantity(limit):
            raise ConfigError(f"{where}: resources.requests.{res} ({request}) is more than its limit ({limit}).")
    return out


def _candidates(target: str, root: Path) -> list[Path]:
    given = Path(target)
    names = [given] if given.suffix == ".ipynb" else [given.with_name(given.name + ".ipynb"), given]
    out: list[Path] = []
    for name in names:
        out.append(name if name.is_absolute() else Path.cwd() / name)
        if not name.is_absolute():
            out.append(root / name)
            out.append(root / "notebooks" / name)
            out.append(root / "notebooks" / "scenarios" / name)
    return out


def resolve_target(target: str, path: Path | None = None) -> tuple[list[Path], bool]:
    """The notebooks ``target`` names, and whether it was a bundle; :class:`RunError` says what exists instead."""
    path = path or bundles_file()
    root = project_root(path)
    bundles = load_bundles(path) if path.exists() else {}
    if target in bundles:
        paths = [(p if Path(p).is_absolute() else root / p) for p in bundles[target].notebooks]
        missing = [str(p) for p in paths if not Path(p).is_file()]
        if missing:
            raise RunError(
                f"Bundle {target!r} lists notebooks that do not exist: {', '.join(missing)}. "
                f"Write them, or fix the bundle in {path}. Nothing was run."
            )
        return [Path(p).resolve() for p in paths], True
    for candidate in _candidates(target, root):
        if candidate.is_file() and candidate.suffix == ".ipynb":
            return [candidate.resolve()], False
    known = ", ".join(sorted(bundles)) or "none"
    raise RunError(
        f"No notebook or bundle named {target!r}. Bundles ({path}): {known}. "
        "A notebook can be given by path (notebooks/01_triage.ipynb) or name (01_triage). Nothing was run."
    )

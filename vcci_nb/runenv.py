"""One typed run environment: every ``VCCI_NB_*`` variable vcci_nb reads, read in one place.

A leaf (standard library only). Code that needs a ``VCCI_NB_*`` value asks :func:`current` (or
:meth:`RunEnv.from_environ` with a mapping of its own) instead of ``os.environ``; code that starts
a run builds a :class:`RunEnv` and writes it with :meth:`RunEnv.to_env` (a process's environment)
or :meth:`RunEnv.to_container_env` (a Kubernetes container's ``env``). The variables, what sets
them and who reads them are listed in one table in docs/ARCHITECTURE.md ("The run environment").

Two kinds of value live here:

- *per run* (``scope="run"``): what ``vcci-nb run`` writes for each notebook it executes (the
  incident, where the record lives, the run, the profile, the evidence folders). A notebook gets
  the incident ID both as its ``incident_id`` parameter (when it declares one; that wins) and
  here, so that ``setup()`` in a notebook without the parameter still finds its incident.
- *inherited* (``scope="process"``): settings a person or a deployment sets once for every
  process (where the YAML files live, who is acting, whether a person may click).

``vcci-nb serve``'s own settings (its state folder, token, run command) are :class:`ServeEnv`.
Nothing here reads a file or checks that a path exists: the reader decides what a value means.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Self

#: serve's mark on the environment of each run it starts (its pid scan finds orphans by it); never read back here.
SERVE_ATTEMPT = "VCCI_NB_SERVE_ATTEMPT"
#: The fork server's note to its zygote of the variables to restore (written and read by runner/forkserver.py).
ZYGOTE_RESTORE = "VCCI_NB_ZYGOTE_RESTORE"

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Var:
    """One variable: its name, the field that holds it, its scope (``run`` or ``process``), what it is."""

    env: str
    field: str
    scope: str
    doc: str
    secret: bool = False


def _decode(kind: Any, raw: str) -> Any:
    """A variable's text as its field's type; an empty value is None (unset)."""
    text = raw.strip()
    if not text:
        return None
    kind = str(kind)
    if kind.startswith("Path"):
        return Path(raw)
    if kind.startswith("bool"):
        return text.lower() in _TRUE
    return raw


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class _Vars:
    """Shared reading and writing for the dataclasses below (``VARS`` names each field's variable)."""

    VARS: ClassVar[tuple[Var, ...]] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read the variables from ``environ`` (default: this process's environment, now)."""
        env = os.environ if environ is None else environ
        kinds = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
        values = {v.field: _decode(kinds[v.field], env[v.env]) for v in cls.VARS if v.env in env}
        return cls(**values)

    @classmethod
    def var(cls, name: str) -> str:
        """The variable behind a field: ``RunEnv.var("outputs")`` → ``VCCI_NB_OUTPUTS``."""
        for v in cls.VARS:
            if v.field == name:
                return v.env
        raise KeyError(name)

    def to_env(self) -> dict[str, str]:
        """The variables that are set, as a process environment takes them (unset fields are left out)."""
        return {v.env: _encode(getattr(self, v.field)) for v in self.VARS if getattr(self, v.field) is not None}

    def to_container_env(self) -> list[dict[str, str]]:
        """The same as a Kubernetes container's ``env`` list (``[{"name": ..., "value": ...}]``)."""
        return [{"name": k, "value": v} for k, v in self.to_env().items()]


@dataclass(frozen=True)
class RunEnv(_Vars):
    """What a vcci_nb process knows from its environment about the run it is part of."""

    incident_id: str | None = None
    outputs: Path | None = None
    run_id: str | None = None
    profile: str | None = None
    evidence_dir: Path | None = None
    evidence_from: Path | None = None
    parameters: Path | None = None
    bundles: Path | None = None
    actor: str | None = None
    interactive: bool | None = None
    lab_dir: Path | None = None
    record_store: str | None = None

    VARS: ClassVar[tuple[Var, ...]] = (
        Var(
            "VCCI_NB_INCIDENT_ID",
            "incident_id",
            "run",
            "the incident a run belongs to; `setup()` uses it when the notebook's `incident_id` parameter is empty",
        ),
        Var("VCCI_NB_OUTPUTS", "outputs", "run", "where incident folders live (default: the checkout's `outputs/`)"),
        Var("VCCI_NB_RUN_ID", "run_id", "run", "the run (`vcci-nb run`) executing the notebook"),
        Var("VCCI_NB_PROFILE", "profile", "run", "the environment profile when none is named (default `lab`)"),
        Var(
            "VCCI_NB_EVIDENCE_DIR",
            "evidence_dir",
            "run",
            "where a run saves each gathered Evidence (the record's `evidence/<notebook>/`)",
        ),
        Var(
            "VCCI_NB_EVIDENCE_FROM",
            "evidence_from",
            "run",
            "replay (`vcci-nb run --evidence-from`): read Evidence from this folder, not live systems",
        ),
        Var(
            "VCCI_NB_PARAMETERS",
            "parameters",
            "process",
            "the folder of profiles, routes.yaml and bundles.yaml (default: the checkout's `parameters/`)",
        ),
        Var("VCCI_NB_BUNDLES", "bundles", "process", "the bundles file (default: `<parameters>/bundles.yaml`)"),
        Var("VCCI_NB_ACTOR", "actor", "process", "who is acting, in timelines and the audit (default: login name)"),
        Var(
            "VCCI_NB_INTERACTIVE",
            "interactive",
            "process",
            "`1`/`0`: a person may click (Confirm panels) or not; unset: guessed from the kernel",
        ),
        Var("VCCI_NB_LAB_DIR", "lab_dir", "process", "a running lab's folder, whose `env.sh` variables are adopted"),
        Var(
            "VCCI_NB_RECORD_STORE",
            "record_store",
            "process",
            "`vcci-nb job-run` (inside a Kubernetes Job): the record store, `s3://BUCKET/PREFIX`",
        ),
    )

    @classmethod
    def for_run(
        cls,
        *,
        incident_id: str,
        outputs: Path,
        run_id: str,
        profile: str | None = None,
        evidence_dir: Path | None = None,
        evidence_from: Path | None = None,
    ) -> RunEnv:
        """What the runner writes for one notebook (only the per-run values; the rest is inherited)."""
        return cls(
            incident_id=incident_id,
            outputs=outputs,
            run_id=run_id,
            profile=profile,
            evidence_dir=evidence_dir,
            evidence_from=evidence_from,
        )

    def over(self, base: RunEnv) -> RunEnv:
        """This environment's set values over ``base``'s (a run's own values over what it inherits)."""
        mine = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(base, **mine)


@dataclass(frozen=True)
class ServeEnv(_Vars):
    """``vcci-nb serve``'s settings from the environment (its flags win over them)."""

    state_dir: Path | None = None
    token_file: Path | None = None
    token: str | None = field(default=None, repr=False)  # a secret: never in a repr
    run_command: str | None = None
    executor: str | None = None

    VARS: ClassVar[tuple[Var, ...]] = (
        Var("VCCI_NB_STATE_DIR", "state_dir", "process", "serve's durable queue (default `./.vcci-nb-serve`)"),
        Var(
            "VCCI_NB_SERVE_TOKEN_FILE",
            "token_file",
            "process",
            "a file holding serve's bearer token (a mounted Secret); wins over `VCCI_NB_SERVE_TOKEN`",
        ),
        Var("VCCI_NB_SERVE_TOKEN", "token", "process", "serve's bearer token itself", secret=True),
        Var(
            "VCCI_NB_RUN_COMMAND",
            "run_command",
            "process",
            "the command serve runs a bundle with (default `python -m vcci_nb run`)",
        ),
        Var("VCCI_NB_EXECUTOR", "executor", "process", "where serve runs a bundle: `local` (default) or `kubernetes`"),
    )


def current() -> RunEnv:
    """This process's run environment, read now (a test or the runner may have changed it)."""
    return RunEnv.from_environ()


def table() -> list[Var]:
    """Every variable vcci_nb reads, for the docs' table (``RunEnv`` first, then ``ServeEnv``)."""
    return [*RunEnv.VARS, *ServeEnv.VARS]

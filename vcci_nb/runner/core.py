"""``vcci-nb run``: check everything, then run notebooks concurrently into the incident record.

Order of work, and why:

1. Load the incident, resolve the target, read every notebook's declared parameters and check
   every given value (:mod:`vcci_nb.runner.params`). Any problem stops the run here, before a
   kernel starts or a file is written.
2. Reserve the output names in ``record.json`` (``queued``), so two runs of the same incident
   at once never write the same file, and add a ``run`` event to the timeline.
3. Fork ``jobs`` worker processes (:mod:`vcci_nb.runner.worker`). Heavy imports happen once
   in this process before the fork. The parent is the only writer of this run's record
   entries; it turns worker events into progress lines and record updates.
4. A failing, timed-out or killed notebook is kept with its error and does not stop the others;
   a worker that dies is noticed and its notebooks are marked failed.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vcci_nb.config import read_yaml, register_url_secrets
from vcci_nb.errors import ConfigError, NotebookFailed, ParameterError, RunError, VcciNbError
from vcci_nb.record import IncidentRecord, utc_iso
from vcci_nb.redact import redact, register_secret
from vcci_nb.runenv import RunEnv
from vcci_nb.runner.bundles import resolve_target
from vcci_nb.runner.params import Parameter, declared_parameters, validate
from vcci_nb.runner.worker import Job

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0
#: Environment variables that point at live systems; ``--evidence-from`` runs without them.
LIVE_SOURCE_ENV = (
    "KUBECONFIG",
    "DATABASE_URL",
    "VCCI_MITIGATION_DATABASE_URL",
    "VCCI_MAINTAINER_DATABASE_URL",
    "VCCI_INDEX_BUILDER_DATABASE_URL",
    "VCCI_XACT_RESOLVER_DATABASE_URL",
    "VCCI_SLOT_DROPPER_DATABASE_URL",
    "VCCI_ADMIN_DATABASE_URL",
    "REDIS_URL",
    "VCCI_MITIGATION_REDIS_URL",
    "PROMETHEUS_URL",
    "ALERTMANAGER_URL",
    "RABBITMQ_URL",
    "EXTERNAL_API_URL",
    "VCCI_API_URL",
    "VCCI_GIT_REPO",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGPASSFILE",
    "PGSERVICE",
)
_SECRET_ENV = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|APIKEY|PRIVATE_KEY|CREDENTIALS?)(_FILE)?$", re.I)

Progress = Callable[[dict[str, Any]], None]


def default_jobs(n_notebooks: int) -> int:
    """Notebooks mostly wait on their sources, so run two per core, at most four, at most one each."""
    cores = os.cpu_count() or 2
    return max(1, min(n_notebooks, 4, 2 * cores))


@dataclass
class NotebookResult:
    name: str
    source: str
    path: str
    html: str | None
    status: str
    error: str | None = None
    seconds: float = 0.0
    findings: list[dict[str, Any]] = field(default_factory=list)
    #: For a notebook that did not succeed: the failing cell's index, ``In [n]``, exception name and
    #: (redacted) value, as papermill's PapermillExecutionError keeps them.
    failure: NotebookFailed | None = None


@dataclass
class RunResult:
    """What a run did; ``ok`` is true only if every notebook succeeded."""

    incident: str
    target: str
    run_id: str
    notebooks: list[NotebookResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(nb.status == "succeeded" for nb in self.notebooks)


# ------------------------------------------------------------------------------------------
# inputs


def parse_cli_params(pairs: Sequence[str]) -> dict[str, str]:
    """``["namespace=vcci-production", …]`` → dict; a pair without ``=`` is a ParameterError."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"-p {pair!r}: write parameters as -p name=value (e.g. -p namespace=vcci-production).")
        out[name] = value
    return out


def read_param_file(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of parameters (``-f params.yaml``); anything else is a ConfigError naming the file."""
    data = read_yaml(Path(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping of parameter: value, not a {type(data).__name__}.")
    return {str(k): v for k, v in data.items()}


def register_env_secrets(env: Mapping[str, str] | None = None) -> None:
    """Teach :mod:`vcci_nb.redact` every credential in the environment, before anything is written.

    URL passwords (``DATABASE_URL``…), variables named like secrets (``*_TOKEN``, ``*_PASSWORD``,
    and the files ``*_FILE`` points at), and the tokens and keys in ``$KUBECONFIG``.
    """
    env = os.environ if env is None else env
    for name, value in env.items():
        if not value:
            continue
        if "://" in value:
            register_url_secrets(value)
        if _SECRET_ENV.search(name):
            if name.upper().endswith("_FILE"):
                with contextlib.suppress(OSError):
                    register_secret(Path(value).read_text().strip())
            else:
                register_secret(value)
    kubeconfig = env.get("KUBECONFIG")
    for part in (kubeconfig or "").split(os.pathsep):
        if not part:
            continue
        try:
            data = yaml.safe_load(Path(part).read_text())
        except (OSError, yaml.YAMLError):
            continue
        for user in (data or {}).get("users") or []:
            creds = (user or {}).get("user") or {}
            for key in ("token", "password", "client-key-data"):
                if isinstance(creds.get(key), str):
                    register_secret(creds[key])


@dataclass
class _Planned:
    source: Path
    declared: dict[str, Parameter]
    parameters: dict[str, Any]
    kernel_name: str


def incident_run_window(data: dict[str, Any], profile: str | None) -> tuple[tuple[str, str], str]:
    """The incident's window as two ISO strings, and where it came from (for the timeline).

    The lead before the earliest alert is the profile's ``incident.window_lead_minutes`` (default
    30); a profile that cannot be read leaves the default (the run reports the profile's error).
    """
    from vcci_nb.policy import WINDOW_LEAD_MINUTES, incident_window, iso

    lead = WINDOW_LEAD_MINUTES
    try:
        from vcci_nb.config import load_profile

        value = load_profile(profile).get("incident.window_lead_minutes")
        if value is not None:
            lead = float(value)
    except (VcciNbError, TypeError, ValueError):
        pass
    start, end, why = incident_window(data, lead_minutes=lead)
    return (iso(start), iso(end)), why


def plan(
    notebooks: list[Path],
    given: dict[str, tuple[Any, bool]],
    *,
    incident_id: str,
    profile: str | None,
    is_bundle: bool,
    window: tuple[str, str] | None = None,
) -> list[_Planned]:
    """Read each notebook's parameters and check the given ones against them (nothing runs).

    ``window`` (start, end) fills ``window_start``/``window_end`` where a notebook declares them
    and the caller gave neither: the incident's own window, not the last hour of the clock.
    """
    import nbformat

    planned: list[_Planned] = []
    for path in notebooks:
        try:
            nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise RunError(f"{path} is not a readable notebook ({exc}). Nothing was run.") from exc
        declared = declared_parameters(nb, path)
        planned.append(_Planned(path, declared, {}, (nb.metadata.get("kernelspec") or {}).get("name") or "python3"))
    every = set().union(*(p.declared for p in planned)) if planned else set()
    for name in given:
        if name not in every:
            known = ", ".join(sorted(every)) or "none"
            which = "these notebooks declare" if is_bundle else f"{notebooks[0].name} declares"
            raise ParameterError(f"Unknown parameter {name!r}: none of {which} it. Known parameters: {known}.")
    for p in planned:
        mine = {k: v for k, v in given.items() if k in p.declared}
        if "incident_id" in p.declared and "incident_id" not in mine:
            mine["incident_id"] = (incident_id, False)
        for key in ("environment", "profile"):
            if profile and key in p.declared and key not in mine:
                mine[key] = (profile, False)
        if window and not ({"window_start", "window_end"} & given.keys()):
            for key, value in zip(("window_start", "window_end"), window, strict=True):
                if key in p.declared:
                    mine[key] = (value, False)
        p.parameters = validate(p.declared, mine, p.source)
    return planned


# ------------------------------------------------------------------------------------------
# the run


def _output_names(planned: list[_Planned], taken: set[str]) -> list[str]:
    """Each notebook's files keep the notebook's own name (``01_triage``, ``connection_pool_exhausted``)
    in every record, whatever its place in the bundle; a repeated run adds ``_2``, ``_3``…"""
    names: list[str] = []
    for p in planned:
        stem = p.source.stem
        name, n = stem, 1
        while name in taken:
            n += 1
            name = f"{stem}_{n}"
        taken.add(name)
        names.append(name)
    return names


def run(
    target: str,
    incident: str,
    *,
    params: Mapping[str, str] | None = None,
    param_files: Sequence[str | Path] = (),
    typed_params: Mapping[str, Any] | None = None,
    profile: str | None = None,
    evidence_from: str | Path | None = None,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    outputs: str | Path | None = None,
    bundles: str | Path | None = None,
    progress: Progress | None = None,
    actor: str | None = None,
    warm: bool = True,
    export_html: bool = True,
    skip: Sequence[str] = (),
    skip_reason: str = "",
) -> RunResult:
    """Run ``target`` (notebook or bundle) for incident ``incident``; see the module docstring.

    ``skip`` names notebooks of a bundle not to run (by name, ``03_investigate_system``, or
    path): ``serve`` passes those another bundle of the incident has already run, with
    ``skip_reason`` saying so in the timeline.
    """
    t0 = time.monotonic()
    register_env_secrets()
    record = IncidentRecord.load(incident, outputs)
    notebooks, is_bundle = resolve_target(target, Path(bundles) if bundles else None)
    notebooks, skipped = _without(notebooks, skip, target)
    given: dict[str, tuple[Any, bool]] = {}
    for file in param_files:
        given.update({k: (v, False) for k, v in read_param_file(file).items()})
    for k, v in (typed_params or {}).items():
        given[k] = (v, False)
    for k, v in (params or {}).items():
        given[k] = (v, True)
    window, window_why = incident_run_window(record.data, profile)
    planned = plan(notebooks, given, incident_id=record.id, profile=profile, is_bundle=is_bundle, window=window)
    window_used: dict[str, str] = {}
    if {"window_start", "window_end"} & given.keys():
        window_used = {
            "start": str((given.get("window_start") or ("", False))[0] or ""),
            "end": str((given.get("window_end") or ("", False))[0] or ""),
            "why": "as given",
        }
    elif any({"window_start", "window_end"} & p.parameters.keys() for p in planned):
        window_used = {"start": window[0], "end": window[1], "why": window_why}
    # A secret passed as a parameter (it should not be) is masked wherever a cell prints it, too.
    from vcci_nb.runner.worker import looks_secret

    for p in planned:
        for name, value in p.parameters.items():
            if looks_secret(name) and isinstance(value, str):
                register_secret(value)
    if profile:
        from vcci_nb.config import load_profile

        load_profile(profile)  # an unknown or malformed profile stops the run here
    if timeout <= 0:
        raise ParameterError(f"--timeout must be a positive number of seconds, not {timeout:g}.")
    replay: Path | None = None
    if evidence_from is not None:
        replay = Path(evidence_from).resolve()
        if not replay.is_dir():
            raise RunError(f"--evidence-from {evidence_from}: no such folder. Give an incident's evidence/ folder.")
    n_jobs = jobs if jobs and jobs > 0 else default_jobs(len(planned))

    # 2. reserve names and announce the run
    run_id = uuid.uuid4().hex[:8]
    folder = record.folder.resolve()
    reserved: list[str] = []
    who = actor or None

    def reserve(d: dict[str, Any]) -> None:
        taken = {Path(nb["path"]).stem for nb in d["notebooks"] if nb.get("path")}
        taken |= {p.stem for p in folder.glob("*.ipynb")}
        reserved[:] = _output_names(planned, taken)
        for name, p in zip(reserved, planned, strict=True):
            d["notebooks"].append(
                {
                    "name": name,
                    "path": f"{name}.ipynb",
                    "html": None,
                    "status": "queued",
                    "started_at": None,
                    "finished_at": None,
                    "error": None,
                    "run_id": run_id,
                    "source": _display_path(p.source),
                }
            )
        mode = f" on evidence from {replay}" if replay else ""
        again = [
            f"{name} (again: {p.source.stem} ran before)"
            for name, p in zip(reserved, planned, strict=True)
            if name != p.source.stem
        ]
        if again:
            mode += "; repeated runs write " + ", ".join(again)
        if skipped:
            mode += f"; not run: {', '.join(skipped)}" + (f" ({skip_reason})" if skip_reason else "")
        if window_used:
            mode += f"; window {window_used['start']} → {window_used['end']} ({window_used['why']})"
        d["timeline"].append(
            IncidentRecord._event(
                "run",
                f"Run {run_id} started: {target} ({len(planned)} notebook{'s' if len(planned) != 1 else ''}){mode}",
                who,
                {
                    "run_id": run_id,
                    "target": target,
                    "notebooks": list(reserved),
                    "jobs": n_jobs,
                    "skipped": skipped,
                    **({"window": window_used} if window_used else {}),
                },
                None,
            )
        )

    record.update(reserve)

    job_list: list[Job] = []
    for index, (name, p) in enumerate(zip(reserved, planned, strict=True)):
        # The notebook's run environment (vcci_nb.runenv): the kernel inherits the rest of ours.
        unset = [RunEnv.var("evidence_dir"), RunEnv.var("evidence_from")]
        save_to: Path | None = None
        replay_from: Path | None = None
        if replay is not None:
            replay_from = _replay_dir(replay, name, p.source.stem)
            unset += list(LIVE_SOURCE_ENV)
        else:
            save_to = folder / "evidence" / name
            save_to.mkdir(parents=True, exist_ok=True)
        run_env = RunEnv.for_run(
            incident_id=record.id,
            outputs=record.outputs.resolve(),
            run_id=run_id,
            profile=profile or None,
            evidence_dir=save_to,
            evidence_from=replay_from,
        )
        env = run_env.to_env()
        job_list.append(
            Job(
                index=index,
                name=name,
                source=str(p.source),
                output=str(folder / f"{name}.ipynb"),
                html=str(folder / f"{name}.html"),
                record_folder=str(folder),
                parameters=p.parameters,
                env=env,
                unset_env=[u for u in unset if u not in env],
                cwd=str(p.source.parent),
                timeout=float(timeout),
                kernel_name=p.kernel_name,
                warm=warm,
                export_html=export_html,
            )
        )

    results = _execute(job_list, n_jobs, record, run_id, progress, who)
    ok = all(r.status == "succeeded" for r in results)
    failed = [r.name for r in results if r.status != "succeeded"]
    summary = f"Run {run_id} finished: {target}: {len(results) - len(failed)}/{len(results)} succeeded"
    if failed:
        summary += f"; not succeeded: {', '.join(failed)}"
    record.add_event(
        "run",
        summary,
        actor=who,
        data={"run_id": run_id, "target": target, "ok": ok, "seconds": round(time.monotonic() - t0, 3)},
    )
    return RunResult(record.id, target, run_id, results, round(time.monotonic() - t0, 3))


def _without(notebooks: list[Path], skip: Sequence[str], target: str) -> tuple[list[Path], list[str]]:
    """``notebooks`` less those ``skip`` names; an unknown name, or skipping them all, is an error."""
    if not skip:
        return notebooks, []

    def key(name: str) -> str:
        return Path(name).name.removesuffix(".ipynb")

    wanted = {key(s) for s in skip}
    unknown = sorted(wanted - {p.stem for p in notebooks})
    if unknown:
        raise ParameterError(
            f"--skip {', '.join(unknown)}: not in {target!r}, which runs "
            f"{', '.join(p.stem for p in notebooks)}. Nothing was run."
        )
    kept = [p for p in notebooks if p.stem not in wanted]
    if not kept:
        raise ParameterError(f"--skip leaves nothing of {target!r} to run. Nothing was run.")
    return kept, [p.stem for p in notebooks if p.stem in wanted]


def _display_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _replay_dir(replay: Path, name: str, stem: str) -> Path:
    """Per-notebook evidence in an earlier record (``evidence/name/``), else the folder itself."""
    for candidate in (replay / name, replay / "evidence" / name):
        if candidate.is_dir():
            return candidate
    for base in (replay, replay / "evidence"):
        if base.is_dir():
            matches = sorted(d for d in base.iterdir() if d.is_dir() and d.name.endswith(stem))
            if matches:
                return matches[-1]
    return replay


#: A kernel's IPC socket path (``<sockets>/vcci-k-XXXXXXXX/k-1``) must fit in sun_path (107 bytes).
_SOCKET_DIR_MAX = 60


def _short_tmp() -> str | None:
    """Where kernel sockets can live: ``$TMPDIR`` unless its path is too long for a Unix socket, then /tmp.

    A pod's or CI job's ``TMPDIR`` can be a deep folder (the lab's Job pods have one of 80+
    characters), and zmq refuses an ``ipc://`` path past 107 bytes, so every kernel would fail.
    """
    default = tempfile.gettempdir()
    if len(default) <= _SOCKET_DIR_MAX:
        return None
    for candidate in ("/tmp", "/dev/shm"):  # noqa: S108 - only its short path matters; mkdtemp makes a private folder
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def _execute(
    job_list: list[Job],
    n_jobs: int,
    record: IncidentRecord,
    run_id: str,
    progress: Progress | None,
    actor: str | None,
) -> list[NotebookResult]:
    from vcci_nb.runner import forkserver, worker

    # Kernel sockets live under one folder per run, removed at the end whatever happened to the workers.
    sockets = tempfile.mkdtemp(prefix="vcci-run-", dir=_short_tmp())
    # The kernel fork server boots (imports) while this process does its own preloading.
    zygote = forkserver.start(sockets) if any(job.warm for job in job_list) else None
    worker.preload()
    for job in job_list:
        job.sockets_dir = sockets
        job.zygote = zygote.info if zygote is not None else None
    ctx = mp.get_context("fork")
    jobs_q: Any = ctx.Queue()
    events: Any = ctx.Queue()
    for job in job_list:
        jobs_q.put(job)
    n_workers = max(1, min(n_jobs, len(job_list)))
    for _ in range(n_workers):
        jobs_q.put(None)
    procs = [
        ctx.Process(target=worker.worker_main, args=(jobs_q, events, True, os.getpid()), daemon=True)
        for _ in range(n_workers)
    ]
    for proc in procs:
        proc.start()

    total = len(job_list)
    finished: dict[int, NotebookResult] = {}
    started_at: dict[int, float] = {}
    owner: dict[int, int] = {}

    def emit(event: dict[str, Any]) -> None:
        if progress is not None:
            with contextlib.suppress(Exception):
                progress({**event, "total": total})

    for job in job_list:
        emit({"type": "queued", "index": job.index, "name": job.name})

    def entry(job: Job, **changes: Any) -> dict[str, Any]:
        base = {
            "name": job.name,
            "path": f"{job.name}.ipynb",
            "html": None,
            "status": "queued",
            "started_at": None,
            "finished_at": None,
            "error": None,
            "run_id": run_id,
            "source": _display_path(Path(job.source)),
        }
        base.update(changes)
        return base

    started_iso: dict[int, str] = {}
    try:
        while len(finished) < total:
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                event = None
            if event is not None:
                job = job_list[event["index"]]
                if event["type"] == "started":
                    started_at[job.index] = time.monotonic()
                    started_iso[job.index] = event["at"]
                    owner[job.index] = event.get("pid", 0)
                    record.upsert_notebook(entry(job, status="running", started_at=event["at"]))
                    emit({"type": "started", "index": job.index, "name": job.name})
                elif event["type"] == "finished":
                    finished[job.index] = _conclude(record, job, event, started_iso.get(job.index), entry, actor)
                    emit({**event, "name": job.name, "findings": len(event.get("findings") or [])})
                elif event["type"] == "log":
                    log.info("%s: %s", job.name, event.get("message"))
                continue
            # no event: look for dead or stuck workers
            alive = [p for p in procs if p.is_alive()]
            now = time.monotonic()
            for index, since in list(started_at.items()):
                if index in finished:
                    continue
                job = job_list[index]
                pid = owner.get(index)
                owner_proc = next((p for p in procs if p.pid == pid), None)
                stuck = now - since > job.timeout + 60
                if owner_proc is not None and (not owner_proc.is_alive() or stuck):
                    if stuck and owner_proc.is_alive():
                        owner_proc.kill()
                    why = "stopped responding" if stuck else f"died (exit code {owner_proc.exitcode})"
                    fake = {
                        "type": "finished",
                        "index": index,
                        "status": "failed",
                        "error": f"The runner's worker process {why}; the partial notebook (if any) is kept.",
                        "findings": [],
                        "html": None,
                        "seconds": round(now - since, 3),
                        "at": utc_iso(),
                    }
                    finished[index] = _conclude(record, job, fake, started_iso.get(index), entry, actor)
                    emit({**fake, "name": job.name, "findings": 0})
            if not alive:
                # drain what the workers sent before they exited, then give up on the rest
                with contextlib.suppress(queue.Empty):
                    while True:
                        event = events.get(timeout=0.2)
                        if event["type"] == "finished" and event["index"] not in finished:
                            job = job_list[event["index"]]
                            finished[job.index] = _conclude(
                                record, job, event, started_iso.get(job.index), entry, actor
                            )
                            emit({**event, "name": job.name, "findings": len(event.get("findings") or [])})
                for job in job_list:
                    if job.index not in finished:
                        fake = {
                            "type": "finished",
                            "index": job.index,
                            "status": "failed",
                            "error": "No worker was left to run this notebook (the runner's workers died).",
                            "findings": [],
                            "html": None,
                            "seconds": 0.0,
                            "at": utc_iso(),
                        }
                        finished[job.index] = _conclude(record, job, fake, started_iso.get(job.index), entry, actor)
                        emit({**fake, "name": job.name, "findings": 0})
    except KeyboardInterrupt:
        for proc in procs:
            proc.kill()
        for job in job_list:
            if job.index not in finished:
                stop = {
                    "type": "finished",
                    "index": job.index,
                    "status": "failed",
                    "error": "Interrupted (Ctrl-C) before it finished; the partial notebook (if any) is kept.",
                    "findings": [],
                    "html": None,
                    "seconds": 0.0,
                    "at": utc_iso(),
                }
                with contextlib.suppress(Exception):
                    _conclude(record, job, stop, started_iso.get(job.index), entry, actor)
        raise
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)
        if zygote is not None:
            zygote.stop()  # and every kernel it forked (PDEATHSIG)
        shutil.rmtree(sockets, ignore_errors=True)
    return [finished[i] for i in range(total)]


def _conclude(
    record: IncidentRecord,
    job: Job,
    event: dict[str, Any],
    started_iso: str | None,
    entry: Callable[..., dict[str, Any]],
    actor: str | None,
) -> NotebookResult:
    status = event["status"]
    error = redact(event["error"]) if event.get("error") else None
    html = f"{job.name}.html" if event.get("html") else None
    findings = event.get("findings") or []
    written = Path(job.output).exists()
    record.upsert_notebook(
        entry(
            job,
            status=status,
            html=html,
            path=f"{job.name}.ipynb" if written else None,
            started_at=started_iso,
            finished_at=event.get("at") or utc_iso(),
            error=error,
            findings=len(findings),
        )
    )
    if findings:
        record.add_findings(findings, notebook=job.name)
    verb = {"succeeded": "succeeded", "failed": "failed", "timed_out": "timed out"}.get(status, status)
    summary = f"{job.name} {verb} in {event.get('seconds', 0):.1f} s" + (f": {error}" if error else "")
    record.add_event(
        "run",
        summary,
        actor=actor,
        data={"notebook": job.name, "status": status, "findings": len(findings), "html": html},
    )
    failure = None
    if status != "succeeded":
        raw = event.get("failure") or {}
        failure = NotebookFailed(
            job.name,
            error or status,
            cell_index=raw.get("cell_index"),
            exec_count=raw.get("exec_count"),
            ename=str(raw.get("ename") or ""),
            evalue=redact(str(raw.get("evalue") or "")),
        )
    return NotebookResult(
        name=job.name,
        source=job.source,
        path=job.output,
        html=job.html if html else None,
        status=status,
        error=error,
        seconds=float(event.get("seconds") or 0.0),
        findings=findings,
        failure=failure,
    )

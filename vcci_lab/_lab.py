"""The :class:`Lab`: start, inspect, break, heal and stop the local VCCI platform."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vcci_lab import _components, _env, _faults, _procs
from vcci_lab._components import Ctx, Spec
from vcci_lab._state import StateFile, ensure_secrets
from vcci_lab.flavour import Flavour
from vcci_lab.flavour import get as get_flavour
from vcci_nb.errors import LabError
from vcci_nb.redact import redact

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Lab:
    """A local VCCI platform made of real servers (and a Kubernetes API emulator) on 127.0.0.1.

    Args:
        dir: the lab directory; it holds ``state.json`` (ports, PIDs, generated passwords), the
            servers' data and their logs. Several labs can run side by side in different
            directories: every port is chosen free at start.
    """

    def __init__(self, dir: Path | str = ".lab") -> None:
        self.dir = Path(dir).expanduser().resolve()
        self._state = StateFile(self.dir)

    def __repr__(self) -> str:
        return f"Lab({str(self.dir)!r})"

    # --- helpers --------------------------------------------------------------------------------

    def _ctx(self, state: dict[str, Any], progress: Progress | None = None) -> Ctx:
        return Ctx(dir=self.dir, state=state, progress=progress or (lambda _m: None))

    @staticmethod
    def _running(entry: dict[str, Any]) -> bool:
        if not entry:
            return False
        if "pid" not in entry:
            return bool(entry.get("done"))
        return _procs.is_ours(entry.get("pid"), entry.get("start_time"))

    def _prepare_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        (self.dir / "run").mkdir(exist_ok=True)
        # The servers run as other users where needed (postgres); they must be able to traverse it.
        with contextlib.suppress(OSError):
            if os.geteuid() == 0:
                os.chmod(self.dir, 0o711)  # noqa: S103 - traverse only; state.json is 0600

    # --- public API -----------------------------------------------------------------------------

    def is_up(self) -> bool:
        """True when every component ``up`` starts is running."""
        state = self._state.load()
        comps = state["components"]
        skip = _faults.stopped_by_faults(state)
        return bool(comps) and all(
            self._running(comps.get(s.name, {})) for s in _components.specs() if s.name not in skip
        )

    def up(
        self,
        progress: Progress | None = None,
        *,
        webhook_url: str | None = None,
        webhook_token: str | None = None,
        stop_with: int | None = None,
        remove_dir_on_stop: bool = False,
        flavour: str | None = None,
    ) -> dict[str, Any]:
        """Start every component that is not already running; return :meth:`status`.

        Idempotent: components already running are left alone (and reported). When a component
        fails to start, the ones started by this call are stopped again and a LabError says which
        failed and shows the end of its log.

        With ``stop_with`` (a PID), a watchdog stops the lab when that process ends, however it
        ends (a test session or CI job killed before its clean-up); ``remove_dir_on_stop`` then
        also deletes the lab directory.

        ``flavour`` (:mod:`vcci_lab.flavour`: ``default`` or ``other``) names the platform the lab
        emulates; a lab keeps the flavour it was first started with (another is a LabError).
        """
        say = progress or (lambda _m: None)
        if stop_with is not None and _procs.pid_start_time(stop_with) is None:
            raise LabError(f"--stop-with {stop_with}: no such process; give the PID of a running process")
        t0 = time.monotonic()
        with self._state.locked():
            self._prepare_dir()
            state = self._state.load()
            ensure_secrets(state)
            state.setdefault("created_at", _now())
            self._set_flavour(state, flavour)
            if webhook_url is not None:
                state["webhook"] = {"url": webhook_url, "token": webhook_token or ""}
                if webhook_token:
                    from vcci_nb.redact import register_secret

                    register_secret(webhook_token)
            specs = _components.specs()
            running = {s.name for s in specs if self._running(state["components"].get(s.name, {}))}
            # A component stopped by a fault in force (redis-down) stays down until that fault heals.
            held_down = _faults.stopped_by_faults(state) - running
            # Ports: keep the ones this lab used before when they are still free (stable URLs).
            alloc = _procs.PortAllocator()
            for spec in specs:
                for key in spec.ports:
                    old = state["ports"].get(key)
                    if spec.name in running and old:
                        alloc._taken.add(old)
                        continue
                    state["ports"][key] = alloc.get(old)
            self._state.save(state)
            if running:
                say(f"already running: {', '.join(sorted(running))}")
            ctx = self._ctx(state, say)
            children_before = _procs.our_children()
            started: list[str] = []
            errors: list[str] = []
            futures: dict[str, Future[None]] = {}

            def run(spec: Spec) -> None:
                for dep in spec.after:
                    if dep in futures:
                        futures[dep].result()
                t = time.monotonic()
                say(f"{spec.name}: starting")
                entry = spec.start(ctx)
                entry["started_at"] = _now()
                with ctx.lock:
                    state["components"][spec.name] = entry
                    started.append(spec.name)
                    self._state.save(state)
                say(f"{spec.name}: ready at {spec.where(ctx)} ({time.monotonic() - t:.1f}s)")

            with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
                for spec in specs:
                    if spec.name in running or spec.name in held_down:
                        continue
                    futures[spec.name] = pool.submit(run, spec)
                for name, fut in futures.items():
                    try:
                        fut.result()
                    except Exception as exc:
                        errors.append(f"{name}: {redact(str(exc))}")
            if errors:
                say("start failed; stopping what this call started")
                for name in reversed(started):
                    self._stop_component(state, name)
                # and servers that were spawned but never became ready (so never recorded)
                for pid in _procs.our_children() - children_before:
                    _procs.stop_group(pid, None, timeout=10)
                self._state.save(state)
                raise LabError(
                    "the lab did not start:\n  "
                    + "\n  ".join(errors)
                    + f"\nLogs are in {self.dir / 'logs'}. Fix the cause and run `vcci-nb lab up` again."
                )
            if webhook_url is not None and "alertmanager" in running:
                self._apply_webhook(state)
            self._after_up(ctx)
            if stop_with is not None:
                from vcci_lab import _watchdog

                _watchdog.stop(state.get("watchdog"))
                state["watchdog"] = _watchdog.start(self.dir, stop_with, remove_dir=remove_dir_on_stop)
            state["up_at"] = _now()
            self._state.save(state)
            result = self.status()
            result["started"] = sorted(started)
            result["already_running"] = sorted(running)
            result["seconds"] = round(time.monotonic() - t0, 2)
            say(f"lab up in {result['seconds']:.1f}s")
            return result

    def _set_flavour(self, state: dict[str, Any], flavour: str | None) -> None:
        try:
            wanted = get_flavour(flavour or state.get("flavour")).name
        except ValueError as exc:
            raise LabError(f"{exc}. Start the lab with `vcci-nb lab up --flavour NAME`.") from exc
        had = state.get("flavour")
        if had and flavour and had != wanted and state["components"]:
            raise LabError(
                f"the lab in {self.dir} was made with flavour {had!r}, not {wanted!r}: its data carries that "
                f"flavour's names. Use another --dir, or `vcci-nb lab down` and remove {self.dir} first."
            )
        state["flavour"] = wanted

    @property
    def flavour(self) -> Flavour:
        """The names this lab gives the platform (its profile is ``flavour.profile``)."""
        return get_flavour(self._state.load().get("flavour"))

    def _after_up(self, ctx: Ctx) -> None:
        """Re-apply faults recorded as active (a restarted server lost them)."""
        _faults.refresh_flags(ctx)

    def _apply_webhook(self, state: dict[str, Any]) -> None:
        from vcci_lab import _monitoring

        _monitoring.write_alertmanager_config(self.dir / "alertmanager", state.get("webhook"))
        _monitoring.reload(f"http://{_procs.HOST}:{state['ports']['alertmanager']}")

    def set_webhook(self, url: str | None, token: str | None = None) -> None:
        """Route Alertmanager to ``url`` (``vcci-nb serve``'s /alertmanager) with a bearer token,
        or to nowhere with ``None``; a running Alertmanager reloads its configuration at once."""
        with self._state.locked():
            state = self._state.load()
            state["webhook"] = {"url": url, "token": token or ""} if url else None
            if token:
                from vcci_nb.redact import register_secret

                register_secret(token)
            self._state.save(state)
            if self._running(state["components"].get("alertmanager", {})):
                self._apply_webhook(state)

    def _stop_component(self, state: dict[str, Any], name: str) -> None:
        entry = state["components"].get(name)
        if not entry:
            return
        spec = next((s for s in _components.specs() if s.name == name), None)
        pid = entry.get("pid")
        if pid:
            sig = spec.stop_signal if spec else 15
            timeout = spec.stop_timeout if spec else 15.0
            _procs.stop_group(int(pid), entry.get("start_time"), sig=sig, timeout=timeout)
        state["components"].pop(name, None)

    def down(self) -> None:
        """Stop everything ``up`` started (and every fault holder), by PID. A no-op when down."""
        with self._state.locked():
            state = self._state.load()
            if not state["components"] and not state["faults"]:
                return
            _faults.stop_holders(self._ctx(state))
            names = [s.name for s in _components.specs()]
            extra = [n for n in state["components"] if n not in names]
            # Stop in reverse start order: scrapers and consumers first, databases last.
            for name in [*extra, *reversed(names)]:
                self._stop_component(state, name)
            state["faults"] = {}
            from vcci_lab import _watchdog

            _watchdog.stop(state.pop("watchdog", None))
            state["down_at"] = _now()
            self._state.save(state)
            _faults.refresh_flags(self._ctx(state))

    def status(self) -> dict[str, Any]:
        """Each component's PID, where it listens, whether it runs and answers; the faults in force."""
        state = self._state.load()
        ctx = self._ctx(state)
        held = {c: f for f in state["faults"] if f in _faults.FAULTS for c in _faults.FAULTS[f].stops}
        comps: dict[str, Any] = {}
        for spec in _components.specs():
            entry = state["components"].get(spec.name, {})
            running = self._running(entry)
            healthy = False
            if running:
                try:
                    healthy = bool(spec.health(ctx))
                except Exception as exc:
                    log.debug("%s health check failed: %s", spec.name, exc)
            comps[spec.name] = {
                "running": running,
                "healthy": healthy,
                "pid": entry.get("pid") if running else None,
                "where": spec.where(ctx) if state["ports"] else "",
                "stopped_by_fault": held.get(spec.name) if not running else None,
            }
        # A server stopped on purpose by a fault (redis-down) does not make the lab "down".
        up = bool(state["components"]) and all(c["running"] or c["stopped_by_fault"] for c in comps.values())
        return {
            "dir": str(self.dir),
            "flavour": get_flavour(state.get("flavour")).name,
            "up": up,
            "components": comps,
            "faults": sorted(state["faults"]),
        }

    def env(self) -> dict[str, str]:
        """The environment variables that point notebooks and plain clients at this lab."""
        state = self._state.load()
        if not state["components"]:
            raise LabError(f"the lab in {self.dir} is not up. Run `vcci-nb lab up --dir {self.dir}` first.")
        return _env.lab_env(self._ctx(state))

    def inject(self, fault: str) -> None:
        """Produce a fault (or every fault of a preset) in the running lab."""
        names = _faults.expand(fault)
        with self._state.locked():
            state = self._state.load()
            if not state["components"]:
                raise LabError(f"the lab in {self.dir} is not up; run `vcci-nb lab up` before injecting {fault}.")
            ctx = self._ctx(state)
            for name in names:
                if name in state["faults"]:
                    continue
                info = _faults.FAULTS[name].inject(ctx)
                info["injected_at"] = _now()
                state["faults"][name] = info
                self._state.save(state)
                _faults.refresh_flags(ctx)

    def heal(self, fault: str) -> None:
        """Remove a fault (or every fault of a preset). Healing a fault not in force is a no-op."""
        names = _faults.expand(fault)
        with self._state.locked():
            state = self._state.load()
            ctx = self._ctx(state)
            for name in reversed(names):
                if name not in state["faults"]:
                    continue
                _faults.FAULTS[name].heal(ctx, state["faults"][name])
                state["faults"].pop(name, None)
                self._state.save(state)
                _faults.refresh_flags(ctx)

    def reset(self) -> None:
        """Heal every fault and put the lab's data back to its baseline (index, cache, cluster)."""
        with self._state.locked():
            state = self._state.load()
            for name in list(state["faults"]):
                self.heal(name)
            if self.is_up():
                _faults.baseline(self._ctx(self._state.load()))

    @contextlib.contextmanager
    def fault(self, name: str) -> Iterator[Lab]:
        """``with lab.fault("pool-exhaustion"):`` injects on entry and always heals on exit."""
        self.inject(name)
        try:
            yield self
        finally:
            self.heal(name)

    def faults(self) -> list[str]:
        """The faults in force now."""
        return sorted(self._state.load()["faults"])

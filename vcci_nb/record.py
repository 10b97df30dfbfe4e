"""The incident record: ``outputs/INC-YYYYMMDD-NNN/record.json`` and the folder around it.

``record.json`` is the single source of truth for one incident: its fields, status history,
alerts, a timeline of everything that happened (runs, findings, actions, notifications, status
changes, each with time and actor), findings, actions and links to the executed notebooks.

Why the care below: several processes write the same record at once (two ``vcci-nb run``\\s, the
alert receiver, an engineer's ``incident update``), disks fill up during incidents, and the record
is what people read a year later. So:

- IDs are allocated under an ``fcntl`` lock on ``outputs/.incident-ids.lock`` *and* by creating
  the incident folder with ``mkdir`` (which fails if it exists), so two allocators can never
  hand out the same ID even if one of them ignores the lock.
- Every change is a locked read-modify-write (``fcntl.flock`` on ``ID/.record.lock``), so
  concurrent writers never lose each other's entries.
- Every write is validated against ``vcci_nb/schemas/record.schema.json`` and is atomic:
  temporary file, ``fsync``, ``rename``. A failed write (full disk, bad data) leaves the
  previous record intact and raises :class:`~vcci_nb.errors.RecordError`.
- Every string goes through :func:`vcci_nb.redact.redact` before it is written.

This module knows nothing about papermill; the runner calls it. ``index.html``, the page view
rewritten after every write, is rendered by :mod:`vcci_nb.record_index`.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import getpass
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from vcci_nb import runenv
from vcci_nb.errors import RecordError
from vcci_nb.policy import SEVERITIES, iso
from vcci_nb.record_index import format_duration as format_duration
from vcci_nb.record_index import render_index
from vcci_nb.record_index import severity_text as severity_text
from vcci_nb.record_index import truncated_text as truncated_text
from vcci_nb.redact import redact

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("investigating", "identified", "mitigating", "monitoring", "resolved", "closed")
EVENT_KINDS: tuple[str, ...] = ("alert", "run", "finding", "action", "notification", "status", "escalation", "note")
#: Statuses after which an incident no longer counts as open (``incident list --open``).
DONE_STATUSES: frozenset[str] = frozenset({"resolved", "closed"})

RECORD_FILE = "record.json"
INDEX_FILE = "index.html"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "record.schema.json"

_ID_RE = re.compile(r"^INC-(\d{8})-(\d{3,})$")
_IDS_LOCK = ".incident-ids.lock"
_RECORD_LOCK = ".record.lock"


# --------------------------------------------------------------------------------------------
# small helpers


def project_dir() -> Path | None:
    """The checkout this ``vcci_nb`` runs from (the folder holding ``notebooks/`` and ``pyproject.toml``), if any."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def outputs_dir() -> Path:
    """Where incident folders live: ``$VCCI_NB_OUTPUTS``, else the project's ``outputs/``.

    Never relative to the working folder of a kernel (JupyterLab starts them in ``notebooks/``,
    papermill wherever it was called): every run of one checkout finds the same records. Only an
    installation without a checkout (a wheel in site-packages) falls back to ``./outputs``.
    """
    env = runenv.current().outputs
    if env:
        return env
    root = project_dir()
    return root / "outputs" if root is not None else Path("outputs").resolve()


def utc_iso(at: datetime | str | None = None) -> str:
    """An ISO-8601 UTC timestamp with milliseconds (``2026-01-06T14:05:00.123Z``); see :func:`vcci_nb.policy.iso`."""
    return iso(at, error=RecordError)


def default_actor() -> str:
    """Who is acting: ``$VCCI_NB_ACTOR``, else the login name (a timeline entry always has one)."""
    actor = runenv.current().actor
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def validate_id(incident_id: str) -> str:
    """Check an incident ID's shape; it becomes a folder name, so nothing else may pass."""
    if not isinstance(incident_id, str) or not _ID_RE.match(incident_id):
        raise RecordError(
            f"{incident_id!r} is not an incident ID; IDs look like INC-20260106-001. "
            "Run `vcci-nb incident list` to see the existing ones."
        )
    return incident_id


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``path`` (created if missing) for the block."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RecordError(
            f"Could not open lock file {path}: {exc.strerror}. Check that the folder is writable."
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _redact_tree(value: Any) -> Any:
    """Redact every string in a JSON-able tree (keys included), keeping its shape."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_tree(v) for v in value]
    return value


@lru_cache(maxsize=1)
def _validator() -> Any:
    # jsonschema imports rfc3987_syntax (when installed, as jupyter-events' extras install it),
    # which builds a grammar at import: 1.4 s on a quiet machine, 5 s under load, paid by every
    # `vcci-nb run`. The record schema uses no "iri" format, so that checker is not needed.
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def validate_record(data: dict[str, Any]) -> None:
    """Raise :class:`RecordError` naming the first field that breaks the published schema."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise RecordError(
            f"Refusing to write an invalid incident record: at {where}: {redact(err.message)}. "
            f"The previous record is unchanged. (schema: {SCHEMA_PATH.name})"
        )


def atomic_write_text(path: Path, text: str, *, what: str = "file") -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same folder, fsync, rename.

    On any OS error (a full disk above all) the temp file is removed, ``path`` keeps its previous
    content, and a :class:`RecordError` says what to do.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    data = text.encode("utf-8")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RecordError(
                f"No space left to write the {what} {path}; the previous version is intact. "
                f"Free space on the filesystem holding {path.parent} (see `df -h {path.parent}`) "
                "or point VCCI_NB_OUTPUTS at a disk with room, then retry."
            ) from exc
        raise RecordError(
            f"Could not write the {what} {path}: {exc.strerror or exc}. The previous version is intact; "
            "check the folder's permissions and free space, then retry."
        ) from exc


def _new_record(
    incident_id: str,
    severity: str,
    title: str,
    commander: str | None,
    source: str,
    group_key: str | None,
    now: str,
    actor: str,
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "id": incident_id,
        "title": title,
        "severity": severity,
        "status": "investigating",
        "commander": commander,
        "source": source,
        "group_key": group_key,
        "created_at": now,
        "updated_at": now,
        "detected_at": now,
        "acknowledged_at": now if source == "manual" else None,
        "identified_at": None,
        "mitigated_at": None,
        "resolved_at": None,
        "closed_at": None,
        "resolution": None,
        "status_history": [{"status": "investigating", "at": now, "actor": actor, "note": "incident opened"}],
        "alerts": [],
        "timeline": [
            {
                "at": now,
                "kind": "status",
                "actor": actor,
                "summary": f"Incident opened: {severity} {title}",
                "data": {"status": "investigating", "source": source},
            }
        ],
        "findings": [],
        "actions": [],
        "notifications": [],
        "escalations": [],
        "notebooks": [],
    }


def _check_severity(severity: str) -> str:
    if severity not in SEVERITIES:
        raise RecordError(f"Severity {severity!r} is not one of {', '.join(SEVERITIES)} (P0 is the most severe).")
    return severity


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise RecordError(f"Status {status!r} is not one of {', '.join(STATUSES)}.")
    return status


# --------------------------------------------------------------------------------------------
# the record


class IncidentRecord:
    """One incident's folder and its ``record.json``.

    Reads always go to disk (``.data`` is a fresh snapshot), so several processes can hold an
    ``IncidentRecord`` for the same incident; every change goes through :meth:`update`.
    """

    def __init__(self, incident_id: str, outputs: Path | str | None = None) -> None:
        self.id = validate_id(incident_id)
        self.outputs = Path(outputs) if outputs is not None else outputs_dir()
        self.folder = self.outputs / self.id
        self.path = self.folder / RECORD_FILE

    def __repr__(self) -> str:
        return f"IncidentRecord({self.id!r}, folder={str(self.folder)!r})"

    # -- creation and loading ----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        severity: str,
        title: str,
        commander: str | None = None,
        *,
        outputs: Path | str | None = None,
        source: str = "manual",
        group_key: str | None = None,
        now: datetime | None = None,
        actor: str | None = None,
    ) -> IncidentRecord:
        """Open a new incident and allocate its ID (``INC-YYYYMMDD-NNN``, UTC date) atomically."""
        _check_severity(severity)
        if not title or not title.strip():
            raise RecordError("An incident needs a title: say in a few words what is wrong (e.g. 'API 5xx spike').")
        out = Path(outputs) if outputs is not None else outputs_dir()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordError(f"Could not create the outputs folder {out}: {exc.strerror}.") from exc
        stamp = now if now is not None else datetime.now(UTC)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        day = stamp.astimezone(UTC).strftime("%Y%m%d")
        at = utc_iso(stamp)
        who = actor or default_actor()
        with _flock(out / _IDS_LOCK):
            taken = [int(m.group(2)) for p in out.iterdir() if (m := _ID_RE.match(p.name)) and m.group(1) == day]
            number = max(taken, default=0) + 1
            while True:
                incident_id = f"INC-{day}-{number:03d}"
                try:
                    (out / incident_id).mkdir()
                    break
                except FileExistsError:
                    number += 1
                except OSError as exc:
                    raise RecordError(f"Could not create the incident folder under {out}: {exc.strerror}.") from exc
            record = cls(incident_id, out)
            title = " ".join(title.split())  # one line: it becomes mail subjects and HTML titles
            data = _new_record(incident_id, severity, title, commander, source, group_key, at, who)
            try:
                record._write(data)
            except RecordError:
                # Leave no half-made incident behind; the ID is free again.
                with contextlib.suppress(OSError):
                    for leftover in record.folder.iterdir():
                        leftover.unlink()
                    record.folder.rmdir()
                raise
        log.info("opened %s (%s) %s", incident_id, severity, title)
        return record

    @classmethod
    def load(cls, incident_id: str, outputs: Path | str | None = None) -> IncidentRecord:
        """The existing incident ``incident_id``; :class:`RecordError` if there is none."""
        record = cls(incident_id, outputs)
        if not record.path.is_file():
            raise RecordError(
                f"No incident {incident_id} under {record.outputs}. Run `vcci-nb incident list` to see the "
                "incidents there, or `vcci-nb incident open` to start one (set VCCI_NB_OUTPUTS if they live elsewhere)."
            )
        return record

    # -- reading ------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise RecordError(f"{self.path} is missing; was the incident folder moved?") from exc
        except OSError as exc:
            raise RecordError(f"Could not read {self.path}: {exc.strerror}.") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(
                f"{self.path} is not valid JSON ({exc.msg} at line {exc.lineno}). It was not written by "
                "vcci-nb (its writes are atomic); restore it from a copy."
            ) from exc
        if not isinstance(data, dict):
            raise RecordError(f"{self.path} does not hold a JSON object; restore it from a copy.")
        return data

    @property
    def data(self) -> dict[str, Any]:
        """A fresh snapshot of ``record.json`` (changing it changes nothing on disk)."""
        return self._read()

    # -- writing ------------------------------------------------------------------------------

    def _write(self, data: dict[str, Any]) -> None:
        clean = _redact_tree(data)
        validate_record(clean)
        text = json.dumps(clean, indent=2, ensure_ascii=False) + "\n"
        atomic_write_text(self.path, text, what="incident record")
        data.clear()
        data.update(clean)
        try:
            atomic_write_text(self.folder / INDEX_FILE, render_index(clean, folder=self.folder), what="incident index")
        except RecordError as exc:  # the record is safe; the index is a view that the next write redoes
            log.warning("%s", exc)

    def update(self, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``fn`` to the record under the lock, validate, write atomically; return the new data.

        ``fn`` changes the dict in place. If it raises, or the result breaks the schema, or the
        write fails, nothing on disk changes.
        """
        with _flock(self.folder / _RECORD_LOCK):
            data = self._read()
            fn(data)
            data["updated_at"] = utc_iso()
            self._write(data)
            return copy.deepcopy(data)

    # -- typed changes --------------------------------------------------------------------------

    @staticmethod
    def _event(
        kind: str, summary: str, actor: str | None, data: dict[str, Any] | None, at: datetime | str | None
    ) -> dict[str, Any]:
        if kind not in EVENT_KINDS:
            raise RecordError(f"Timeline event kind {kind!r} is not one of {', '.join(EVENT_KINDS)}.")
        return {
            "at": utc_iso(at),
            "kind": kind,
            "actor": actor or default_actor(),
            "summary": summary,
            "data": copy.deepcopy(data) if data is not None else None,
        }

    def add_event(
        self,
        kind: str,
        summary: str,
        *,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
        at: datetime | str | None = None,
    ) -> dict[str, Any]:
        """Append one timeline entry and return it."""
        event = self._event(kind, summary, actor, data, at)
        self.update(lambda d: d["timeline"].append(event))
        return event

    def set_status(self, status: str, note: str = "", actor: str | None = None) -> dict[str, Any]:
        """Move the incident to ``status``; stamps ``identified_at``/``mitigated_at``/``resolved_at`` once."""
        _check_status(status)
        if status == "closed":
            raise RecordError("Use `vcci-nb incident close ID --resolution '…'` to close an incident.")
        who = actor or default_actor()

        def change(d: dict[str, Any]) -> None:
            if d["status"] == "closed":
                raise RecordError(f"{d['id']} is closed; open a new incident instead of changing a closed one.")
            now = utc_iso()
            previous = d["status"]
            d["status"] = status
            d["status_history"].append({"status": status, "at": now, "actor": who, "note": note})
            if d.get("acknowledged_at") is None:
                d["acknowledged_at"] = now
            stamp = {"identified": "identified_at", "monitoring": "mitigated_at", "resolved": "resolved_at"}.get(status)
            if stamp and d.get(stamp) is None:
                d[stamp] = now
            summary = f"Status {previous} → {status}" + (f": {note}" if note else "")
            d["timeline"].append(self._event("status", summary, who, {"from": previous, "to": status}, now))

        return self.update(change)

    def set_severity(self, severity: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        """Declare the incident's severity (the commander's call); the timeline says who, from what, and why.

        The declared severity is ``severity``: escalation, update cadence and messages follow it.
        Triage's suggestion stays beside it in ``suggested_severity``.
        """
        _check_severity(severity)
        if not reason or not reason.strip():
            raise RecordError("Changing the severity needs a reason: say why (--reason '…').")
        who = actor or default_actor()
        why = reason.strip()

        def change(d: dict[str, Any]) -> None:
            if d["status"] == "closed":
                raise RecordError(f"{d['id']} is closed; its severity can no longer change.")
            now = utc_iso()
            previous = d["severity"]
            d["severity"] = severity
            d["severity_declared"] = {"level": severity, "at": now, "actor": who, "reason": why}
            verb = "unchanged" if previous == severity else f"{previous} → {severity}"
            summary = f"Severity declared {severity} ({verb}): {why}"
            data = {"from": previous, "to": severity, "reason": why, "declared": True}
            d["timeline"].append(self._event("note", summary, who, data, now))

        return self.update(change)

    def close(self, resolution: str, actor: str | None = None) -> dict[str, Any]:
        """Close the incident with a resolution summary (resolving it first if it was not)."""
        if not resolution or not resolution.strip():
            raise RecordError("Closing needs a resolution: say what fixed it (--resolution '…').")
        who = actor or default_actor()

        def change(d: dict[str, Any]) -> None:
            if d["status"] == "closed":
                raise RecordError(f"{d['id']} is already closed (at {d['closed_at']}).")
            now = utc_iso()
            previous = d["status"]
            d["status"] = "closed"
            d["resolution"] = resolution.strip()
            d["resolved_at"] = d.get("resolved_at") or now
            d["closed_at"] = now
            d["status_history"].append({"status": "closed", "at": now, "actor": who, "note": resolution.strip()})
            change_data = {"from": previous, "to": "closed"}
            summary = f"Incident closed: {resolution.strip()}"
            d["timeline"].append(self._event("status", summary, who, change_data, now))

        return self.update(change)

    def _append(self, field: str, kind: str, entry: dict[str, Any], summary: str, actor: str | None) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise RecordError(f"A {field} entry must be a dict, not {type(entry).__name__}.")
        item = copy.deepcopy(entry)
        item.setdefault("at", utc_iso())
        event = self._event(kind, summary, actor or item.get("actor"), item, item["at"])

        def change(d: dict[str, Any]) -> None:
            d[field].append(item)
            d["timeline"].append(event)

        return self.update(change)

    def add_alert(self, alert: dict[str, Any], actor: str | None = "alertmanager") -> dict[str, Any]:
        """Attach an alert (an Alertmanager alert dict, or any dict with ``labels``/``annotations``)."""
        labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        name = labels.get("alertname") or alert.get("name") or "alert"
        text = annotations.get("summary") or annotations.get("description") or ""
        status = alert.get("status") or "firing"
        summary = f"Alert {name} {status}" + (f": {text}" if text else "")
        return self._append("alerts", "alert", alert, summary, actor)

    def set_contacts(self, contacts: dict[str, Any]) -> dict[str, Any]:
        """Keep who to call and the links on the incident window (``vcci_nb.contacts.for_record``)."""

        def apply(data: dict[str, Any]) -> None:
            data["contacts"] = contacts

        return self.update(apply)

    def add_attachment(self, name: str, path: str, kind: str = "") -> dict[str, Any]:
        """Attach a file of the incident folder (e.g. the review invite ``review.ics``); replaces one of that name."""

        def apply(data: dict[str, Any]) -> None:
            kept = [a for a in data.get("attachments") or [] if a.get("name") != name]
            data["attachments"] = [*kept, {"name": name, "path": path, "kind": kind, "at": utc_iso()}]

        return self.update(apply)

    def add_action(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Record an action (the actions gateway's audit entry)."""
        summary = str(entry.get("summary") or entry.get("action") or entry.get("name") or "action")
        result = entry.get("result") or entry.get("status")
        return self._append("actions", "action", entry, summary + (f" ({result})" if result else ""), None)

    def add_notification(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Record a notification that was sent (or would have been, in dry run)."""
        channel = entry.get("channel") or "notification"
        text = entry.get("summary") or entry.get("subject") or entry.get("status") or ""
        return self._append("notifications", "notification", entry, f"{channel}: {text}".rstrip(": "), None)

    def add_escalation(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Record an escalation (who was paged or pulled in, and why)."""
        to = entry.get("to") or entry.get("target") or entry.get("level") or "escalation"
        reason = entry.get("reason") or entry.get("summary") or ""
        summary = f"Escalated to {to}" + (f": {reason}" if reason else "")
        return self._append("escalations", "escalation", entry, summary, None)

    def add_findings(
        self, findings: list[dict[str, Any]], *, notebook: str | None = None, actor: str | None = None
    ) -> dict[str, Any]:
        """Append findings (``Finding.to_dict()`` dicts), one timeline entry each."""
        now = utc_iso()
        items: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for f in findings:
            if not isinstance(f, dict) or not {"key", "severity", "summary"} <= f.keys():
                raise RecordError(f"A finding needs key, severity and summary; got {redact(repr(f))[:200]}.")
            item = copy.deepcopy(f)
            item.setdefault("at", now)
            if notebook is not None:
                item.setdefault("notebook", notebook)
            items.append(item)
            where = f" ({item['notebook']})" if item.get("notebook") else ""
            events.append(
                self._event(
                    "finding",
                    f"[{item['severity']}] {item['summary']}{where}",
                    actor or item.get("notebook") or None,
                    {"key": item["key"], "severity": item["severity"], "notebook": item.get("notebook")},
                    item["at"],
                )
            )

        suggested = next(
            (f for f in reversed(items) if f["key"] == "triage.severity" and f.get("value") in SEVERITIES), None
        )

        def change(d: dict[str, Any]) -> None:
            d["findings"].extend(items)
            d["timeline"].extend(events)
            if suggested is not None:
                reasons = (suggested.get("details") or {}).get("reasons") or []
                d["suggested_severity"] = {
                    "level": suggested["value"],
                    "at": suggested["at"],
                    "notebook": suggested.get("notebook"),
                    "reasons": [str(r) for r in reasons][:10],
                }

        return self.update(change)

    def upsert_notebook(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Add or replace the ``notebooks`` entry with the same ``name`` (the runner's link to a run)."""
        item = {
            "name": entry["name"],
            "path": entry.get("path"),
            "html": entry.get("html"),
            "status": entry.get("status", "queued"),
            "started_at": entry.get("started_at"),
            "finished_at": entry.get("finished_at"),
            "error": entry.get("error"),
        }
        for extra in ("run_id", "source", "findings"):
            if extra in entry:
                item[extra] = entry[extra]

        def change(d: dict[str, Any]) -> None:
            for i, existing in enumerate(d["notebooks"]):
                if existing.get("name") == item["name"]:
                    d["notebooks"][i] = item
                    return
            d["notebooks"].append(item)

        return self.update(change)


def list_records(outputs: Path | str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
    """Every incident under ``outputs`` (newest first); ``open_only`` drops resolved and closed ones.

    A folder whose record cannot be read is reported in the log and skipped, so one damaged
    record does not hide the others.
    """
    out = Path(outputs) if outputs is not None else outputs_dir()
    if not out.is_dir():
        return []
    records: list[dict[str, Any]] = []
    for folder in out.iterdir():
        if not _ID_RE.match(folder.name) or not (folder / RECORD_FILE).is_file():
            continue
        try:
            data = IncidentRecord(folder.name, out).data
        except RecordError as exc:
            log.warning("skipping %s: %s", folder.name, exc)
            continue
        if open_only and data.get("status") in DONE_STATUSES:
            continue
        records.append(data)
    records.sort(key=lambda d: (d.get("created_at") or "", d.get("id") or ""), reverse=True)
    return records

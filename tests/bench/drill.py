"""The drill scorecard: every lab fault and preset, end to end, one table row each.

    .venv/bin/python tests/bench/drill.py all                 # every preset, then every fault
    .venv/bin/python tests/bench/drill.py presets             # the seed's scenarios only
    .venv/bin/python tests/bench/drill.py example_incident oomkill --out tests/bench/DRILL.md

For each NAME, on one lab (started here with ``--stop-with`` this process) and a fresh
``vcci-nb serve`` (fresh queue, so that one drill's open incident cannot absorb the next one's
alerts): inject the fault, let the real Prometheus rules fire and the real Alertmanager post to
``serve``, wait for the record, heal, wait for ``serve`` to resolve the incident when its alerts
resolve (or resolve it by hand after ``--resolve-timeout`` and say so), draft the postmortem, and
render the update and initial messages (dry run). The row says:

- incidents opened (one is right);
- declared severity (serve's, from the alert) and suggested severity (triage's finding);
- the decision tree's most likely cause over the record's findings, and whether it is the
  expected one (``EXPECTED``);
- the postmortem's root cause (its finding key), and whether it is the expected one;
- alert-to-record time: the first alert's ``startsAt`` to the last notebook of the incident
  finishing;
- findings repeated within any message (none is right), and the Slack update's change lines.

Not part of CI (a full run takes long); its pieces are: ``tests/analysis/test_story.py`` and the
fault tests. The latest table is committed as ``tests/bench/DRILL.md`` and shown in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: What each fault or preset should be blamed on: finding keys, any of which is right. A fault
#: that is only a symptom (a traffic spike of 5xx, slow answers) has no cause to find: ``()``
#: means "no causal finding, the root cause is left to the review".
EXPECTED: dict[str, tuple[str, ...]] = {
    "connection_pool_exhausted": ("db.pool_exhaustion", "db.max_connections"),
    "example_incident": ("db.pool_exhaustion", "db.max_connections"),
    "memory_leak": ("kube.oomkilled",),
    "disk_full": ("kube.disk_full",),
    "slow_queries": ("db.missing_index",),
    "external_api_down": ("deps.http_down", "deps.dependency_down"),
    "pool-exhaustion": ("db.pool_exhaustion", "db.max_connections"),
    "lock-contention": ("db.lock_chain", "db.idle_in_transaction"),
    "prepared-xact": ("db.prepared_xacts",),
    "idle-in-transaction": ("db.idle_in_transaction",),
    "xid-age": ("db.xid_age",),
    "wal-slot": ("db.replication_slot_wal",),
    "replica-lag": ("db.replica_lag",),
    "dead-tuples": ("db.autovacuum_behind", "db.bloat"),
    "long-queries": ("db.long_queries",),
    "slow-queries": ("db.missing_index",),
    "redis-memory": ("redis.memory_pressure",),
    "redis-slow": ("redis.slow_commands",),
    "redis-down": ("redis.unavailable",),
    "oomkill": ("kube.oomkilled",),
    "crashloop": ("kube.crashloop",),
    "bad-deploy": ("kube.bad_deploy",),
    "disk-full": ("kube.disk_full",),
    "dependency-down": ("deps.rabbitmq", "deps.http_down", "deps.dependency_down"),
    "external-down": ("deps.http_down", "deps.dependency_down"),
    "error-spike": (),
    "latency-spike": (),
}

COLUMNS = (
    "drill",
    "incidents",
    "severity (declared / suggested)",
    "decision tree: most likely",
    "postmortem root cause",
    "alert → record",
    "repeated in messages",
    "update lines",
)


def _say(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def _t(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _records(outputs: Path) -> list[Path]:
    return sorted(p for p in outputs.glob("INC-*") if (p / "record.json").exists())


def _load(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "record.json").read_text()))


def drill(
    lab: Any, name: str, work: Path, *, timeout: float, resolve_timeout: float, quiet_s: float, alert_timeout: float
) -> dict[str, Any]:
    """One drill; returns its row (plus the raw facts under ``_``)."""
    from vcci_lab.cli.demo import Serve
    from vcci_nb import postmortem, story
    from vcci_nb.notify import render
    from vcci_nb.record import IncidentRecord

    outputs = work / name / "outputs"
    shutil.rmtree(work / name, ignore_errors=True)
    outputs.mkdir(parents=True)
    env = {**os.environ, **lab.env(), "VCCI_NB_OUTPUTS": str(outputs)}
    # A fresh start: data back to baseline and a new emulated cluster, so that the pods' logs of an
    # earlier drill (its statement timeouts, its provider errors) cannot speak for this fault.
    lab.reset()
    serve = Serve(env, work / name / "serve", outputs)
    row: dict[str, Any] = {"drill": name}
    try:
        lab.set_webhook(f"{serve.base}/alertmanager", serve.token)
        _say(f"{name}: injecting")
        lab.inject(name)
        t_inject = time.monotonic()
        deadline = t_inject + timeout
        settled_since: float | None = None
        while time.monotonic() < deadline:
            if not _records(outputs) and time.monotonic() - t_inject > alert_timeout:
                break  # no alert rule fired for this fault
            queued, running, finished = serve.runs()
            busy = queued or running
            if _records(outputs) and finished >= 1 and not busy:
                # the fault's other alert groups may still join (and queue their bundles): wait a bit
                settled_since = settled_since or time.monotonic()
                if time.monotonic() - settled_since >= quiet_s:
                    break
            else:
                settled_since = None
            time.sleep(1.0)
        folders = _records(outputs)
        row["incidents"] = str(len(folders))
        if not folders:
            row.update({k: "—" for k in COLUMNS[2:]})
            row["incidents"] = "0 (no alert fired)"
            return row
        _say(f"{name}: {len(folders)} incident(s); healing")
        lab.heal(name)
        deadline = time.monotonic() + resolve_timeout
        while time.monotonic() < deadline and any(_load(f)["status"] not in ("resolved", "closed") for f in folders):
            time.sleep(2.0)
        by_hand = []
        for f in folders:
            if _load(f)["status"] not in ("resolved", "closed"):
                IncidentRecord.load(f.name, outputs).set_status("resolved", note="drill: resolved by hand")
                by_hand.append(f.name)
        # let serve finish anything the resolution queued before reading the record
        for _ in range(60):
            queued, running, _finished = serve.runs()
            if not (queued or running):
                break
            time.sleep(1.0)
        data = _load(folders[0])
        facts = story.facts(data.get("findings") or [])
        tree = postmortem.decision_tree_hypothesis(
            [_finding(f) for f in data.get("findings") or [] if isinstance(f, dict)]
        )
        pm = postmortem.build(folders[0].name, outputs, env.get("PROMETHEUS_URL"), profile="lab")
        expected = EXPECTED.get(name, ())
        suggested = next((str(f.get("value")) for f in reversed(data.get("findings") or [])
                          if f.get("key") == "triage.severity"), "—")  # fmt: skip
        row["severity (declared / suggested)"] = f"{data['severity']} / {suggested}"
        tree_keys = list(dict.fromkeys(tree.get("findings") or [])) if tree else []
        row["decision tree: most likely"] = (
            f"{tree['cause']} ({', '.join(tree_keys[:2])}) {_mark(tree_keys, expected)}" if tree
            else f"nothing likely {_mark([], expected)}"
        )  # fmt: skip
        root = pm.root_cause
        row["postmortem root cause"] = (
            f"`{root['key']}` {_mark([root['key']], expected)}" if root else f"to be determined {_mark([], expected)}"
        )
        starts = [t for a in data.get("alerts") or [] if (t := _t(a.get("startsAt")))]
        ends = [t for nb in data.get("notebooks") or [] if (t := _t(nb.get("finished_at")))]
        row["alert → record"] = f"{(max(ends) - min(starts)).total_seconds():.0f} s" if starts and ends else "—"
        repeated: list[str] = []
        lines = 0
        for template in ("initial", "update"):
            preview = render(folders[0].name, template, "all", profile="lab", outputs=outputs)
            for m in preview.messages:
                repeated += [f"{template}/{m.channel}: {s}" for s in story.repeated(m.text, facts)]
                if template == "update" and m.channel.startswith("slack"):
                    lines = max(lines, sum(1 for ln in m.text.splitlines() if ln.startswith("•")))
        row["repeated in messages"] = str(len(repeated)) if not repeated else f"{len(repeated)}: {repeated[0][:60]}"
        row["update lines"] = str(lines)
        notes = []
        failed = [nb["name"] for nb in data.get("notebooks") or [] if nb.get("status") != "succeeded"]
        if failed:
            notes.append(f"failed: {', '.join(failed)}")
        if by_hand:
            notes.append("resolved by hand")
        if notes:
            row["incidents"] = f"{len(folders)} ({'; '.join(notes)})"
        row["_"] = {"records": [str(f) for f in folders], "repeated": repeated, "tree": tree}
        return row
    finally:
        with _suppress():
            lab.heal(name)
        lab.set_webhook(None)
        serve.stop()


def _finding(d: dict[str, Any]) -> Any:
    from vcci_nb.analysis.model import Finding

    return Finding.from_dict(d)


def _mark(keys: list[str], expected: tuple[str, ...]) -> str:
    if not expected:
        return "✓" if not keys else "✗ (expected none)"
    return "✓" if any(k in expected for k in keys) else "✗"


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in COLUMNS) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from vcci_lab import FAULTS, PRESETS, Lab

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help="fault or preset names, 'presets', 'faults' or 'all'")
    parser.add_argument("--out", help="write the table (markdown) here, e.g. tests/bench/DRILL.md")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each record")
    parser.add_argument("--resolve-timeout", type=float, default=240.0, help="seconds to wait for serve to resolve")
    parser.add_argument("--quiet", type=float, default=20.0, help="seconds with no run queued before reading")
    parser.add_argument("--alert-timeout", type=float, default=90.0, help="seconds to wait for a first incident")
    parser.add_argument("--lab-dir", help="lab directory (default: a temporary one, removed afterwards)")
    args = parser.parse_args(argv)
    names: list[str] = []
    for n in args.names:
        if n in ("all", "presets"):
            names += list(PRESETS)
        if n in ("all", "faults"):
            names += list(FAULTS)
        if n not in ("all", "presets", "faults"):
            names.append(n)
    work = Path(tempfile.mkdtemp(prefix="vcci-drill-"))
    lab_dir = Path(args.lab_dir) if args.lab_dir else work / "lab"
    lab = Lab(lab_dir)
    _say(f"starting the lab in {lab_dir}")
    lab.up(stop_with=os.getpid(), progress=lambda m: print(f"    {m}", file=sys.stderr, flush=True))
    rows: list[dict[str, Any]] = []
    started = datetime.now(UTC)
    try:
        for name in names:
            t0 = time.monotonic()
            try:
                row = drill(lab, name, work, timeout=args.timeout, resolve_timeout=args.resolve_timeout,
                            quiet_s=args.quiet, alert_timeout=args.alert_timeout)  # fmt: skip
            except Exception as exc:  # one broken drill does not end the others
                row = {"drill": name, "incidents": f"error: {exc}"[:120]}
            rows.append(row)
            _say(f"{name}: done in {time.monotonic() - t0:.0f} s")
            print(table([row]).splitlines()[-1], flush=True)
    finally:
        lab.down()
    text = table(rows)
    print(text)
    if args.out:
        load = os.getloadavg()[0]
        Path(args.out).write_text(
            f"# Drill scorecard\n\n`tests/bench/drill.py {' '.join(args.names)}`, {started:%Y-%m-%d %H:%M} UTC, "
            f"{os.cpu_count()} cores, load {load:.1f} at the end. ✓ = the expected root cause "
            "(tests/bench/drill.py EXPECTED) is first; a symptom-only fault expects none.\n\n" + text + "\n"
        )
    if not args.lab_dir:
        shutil.rmtree(lab_dir, ignore_errors=True)
    _say(f"records kept under {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

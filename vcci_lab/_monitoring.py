"""Prometheus (backfilled history, scrapes, alert rules), Alertmanager and the Debian exporters."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from vcci_lab import _fakeapi, _procs
from vcci_lab.flavour import DEFAULT, Flavour
from vcci_nb.errors import LabError

log = logging.getLogger(__name__)

#: History backfilled before Prometheus starts (the issue asks for at least 6 h).
HISTORY_SECONDS = 6.25 * 3600
HISTORY_STEP = 60.0

# --- alert rules --------------------------------------------------------------------------------


def _rule(
    fl: Flavour,
    name: str,
    expr: str,
    severity: str,
    bundle: str,
    summary: str,
    description: str,
    service: str = "",
    for_: str = "0s",
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, "service": service or fl.api, "namespace": fl.namespace, "bundle": bundle},
        "annotations": {"summary": summary, "description": description},
    }


def rules(fl: Flavour = DEFAULT) -> dict[str, Any]:
    """The runbook's symptoms as alert rules, each labelled with severity, service and bundle.

    Named and written like the postgres_exporter/redis_exporter/kube-state-metrics alerts a platform
    runs, with the lab's shorter windows so that every fault fires within about a minute: windows
    are 1 minute and ``for`` is 0-10 s here; production rules use 5-minute windows and ``for: 2m``
    to ``15m``, and the PostgreSQL thresholds of the profile (lab.yaml's are low because the lab's
    faults are young and small: a query active 30 s, an idle transaction 5 s, an XID age of
    100,000). Each rule's comment says what production would use. Rules on pods look at pods that
    exist now, so that an alert resolves once the fix has replaced the pods, as it does on a
    cluster (a replaced pod's counters stay in a 5-minute window for 5 minutes). Every metric,
    label and name is the flavour's (:mod:`vcci_lab.flavour`).
    """
    api = f'job="{fl.job}"'
    ns = f'namespace="{fl.namespace}"'
    restarts = f"sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total{{{ns}}}[5m]))"
    # pods that exist now and have restarted: a pod the fix replaced is gone from kube-state-metrics
    # at once, and a new pod (the lab's reset makes one under the same name) starts from 0
    pods_now = f"max by (namespace, pod) (kube_pod_container_status_restarts_total{{{ns}}}) > 0"
    db = f'datname="{fl.database}"'
    return {
        "groups": [
            {
                "name": fl.api,
                "interval": "1s",
                "rules": [
                    _rule(
                        fl,
                        "VcciApiHighErrorRate",
                        f'sum(rate({fl.requests_metric}{{{api},{fl.status_label}=~"5.."}}[1m])) / '
                        f"sum(rate({fl.requests_metric}{{{api}}}[1m])) > 0.05",
                        "critical",
                        "triage",
                        f"{fl.api} 5xx ratio above 5%",
                        f"{{{{ $value | humanizePercentage }}}} of {fl.api} requests fail with 5xx.",
                    ),
                    _rule(
                        fl,
                        "VcciApiHighLatency",
                        "histogram_quantile(0.95, sum by (le) "
                        f'(rate({fl.duration_metric}_bucket{{{api},route!="/health"}}[1m]))) > 2',
                        "high",
                        "investigate",
                        f"{fl.api} p95 latency above 2 s",
                        "p95 latency is {{ $value | humanizeDuration }}.",
                    ),
                    _rule(
                        fl,
                        "VcciDbPoolNearlyExhausted",
                        f'sum({fl.pool_metric}{{{api},state="in_use"}}) / sum({fl.pool_size_metric}{{{api}}}) > 0.9',
                        "high",
                        "connection_pool_exhausted",
                        f"{fl.api} database pool nearly exhausted",
                        "{{ $value | humanizePercentage }} of the pool's connections are in use.",
                    ),
                    _rule(
                        fl,
                        "VcciDependencyDown",
                        f"{fl.dependency_metric}{{{api}}} == 0",
                        "high",
                        "external_api_down",
                        f"{fl.api} dependency {{{{ $labels.{fl.dependency_label} }}}} is down",
                        f"{fl.api} cannot reach {{{{ $labels.{fl.dependency_label} }}}}.",
                    ),
                ],
            },
            {
                "name": "vcci-database",
                "interval": "1s",
                "rules": [
                    _rule(
                        fl,
                        "PostgresConnectionsNearLimit",
                        f'pg_role_connections{{rolname="{fl.app_role}"}} / '
                        f'(pg_role_connection_limit{{rolname="{fl.app_role}"}} > 0) >= 0.9',
                        "high",
                        "connection_pool_exhausted",
                        f"{fl.app_role} is near its connection limit",
                        f"{{{{ $value | humanizePercentage }}}} of {fl.app_role}'s connection limit is used.",
                        service="postgres",
                    ),
                    _rule(
                        fl,
                        "PostgresConnectionsNearMax",
                        "sum(pg_stat_activity_count) / max(pg_settings_max_connections) > 0.8",
                        "high",
                        "connection_pool_exhausted",
                        "PostgreSQL connections near max_connections",
                        "{{ $value | humanizePercentage }} of max_connections are used.",
                        service="postgres",
                    ),
                    _rule(
                        fl,
                        "PostgresDown",
                        "pg_up == 0",
                        "outage",  # the seed's "database unavailable" is P0 (routes.yaml: outage -> P0)
                        "triage",
                        "PostgreSQL is down",
                        "The postgres exporter cannot reach PostgreSQL.",
                        service="postgres",
                    ),
                    # production: > 300 (seed 3.1, the profile's long_query_s), for: 2m
                    _rule(
                        fl,
                        "PostgresLongRunningQueries",
                        f'pg_stat_activity_max_tx_duration{{{db},state="active"}} > 30',
                        "medium",
                        "slow_queries",
                        "A query has been running for more than 30 seconds",
                        "The longest active transaction is {{ $value | humanizeDuration }} old.",
                        service="postgres",
                    ),
                    # production: > 60, for: 5m
                    _rule(
                        fl,
                        "PostgresSessionsBlockedOnLocks",
                        f"pg_blocked_max_wait_seconds{{{db}}} > 10",
                        "high",
                        "slow_queries",
                        "Sessions have been waiting on locks for more than 10 seconds",
                        "{{ $labels.datname }}: a session has waited on a lock for {{ $value | humanizeDuration }}.",
                        service="postgres",
                    ),
                    # production: > 300 (the profile's idle_in_transaction_s), for: 5m
                    _rule(
                        fl,
                        "PostgresIdleInTransaction",
                        f'pg_stat_activity_max_tx_duration{{{db},state="idle in transaction"}} > 5',
                        "warning",
                        "database",
                        "A session has been idle in a transaction for more than 5 seconds",
                        "The oldest idle transaction is {{ $value | humanizeDuration }} old; it holds its locks "
                        "and keeps VACUUM from removing dead rows.",
                        service="postgres",
                        for_="5s",
                    ),
                    # production: > 300, for: 5m
                    _rule(
                        fl,
                        "PostgresPreparedTransactionOpen",
                        "pg_prepared_xacts_oldest_age_seconds > 5",
                        "high",
                        "database",
                        "A prepared (two-phase) transaction is left open in {{ $labels.datname }}",
                        "{{ $value | humanizeDuration }} old: it holds its locks and XID until committed or rolled "
                        "back.",
                        service="postgres",
                    ),
                    # production: a share of autovacuum_freeze_max_age (e.g. > 1e9), for: 15m
                    _rule(
                        fl,
                        "PostgresXidWraparound",
                        "pg_database_wraparound_age_datfrozenxid > 100000",
                        "high",
                        "database",
                        "Transaction ID age of {{ $labels.datname }} is high",
                        "age(datfrozenxid) is {{ $value }}; VACUUM cannot freeze past the oldest transaction.",
                        service="postgres",
                    ),
                    # production: for: 30m, or on the WAL it retains
                    _rule(
                        fl,
                        "PostgresReplicationSlotInactive",
                        "pg_replication_slots_active == 0",
                        "high",
                        "database",
                        "Replication slot {{ $labels.slot_name }} is inactive",
                        "No replica uses slot {{ $labels.slot_name }}; it keeps every WAL file since.",
                        service="postgres",
                        for_="5s",
                    ),
                    # production: > 100 MiB or replay_lag > 30 s, for: 5m (the lab profile's replica_lag_bytes: 1 MiB)
                    _rule(
                        fl,
                        "PostgresReplicationLag",
                        "pg_replica_replay_lag_bytes > 1048576",
                        "high",
                        "database",
                        "Replica {{ $labels.application_name }} is behind in replay",
                        "{{ $labels.application_name }} replays {{ $value | humanize1024 }}B behind the primary.",
                        service="postgres",
                    ),
                    # as postgres mixins write it (dead rows over 10,000 and 10% of the table); production for: 30m
                    _rule(
                        fl,
                        "PostgresTooManyDeadTuples",
                        "(pg_stat_user_tables_n_dead_tup > 10000) / "
                        "(pg_stat_user_tables_n_live_tup + pg_stat_user_tables_n_dead_tup) >= 0.1",
                        "warning",
                        "database",
                        "Table {{ $labels.relname }} has many dead tuples",
                        "{{ $value | humanizePercentage }} of {{ $labels.relname }}'s rows are dead; is autovacuum "
                        "keeping up?",
                        service="postgres",
                    ),
                    _rule(
                        fl,
                        "RedisMemoryHigh",
                        "redis_memory_used_bytes / (redis_memory_max_bytes > 0) > 0.9",
                        "high",
                        "investigate",
                        "Redis memory above 90% of maxmemory",
                        "Redis uses {{ $value | humanizePercentage }} of maxmemory.",
                        service="redis",
                    ),
                    # slow commands logged again and again; production: [5m] > 10, for: 5m
                    _rule(
                        fl,
                        "RedisSlowCommands",
                        "increase(redis_slowlog_last_id[1m]) > 5",
                        "medium",
                        "redis",
                        "Redis is logging slow commands",
                        "{{ $value }} commands slower than slowlog-log-slower-than in the last minute.",
                        service="redis",
                    ),
                    _rule(
                        fl,
                        "RedisDown",
                        "redis_up == 0",
                        "critical",
                        "triage",
                        "Redis is down",
                        "The redis exporter cannot reach Redis.",
                        service="redis",
                    ),
                ],
            },
            {
                "name": "vcci-kubernetes",
                "interval": "1s",
                "rules": [
                    _rule(
                        fl,
                        "VcciPodOOMKilled",
                        "max by (namespace, pod) "
                        f'(kube_pod_container_status_last_terminated_reason{{{ns},reason="OOMKilled"}}) > 0 '
                        f"and on (namespace, pod) {restarts} > 0",
                        "critical",
                        "memory_leak",
                        "Pod {{ $labels.pod }} was OOMKilled",
                        "{{ $labels.pod }} restarted after running out of memory.",
                    ),
                    _rule(
                        fl,
                        "VcciPodRestarting",
                        f"{restarts} > 2 and on (namespace, pod) ({pods_now})",
                        "high",
                        "triage",
                        "Pod {{ $labels.pod }} is restarting",
                        "{{ $labels.pod }} restarted {{ $value }} times in 5 minutes.",
                    ),
                    _rule(
                        fl,
                        "VcciPodCrashLooping",
                        f"max by (namespace, pod) (kube_pod_container_status_waiting_reason{{{ns},"
                        'reason="CrashLoopBackOff"}) > 0',
                        "critical",
                        "triage",
                        "Pod {{ $labels.pod }} is in CrashLoopBackOff",
                        "{{ $labels.pod }} keeps crashing.",
                    ),
                    _rule(
                        fl,
                        "VcciMemoryNearLimit",
                        f"max by (namespace, pod) (container_memory_working_set_bytes{{{ns}}} / "
                        f"container_spec_memory_limit_bytes{{{ns}}}) > 0.9",
                        "high",
                        "memory_leak",
                        "Pod {{ $labels.pod }} memory above 90% of its limit",
                        "{{ $labels.pod }} uses {{ $value | humanizePercentage }} of its memory limit.",
                    ),
                    _rule(
                        fl,
                        "VcciVolumeAlmostFull",
                        "kubelet_volume_stats_available_bytes / kubelet_volume_stats_capacity_bytes < 0.1",
                        "critical",
                        "disk_full",
                        "Volume {{ $labels.persistentvolumeclaim }} almost full",
                        "Only {{ $value | humanizePercentage }} of {{ $labels.persistentvolumeclaim }} is free.",
                    ),
                ],
            },
        ]
    }


# --- Prometheus ---------------------------------------------------------------------------------


def write_prometheus_config(
    prom_dir: Path, ports: dict[str, int], kube_token: str | None, fl: Flavour = DEFAULT
) -> Path:
    h = _procs.HOST
    scrape: list[dict[str, Any]] = [
        {"job_name": "prometheus", "static_configs": [{"targets": [f"{h}:{ports['prometheus']}"]}]},
        {
            "job_name": fl.job,
            "scrape_interval": "2s",
            "static_configs": [{"targets": [f"{h}:{ports['vcci_api']}"]}],
        },
        {"job_name": "postgres", "static_configs": [{"targets": [f"{h}:{ports['postgres_exporter']}"]}]},
        {"job_name": "redis", "static_configs": [{"targets": [f"{h}:{ports['redis_exporter']}"]}]},
        {"job_name": "alertmanager", "static_configs": [{"targets": [f"{h}:{ports['alertmanager']}"]}]},
    ]
    if "kube" in ports:
        job: dict[str, Any] = {
            "job_name": "kubelet",
            "scrape_interval": "2s",
            "metrics_path": "/_lab/metrics",
            "static_configs": [{"targets": [f"{h}:{ports['kube']}"]}],
        }
        if kube_token:
            token_file = prom_dir / "kube-token"
            token_file.touch(mode=0o600, exist_ok=True)
            token_file.write_text(kube_token)
            job["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
        scrape.append(job)
    config = {
        "global": {
            "scrape_interval": "5s",
            "scrape_timeout": "2s",
            "evaluation_interval": "1s",
            "external_labels": {"cluster": fl.cluster},
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{h}:{ports['alertmanager']}"]}]}]},
        "rule_files": [str(prom_dir / "rules.yml")],
        "scrape_configs": scrape,
    }
    (prom_dir / "rules.yml").write_text(yaml.safe_dump(rules(fl), sort_keys=False, width=200))
    path = prom_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _kube_history(kube_metrics: str, instance: str, start: float, end: float, step: float, out: Any) -> None:
    """History for the emulator's series: the values it reports now, with realistic movement."""
    import math

    series: dict[str, list[tuple[str, float]]] = {}
    for line in kube_metrics.splitlines():
        if not line or line.startswith("#") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        labels, value = rest.rsplit("}", 1)
        series.setdefault(name, []).append((labels, float(value.strip())))
    base = f'job="kubelet",instance="{instance}"'
    for fam, items in series.items():
        out.write(f"# TYPE {fam} unknown\n")
        t = start
        while t <= end:
            ago = end - t
            for i, (labels, now_value) in enumerate(items):
                if fam == "container_cpu_usage_seconds_total":
                    rate = max(0.05, now_value / 86400.0) if now_value else 0.2
                    v = max(0.0, now_value - rate * ago * (1 + 0.1 * math.sin(t / 600 + i)))
                elif fam == "container_memory_working_set_bytes":
                    v = now_value * (0.9 + 0.06 * math.sin(t / 1800 + i) + 0.04 * ((t % 3600) / 3600))
                elif fam in ("kubelet_volume_stats_available_bytes",):
                    v = now_value * (1 + 0.02 * ago / 3600) if now_value else now_value
                elif fam in ("kubelet_volume_stats_used_bytes",):
                    v = max(0.0, now_value * (1 - 0.02 * ago / 3600))
                else:
                    v = now_value
                out.write(f"{fam}{{{base},{labels}}} {round(v, 3)} {t:.3f}\n")
            t += step


def backfill(
    prom_dir: Path,
    ports: dict[str, int],
    pods: list[str],
    kube_metrics: str | None,
    run_dir: Path,
    fl: Flavour = DEFAULT,
) -> dict[str, Any]:
    """Generate the history with the fake vcci-api's own model and load it with promtool."""
    data = prom_dir / "data"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    end = time.time() - 2
    start = end - HISTORY_SECONDS
    om = prom_dir / "history.om"
    instance = f"{_procs.HOST}:{ports['vcci_api']}"
    with open(om, "w") as out:
        state = _fakeapi.history(pods, instance, start, end, HISTORY_STEP, out, fl)
        if kube_metrics and "kube" in ports:
            _kube_history(kube_metrics, f"{_procs.HOST}:{ports['kube']}", start, end, HISTORY_STEP, out)
        out.write("# EOF\n")
    files = [str(om), str(data)]
    res = subprocess.run(
        [_procs.find_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    om.unlink(missing_ok=True)
    if res.returncode != 0:
        raise LabError(f"promtool could not backfill the history: {(res.stderr or res.stdout).strip()[-600:]}")
    model = {"pods": pods, "instance": instance, "state": state, "ports": _public_ports(ports)}
    (run_dir / "model.json").write_text(json.dumps(model))
    return {"history_start": start, "history_end": end}


def _public_ports(ports: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in ports.items() if k in ("postgres", "redis", "rabbitmq")}


def start_prometheus(prom_dir: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [
        _procs.find_binary("prometheus"),
        f"--config.file={prom_dir / 'prometheus.yml'}",
        f"--storage.tsdb.path={prom_dir / 'data'}",
        f"--web.listen-address={_procs.HOST}:{port}",
        "--storage.tsdb.retention.time=2d",
        "--rules.alert.resend-delay=1s",
        "--web.enable-lifecycle",
        "--web.console.templates=/dev/null",
        "--web.console.libraries=/dev/null",
    ]
    proc = _procs.spawn("prometheus", argv, log_path, cwd=prom_dir)
    _procs.wait_until(
        "prometheus",
        lambda: _procs.http_ok(f"http://{_procs.HOST}:{port}/-/ready"),
        timeout=30,
        proc=proc,
        log_path=log_path,
    )
    return proc


# --- Alertmanager -------------------------------------------------------------------------------


def write_alertmanager_config(am_dir: Path, webhook: dict[str, str] | None) -> Path:
    am_dir.mkdir(parents=True, exist_ok=True)
    receivers: list[dict[str, Any]] = [{"name": "null"}]
    receiver = "null"
    if webhook and webhook.get("url"):
        hook: dict[str, Any] = {"url": webhook["url"], "send_resolved": True, "max_alerts": 0}
        if webhook.get("token"):
            token_file = am_dir / "webhook-token"
            token_file.touch(mode=0o600, exist_ok=True)
            token_file.chmod(0o600)
            token_file.write_text(webhook["token"])
            hook["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}}
        receivers.append({"name": "vcci-nb", "webhook_configs": [hook]})
        receiver = "vcci-nb"
    config = {
        "route": {
            "receiver": receiver,
            "group_by": ["alertname", "namespace"],
            "group_wait": "1s",
            "group_interval": "5s",
            "repeat_interval": "1h",
        },
        "receivers": receivers,
    }
    path = am_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_alertmanager(am_dir: Path, port: int, log_path: Path, webhook: dict[str, str] | None) -> Any:
    conf = write_alertmanager_config(am_dir, webhook)
    # Start with no notification log or silences, as Prometheus starts from fresh history: an nflog
    # kept from an earlier run remembers its groups as notified and, within repeat_interval, sends
    # nothing when the same alerts fire again (a second `./dev demo` then waited in vain).
    shutil.rmtree(am_dir / "data", ignore_errors=True)
    argv = [
        _procs.find_binary("prometheus-alertmanager"),
        f"--config.file={conf}",
        f"--storage.path={am_dir / 'data'}",
        f"--web.listen-address={_procs.HOST}:{port}",
        "--cluster.listen-address=",
    ]
    proc = _procs.spawn("alertmanager", argv, log_path, cwd=am_dir)
    _procs.wait_until(
        "alertmanager",
        lambda: _procs.http_ok(f"http://{_procs.HOST}:{port}/-/ready"),
        timeout=20,
        proc=proc,
        log_path=log_path,
    )
    return proc


def reload(url: str) -> None:
    req = urllib.request.Request(f"{url}/-/reload", method="POST", data=b"")  # noqa: S310 - lab URL
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        if resp.status >= 300:
            raise LabError(f"{url} refused to reload its configuration (HTTP {resp.status})")


# --- exporters ----------------------------------------------------------------------------------

#: Queries the lab's postgres_exporter adds to its built-in metrics (``--extend.query-path``), as
#: platforms add them: prepared transactions, transaction ID age, dead tuples, replica lag and lock waits.
PG_QUERIES = {
    "pg_role": {
        "query": (
            "SELECT r.rolname, r.rolconnlimit::float AS connection_limit, count(a.pid)::float AS connections "
            "FROM pg_roles r LEFT JOIN pg_stat_activity a ON a.usename = r.rolname "
            "WHERE r.rolcanlogin AND NOT r.rolsuper GROUP BY r.rolname, r.rolconnlimit"
        ),
        "metrics": [
            {"rolname": {"usage": "LABEL", "description": "role name"}},
            {"connection_limit": {"usage": "GAUGE", "description": "the role's CONNECTION LIMIT (-1: none)"}},
            {"connections": {"usage": "GAUGE", "description": "sessions of the role now"}},
        ],
    },
    "pg_prepared_xacts": {
        "query": (
            "SELECT d.datname, count(p.gid)::float AS count, "
            "coalesce(max(extract(epoch FROM now() - p.prepared)), 0)::float AS oldest_age_seconds "
            "FROM pg_database d LEFT JOIN pg_prepared_xacts p ON p.database = d.datname "
            "WHERE d.datallowconn GROUP BY d.datname"
        ),
        "metrics": [
            {"datname": {"usage": "LABEL", "description": "database"}},
            {"count": {"usage": "GAUGE", "description": "prepared (two-phase) transactions"}},
            {"oldest_age_seconds": {"usage": "GAUGE", "description": "age of the oldest prepared transaction"}},
        ],
    },
    "pg_database_wraparound": {
        "query": (
            "SELECT datname, age(datfrozenxid)::float AS age_datfrozenxid, "
            "mxid_age(datminmxid)::float AS age_datminmxid FROM pg_database WHERE datallowconn"
        ),
        "metrics": [
            {"datname": {"usage": "LABEL", "description": "database"}},
            {"age_datfrozenxid": {"usage": "GAUGE", "description": "transaction ID age of the database"}},
            {"age_datminmxid": {"usage": "GAUGE", "description": "multixact ID age of the database"}},
        ],
    },
    # what newer postgres_exporters' stat_user_tables collector exports (0.11 does not yet)
    "pg_stat_user_tables": {
        "query": (
            "SELECT current_database() AS datname, schemaname, relname, n_live_tup::float AS n_live_tup, "
            "n_dead_tup::float AS n_dead_tup FROM pg_stat_user_tables"
        ),
        "metrics": [
            {"datname": {"usage": "LABEL", "description": "database"}},
            {"schemaname": {"usage": "LABEL", "description": "schema"}},
            {"relname": {"usage": "LABEL", "description": "table"}},
            {"n_live_tup": {"usage": "GAUGE", "description": "estimated live rows"}},
            {"n_dead_tup": {"usage": "GAUGE", "description": "estimated dead rows"}},
        ],
    },
    "pg_replica": {
        "query": (
            "SELECT application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float AS replay_lag_bytes "
            "FROM pg_stat_replication WHERE NOT pg_is_in_recovery()"
        ),
        "metrics": [
            {"application_name": {"usage": "LABEL", "description": "the replica's application_name"}},
            {"replay_lag_bytes": {"usage": "GAUGE", "description": "WAL the replica has not replayed yet"}},
        ],
    },
    "pg_blocked": {
        "query": (
            "SELECT d.datname, count(a.pid)::float AS sessions, "
            "coalesce(max(extract(epoch FROM now() - a.query_start)), 0)::float AS max_wait_seconds "
            "FROM pg_database d LEFT JOIN pg_stat_activity a ON a.datid = d.oid AND a.wait_event_type = 'Lock' "
            "WHERE d.datallowconn GROUP BY d.datname"
        ),
        "metrics": [
            {"datname": {"usage": "LABEL", "description": "database"}},
            {"sessions": {"usage": "GAUGE", "description": "sessions waiting on a lock"}},
            {"max_wait_seconds": {"usage": "GAUGE", "description": "longest wait on a lock"}},
        ],
    },
}


def start_postgres_exporter(
    exp_dir: Path, port: int, pg_port: int, password: str, log_path: Path, database: str = "vcci_production"
) -> subprocess.Popen[bytes]:
    exp_dir.mkdir(parents=True, exist_ok=True)
    queries = exp_dir / "queries.yaml"
    queries.write_text(yaml.safe_dump(PG_QUERIES, sort_keys=False))
    dsn = f"postgresql://postgres:{password}@{_procs.HOST}:{pg_port}/{database}?sslmode=disable"
    argv = [
        _procs.find_binary("prometheus-postgres-exporter"),
        f"--web.listen-address={_procs.HOST}:{port}",
        f"--extend.query-path={queries}",
    ]
    proc = _procs.spawn("postgres-exporter", argv, log_path, env={"DATA_SOURCE_NAME": dsn})
    _procs.wait_until(
        "postgres-exporter",
        lambda: _procs.http_ok(f"http://{_procs.HOST}:{port}/metrics", timeout=3),
        timeout=20,
        proc=proc,
        log_path=log_path,
    )
    return proc


def start_redis_exporter(port: int, redis_port: int, password: str, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [
        _procs.find_binary("prometheus-redis-exporter"),
        f"-redis.addr=redis://{_procs.HOST}:{redis_port}",
        f"-web.listen-address={_procs.HOST}:{port}",
    ]
    env = {"REDIS_USER": "default", "REDIS_PASSWORD": password}
    proc = _procs.spawn("redis-exporter", argv, log_path, env=env)
    _procs.wait_until(
        "redis-exporter",
        lambda: _procs.http_ok(f"http://{_procs.HOST}:{port}/metrics", timeout=3),
        timeout=20,
        proc=proc,
        log_path=log_path,
    )
    return proc

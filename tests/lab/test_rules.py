"""The lab's alert rules, checked by Prometheus' own promtool (no lab started: fast).

- both flavours' rule files pass ``promtool check rules``;
- every lab fault has a rule whose expression fires under the metrics the fault makes (the series
  here are what the lab's exporters and the Kubernetes emulator report while the fault lasts), and
  the alert's ``bundle`` label names a bundle whose notebooks find that fault;
- the pod rules resolve soon after the fix replaced the pods (their restart counts are gone);
- PostgreSQL down opens as P0, as the seed's runbook says.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from vcci_lab import _procs
from vcci_lab._monitoring import rules
from vcci_lab.flavour import DEFAULT, OTHER, Flavour
from vcci_nb.alerts.routing import Routes
from vcci_nb.config import parameters_dir

FLAVOURS = [DEFAULT, OTHER]


def _promtool() -> str:
    try:
        return _procs.find_binary("promtool")
    except Exception as exc:  # the lab's Prometheus install brings promtool (./dev installs it)
        pytest.fail(f"promtool is not installed ({exc}); run ./dev setup")


def _series(fl: Flavour) -> dict[str, list[tuple[str, str]]]:
    """Per fault: the series (promtool notation, one sample a second) its metrics show."""
    db = f'datname="{fl.database}"'
    ns = f'namespace="{fl.namespace}"'
    activity = "pg_stat_activity_max_tx_duration"
    restarts = "kube_pod_container_status_restarts_total"
    pod = f'{ns},pod="{fl.api}-7d9c-abcde",container="{fl.api_container}"'
    return {
        "lock-contention": [
            (f"pg_blocked_max_wait_seconds{{{db}}}", "0+1x120"),
            (f'{activity}{{{db},state="idle in transaction"}}', "0+1x120"),
        ],
        "long-queries": [(f'{activity}{{{db},state="active"}}', "0+1x120")],
        "prepared-xact": [(f"pg_prepared_xacts_oldest_age_seconds{{{db}}}", "0+1x120")],
        "idle-in-transaction": [(f'{activity}{{{db},state="idle in transaction"}}', "0+1x120")],
        "xid-age": [(f"pg_database_wraparound_age_datfrozenxid{{{db}}}", "160000x120")],
        "wal-slot": [('pg_replication_slots_active{slot_name="vcci_replica_1"}', "0x120")],
        "replica-lag": [('pg_replica_replay_lag_bytes{application_name="vcci-replica-1"}', "10485760x120")],
        "dead-tuples": [
            (f'pg_stat_user_tables_n_dead_tup{{{db},schemaname="public",relname="suppliers"}}', "24000x120"),
            (f'pg_stat_user_tables_n_live_tup{{{db},schemaname="public",relname="suppliers"}}', "2000x120"),
        ],
        # the slow-command loop logs one every 2 s
        "redis-slow": [("redis_slowlog_last_id", "0+0.5x120")],
        "oomkill": [
            (f"{restarts}{{{pod}}}", "0 0 0 1x10 2x10 3x10 4x10 5x75"),
            (f'kube_pod_container_status_last_terminated_reason{{{pod},reason="OOMKilled"}}', "_x3 1x115"),
        ],
    }


#: The alert each fault must fire (there may be others).
FIRES = {
    "lock-contention": "PostgresSessionsBlockedOnLocks",
    "long-queries": "PostgresLongRunningQueries",
    "prepared-xact": "PostgresPreparedTransactionOpen",
    "idle-in-transaction": "PostgresIdleInTransaction",
    "xid-age": "PostgresXidWraparound",
    "wal-slot": "PostgresReplicationSlotInactive",
    "replica-lag": "PostgresReplicationLag",
    "dead-tuples": "PostgresTooManyDeadTuples",
    "redis-slow": "RedisSlowCommands",
    "oomkill": "VcciPodRestarting",
}

#: The notebook that finds each fault: the alert's bundle must run it.
FINDER = {
    "lock-contention": "03_investigate_database",
    "long-queries": "03_investigate_database",
    "prepared-xact": "03_investigate_database",
    "idle-in-transaction": "03_investigate_database",
    "xid-age": "03_investigate_database",
    "wal-slot": "03_investigate_database",
    "replica-lag": "03_investigate_database",
    "dead-tuples": "03_investigate_database",
    "redis-slow": "03_investigate_redis",
    "oomkill": "03_investigate_system",
}


def _rules_file(tmp_path: Path, fl: Flavour, *, annotations: bool = True) -> Path:
    data = rules(fl)
    if not annotations:  # promtool's unit tests compare annotations too; the labels are what route
        for g in data["groups"]:
            for r in g["rules"]:
                r.pop("annotations", None)
    path = tmp_path / f"rules-{fl.name}{'' if annotations else '-bare'}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=200))
    return path


def _by_name(fl: Flavour) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rules(fl)["groups"] for r in g["rules"]}


@pytest.mark.parametrize("fl", FLAVOURS, ids=lambda f: f.name)
def test_promtool_accepts_the_rule_files(tmp_path: Path, fl: Flavour) -> None:
    res = subprocess.run(
        [_promtool(), "check", "rules", str(_rules_file(tmp_path, fl))], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("fl", FLAVOURS, ids=lambda f: f.name)
def test_each_fault_fires_its_rule_and_the_rule_routes_to_a_bundle_that_finds_it(tmp_path: Path, fl: Flavour) -> None:
    by_name = _by_name(fl)
    routes = Routes.load()
    bundles = yaml.safe_load((parameters_dir() / "bundles.yaml").read_text())["bundles"]
    tests: list[dict[str, Any]] = []
    for fault, series in _series(fl).items():
        rule = by_name[FIRES[fault]]
        plan = routes.plan(rule["labels"])
        notebooks = " ".join(bundles[plan.bundle]["notebooks"])
        assert FINDER[fault] in notebooks, (fault, plan.bundle)
        if fault != "oomkill":  # one series in, the same labels (and the rule's) out
            got = dict(re.findall(r'(\w+)="([^"]*)"', series[0][0]))
            expected = [{"exp_labels": {**got, **rule["labels"]}}]
        else:
            pod = {"namespace": fl.namespace, "pod": f"{fl.api}-7d9c-abcde"}
            expected = [{"exp_labels": {**pod, **rule["labels"]}}]
        tests.append(
            {
                "interval": "1s",
                "name": f"{fault} fires {rule['alert']}",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [{"eval_time": "60s", "alertname": rule["alert"], "exp_alerts": expected}],
            }
        )
    # Pod rules resolve once the fix replaced the pods: 10 s after the restarting pod is gone, or
    # made again under its name with no restarts, even though its restarts are still inside the
    # 5-minute window.
    pod = f'namespace="{fl.namespace}",pod="{fl.api}-7d9c-abcde",container="{fl.api_container}"'
    restarts = "kube_pod_container_status_restarts_total"
    tests.append(
        {
            "interval": "1s",
            "name": "restart and OOM rules resolve once the pod is replaced",
            "input_series": [
                {"series": f"{restarts}{{{pod}}}", "values": "0 0 0 1x10 2x10 3x10 4x10 5x15 stale"},
                {
                    "series": f'kube_pod_container_status_last_terminated_reason{{{pod},reason="OOMKilled"}}',
                    "values": "_x3 1x55 stale",
                },
                {"series": f"{restarts}{{{pod.replace('abcde', 'fghij')}}}", "values": "_x60 0x60"},
                # a pod made again under the same name (the lab's reset does that) starts from 0 restarts
                {
                    "series": f"{restarts}{{{pod.replace('abcde', 'klmno')}}}",
                    "values": "0 0 0 1x10 2x10 3x10 4x10 5x15 0x60",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "55s",
                    "alertname": "VcciPodRestarting",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "namespace": fl.namespace,
                                "pod": f"{fl.api}-7d9c-{name}",
                                **by_name["VcciPodRestarting"]["labels"],
                            }
                        }
                        for name in ("abcde", "klmno")
                    ],
                },
                {"eval_time": "70s", "alertname": "VcciPodRestarting", "exp_alerts": []},
                {"eval_time": "70s", "alertname": "VcciPodOOMKilled", "exp_alerts": []},
            ],
        }
    )
    # and a healthy lab fires none of them
    activity = f'pg_stat_activity_max_tx_duration{{datname="{fl.database}"'
    tests.append(
        {
            "interval": "1s",
            "name": "healthy",
            "input_series": [
                {
                    "series": f'{activity},state="active"}}',
                    "values": "0.2x120",
                },
                {
                    "series": f'{activity},state="idle in transaction"}}',
                    "values": "0x120",
                },
                {"series": f'pg_prepared_xacts_oldest_age_seconds{{datname="{fl.database}"}}', "values": "0x120"},
                {"series": f'pg_database_wraparound_age_datfrozenxid{{datname="{fl.database}"}}', "values": "3000x120"},
                {"series": f'pg_blocked_max_wait_seconds{{datname="{fl.database}"}}', "values": "0x120"},
                {"series": "redis_slowlog_last_id", "values": "3x120"},
            ],
            "alert_rule_test": [
                {"eval_time": "60s", "alertname": FIRES[f], "exp_alerts": []} for f in FIRES if f != "oomkill"
            ],
        }
    )
    unit = tmp_path / f"tests-{fl.name}.yml"
    unit.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(_rules_file(tmp_path, fl, annotations=False))],
                "evaluation_interval": "1s",
                "tests": tests,
            },
            sort_keys=False,
            width=200,
        )
    )
    res = subprocess.run([_promtool(), "test", "rules", str(unit)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_postgres_down_opens_as_p0_and_every_rule_names_a_known_bundle() -> None:
    routes = Routes.load()
    bundles = set(yaml.safe_load((parameters_dir() / "bundles.yaml").read_text())["bundles"])
    for fl in FLAVOURS:
        by_name = _by_name(fl)
        assert routes.severity(by_name["PostgresDown"]["labels"]) == "P0"
        assert routes.severity(by_name["RedisDown"]["labels"]) == "P1"
        for name, rule in by_name.items():
            assert rule["labels"]["bundle"] in bundles, name
            assert routes.plan(rule["labels"]).bundle == rule["labels"]["bundle"], name

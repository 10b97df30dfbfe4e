"""Each fault is visible through the plain clients (psql, redis-cli, kubectl, curl, PromQL) and is
gone after heal. Runs against the session's lab; every test heals what it injects."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.lab]


def psql(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", url, "-XAtc", sql], capture_output=True, text=True, timeout=60)


def redis_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["redis-cli", "-u", url, "--no-auth-warning", *args], capture_output=True, text=True, timeout=30
    )


def kubectl(*args: str) -> str:
    res = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def promql(env: dict[str, str], query: str) -> list[dict[str, Any]]:
    url = env["PROMETHEUS_URL"] + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def value(env: dict[str, str], query: str) -> float | None:
    result = promql(env, query)
    return float(result[0]["value"][1]) if result else None


def eventually(check: Callable[[], Any], timeout: float = 45.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"not seen within {timeout:.0f}s: {what} (last: {last!r})")


def http_status(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_pool_exhaustion(lab: Any, lab_env: dict[str, str]) -> None:
    app = lab_env["VCCI_LAB_APP_DATABASE_URL"]
    assert psql(app, "SELECT 1").stdout.strip() == "1"
    count_sql = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'vcci_app' AND application_name = 'vcci-api'"
    with lab.fault("pool-exhaustion"):
        refused = psql(app, "SELECT 1")
        assert refused.returncode != 0
        assert 'too many connections for role "vcci_app"' in refused.stderr
        assert psql(lab_env["DATABASE_URL"], count_sql).stdout.strip() == "20"
        eventually(
            lambda: value(lab_env, 'pg_role_connections{rolname="vcci_app"}') == 20,
            what="pg_role_connections reaching 20 in Prometheus",
        )
        eventually(
            lambda: promql(lab_env, 'ALERTS{alertname="PostgresConnectionsNearLimit",alertstate="firing"}'),
            what="PostgresConnectionsNearLimit firing",
        )
    eventually(lambda: psql(app, "SELECT 1").returncode == 0, timeout=10, what="the app connecting again")
    assert psql(lab_env["DATABASE_URL"], count_sql).stdout.strip() == "0"


def test_lock_contention(lab: Any, lab_env: dict[str, str]) -> None:
    blocked = "SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
    idle_tx = "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
    with lab.fault("lock-contention"):
        assert int(psql(lab_env["DATABASE_URL"], blocked).stdout) >= 2
        assert int(psql(lab_env["DATABASE_URL"], idle_tx).stdout) >= 1
        waiting = psql(lab_env["DATABASE_URL"], "SELECT count(*) FROM pg_locks WHERE NOT granted")
        assert int(waiting.stdout) >= 2
    eventually(lambda: psql(lab_env["DATABASE_URL"], blocked).stdout.strip() == "0", timeout=10, what="no waiters")


def test_long_queries(lab: Any, lab_env: dict[str, str]) -> None:
    long_sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep%' "
        "AND pid <> pg_backend_pid() AND now() - query_start > interval '1 second'"
    )
    with lab.fault("long-queries"):
        eventually(lambda: int(psql(lab_env["DATABASE_URL"], long_sql).stdout or 0) >= 2, timeout=15, what="2 long")
    eventually(lambda: psql(lab_env["DATABASE_URL"], long_sql).stdout.strip() == "0", timeout=10, what="none left")


def test_slow_queries_drop_the_index(lab: Any, lab_env: dict[str, str]) -> None:
    explain = (
        "EXPLAIN SELECT sum(kgco2e) FROM emissions WHERE tenant_id = 7 AND calculated_at > now() - interval '30 days'"
    )
    index = "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_emissions_tenant_date'"
    assert "idx_emissions_tenant_date" in psql(lab_env["DATABASE_URL"], explain).stdout
    with lab.fault("slow-queries"):
        assert psql(lab_env["DATABASE_URL"], index).stdout.strip() == "0"
        assert "Seq Scan on emissions" in psql(lab_env["DATABASE_URL"], explain).stdout
        top = psql(
            lab_env["DATABASE_URL"],
            "SELECT query FROM pg_stat_statements WHERE query LIKE '%FROM emissions%tenant_id%' "
            "ORDER BY mean_exec_time DESC LIMIT 1",
        )
        assert "tenant_id" in top.stdout
    assert psql(lab_env["DATABASE_URL"], index).stdout.strip() == "1"
    assert "idx_emissions_tenant_date" in psql(lab_env["DATABASE_URL"], explain).stdout


# --- Redis --------------------------------------------------------------------------------------


def _memory_ratio(url: str) -> float:
    info = dict(line.split(":", 1) for line in redis_cli(url, "INFO", "memory").stdout.splitlines() if ":" in line)
    return int(info["used_memory"]) / int(info["maxmemory"])


def test_redis_memory(lab: Any, lab_env: dict[str, str]) -> None:
    assert _memory_ratio(lab_env["REDIS_URL"]) < 0.5
    with lab.fault("redis-memory"):
        assert _memory_ratio(lab_env["REDIS_URL"]) > 0.9
        eventually(
            lambda: (value(lab_env, "redis_memory_used_bytes / redis_memory_max_bytes") or 0) > 0.9,
            what="Redis memory ratio above 0.9 in Prometheus",
        )
    assert _memory_ratio(lab_env["REDIS_URL"]) < 0.5


def test_redis_slow(lab: Any, lab_env: dict[str, str]) -> None:
    url = lab_env["REDIS_URL"]  # the diagnostics user: SLOWLOG GET is allowed to it
    with lab.fault("redis-slow"):
        slow = redis_cli(url, "SLOWLOG", "GET", "10").stdout
        assert "DEBUG" in slow.upper() or "keys" in slow.lower()
        assert int(redis_cli(url, "SLOWLOG", "LEN").stdout) >= 3
    assert redis_cli(url, "SLOWLOG", "LEN").stdout.strip() == "0"


def test_redis_down(lab: Any, lab_env: dict[str, str]) -> None:
    url = lab_env["REDIS_URL"]
    with lab.fault("redis-down"):
        res = redis_cli(url, "PING")
        assert "PONG" not in res.stdout
        assert "refused" in (res.stdout + res.stderr).lower()
        assert not lab.status()["components"]["redis"]["running"]
        eventually(lambda: value(lab_env, "redis_up") == 0, what="redis_up == 0")
    assert redis_cli(url, "PING").stdout.strip() == "PONG"
    assert int(redis_cli(url, "DBSIZE").stdout) > 1000, "the cache was not re-seeded"


def test_diag_user_cannot_write_or_keys(lab: Any, lab_env: dict[str, str]) -> None:
    url = lab_env["REDIS_URL"]
    assert "NOPERM" in redis_cli(url, "KEYS", "*").stdout + redis_cli(url, "KEYS", "*").stderr
    assert "NOPERM" in redis_cli(url, "SET", "x", "1").stdout
    assert "NOPERM" in redis_cli(url, "FLUSHALL").stdout
    assert int(redis_cli(url, "DBSIZE").stdout) >= 5000


# --- Kubernetes (emulator) ----------------------------------------------------------------------

REASONS = "{range .items[*]}{.status.containerStatuses[*].lastState.terminated.reason}{'\\n'}{end}"
WAITING = "{range .items[*]}{.status.containerStatuses[*].state.waiting.reason}{'\\n'}{end}"


def test_oomkill(lab: Any, lab_env: dict[str, str]) -> None:
    with lab.fault("oomkill"):
        reasons = eventually(
            lambda: "OOMKilled" in kubectl("get", "pods", "-l", "app=vcci-api", "-o", f"jsonpath={REASONS}"),
            timeout=20,
            what="OOMKilled pods",
        )
        assert reasons
        assert "OOMKilling" in kubectl("get", "events", "-A")  # the kubelet reports it on the node
        eventually(
            lambda: promql(lab_env, 'kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}'),
            what="OOMKilled in kube metrics",
        )
    eventually(
        lambda: "OOMKilled" not in kubectl("get", "pods", "-l", "app=vcci-api", "-o", f"jsonpath={REASONS}"),
        timeout=20,
        what="no OOMKilled pods after heal",
    )


def test_crashloop(lab: Any, lab_env: dict[str, str]) -> None:
    with lab.fault("crashloop"):
        eventually(lambda: "CrashLoopBackOff" in kubectl("get", "pods", "-l", "app=vcci-api"), timeout=20)
        pod = kubectl("get", "pods", "-l", "app=vcci-api", "-o", "jsonpath={.items[0].metadata.name}").strip()
        assert "ERROR" in kubectl("logs", pod, "--tail=50")
    eventually(
        lambda: "CrashLoopBackOff" not in kubectl("get", "pods", "-l", "app=vcci-api"), timeout=20, what="recovered"
    )


def test_bad_deploy(lab: Any, lab_env: dict[str, str]) -> None:
    before = kubectl("rollout", "history", "deployment/vcci-api")
    with lab.fault("bad-deploy"):
        after = kubectl("rollout", "history", "deployment/vcci-api")
        assert after != before
        eventually(
            lambda: any(
                r in kubectl("get", "pods", "-l", "app=vcci-api", "-o", f"jsonpath={WAITING}")
                for r in ("CrashLoopBackOff", "Error", "CreateContainerConfigError", "ImagePullBackOff")
            ),
            timeout=20,
            what="failing pods of the new revision",
        )
    eventually(
        lambda: (
            not any(
                r in kubectl("get", "pods", "-l", "app=vcci-api", "-o", f"jsonpath={WAITING}")
                for r in ("CrashLoopBackOff", "ImagePullBackOff")
            )
        ),
        timeout=30,
        what="healthy pods after heal",
    )


def test_disk_full(lab: Any, lab_env: dict[str, str]) -> None:
    free = (
        'kubelet_volume_stats_available_bytes{persistentvolumeclaim="vcci-api-data"} / '
        'kubelet_volume_stats_capacity_bytes{persistentvolumeclaim="vcci-api-data"}'
    )
    assert (value(lab_env, free) or 0) > 0.2
    with lab.fault("disk-full"):
        eventually(lambda: (value(lab_env, free) or 1) < 0.1, what="volume under 10% free")
        eventually(
            lambda: promql(lab_env, 'ALERTS{alertname="VcciVolumeAlmostFull",alertstate="firing"}'),
            what="VcciVolumeAlmostFull firing",
        )
    eventually(lambda: (value(lab_env, free) or 0) > 0.2, what="free space back")


# --- dependencies and live metrics --------------------------------------------------------------


def test_dependency_down(lab: Any, lab_env: dict[str, str]) -> None:
    overview = lab_env["RABBITMQ_URL"] + "/api/overview"
    rabbit = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", overview]
    assert subprocess.run(rabbit, capture_output=True, text=True).stdout == "200"
    assert http_status(lab_env["EXTERNAL_API_URL"] + "/health") == 200
    with lab.fault("dependency-down"):
        assert subprocess.run(rabbit, capture_output=True, text=True).stdout == "000"
        assert http_status(lab_env["EXTERNAL_API_URL"] + "/health") == 503
        eventually(
            lambda: value(lab_env, 'vcci_dependency_up{dependency="rabbitmq"}') == 0, what="rabbitmq down in metrics"
        )
    assert subprocess.run(rabbit, capture_output=True, text=True).stdout == "200"
    assert http_status(lab_env["EXTERNAL_API_URL"] + "/health") == 200
    queues = subprocess.run(["curl", "-s", lab_env["RABBITMQ_URL"] + "/api/queues"], capture_output=True, text=True)
    assert {q["name"] for q in json.loads(queues.stdout)} >= {"calculations", "reports"}


RATIO_5XX = (
    'sum(rate(http_requests_total{job="vcci-api",status=~"5.."}[15s])) / '
    'sum(rate(http_requests_total{job="vcci-api"}[15s]))'
)
P95 = (
    'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="vcci-api",'
    'route!="/health"}[15s])))'
)


def test_error_spike(lab: Any, lab_env: dict[str, str]) -> None:
    # (an earlier test's fault may still be inside the 15 s window)
    eventually(lambda: (value(lab_env, RATIO_5XX) or 1) < 0.05, what="baseline 5xx ratio under 5%")
    with lab.fault("error-spike"):
        eventually(lambda: (value(lab_env, RATIO_5XX) or 0) > 0.1, what="5xx ratio above 10%")
        eventually(
            lambda: promql(lab_env, 'ALERTS{alertname="VcciApiHighErrorRate",alertstate="firing"}'),
            what="VcciApiHighErrorRate firing",
        )
    eventually(lambda: (value(lab_env, RATIO_5XX) or 1) < 0.05, what="5xx ratio back under 5%")


def test_latency_spike(lab: Any, lab_env: dict[str, str]) -> None:
    eventually(lambda: (value(lab_env, P95) or 9) < 2, what="baseline p95 under 2 s")
    with lab.fault("latency-spike"):
        eventually(lambda: (value(lab_env, P95) or 0) > 2, what="p95 above 2 s")
    eventually(lambda: (value(lab_env, P95) or 9) < 2, what="p95 back under 2 s")


def test_external_down_only_fails_the_external_health(lab: Any, lab_env: dict[str, str]) -> None:
    with lab.fault("external-down"):
        assert http_status(lab_env["EXTERNAL_API_URL"] + "/health") == 503
        health = json.loads(urllib.request.urlopen(lab_env["VCCI_API_URL"] + "/health", timeout=5).read())
        assert health["dependencies"]["external-api"] == 0
        assert health["dependencies"]["rabbitmq"] == 1
    assert http_status(lab_env["EXTERNAL_API_URL"] + "/health") == 200


def test_a_preset_injects_and_heals_all_its_faults(lab: Any, lab_env: dict[str, str]) -> None:
    from vcci_lab import PRESETS

    with lab.fault("connection_pool_exhausted"):
        assert set(lab.faults()) >= set(PRESETS["connection_pool_exhausted"])
        refused = psql(lab_env["VCCI_LAB_APP_DATABASE_URL"], "SELECT 1")
        assert "too many connections" in refused.stderr
    assert lab.faults() == []


def test_history_covers_six_hours(lab: Any, lab_env: dict[str, str]) -> None:
    for metric in (
        'http_requests_total{job="vcci-api"}',
        'http_request_duration_seconds_bucket{job="vcci-api"}',
        "container_memory_working_set_bytes",
        "container_cpu_usage_seconds_total",
        "vcci_db_pool_connections",
        "vcci_cache_hits_total",
        "kube_pod_container_status_restarts_total",
        "kubelet_volume_stats_available_bytes",
    ):
        assert promql(lab_env, f"{metric} offset 6h"), f"no {metric} 6 hours ago"
    # and the live series continue the history without a counter reset
    resets = value(lab_env, 'sum(resets(http_requests_total{job="vcci-api"}[7h]))')
    assert resets == 0


def test_reset_heals_everything_and_restores_the_baseline(lab: Any, lab_env: dict[str, str]) -> None:
    index = "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_emissions_tenant_date'"
    lab.inject("slow-queries")
    lab.inject("redis-memory")
    lab.inject("oomkill")
    assert psql(lab_env["DATABASE_URL"], index).stdout.strip() == "0"
    res = subprocess.run(
        [sys.executable, "-m", "vcci_nb", "lab", "--dir", str(lab.dir), "reset"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert lab.faults() == []
    assert psql(lab_env["DATABASE_URL"], index).stdout.strip() == "1"
    assert _memory_ratio(lab_env["REDIS_URL"]) < 0.5
    assert int(redis_cli(lab_env["REDIS_URL"], "DBSIZE").stdout) >= 5000
    assert "OOMKilled" not in kubectl("get", "pods", "-l", "app=vcci-api", "-o", f"jsonpath={REASONS}")


def test_no_lab_secret_reaches_a_log_or_a_command_line(lab: Any, lab_env: dict[str, str]) -> None:
    state = json.loads((lab.dir / "state.json").read_text())
    secrets = [v for v in state["secrets"].values() if len(v) >= 8]
    assert len(secrets) >= 10
    with lab.fault("pool-exhaustion"):  # holders get their connection strings too
        for log in (lab.dir / "logs").glob("*.log"):
            text = log.read_text(errors="replace")
            leaked = [s[:4] for s in secrets if s in text]
            assert not leaked, f"{log.name} contains lab secrets"
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if str(lab.dir) in cmd:
                    assert not [s for s in secrets if s in cmd], f"a secret is on the command line: {cmd[:80]}"

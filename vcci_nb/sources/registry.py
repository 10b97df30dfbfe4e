"""The gather registry: every evidence kind analysis knows, with the gather call that produces it.

The decision tree and the scenario notebooks name evidence by kind (``kubernetes.pods``,
``prometheus.error_ratio_5xx``); :func:`vcci_nb.notebook.ask_kinds` looks the kinds up here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vcci_nb.evidence import Evidence

__all__ = ["gatherers"]


def gatherers() -> dict[str, tuple[Callable[..., Evidence], dict[str, Any]]]:
    """Every evidence kind analysis knows, with the gather call that produces it."""
    from vcci_nb.sources import git, http, kube, postgres, prometheus, rabbitmq, redis

    table: dict[str, tuple[Callable[..., Evidence], dict[str, Any]]] = {
        "kubernetes.pods": (kube.gather_pods, {}),
        "kubernetes.containers": (kube.gather_containers, {}),
        "kubernetes.nodes": (kube.gather_nodes, {}),
        "kubernetes.top_pods": (kube.gather_top_pods, {}),
        "kubernetes.rollout_history": (kube.gather_rollout_history, {}),
        "kubernetes.error_signatures": (kube.gather_error_signatures, {}),
        "kubernetes.events": (kube.gather_events, {}),
        "kubernetes.oomkilled": (kube.gather_oomkilled, {}),
        "postgres.connections": (postgres.gather_connections, {}),
        "postgres.long_queries": (postgres.gather_long_queries, {}),
        "postgres.blocking": (postgres.gather_blocking, {}),
        "postgres.indexes": (postgres.gather_indexes, {}),
        "postgres.table_scans": (postgres.gather_table_scans, {}),
        "postgres.statements": (postgres.gather_statements, {}),
        "postgres.migrations": (postgres.gather_migrations, {}),
        "redis.ping": (redis.gather_ping, {}),
        "redis.info": (redis.gather_info, {}),
        "redis.slowlog": (redis.gather_slowlog, {}),
        "prometheus.volumes": (prometheus.gather_volumes, {}),
        "prometheus.dependency_up": (prometheus.gather_dependency_up, {}),
        "http.health": (http.gather_health, {}),
        "rabbitmq.overview": (rabbitmq.gather_overview, {}),
        "rabbitmq.queues": (rabbitmq.gather_queues, {}),
        "git.log": (git.gather_git_log, {}),
    }
    for panel in prometheus.panel_names():
        table[f"prometheus.{panel}"] = (prometheus.gather_panel, {"panel": panel})
    return table

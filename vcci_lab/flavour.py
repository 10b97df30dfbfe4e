"""Lab flavours: the same platform under two sets of names.

The default flavour is the VCCI platform as the seed names it (``vcci-production``, ``vcci-api``,
``http_requests_total{status=…}``, ``vcci_production``, …) and goes with the ``lab`` profile. The
``other`` flavour renames every one of those names (namespace, deployments, the app label's key and
value, containers, metric names, the 5xx label ``code`` instead of ``status``, job, ingress,
ConfigMap, PVC, database, roles, application names, the Redis key prefix, the kube contexts) and
goes with the ``lab-other`` profile. A product that read a name from anywhere but its profile works
on one flavour and fails on the other: the suite runs the notebooks, a serve-driven incident and a
postmortem on both.

Standard library only: the Kubernetes API emulator and the fake API import this.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Flavour:
    """Every name the lab gives the platform it emulates."""

    name: str
    profile: str  # parameters/environments/<profile>.yaml describes this flavour
    # Kubernetes
    namespace: str
    api: str  # the API's Deployment (and Service)
    worker: str  # the worker's Deployment
    api_container: str
    worker_container: str
    app_label: str  # the label key the Deployments select their pods by
    api_app: str  # its value on the API's pods
    worker_app: str
    ingress: str
    maintenance_configmap: str
    data_pvc: str
    config_configmap: str
    secret: str
    kube_context: str  # the read-only context of the lab's kubeconfig
    kube_admin_context: str
    cluster: str
    # Prometheus
    job: str
    requests_metric: str
    status_label: str  # the label holding the HTTP status code
    duration_metric: str  # histogram base name (…_bucket, _sum, _count)
    pool_metric: str  # gauge by state (in_use, idle)
    pool_size_metric: str
    cache_hits_metric: str
    cache_misses_metric: str
    dependency_metric: str
    dependency_label: str
    tenant_label: str
    # PostgreSQL
    database: str
    owner_role: str
    app_role: str
    worker_role: str
    diag_role: str
    mitigate_role: str
    maintainer_role: str  # VACUUM (ANALYZE) only
    index_builder_role: str  # CREATE INDEX CONCURRENTLY only
    xact_resolver_role: str  # ROLLBACK PREPARED only
    slot_dropper_role: str  # dropping an inactive replication slot only
    app_name: str  # application_name of the API's connections
    worker_app_name: str
    index_name: str  # the runbook's (tenant_id, calculated_at) index on emissions
    # Redis
    redis_diag_user: str
    cache_prefix: str  # keys are <prefix><tenant>:…; the profile's pattern is <prefix>*

    @property
    def app_selector(self) -> str:
        return f"{self.app_label}={self.api_app}"

    @property
    def cache_pattern(self) -> str:
        return f"{self.cache_prefix}*"

    def login_role(self, default_role: str) -> str:
        """The flavour's name for one of the default flavour's PostgreSQL roles."""
        return {
            "vcci_owner": self.owner_role,
            "vcci_app": self.app_role,
            "vcci_worker": self.worker_role,
            "vcci_diag": self.diag_role,
            "vcci_mitigate": self.mitigate_role,
            "vcci_maintainer": self.maintainer_role,
            "vcci_index_builder": self.index_builder_role,
            "vcci_xact_resolver": self.xact_resolver_role,
            "vcci_slot_dropper": self.slot_dropper_role,
        }.get(default_role, default_role)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


DEFAULT = Flavour(
    name="default",
    profile="lab",
    namespace="vcci-production",
    api="vcci-api",
    worker="vcci-worker",
    api_container="vcci-api",
    worker_container="vcci-worker",
    app_label="app",
    api_app="vcci-api",
    worker_app="vcci-worker",
    ingress="vcci-api-ingress",
    maintenance_configmap="vcci-maintenance",
    data_pvc="vcci-api-data",
    config_configmap="vcci-api-config",
    secret="vcci-api-secrets",  # noqa: S106 - a Secret object's name, not a password
    kube_context="vcci-lab",
    kube_admin_context="vcci-lab-admin",
    cluster="vcci-lab",
    job="vcci-api",
    requests_metric="http_requests_total",
    status_label="status",
    duration_metric="http_request_duration_seconds",
    pool_metric="vcci_db_pool_connections",
    pool_size_metric="vcci_db_pool_size",
    cache_hits_metric="vcci_cache_hits_total",
    cache_misses_metric="vcci_cache_misses_total",
    dependency_metric="vcci_dependency_up",
    dependency_label="dependency",
    tenant_label="tenant",
    database="vcci_production",
    owner_role="vcci_owner",
    app_role="vcci_app",
    worker_role="vcci_worker",
    diag_role="vcci_diag",
    mitigate_role="vcci_mitigate",
    maintainer_role="vcci_maintainer",
    index_builder_role="vcci_index_builder",
    xact_resolver_role="vcci_xact_resolver",
    slot_dropper_role="vcci_slot_dropper",
    app_name="vcci-api",
    worker_app_name="vcci-worker",
    index_name="idx_emissions_tenant_date",
    redis_diag_user="vcci-diag",
    cache_prefix="cache:emissions:",
)

#: Every name differs from DEFAULT's (a test checks that no value is shared).
OTHER = Flavour(
    name="other",
    profile="lab-other",
    namespace="carbon-ledger",
    api="ledger-web",
    worker="ledger-jobs",
    api_container="web",
    worker_container="jobs",
    app_label="app.kubernetes.io/component",
    api_app="ledger-frontend",
    worker_app="ledger-queue",
    ingress="ledger-gateway",
    maintenance_configmap="ledger-switches",
    data_pvc="ledger-scratch",
    config_configmap="ledger-settings",
    secret="ledger-credentials",  # noqa: S106 - a Secret object's name, not a password
    kube_context="carbon-readonly",
    kube_admin_context="carbon-oncall",
    cluster="carbon-cluster",
    job="ledger-frontend-scrape",
    requests_metric="ledger_http_server_requests_count",
    status_label="code",
    duration_metric="ledger_http_server_latency_seconds",
    pool_metric="ledger_sql_pool_sessions",
    pool_size_metric="ledger_sql_pool_capacity",
    cache_hits_metric="ledger_memo_hit_count",
    cache_misses_metric="ledger_memo_miss_count",
    dependency_metric="ledger_upstream_reachable",
    dependency_label="upstream",
    tenant_label="customer",
    database="carbon_books",
    owner_role="books_owner",
    app_role="books_web",
    worker_role="books_jobs",
    diag_role="books_observer",
    mitigate_role="books_operator",
    maintainer_role="books_housekeeper",
    index_builder_role="books_indexer",
    xact_resolver_role="books_settler",
    slot_dropper_role="books_walkeeper",
    app_name="ledger-frontend-svc",
    worker_app_name="ledger-queue-svc",
    index_name="ix_emissions_customer_period",
    redis_diag_user="memo-observer",
    cache_prefix="memo:factors:",
)

FLAVOURS: dict[str, Flavour] = {f.name: f for f in (DEFAULT, OTHER)}


def get(name: str | None) -> Flavour:
    """A flavour by name (None or empty: the default); ValueError naming the known ones otherwise."""
    key = name or "default"
    if key not in FLAVOURS:
        raise ValueError(f"unknown lab flavour {name!r}; flavours: {', '.join(FLAVOURS)}")
    return FLAVOURS[key]

"""The environment variables that point notebooks and plain clients at a lab."""

from __future__ import annotations

from vcci_lab._components import Ctx
from vcci_lab._procs import HOST


def lab_env(ctx: Ctx) -> dict[str, str]:
    """``Lab.env()``: connection strings with this lab's generated passwords (contract A)."""
    s, p, fl = ctx.secrets, ctx.ports, ctx.flavour
    # The flavour's profile: the names of the platform this lab emulates (lab or lab-other).
    env: dict[str, str] = {"VCCI_NB_PROFILE": fl.profile, "VCCI_NB_LAB_DIR": str(ctx.dir)}
    if "postgres" in p:
        base = f"{HOST}:{p['postgres']}/{fl.database}"
        env["DATABASE_URL"] = f"postgresql://{fl.diag_role}:{s['vcci_diag']}@{base}"
        env["VCCI_MITIGATION_DATABASE_URL"] = f"postgresql://{fl.mitigate_role}:{s['vcci_mitigate']}@{base}"
        # One identity per action that needs more than the mitigation role (parameters/rbac/postgres.sql).
        env["VCCI_MAINTAINER_DATABASE_URL"] = f"postgresql://{fl.maintainer_role}:{s['vcci_maintainer']}@{base}"
        env["VCCI_INDEX_BUILDER_DATABASE_URL"] = (
            f"postgresql://{fl.index_builder_role}:{s['vcci_index_builder']}@{base}"
        )
        env["VCCI_XACT_RESOLVER_DATABASE_URL"] = (
            f"postgresql://{fl.xact_resolver_role}:{s['vcci_xact_resolver']}@{base}"
        )
        env["VCCI_SLOT_DROPPER_DATABASE_URL"] = f"postgresql://{fl.slot_dropper_role}:{s['vcci_slot_dropper']}@{base}"
        env["VCCI_ADMIN_DATABASE_URL"] = f"postgresql://postgres:{s['postgres']}@{base}"
        # The application's own role (connection limit 20), for drills and tests that act as the app.
        env["VCCI_LAB_APP_DATABASE_URL"] = f"postgresql://{fl.app_role}:{s['vcci_app']}@{base}"
    if "redis" in p:
        env["REDIS_URL"] = f"redis://{fl.redis_diag_user}:{s['redis_diag']}@{HOST}:{p['redis']}/0"
        env["VCCI_MITIGATION_REDIS_URL"] = f"redis://default:{s['redis_default']}@{HOST}:{p['redis']}/0"
    if "kube" in p:
        env["KUBECONFIG"] = str(ctx.dir / "kube" / "kubeconfig")
    if "prometheus" in p:
        env["PROMETHEUS_URL"] = f"http://{HOST}:{p['prometheus']}"
    if "alertmanager" in p:
        env["ALERTMANAGER_URL"] = f"http://{HOST}:{p['alertmanager']}"
    if "rabbitmq_mgmt" in p:
        env["RABBITMQ_URL"] = f"http://vcci:{s['rabbitmq_vcci']}@{HOST}:{p['rabbitmq_mgmt']}"
    if "external_api" in p:
        env["EXTERNAL_API_URL"] = f"http://{HOST}:{p['external_api']}"
    if "vcci_api" in p:
        env["VCCI_API_URL"] = f"http://{HOST}:{p['vcci_api']}"
        env["VCCI_API_SMOKE_TOKEN"] = s["vcci_api_token"]
    if "aws" in p:
        from vcci_lab import _aws

        region = str(ctx.entry("aws").get("region") or "us-east-1")
        env.update(_aws.env(p["aws"], s["aws_secret"], region))
    if (ctx.dir / "repo" / ".git").exists():
        env["VCCI_GIT_REPO"] = str(ctx.dir / "repo")
    return env

"""The 04_mitigate_* notebooks in JupyterLab: preview without an incident, pick one, Confirm; the world changed."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.browser._jl import (
    JupyterLab,
    append_to_cell,
    cell,
    errors,
    open_notebook,
    output_of,
    plotly_traces,
    run_all,
    shot,
)
from vcci_nb.record import IncidentRecord

pytestmark = [pytest.mark.lab, pytest.mark.slow]

IDLE_APP = (
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'idle' "
    "AND application_name = 'vcci-api'"
)


def _idle_app_pids(url: str) -> set[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {int(r[0]) for r in conn.execute(IDLE_APP).fetchall()}


def test_database_preview_pick_incident_confirm(page: Any, jupyterlab: JupyterLab, lab: Any) -> None:
    admin = lab.env()["VCCI_ADMIN_DATABASE_URL"]
    record = IncidentRecord.open("P1", "Database connection pool exhausted", "browser-test", outputs=jupyterlab.outputs)
    with lab.fault("pool-exhaustion"):
        before = _idle_app_pids(admin)
        assert before, "the fault holds idle vcci-api sessions"
        open_notebook(page, jupyterlab, "04_mitigate_database.ipynb")
        # what a person does: allow execution, and end every idle session now (the fault's are seconds old)
        append_to_cell(page, "terminate_idle = True", "dry_run = False\nidle_s = 0")
        run_all(page)
        assert errors(page) == []

        step = cell(page, 'idle = actions.TerminateSessions("idle"')
        out = step.locator(".jp-Cell-outputArea")
        # no incident: a read-only preview of the plan, naming the sessions it would end
        assert "read-only preview" in out.inner_text()
        assert any(str(pid) in out.inner_text() for pid in before)
        assert not record.data.get("actions")
        after_cell = output_of(page, "actions.after_chart(")
        page.wait_for_function(
            "el => el.querySelectorAll('.js-plotly-plot .trace').length > 0", arg=after_cell.element_handle()
        )
        traces_before = plotly_traces(after_cell)
        marks_before = after_cell.locator(".js-plotly-plot .shapelayer path").count()

        # the incident picker at the top lists the open incidents
        picker = page.locator(".widget-dropdown", has_text="Incident").first.locator("select")
        labels = picker.locator("option").all_inner_texts()
        label = next(t for t in labels if t.startswith(record.id))
        picker.select_option(label=label)

        # the gateway's Confirm panel for this incident: the plan again, recorded as awaiting a click
        confirm = out.get_by_role("button", name="Confirm", exact=True)
        confirm.wait_for()
        waiting = IncidentRecord.load(record.id, jupyterlab.outputs).data["actions"]
        assert [e["result"] for e in waiting] == ["awaiting_confirmation"]
        assert before <= _idle_app_pids(admin), "nothing changed before the click"
        confirm.scroll_into_view_if_needed()
        shot(page, "mitigate-confirm")

        confirm.click()
        out.get_by_text("succeeded").first.wait_for(timeout=120_000)

        assert not (before & _idle_app_pids(admin)), "the planned sessions are gone from PostgreSQL"
        entries = IncidentRecord.load(record.id, jupyterlab.outputs).data["actions"]
        done = [e for e in entries if e["action"] == "postgres.terminate" and e["result"] == "succeeded"]
        assert len(done) == 1
        assert done[0]["confirmation"]["mode"] == "widget"

        # the After chart redrew on its own, with the action's line
        page.wait_for_function(
            "([el, n]) => el.querySelectorAll('.js-plotly-plot .shapelayer path').length > n",
            arg=[after_cell.element_handle(), marks_before],
            timeout=120_000,
        )
        assert plotly_traces(after_cell) >= traces_before > 0
        assert "postgres.terminate" in after_cell.inner_text()


def _deployment(kube: Any, name: str) -> Any:
    return kube.get(f"/apis/apps/v1/namespaces/vcci-production/deployments/{name}")


def _texts(select: Any) -> list[str]:
    """A dropdown's option labels (ipywidgets writes their spaces as non-breaking ones)."""
    return [str(t).replace("\u00a0", " ") for t in select.locator("option").all_inner_texts()]


def _images(obj: Any) -> list[str]:
    return [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]


def test_rollback_dropdowns_from_the_cluster_and_confirm(page: Any, jupyterlab: JupyterLab, lab_env: Any) -> None:
    from vcci_nb.actions import RolloutUndo, run
    from vcci_nb.kubeapi import KubeClient

    kube = KubeClient(lab_env["KUBECONFIG"], "vcci-lab-admin")
    names = sorted(
        d["metadata"]["name"] for d in kube.get("/apis/apps/v1/namespaces/vcci-production/deployments")["items"]
    )
    worker = _deployment(kube, "vcci-worker")
    running = int(worker["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
    history = {
        int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]): rs
        for rs in kube.get("/apis/apps/v1/namespaces/vcci-production/replicasets", labelSelector="app=vcci-worker")[
            "items"
        ]
    }
    target = min(r for r in history if r != running)
    cause = history[target]["metadata"]["annotations"]["kubernetes.io/change-cause"]
    pods = [
        p["metadata"]["name"]
        for p in kube.get("/api/v1/namespaces/vcci-production/pods", labelSelector="app=vcci-worker")["items"]
    ]
    record = IncidentRecord.open("P2", "Worker jobs fail after 2.14.0", "browser-test", outputs=jupyterlab.outputs)

    open_notebook(page, jupyterlab, "04_mitigate_rollback.ipynb")
    append_to_cell(page, "to_revision = 0", f'incident_id = "{record.id}"\ndry_run = False')
    run_all(page)
    assert errors(page) == []
    step = output_of(page, "undo = actions.choose_rollback(")

    # the deployments of the namespace, as the cluster lists them
    deployment = step.locator(".widget-dropdown", has_text="Deployment").locator("select")
    assert deployment.locator("option").all_inner_texts() == names
    deployment.select_option(label="vcci-worker")
    # its revisions with their change-cause (the running one marked), and its pods
    revision = step.locator(".widget-dropdown", has_text="Revision").locator("select")
    label = f"{target} · {cause}"
    page.wait_for_function(
        "([el, t]) => [...el.options].some(o => o.textContent.replace(/\\u00a0/g, ' ').startsWith(t))",
        arg=[revision.element_handle(), label],
    )
    texts = _texts(revision)
    assert any(t.startswith(f"{running} · ") and t.endswith("running now") for t in texts)
    pod_texts = _texts(step.locator(".widget-dropdown", has_text="Pods").locator("select"))
    assert sorted(t.split(" · ")[0] for t in pod_texts) == sorted(pods)

    # the plan is made again for each choice (the gateway records each plan): vcci-worker back to the target
    def planned(revision: int | None) -> bool:
        entries = IncidentRecord.load(record.id, jupyterlab.outputs).data.get("actions") or []
        return any(
            e["result"] == "awaiting_confirmation"
            and e["target"].endswith("/vcci-worker")
            and (e.get("parameters") or {}).get("to_revision") == revision
            for e in entries
        )

    def wait_planned(revision: int | None) -> None:
        for _ in range(120):
            if planned(revision):
                return
            page.wait_for_timeout(500)
        raise AssertionError(f"no plan for vcci-worker to revision {revision}")

    wait_planned(None)  # the plan for the new deployment's default (the revision before the current one)
    page.wait_for_timeout(1000)
    revision.select_option(index=next(i for i, t in enumerate(texts) if t.startswith(label)))
    wait_planned(target)

    page.wait_for_timeout(1000)  # the output widget shows the new plan
    confirm = step.get_by_role("button", name="Confirm", exact=True)
    confirm.wait_for()
    assert _images(history[target])[0].rsplit("/", 1)[-1] in step.inner_text()
    assert _images(_deployment(kube, "vcci-worker")) == _images(worker), "nothing changed before the click"
    confirm.scroll_into_view_if_needed()
    shot(page, "rollback-plan")
    try:
        confirm.click()
        step.get_by_text("succeeded").first.wait_for(timeout=180_000)
        after = _deployment(kube, "vcci-worker")
        assert _images(after) == _images(history[target])
        entries = IncidentRecord.load(record.id, jupyterlab.outputs).data["actions"]
        done = [e for e in entries if e["action"] == "k8s.rollout_undo" and e["result"] == "succeeded"]
        assert len(done) == 1 and done[0]["target"].endswith("deployment/vcci-worker")
        assert done[0]["confirmation"]["mode"] == "widget"
    finally:  # put the lab's worker back where it was, for the tests after this one
        if _images(_deployment(kube, "vcci-worker")) != _images(worker):
            run(
                RolloutUndo("vcci-worker", running),
                record.id,
                dry_run=False,
                confirm=record.id,
                outputs=jupyterlab.outputs,
            )


def test_destructive_confirm_needs_the_typed_incident_id(page: Any, jupyterlab: JupyterLab, lab_env: Any) -> None:
    from vcci_nb.kubeapi import KubeClient

    kube = KubeClient(lab_env["KUBECONFIG"], "vcci-lab-admin")
    pods = {
        p["metadata"]["uid"]
        for p in kube.get("/api/v1/namespaces/vcci-production/pods", labelSelector="app=vcci-worker")["items"]
    }
    record = IncidentRecord.open("P1", "Workers stuck", "browser-test", outputs=jupyterlab.outputs)
    open_notebook(page, jupyterlab, "04_mitigate_restart.ipynb")
    append_to_cell(
        page,
        "max_unavailable = 1",
        f'incident_id = "{record.id}"\ndry_run = False\nrolling_restart = False\ndelete_selector = "app=vcci-worker"',
    )
    run_all(page)
    assert errors(page) == []

    step = output_of(page, "everyone = actions.step(rolling")
    confirm = step.get_by_role("button", name="Confirm (destructive)")
    typed = step.locator(".widget-text", has_text="Incident ID").locator("input")
    confirm.wait_for()
    assert confirm.is_disabled()  # nothing typed
    typed.fill("INC-19990101-001")
    page.wait_for_timeout(1500)  # the kernel has seen the wrong ID: the button must still be disabled
    assert confirm.is_disabled()
    typed.fill(record.id)
    page.wait_for_function("el => !el.disabled", arg=confirm.element_handle())
    typed.fill(record.id + "9")
    page.wait_for_function("el => el.disabled", arg=confirm.element_handle())
    # no click: nothing ran, and the pods are the same ones
    entries = IncidentRecord.load(record.id, jupyterlab.outputs).data["actions"]
    assert [e["result"] for e in entries if e["action"] == "k8s.delete_pods_rolling"] == ["awaiting_confirmation"]
    assert pods == {
        p["metadata"]["uid"]
        for p in kube.get("/api/v1/namespaces/vcci-production/pods", labelSelector="app=vcci-worker")["items"]
    }

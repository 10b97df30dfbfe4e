"""Dropdowns filled from the cluster, for the ``04_mitigate_*`` steps a person runs in JupyterLab.

Typing a deployment name or a revision number during an incident is where mistakes happen. In
JupyterLab, :func:`choose_rollback` offers the namespace's deployments, the chosen one's revisions (with
their change-cause, images and which one runs now) and its pods (what runs, ready or not), and
shows the gateway's step for the choice below them, planned again whenever a choice changes: the
same plan, Confirm panel and audit as any other run. The parameters cell gives the first choice.

Headless (papermill, ``vcci-nb run``) there are no dropdowns: the parameters cell decides, exactly
as :func:`vcci_nb.actions.steps.step` does. The lists are read with the identity that would act
(the mitigation one), so what is offered is what that identity can see.
"""

from __future__ import annotations

import logging
from typing import Any

from vcci_nb.actions._gateway import Outcome
from vcci_nb.actions.kube import REVISION_ANNOTATION, RolloutUndo, _selector_string
from vcci_nb.actions.steps import _banner, _display, step
from vcci_nb.redact import redact

log = logging.getLogger(__name__)

__all__ = ["choose_rollback", "revision_options"]

JSON = dict[str, Any]
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"


def _images(rs: JSON) -> str:
    containers = ((((rs.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
    return ", ".join(str(c.get("image", "?")).rsplit("/", 1)[-1] for c in containers)


def revision_options(probe: RolloutUndo) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """(revisions, pods) of ``probe.deployment`` as dropdown options, newest revision first.

    A revision reads ``3 · <change-cause> · <images>`` and the one running now says so; the first
    option, 0, is "the revision before the current one" (what ``to_revision = 0`` means). A pod
    reads ``name · phase · ready n/m · restarts``.
    """
    current = probe.kube.get(probe.path)
    running = str(((current.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION, ""))
    revisions: list[tuple[str, int]] = [("the revision before the current one", 0)]
    for rev, rs in reversed(probe.history(current)):
        cause = ((rs.get("metadata") or {}).get("annotations") or {}).get(
            CHANGE_CAUSE_ANNOTATION
        ) or "(no change-cause)"
        now = " · running now" if str(rev) == running else ""
        revisions.append((f"{rev} · {cause} · {_images(rs)}{now}"[:160], rev))
    match = ((current.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    pods: list[tuple[str, str]] = []
    for pod in probe.pods(_selector_string(match)) if match else []:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        ready = sum(bool(s.get("ready")) for s in statuses)
        restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
        name = str(pod["metadata"]["name"])
        phase = (pod.get("status") or {}).get("phase", "?")
        pods.append((f"{name} · {phase} · ready {ready}/{len(statuses)} · {restarts} restarts", name))
    return revisions, pods


def choose_rollback(ctx: Any, deployment: str, to_revision: int = 0, *, confirm: str = "") -> Outcome | None:
    """``RolloutUndo`` through the gateway; in JupyterLab with dropdowns for deployment, revision and pods.

    Returns the outcome of the step for the parameters cell's choice (what the "After" chart marks).
    """
    from vcci_nb import widgets

    def undo(dep: str, rev: int) -> RolloutUndo:
        action = RolloutUndo(dep, rev or None, namespace=ctx.namespace)
        action._profile = ctx.profile
        return action

    if not widgets.in_jupyterlab():
        return step(undo(deployment, to_revision), ctx, confirm=confirm)
    probe = undo(deployment, 0)
    try:
        listing = probe.kube.get(f"/apis/apps/v1/namespaces/{ctx.namespace}/deployments").get("items") or []
        names = sorted(str(d["metadata"]["name"]) for d in listing)
        revisions, pods = revision_options(probe)
    except Exception as exc:  # the cluster cannot be asked: no lists, the parameters cell decides
        log.warning("listing deployments failed", exc_info=True)
        _banner(redact(f"{type(exc).__name__}: {exc}"), "warning", "The cluster could not be listed; no dropdowns")
        return step(undo(deployment, to_revision), ctx, confirm=confirm)

    w = widgets._widgets()
    dep_box = w.Dropdown(options=names, value=deployment if deployment in names else None, description="Deployment")
    rev_box = w.Dropdown(options=revisions, value=to_revision if to_revision in dict(revisions).values() else 0)
    rev_box.description = "Revision"
    pod_box = w.Dropdown(options=pods, description="Pods")
    for box, width in ((dep_box, "320px"), (rev_box, "640px"), (pod_box, "640px")):
        box.layout.width = width
    out = widgets.output_area()
    state: dict[str, Any] = {"outcome": None, "busy": False}

    def replan() -> None:
        if dep_box.value:
            state["outcome"] = widgets.show_in(
                out, lambda: step(undo(str(dep_box.value), int(rev_box.value or 0)), ctx, confirm=confirm)
            )

    def deployment_changed(_change: Any) -> None:
        if not dep_box.value:
            return
        state["busy"] = True
        try:
            revs, pod_list = revision_options(undo(str(dep_box.value), 0))
            rev_box.options, rev_box.value = revs, 0
            pod_box.options = pod_list
        except Exception as exc:
            out.outputs = ({"output_type": "stream", "name": "stdout", "text": redact(f"Cannot list: {exc}\n")},)
            return
        finally:
            state["busy"] = False
        replan()

    def revision_changed(_change: Any) -> None:
        if not state["busy"]:
            replan()

    dep_box.observe(deployment_changed, names="value")
    rev_box.observe(revision_changed, names="value")
    note = w.HTML(
        "<small>Choose the deployment and the revision to go back to; the plan below is made again for each "
        "choice. Pods: what runs now.</small>"
    )
    _display(w.VBox([w.HBox([dep_box, rev_box]), pod_box, note]))
    replan()
    _display(out)
    return state["outcome"]  # type: ignore[no-any-return]

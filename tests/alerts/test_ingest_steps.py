"""The ingest step's pure parts, without a receiver: batch order and which bundles/notebooks run.

The receiver-level tests (test_correlation, test_overlap, test_restart) show the same behaviour
end to end; these pin the decisions themselves, so a change to them is seen without a server.
"""

from __future__ import annotations

import json

from tests.alerts._support import alert, notification
from vcci_nb.alerts.ingest.coverage import PastJob, choose_runs, covered
from vcci_nb.alerts.ingest.model import Binding, Delivery
from vcci_nb.alerts.ingest.order import new_groups_first
from vcci_nb.alerts.payload import Notification, parse_notification
from vcci_nb.alerts.routing import RunPlan

NOTEBOOKS = {
    "triage": ("01_triage", "02_scope", "03_system"),
    "investigate": ("02_scope", "03_system"),
    "pool": ("03_system", "04_pool"),
}


def _delivery(n: int, key: str, namespace: str = "vcci-production") -> list[Delivery]:
    body = notification([alert(fingerprint=f"{n:04x}", namespace=namespace)], group_key=key)
    return [Delivery(n, parse_notification(json.dumps(body).encode()), float(n), "pending")]


def _namespace(note: Notification) -> str | None:
    return f"namespace={note.alerts[0].labels['namespace']}"


def test_a_new_groups_first_batch_goes_ahead_of_an_open_group_of_another_namespace() -> None:
    storm = [_delivery(i, "storm") for i in range(1, 4)]
    other = _delivery(4, "other", namespace="vcci-batch")
    known = {"storm": ("open", "namespace=vcci-production")}
    order = new_groups_first([*storm, other], known, _namespace)
    assert [b[0].id for b in order] == [4, 1, 2, 3]


def test_a_new_group_keeps_delivery_order_behind_its_own_namespace_and_resolved_groups() -> None:
    storm = _delivery(1, "storm")
    same = _delivery(2, "same-ns")
    assert [
        b[0].id for b in new_groups_first([storm, same], {"storm": ("open", "namespace=vcci-production")}, _namespace)
    ] == [1, 2]
    resolved = _delivery(1, "old")
    other = _delivery(2, "other", namespace="vcci-batch")
    assert [b[0].id for b in new_groups_first([resolved, other], {"old": ("resolved", None)}, _namespace)] == [1, 2]


def _plan(bundle: str) -> RunPlan:
    return RunPlan(route="r", bundle=bundle, params={}, profile=None)


def test_a_bundle_whose_notebooks_a_queued_job_runs_is_not_queued_and_the_next_skips_what_the_first_runs() -> None:
    jobs = [PastJob("triage", "queued", 100.0, None)]
    already = covered(jobs, 110.0, 60.0, NOTEBOOKS)
    assert already == {"01_triage": "triage", "02_scope": "triage", "03_system": "triage"}
    joined = Binding("INC-1", 1, "joined")
    [inv] = choose_runs(joined, [_plan("investigate")], {}, already, NOTEBOOKS, 110.0, 60.0)
    assert inv.round is None and inv.skip == ("02_scope", "03_system") and inv.covered_by == ("triage",)
    # Nothing covered: investigate runs whole, and pool (planned after it) leaves out 03_system.
    inv, pool = choose_runs(joined, [_plan("investigate"), _plan("pool")], {}, {}, NOTEBOOKS, 110.0, 60.0)
    assert inv.round == 0 and inv.skip == ()
    assert (
        pool.round == 0
        and pool.skip == ("03_system",)
        and pool.skip_reason == ("already run in bundle 'investigate' of this incident")
    )


def test_a_failed_or_old_job_covers_nothing_and_an_old_bundle_runs_again_in_a_new_round() -> None:
    jobs = [PastJob("triage", "failed", 0.0, 10.0), PastJob("investigate", "succeeded", 0.0, 10.0)]
    assert covered(jobs, 500.0, 60.0, NOTEBOOKS) == {}
    latest = {"triage": PastJob("triage", "succeeded", 0.0, 10.0, round=2)}
    [again] = choose_runs(Binding("INC-1", 1, "refired"), [_plan("triage")], latest, {}, NOTEBOOKS, 500.0, 60.0)
    assert again.round == 3 and "longer ago than the 60 s correlation window" in again.why
    # The group's own new alerts (a member) never run its bundle again in the same episode.
    assert choose_runs(Binding("INC-1", 1, "member"), [_plan("triage")], latest, {}, NOTEBOOKS, 500.0, 60.0) == []

"""Which planned bundles to queue, and which of their notebooks to leave out (pure: no I/O).

The caller reads the incident's jobs (``PastJob``) and the bundles' notebooks; these functions
only decide. See ``vcci_nb.alerts.incidents`` for why a notebook is *covered*.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vcci_nb.alerts.ingest.model import Binding, RunChoice, bundles_phrase
from vcci_nb.alerts.routing import RunPlan


@dataclass(frozen=True)
class PastJob:
    """A job of the incident's episode, as far as choosing runs needs it."""

    bundle: str
    state: str
    created_at: float
    finished_at: float | None
    round: int = 0
    skip: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | Any) -> PastJob:
        """From a ``jobs`` row (``sqlite3.Row`` or a mapping)."""
        keys = row.keys()
        return cls(
            bundle=str(row["bundle"]),
            state=str(row["state"]),
            created_at=float(row["created_at"]),
            finished_at=float(row["finished_at"]) if row["finished_at"] is not None else None,
            round=int(row["round"] or 0) if "round" in keys else 0,
            skip=tuple(json.loads(row["skip"] or "[]")) if "skip" in keys else (),
        )

    @property
    def finished(self) -> float:
        """When it finished, or (never finished) when it was queued."""
        return self.finished_at or self.created_at


def covered(
    jobs: Iterable[PastJob], received: float, window_s: float, notebooks: Mapping[str, tuple[str, ...]]
) -> dict[str, str]:
    """The notebooks this episode of the incident already runs: stem → the bundle that runs it.

    ``jobs``: the episode's jobs in the order they were queued. A job queued or running covers its
    notebooks, one that succeeded within ``window_s`` of ``received`` too; less what each of them
    skipped itself. A failed, timed-out or interrupted job covers nothing: its notebooks run again.
    """
    out: dict[str, str] = {}
    if not notebooks:
        return out
    for job in jobs:
        if job.state not in ("queued", "running", "succeeded"):
            continue
        if job.state == "succeeded" and max(0.0, received - job.finished) > window_s:
            continue
        skipped = set(job.skip)
        for stem in notebooks.get(job.bundle, ()):
            if stem not in skipped:
                out.setdefault(stem, job.bundle)
    return out


def choose_runs(
    binding: Binding,
    plans: Iterable[RunPlan],
    latest: Mapping[str, PastJob],
    already: Mapping[str, str],
    notebooks: Mapping[str, tuple[str, ...]],
    received: float,
    window_s: float,
) -> list[RunChoice]:
    """Which planned bundles to queue, and which of their notebooks to leave out.

    ``latest``: each planned bundle's latest job in the binding's episode (highest round), if any;
    ``already``: what the episode covers (:func:`covered`).

    A bundle the incident already has in this episode is not queued again. For a group that
    joined (or fires again into the incident), that is said in the record, and a bundle that
    last finished longer ago than the correlation window runs again (a new round). Then the
    notebooks the incident already covers are left out of the bundle, or the whole bundle when
    that is all of them. Bundles planned together count in their order.
    """
    cover = dict(already)
    out: list[RunChoice] = []
    for plan in plans:
        last = latest.get(plan.bundle)
        round_, why = 0, ""
        if last is not None:
            if binding.how not in ("joined", "refired"):
                continue  # same bundle, same episode: the group's own new alerts do not run it again
            if last.state in ("queued", "running"):
                out.append(RunChoice(plan, None, f"it is already {last.state} for this incident"))
                continue
            ago = max(0.0, received - last.finished)
            if ago <= window_s:
                out.append(RunChoice(plan, None, f"it already {last.state} for this incident {ago:.0f} s earlier"))
                continue
            round_ = last.round + 1
            why = f"it last {last.state} {ago:.0f} s earlier, longer ago than the {window_s:.0f} s correlation window"
        stems = notebooks.get(plan.bundle)
        if not stems:  # not in bundles.yaml (the runner will say so): nothing to compare
            out.append(RunChoice(plan, round_, why))
            continue
        skip = tuple(stem for stem in stems if stem in cover)
        by = tuple(dict.fromkeys(cover[stem] for stem in skip))
        if len(skip) == len(stems):
            n = len(stems)
            its = f"its {n} notebooks already run" if n > 1 else f"its one notebook ({stems[0]}) already runs"
            out.append(RunChoice(plan, None, f"{its} in {bundles_phrase(by)} of this incident", skip, by, n))
            continue
        out.append(RunChoice(plan, round_, why, skip, by, len(stems)))
        for stem in stems:  # a later bundle of this batch counts what this one runs
            cover.setdefault(stem, plan.bundle)
    return out

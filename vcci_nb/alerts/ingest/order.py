"""The order batches are ingested in (pure: no database, no files).

Consecutive firing notifications of one group make one batch (``vcci_nb.alerts.incidents``
builds them in delivery order); this module decides which batch goes first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from vcci_nb.alerts.ingest.model import Delivery
from vcci_nb.alerts.payload import Notification


def new_groups_first(
    batches: list[list[Delivery]],
    known: Mapping[str, tuple[str, str | None]],
    correlation: Callable[[Notification], str | None],
) -> list[list[Delivery]]:
    """Batches of groups seen for the first time go ahead of earlier batches they cannot be affected by.

    ``known``: group key → (the group's state, its incident's correlation key) for every group the
    receiver already has a row for; ``correlation``: the key a new group would correlate by.

    During a storm into one incident, each of its batches rewrites a large record; a new
    incident's first notification waited behind them (13.6 s in tests/bench/bench_storm.py
    with one sender). A new group's batch moves ahead of earlier batches of *open* groups
    whose incident has another correlation key, and of other new groups with another key:
    those can neither be the incident it joins nor change whether it joins one, so the outcome
    is the one delivery order gives. It never passes a resolved or closed group, nor one of
    its own correlation key.
    """
    open_groups = {key: corr for key, (state, corr) in known.items() if state == "open"}
    new_groups: dict[str, str | None] = {}  # first batch of a new group -> the correlation key it will use
    first: set[str] = set()
    for batch in batches:
        note = batch[0].note
        if note.group_key in first:
            continue  # only a group's first batch moves, never past its own earlier ones
        first.add(note.group_key)
        if note.group_key not in known and note.status == "firing":
            new_groups[note.group_key] = correlation(note)
    passable = {**open_groups, **new_groups}
    out = list(batches)
    moved: set[str] = set()
    for batch in batches:
        key = batch[0].note.group_key
        if key not in new_groups or key in moved:
            continue
        moved.add(key)
        corr = new_groups[key]
        pos = next(i for i, b in enumerate(out) if b is batch)
        to = pos
        while to > 0:
            before = out[to - 1][0].note.group_key
            if before not in passable or (corr is not None and passable[before] == corr):
                break
            to -= 1
        out.insert(to, out.pop(pos))
    return out

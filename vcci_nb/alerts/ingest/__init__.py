"""The ingest step's parts (``vcci_nb.alerts.incidents.Ingestor`` runs them, in this order).

order.py     pending deliveries → batches, and a new group's first batch moved ahead (pure)
dedup.py     *dedup*: each delivery's alerts not seen before (reads only)
bind.py      *bind*: the group's incident (member, open, join, reopen, refire), crash-safe marks
coverage.py  which planned bundles to queue and which notebooks to leave out (pure)
record.py    *record*: the batch into ``record.json`` in one locked, repeatable write
commit.py    *commit*: the one transaction (groups, incidents, jobs, dedup keys, deliveries)
model.py     what the steps pass each other (deliveries, bindings, run choices, work)

The module docstring of ``vcci_nb.alerts.incidents`` says why each step is safe to repeat.
"""

"""A bundle run inside a Kubernetes Job's pod: base record in, results out, through the record store.

``vcci-nb job-run BUNDLE --incident ID --store s3://BUCKET/PREFIX --job NAME [-p k=v …]`` is the
command ``serve --executor kubernetes`` gives its Jobs. The pod never writes the incident's
``record.json`` (serve alone does, see :mod:`vcci_nb.recordstore`):

1. read the base record serve put into the store for this Job, into a scratch outputs folder;
2. run the bundle there with the ordinary runner (:func:`vcci_nb.runner.run`), so notebooks,
   HTML, evidence and record entries are exactly those of a local run;
3. upload the folder's files, then the manifest (the scratch record, exit code, log tail) last.

Exit status: the runner's (0 every notebook succeeded, 1 some did not, 2 nothing ran), or 3 when
the results could not be stored (serve then counts the run as lost).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vcci_nb.errors import VcciNbError
from vcci_nb.record import RECORD_FILE, validate_id
from vcci_nb.recordstore import RecordStore, StoreUnavailable
from vcci_nb.redact import redact

log = logging.getLogger(__name__)

EXIT_STORE_FAILED = 3


def run_in_job(
    bundle: str,
    incident: str,
    *,
    store: RecordStore,
    job: str,
    params: Mapping[str, str] | None = None,
    profile: str | None = None,
    skip: Sequence[str] = (),
    skip_reason: str = "",
    timeout: float | None = None,
    actor: str | None = None,
) -> int:
    """Run ``bundle`` for ``incident`` against the store's base record; upload the result. The exit code."""
    from vcci_nb.runner import DEFAULT_TIMEOUT, run

    incident = validate_id(incident)
    base = store.get_base(incident, job)
    with tempfile.TemporaryDirectory(prefix="vcci-job-") as scratch:
        outputs = Path(scratch) / "outputs"
        folder = outputs / incident
        folder.mkdir(parents=True)
        (folder / RECORD_FILE).write_text(json.dumps(base, ensure_ascii=False))
        started = time.monotonic()
        manifest: dict[str, Any] = {"job": job, "incident": incident, "bundle": bundle}
        try:
            result = run(
                bundle,
                incident,
                params=dict(params or {}),
                profile=profile,
                outputs=outputs,
                timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
                skip=list(skip),
                skip_reason=skip_reason,
                actor=actor,
            )
            code = 0 if result.ok else 1
            bad = [f"{nb.name}: {nb.error or nb.status}" for nb in result.notebooks if nb.status != "succeeded"]
            manifest.update(
                run_id=result.run_id,
                notebooks={nb.name: nb.status for nb in result.notebooks},
                error="; ".join(bad) or None,
            )
        except VcciNbError as exc:
            code = 2
            manifest.update(run_id=None, notebooks={}, error=redact(str(exc)))
            log.error("%s", redact(str(exc)))
        manifest.update(exit_code=code, seconds=round(time.monotonic() - started, 3))
        manifest["record"] = json.loads((folder / RECORD_FILE).read_text())
        uploading = time.monotonic()
        try:
            names = store.put_result(incident, job, folder, manifest)
        except StoreUnavailable as exc:
            log.error("%s", exc)
            return EXIT_STORE_FAILED
        print(f"{incident}: {bundle} exit {code}; {len(names)} files and the manifest stored in "
              f"{store.url} in {time.monotonic() - uploading:.1f} s", flush=True)  # fmt: skip
    return code

"""The record store: where a bundle run in a Kubernetes Job leaves its results for ``serve`` to merge.

One writer per record. A Job may run on any node, so it never touches ``record.json``: ``serve``
puts the incident's record as it is (the *base*) into the store before it creates the Job; the
Job's pod runs the bundle against a scratch copy of that base, then uploads the executed
notebooks, their HTML, their evidence and a *manifest* (the scratch record as the run left it,
the run's exit code, the files) to the store, the manifest last. ``serve`` alone reads the
manifest and merges what the run added into the real ``record.json`` (and so ``index.html``),
under the record's lock, like any other change.

Why S3 and not a ReadWriteMany volume: an object PUT is atomic and the manifest, written last, is
the run's commit mark (a pod killed half-way leaves no manifest, and the run counts as lost);
nothing is shared through a file lock across nodes (flock over NFS/EFS is exactly what the issue
rules out); no RWX storage class is needed (EBS, the platform's default, is ReadWriteOnce); the
bucket outlives any node; and access is scoped by IAM to one prefix. The lab serves the real S3
API (moto's server), so the tests exercise the same calls.

Layout under ``s3://BUCKET/PREFIX/``::

    INCIDENT/JOB/base/record.json        the record when the Job was created (serve)
    INCIDENT/JOB/result/files/...        executed notebooks, HTML, evidence/... (the pod)
    INCIDENT/JOB/result/manifest.json    written last (the pod)

The store is named by a URL, ``s3://BUCKET/PREFIX``; credentials and endpoint come from boto3's
own chain (``AWS_*`` variables, ``AWS_ENDPOINT_URL``, an IRSA web identity in the cluster).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vcci_nb.errors import ConfigError, RecordError
from vcci_nb.redact import redact, register_secret

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: Files of a record folder the run does not own: the record itself, its view and locks.
_NOT_RESULTS = {"record.json", "index.html", ".record.lock", ".incident-ids.lock"}
#: Record fields that only grow: the run's new entries are appended to the live record.
_APPEND_ONLY = ("timeline", "findings", "actions", "notifications", "escalations", "attachments", "status_history")


class StoreUnavailable(RecordError):
    """The record store could not be read or written (missing bucket, credentials, network)."""


@dataclass(frozen=True)
class RecordStore:
    """An S3 bucket and prefix (``s3://BUCKET/PREFIX``)."""

    bucket: str
    prefix: str
    region: str | None = None

    @classmethod
    def from_url(cls, url: str, *, region: str | None = None) -> RecordStore:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError(
                f"record store {url!r} is not an S3 URL; write it as s3://BUCKET/PREFIX "
                "(executor.record_store in the profile, or --record-store)"
            )
        return cls(parts.netloc, parts.path.strip("/"), region)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, incident: str, job: str, *rest: str) -> str:
        return "/".join(p for p in (self.prefix, incident, job, *rest) if p)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(region_name=self.region)
        creds = session.get_credentials()
        if creds is None:
            raise StoreUnavailable(
                f"no AWS credentials for the record store {self.url}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "(from a Secret), AWS_PROFILE, or give the pod's service account an IAM role"
            )
        frozen = creds.get_frozen_credentials()
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        cfg = Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 4, "mode": "standard"})
        return session.client("s3", config=cfg)

    def _call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except StoreUnavailable:
            raise
        except Exception as exc:  # botocore's errors have no common base worth importing
            raise StoreUnavailable(f"record store {self.url}: {what} failed: {redact(str(exc))}") from exc

    def check(self) -> None:
        """The bucket exists and these credentials reach it (serve calls it at start)."""
        s3 = self.client()
        self._call(f"the bucket {self.bucket!r} cannot be reached (create it, or fix the credentials)",
                   s3.head_bucket, Bucket=self.bucket)  # fmt: skip

    # -- serve's side ---------------------------------------------------------------------------

    def put_base(self, incident: str, job: str, record: dict[str, Any]) -> None:
        body = json.dumps(record, ensure_ascii=False).encode()
        s3 = self.client()
        self._call("writing the base record", s3.put_object, Bucket=self.bucket,
                   Key=self._key(incident, job, "base", "record.json"), Body=body)  # fmt: skip

    def manifest(self, incident: str, job: str) -> dict[str, Any] | None:
        """The run's manifest, or None if the run never finished writing its results."""
        s3 = self.client()
        try:
            obj = s3.get_object(Bucket=self.bucket, Key=self._key(incident, job, "result", MANIFEST))
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise StoreUnavailable(f"record store {self.url}: reading the manifest failed: {redact(str(exc))}") from exc
        data: dict[str, Any] = json.loads(obj["Body"].read())
        return data

    def fetch_files(self, incident: str, job: str, names: list[str], dest: Path) -> None:
        """Download the run's files (relative paths from the manifest) into ``dest``."""
        s3 = self.client()
        for name in names:
            if ".." in Path(name).parts or Path(name).is_absolute():
                raise RecordError(f"the run's manifest names {name!r}, which is outside its record folder")
            (dest / name).parent.mkdir(parents=True, exist_ok=True)

        def download(name: str) -> None:
            self._call(f"downloading {name}", s3.download_file, self.bucket,
                       self._key(incident, job, "result", "files", name), str(dest / name))  # fmt: skip

        _each(download, names)

    def delete(self, incident: str, job: str) -> None:
        """Remove everything of one Job (after serve merged it)."""
        s3 = self.client()
        prefix = self._key(incident, job) + "/"
        keys: list[dict[str, str]] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [{"Key": o["Key"]} for o in page.get("Contents") or []]
        for i in range(0, len(keys), 1000):
            self._call("cleaning up", s3.delete_objects, Bucket=self.bucket, Delete={"Objects": keys[i : i + 1000]})

    # -- the pod's side -------------------------------------------------------------------------

    def get_base(self, incident: str, job: str) -> dict[str, Any]:
        s3 = self.client()
        obj = self._call("reading the base record", s3.get_object, Bucket=self.bucket,
                         Key=self._key(incident, job, "base", "record.json"))  # fmt: skip
        data: dict[str, Any] = json.loads(obj["Body"].read())
        return data

    def put_result(self, incident: str, job: str, folder: Path, manifest: dict[str, Any]) -> list[str]:
        """Upload every file the run left in ``folder`` (not the record), then the manifest; the names."""
        s3 = self.client()
        names = sorted(
            str(p.relative_to(folder))
            for p in folder.rglob("*")
            if p.is_file() and str(p.relative_to(folder)) not in _NOT_RESULTS
        )

        def upload(name: str) -> None:
            self._call(f"uploading {name}", s3.upload_file, str(folder / name), self.bucket,
                       self._key(incident, job, "result", "files", name))  # fmt: skip

        _each(upload, names)
        body = json.dumps({**manifest, "files": names}, ensure_ascii=False).encode()
        self._call("writing the manifest", s3.put_object, Bucket=self.bucket,
                   Key=self._key(incident, job, "result", MANIFEST), Body=body)  # fmt: skip
        return names


def _each(fn: Callable[[str], None], names: list[str]) -> None:
    """``fn`` over ``names``, eight at a time (a run leaves dozens of small evidence files; one PUT
    or GET each, one after the other, took seconds). The first failure is raised."""
    if len(names) <= 1:
        for name in names:
            fn(name)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        for future in [pool.submit(fn, name) for name in names]:
            future.result()


# ----------------------------------------------------------------------------------------------
# Merging a run's result into the live record (pure)


def _free_name(stem: str, taken: set[str]) -> str:
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}_{n}"
    return name


def plan_renames(current: dict[str, Any], base: dict[str, Any], final: dict[str, Any]) -> dict[str, str]:
    """Notebook names the run took that another writer took meanwhile: old name → a free one.

    The pod reserved its names against the base; a run of the same incident that finished
    first may have taken the same ``name`` (two repeats of one notebook at once).
    """
    base_names = {nb.get("name") for nb in base.get("notebooks") or []}
    taken = {str(nb.get("name")) for nb in current.get("notebooks") or []}
    renames: dict[str, str] = {}
    for nb in final.get("notebooks") or []:
        name = str(nb.get("name"))
        if name in base_names:
            continue
        if name in taken:
            new = _free_name(name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name, taken)
            renames[name] = new
            taken.add(new)
        else:
            taken.add(name)
    return renames


def _renamed(value: Any, renames: dict[str, str]) -> Any:
    if not renames:
        return value
    text = json.dumps(value, ensure_ascii=False)
    for old, new in renames.items():
        text = text.replace(f'"{old}"', f'"{new}"').replace(f'"{old}.ipynb"', f'"{new}.ipynb"')
        text = text.replace(f'"{old}.html"', f'"{new}.html"')
    return json.loads(text)


def merge_result(
    current: dict[str, Any], base: dict[str, Any], final: dict[str, Any], renames: dict[str, str] | None = None
) -> None:
    """Bring into ``current`` (in place) what a run changed between ``base`` and ``final``.

    Append-only lists get the run's new entries; notebook entries are added or replaced by name
    (after ``renames``); any other field the run changed takes the run's value. What others
    wrote to ``current`` meanwhile stays. The timeline is kept in time order.
    """
    renames = renames or {}
    for key in _APPEND_ONLY:
        before = base.get(key) or []
        after = final.get(key) or []
        new = after[len(before) :] if after[: len(before)] == before else [x for x in after if x not in before]
        if new:
            current.setdefault(key, []).extend(_renamed(copy.deepcopy(new), renames))
    base_nbs = {json.dumps(nb, sort_keys=True) for nb in base.get("notebooks") or []}
    for nb in final.get("notebooks") or []:
        if json.dumps(nb, sort_keys=True) in base_nbs:
            continue
        item = _renamed(copy.deepcopy(nb), renames)
        slots = current.setdefault("notebooks", [])
        for i, existing in enumerate(slots):
            if existing.get("name") == item.get("name"):
                slots[i] = item
                break
        else:
            slots.append(item)
    for key, value in final.items():
        if key in _APPEND_ONLY or key in ("notebooks", "updated_at", "id", "schema_version"):
            continue
        if value != base.get(key):
            current[key] = _renamed(copy.deepcopy(value), renames)
    current["timeline"] = sorted(current.get("timeline") or [], key=lambda e: str(e.get("at") or ""))


def place_files(staging: Path, folder: Path, renames: dict[str, str]) -> None:
    """Move downloaded files from ``staging`` into the record ``folder``, renamed where needed."""
    for path in sorted(staging.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(staging)
        parts = list(rel.parts)
        if parts[0] == "evidence" and len(parts) > 1 and parts[1] in renames:
            parts[1] = renames[parts[1]]
        elif len(parts) == 1:
            stem, dot, ext = parts[0].partition(".")
            if stem in renames:
                parts[0] = renames[stem] + dot + ext
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))

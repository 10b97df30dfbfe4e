"""S3 reachability: the seed's ``aws s3 ls s3://vcci-production-data/``.

The bucket and region come from the profile (``dependencies.s3``), credentials from the
environment (:func:`vcci_nb.config.aws_settings`). Without boto3 or credentials the Evidence is
``unavailable`` and says which is missing, so the notebook shows it and moves on.
"""

from __future__ import annotations

import time

import pandas as pd

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, aws_settings, resolve_profile
from vcci_nb.errors import SourceMisconfigured
from vcci_nb.evidence import Evidence
from vcci_nb.sources._core import collect
from vcci_nb.sources.aws import _target, client

SOURCE = "s3"


def gather_bucket(
    profile: ProfileLike = None,
    *,
    bucket: str | None = None,
    region: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """List at most 10 keys of the profile's bucket (``dependencies.s3``): reachable, and how fast."""
    prof = resolve_profile(profile)
    name = bucket or str(prof.get("dependencies.s3.bucket") or "")
    reg = region or str(prof.get("dependencies.s3.region") or "") or None
    call = f"aws s3 ls s3://{name}/ --region {reg}" if reg else f"aws s3 ls s3://{name}/"
    if not name:
        return Evidence(name="s3.bucket", source=SOURCE, query=call, status="unavailable",
                        message="no bucket configured: set dependencies.s3.bucket in the profile")  # fmt: skip
    settings = aws_settings(prof)
    if reg:
        settings = type(settings)(**{**settings.__dict__, "region": reg})

    def fetch() -> pd.DataFrame:
        s3 = client("s3", prof, timeout=timeout, settings=settings)
        started = time.perf_counter()
        try:
            resp = s3.list_objects_v2(Bucket=name, MaxKeys=10)
        except Exception as exc:  # botocore's ClientError: only a missing bucket gets its own words
            code = str(((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code") or "")
            if code == "NoSuchBucket":
                raise SourceMisconfigured(
                    f"the bucket {name} does not exist at {_target(settings, 's3')}",
                    fix="Set dependencies.s3.bucket in the profile to the platform's bucket (or check the region).",
                ) from exc
            raise
        latency = (time.perf_counter() - started) * 1000
        keys = [str(o.get("Key")) for o in resp.get("Contents") or []]
        return pd.DataFrame([{"bucket": name, "reachable": True, "keys_listed": int(resp.get("KeyCount", 0)),
                              "first_keys": ", ".join(keys[:3]), "latency_ms": latency}])  # fmt: skip

    return collect(
        "s3.bucket", SOURCE, call, fetch, timeout=timeout, target=f"s3://{name} via {_target(settings, 's3')}"
    )

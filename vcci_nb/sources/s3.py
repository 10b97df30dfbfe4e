"""S3 reachability: the seed's ``aws s3 ls s3://vcci-production-data/``.

Only where boto3 is installed and credentials are configured; otherwise the Evidence says
which of the two is missing (status ``unavailable``), so the notebook shows it and moves on.
"""

from __future__ import annotations

import importlib.util
import time

import pandas as pd

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, resolve_profile
from vcci_nb.evidence import Evidence
from vcci_nb.sources._core import SourceUnavailable, collect

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

    def fetch() -> pd.DataFrame:
        if importlib.util.find_spec("boto3") is None:
            raise SourceUnavailable(
                "boto3 is not installed here, so S3 cannot be checked from this notebook; run the seed's "
                f"`{call}` from a machine with the AWS CLI, or pip install boto3"
            )
        import boto3  # type: ignore[import-not-found,unused-ignore]
        from botocore.config import Config  # type: ignore[import-not-found,unused-ignore]

        session = boto3.session.Session(region_name=reg)
        if session.get_credentials() is None:
            raise SourceUnavailable(
                "no AWS credentials are configured (AWS_PROFILE, AWS_ACCESS_KEY_ID or an instance role); "
                "S3 reachability was not checked"
            )
        cfg = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})
        started = time.perf_counter()
        resp = session.client("s3", config=cfg).list_objects_v2(Bucket=name, MaxKeys=10)
        latency = (time.perf_counter() - started) * 1000
        return pd.DataFrame([{"bucket": name, "reachable": True, "keys_listed": int(resp.get("KeyCount", 0)),
                              "latency_ms": latency}])  # fmt: skip

    return collect("s3.bucket", SOURCE, call, fetch, timeout=timeout, target=f"s3://{name}")

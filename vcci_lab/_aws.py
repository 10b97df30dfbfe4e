"""A real AWS API for the lab: moto in server mode (S3, RDS, EC2, STS) on 127.0.0.1.

Why moto's server: it speaks the AWS wire protocols boto3 and the AWS CLI use (one process for S3,
RDS, EC2 and STS, up in about 1-2 s, from PyPI); LocalStack needs Docker, which these machines do
not have, and MinIO serves S3 only. Clients reach it through the standard ``AWS_ENDPOINT_URL``
variable, so the product code has no lab-only path.

The account is seeded from the lab profile's names: the S3 bucket (``dependencies.s3``) with a few
objects, the record store's bucket (``executor.kubernetes.record_store``), the RDS instance
(``aws.rds_instance``) and one EBS volume for the database's data.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from vcci_lab import _procs
from vcci_nb.errors import LabError

#: The lab's access key ID (not a secret: the secret key is generated per lab).
ACCESS_KEY_ID = "AKIAVCCILAB000000001"


def start(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    import importlib.util

    if importlib.util.find_spec("moto") is None:
        raise LabError("the lab's AWS API needs moto: pip install 'moto[server]' (./dev setup installs it)")
    argv = [sys.executable, "-m", "moto.server", "-H", _procs.HOST, "-p", str(port)]
    proc = _procs.spawn("aws (moto)", argv, log_path, env={"MOTO_ALLOW_NONEXISTENT_REGION": "false"})
    _procs.wait_until(
        "aws (moto)",
        lambda: _procs.http_ok(f"http://{_procs.HOST}:{port}/moto-api/"),
        timeout=30,
        proc=proc,
        log_path=log_path,
    )
    return proc


def env(port: int, secret_key: str, region: str) -> dict[str, str]:
    """The variables that point boto3 (and the AWS CLI) at the lab's account."""
    return {
        "AWS_ENDPOINT_URL": f"http://{_procs.HOST}:{port}",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "VCCI_AWS_MITIGATION_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "VCCI_AWS_MITIGATION_SECRET_ACCESS_KEY": secret_key,
    }


def _client(port: int, secret_key: str, region: str, service: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=secret_key, region_name=region
    ).client(service, endpoint_url=f"http://{_procs.HOST}:{port}")


def seed(port: int, secret_key: str, profile_name: str = "lab") -> dict[str, Any]:
    """Create the bucket, the RDS instance and an EBS volume named in the profile (idempotent)."""
    from vcci_nb.config import load_profile

    prof = load_profile(profile_name)
    region = str(prof.get("aws.region") or prof.get("dependencies.s3.region") or "us-east-1")
    out: dict[str, Any] = {"region": region}
    bucket = prof.get("dependencies.s3.bucket")
    if bucket:
        s3 = _client(port, secret_key, region, "s3")
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        for key in ("exports/2026-12/tenant-1.parquet", "exports/2026-12/tenant-3.parquet", "factors/v42.json"):
            s3.put_object(Bucket=bucket, Key=key, Body=b"lab object\n")
        out["bucket"] = bucket
    store = str(prof.get("executor.kubernetes.record_store") or "")
    if store.startswith("s3://"):  # where serve --executor kubernetes's Jobs leave their results
        records = store[5:].split("/", 1)[0]
        s3 = _client(port, secret_key, region, "s3")
        if region == "us-east-1":
            s3.create_bucket(Bucket=records)
        else:
            s3.create_bucket(Bucket=records, CreateBucketConfiguration={"LocationConstraint": region})
        out["record_store_bucket"] = records
    instance = prof.get("aws.rds_instance")
    if instance:
        rds = _client(port, secret_key, region, "rds")
        rds.create_db_instance(
            DBInstanceIdentifier=str(instance),
            DBInstanceClass=str(prof.get("aws.rds_lab_class") or "db.r5.large"),
            Engine="postgres",
            EngineVersion="15.4",
            AllocatedStorage=100,
            MasterUsername="vcci_master",
            MasterUserPassword=secrets.token_hex(12),  # never used: the lab's database is the local one
            MultiAZ=True,
        )
        out["rds_instance"] = instance
    ec2 = _client(port, secret_key, region, "ec2")
    vol = ec2.create_volume(
        AvailabilityZone=f"{region}a",
        Size=100,
        VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": f"{instance or 'vcci'}-wal"}]}],
    )
    out["volume_id"] = vol["VolumeId"]
    return out

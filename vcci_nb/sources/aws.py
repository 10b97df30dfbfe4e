"""AWS, read-only: the RDS instance and the EBS volumes behind the platform (seed 4.1, 4.2 scenario 3).

Clients come from :func:`client`, which every AWS call of vcci-nb uses (the S3 check, these
gathers, the guarded actions with ``mitigation=True``). Credentials come only from the environment
(:func:`vcci_nb.config.aws_settings`); a missing boto3 or missing credentials make the Evidence
``unavailable`` with what to set, never an exception in the notebook.

EBS volumes are found for a PersistentVolumeClaim the way the cluster knows them: the bound
PersistentVolume's ``csi.volumeHandle`` when its driver is the EBS CSI driver (or the in-tree
``awsElasticBlockStore.volumeID``), else the tags the EBS CSI driver puts on the volumes it creates
(``kubernetes.io/created-for/pvc/name`` and ``.../namespace``) when the PV cannot be read. A PV of
another driver (CephFS, NFS) is reported as not EBS: it is grown through the claim only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vcci_nb.config import DEFAULT_TIMEOUT_S, AwsSettings, ProfileLike, aws_settings, resolve_profile
from vcci_nb.errors import SourceUnavailable
from vcci_nb.evidence import Evidence
from vcci_nb.redact import register_secret
from vcci_nb.sources._core import collect

SOURCE = "aws"
#: CSI drivers whose volume handle is an EBS volume ID (the profile may add others: ``aws.ebs_csi_drivers``).
EBS_CSI_DRIVERS = ("ebs.csi.aws.com",)
PVC_NAME_TAG = "kubernetes.io/created-for/pvc/name"
PVC_NAMESPACE_TAG = "kubernetes.io/created-for/pvc/namespace"


def client(
    service: str,
    profile: ProfileLike = None,
    *,
    mitigation: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    settings: AwsSettings | None = None,
) -> Any:
    """A boto3 client for ``service`` with the profile's identity, one attempt and short timeouts.

    Raises :class:`SourceUnavailable` (with what to do) when boto3 or credentials are missing.
    """
    if importlib.util.find_spec("boto3") is None:
        raise SourceUnavailable("boto3 is not installed here; pip install boto3 (vcci-nb declares it)")
    import boto3
    from botocore.config import Config

    s = settings or aws_settings(profile, mitigation=mitigation)
    session = boto3.session.Session(
        aws_access_key_id=s.access_key_id,
        aws_secret_access_key=s.secret_access_key,
        aws_session_token=s.session_token,
        region_name=s.region,
        profile_name=s.profile_name,
    )
    creds = session.get_credentials()
    if creds is None:
        which = "the mitigation identity (connections.aws_mitigation)" if mitigation else "AWS"
        raise SourceUnavailable(
            f"no credentials for {which}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(or the variables the profile names), or run where an instance role applies"
        )
    frozen = creds.get_frozen_credentials()
    register_secret(frozen.secret_key)
    register_secret(frozen.token)
    if not session.region_name:
        raise SourceUnavailable("no AWS region: set aws.region in the profile, or AWS_REGION")
    cfg = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1, "mode": "standard"})
    return session.client(service, config=cfg, endpoint_url=s.endpoint_url)


def _target(settings: AwsSettings, service: str) -> str:
    where = settings.endpoint_url or f"{service}.{settings.region or '?'}.amazonaws.com"
    return f"{where} ({settings.source})"


def rds_frame(instances: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for db in instances:
        pending = db.get("PendingModifiedValues") or {}
        rows.append(
            {
                "instance": db.get("DBInstanceIdentifier"),
                "instance_class": db.get("DBInstanceClass"),
                "status": db.get("DBInstanceStatus"),
                "engine": f"{db.get('Engine', '')} {db.get('EngineVersion', '')}".strip(),
                "allocated_gib": db.get("AllocatedStorage"),
                "multi_az": bool(db.get("MultiAZ")),
                "pending_class": pending.get("DBInstanceClass") or "",
                "endpoint": (db.get("Endpoint") or {}).get("Address") or "",
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "instance",
            "instance_class",
            "status",
            "engine",
            "allocated_gib",
            "multi_az",
            "pending_class",
            "endpoint",
        ],
    )


def gather_rds_instance(
    profile: ProfileLike = None, *, instance: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> Evidence:
    """The platform's RDS instance (``aws.rds_instance``): class, status, storage, pending changes.

    The seed's ``aws rds describe-db-instances --db-instance-identifier ...``.
    """
    prof = resolve_profile(profile)
    name = instance or str(prof.get("aws.rds_instance") or "")
    call = f"aws rds describe-db-instances --db-instance-identifier {name}"
    if not name:
        return Evidence(name="aws.rds_instance", source=SOURCE, query=call, status="unavailable",
                        message="no RDS instance configured: set aws.rds_instance in the profile")  # fmt: skip
    settings = aws_settings(prof)

    def fetch() -> pd.DataFrame:
        rds = client("rds", prof, timeout=timeout, settings=settings)
        found = rds.describe_db_instances(DBInstanceIdentifier=name)
        return rds_frame(list(found.get("DBInstances") or []))

    return collect("aws.rds_instance", SOURCE, call, fetch, timeout=timeout, target=_target(settings, "rds"))


def ebs_drivers(profile: ProfileLike = None) -> tuple[str, ...]:
    """Volume drivers that mean EBS: the profile's ``aws.ebs_csi_drivers`` (default the EBS CSI driver) and in-tree."""
    prof = resolve_profile(profile)
    return (*tuple(str(d) for d in prof.get("aws.ebs_csi_drivers") or EBS_CSI_DRIVERS), "kubernetes.io/aws-ebs")


def _tags(volume: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value")) for t in volume.get("Tags") or []}


def _volume_id(handle: str) -> str:
    """``vol-…`` from a CSI handle or an in-tree ``aws://zone/vol-…`` ID."""
    return handle.rsplit("/", 1)[-1]


def _pv_for_claims(profile: ProfileLike, namespace: str, pvcs: Sequence[str], timeout: float) -> dict[str, Any]:
    """``pvc -> (driver, handle)`` from the bound PVs; ``pvc -> None`` when it cannot be read."""
    from vcci_nb.sources import kube

    out: dict[str, Any] = {}
    try:
        api = kube.api_client(profile)
    except Exception:
        return dict.fromkeys(pvcs)
    try:
        for pvc in pvcs:
            try:
                claim = kube._get_json(api, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{pvc}", timeout)
                pv_name = (claim.get("spec") or {}).get("volumeName") or ""
                pv = kube._get_json(api, f"/api/v1/persistentvolumes/{pv_name}", timeout) if pv_name else {}
            except Exception:
                out[pvc] = None
                continue
            spec = pv.get("spec") or {}
            if spec.get("csi"):
                out[pvc] = (str(spec["csi"].get("driver") or ""), str(spec["csi"].get("volumeHandle") or ""))
            elif spec.get("awsElasticBlockStore"):
                out[pvc] = ("kubernetes.io/aws-ebs", str(spec["awsElasticBlockStore"].get("volumeID") or ""))
            else:
                out[pvc] = ("", "")
    finally:
        api.close()
    return out


@dataclass
class EbsLookup:
    """What backs a claim: the EBS volume (None when it is not EBS, or none was found) and how we know."""

    volume: dict[str, Any] | None
    found_by: str
    driver: str = ""
    modification_state: str = ""
    modification: dict[str, Any] | None = None


def find_ebs_volume(
    ec2: Any,
    pvc: str,
    namespace: str,
    pv: tuple[str, str] | None,
    drivers: Sequence[str] = (*EBS_CSI_DRIVERS, "kubernetes.io/aws-ebs"),
) -> EbsLookup:
    """The EBS volume of ``pvc``: by its PV's handle, else (PV unreadable) by the EBS CSI driver's tags.

    ``pv`` is ``(driver, handle)`` of the bound PersistentVolume, or None when it could not be read.
    """
    if pv is not None and pv[0] not in drivers:
        return EbsLookup(None, "persistent volume", pv[0] or "(no CSI driver)")
    if pv is not None and pv[1]:
        vols = ec2.describe_volumes(VolumeIds=[_volume_id(pv[1])]).get("Volumes") or []
        found_by, driver = "persistent volume", pv[0]
    else:
        filters = [
            {"Name": f"tag:{PVC_NAME_TAG}", "Values": [pvc]},
            {"Name": f"tag:{PVC_NAMESPACE_TAG}", "Values": [namespace]},
        ]
        vols = ec2.describe_volumes(Filters=filters).get("Volumes") or []
        found_by, driver = "EBS CSI tags", pv[0] if pv else ""
    if not vols:
        return EbsLookup(None, found_by, driver)
    volume = vols[0]
    mods = ec2.describe_volumes_modifications(VolumeIds=[volume["VolumeId"]]).get("VolumesModifications") or []
    last = mods[-1] if mods else None
    state = str(last.get("ModificationState") or "") if last else "none"
    return EbsLookup(volume, found_by, driver, state, last)


def claim_volumes(
    profile: ProfileLike, namespace: str, pvcs: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    """``pvc -> (driver, handle)`` of the bound PVs, None for a claim whose PV cannot be read."""
    return _pv_for_claims(profile, namespace, pvcs, timeout)


EBS_COLUMNS = (
    "pvc",
    "ebs",
    "volume_id",
    "size_gib",
    "volume_type",
    "state",
    "modification_state",
    "found_by",
    "driver",
)


def gather_ebs_volumes(
    profile: ProfileLike = None,
    *,
    pvcs: Sequence[str] | str | None = None,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """For each claim, whether an EBS volume backs it, and that volume's size, type and modification state.

    ``pvcs`` defaults to the profile's ``kubernetes.volumes`` (or ``kubernetes.data_pvc``).
    The seed's ``aws ec2 describe-volumes`` / ``describe-volumes-modifications`` for the volume to expand.
    """
    prof = resolve_profile(profile)
    ns = namespace or prof.namespace
    if isinstance(pvcs, str):
        pvcs = [pvcs]
    claims = list(pvcs or prof.get("kubernetes.volumes") or [prof.get("kubernetes.data_pvc")])
    claims = [str(c) for c in claims if c]
    drivers = ebs_drivers(prof)
    call = (
        "aws ec2 describe-volumes --volume-ids … / --filters Name=tag:" + PVC_NAME_TAG + ",Values=" + ",".join(claims)
    )
    settings = aws_settings(prof)

    def fetch() -> tuple[pd.DataFrame, dict[str, Any]]:
        pvs = _pv_for_claims(prof, ns, claims, timeout)
        ec2 = client("ec2", prof, timeout=timeout, settings=settings)
        rows = []
        for pvc in claims:
            found = find_ebs_volume(ec2, pvc, ns, pvs.get(pvc), drivers)
            row: dict[str, Any] = dict.fromkeys(EBS_COLUMNS, "")
            row.update(pvc=pvc, ebs=found.volume is not None, size_gib=None, found_by=found.found_by)
            row["driver"] = found.driver
            if found.volume is not None:
                vol = found.volume
                row.update(
                    volume_id=str(vol["VolumeId"]),
                    size_gib=int(vol.get("Size") or 0),
                    volume_type=str(vol.get("VolumeType") or ""),
                    state=str(vol.get("State") or ""),
                    modification_state=found.modification_state,
                )
            rows.append(row)
        return pd.DataFrame(rows, columns=list(EBS_COLUMNS)), {"namespace": ns}

    return collect("aws.ebs_volumes", SOURCE, call, fetch, timeout=timeout, target=_target(settings, "ec2"))


def ebs_offer(ebs: Evidence, notebook: str = "../04_mitigate_disk.ipynb") -> list[tuple[str, str]]:
    """``show_next`` entries offering EBS expansion for each claim that the evidence shows on EBS."""
    if not ebs.ok or "ebs" not in ebs.frame.columns:
        return []
    return [
        (
            notebook,
            f"or grow EBS volume {r['volume_id']} of {r['pvc']} ({r['size_gib']} GiB) with aws.ebs_expand_volume",
        )
        for r in ebs.frame.to_dict("records")
        if r["ebs"]
    ]

"""AWS actions of the seed, guarded: scale the RDS instance (4.1), grow an EBS volume (4.2 scenario 3).

- :class:`RdsModifyInstanceClass` (``aws.rds_modify_instance_class``): the seed's
  ``aws rds modify-db-instance --db-instance-class … --apply-immediately``. The plan shows the
  current class, the target, whether it applies now or in the maintenance window, Multi-AZ and
  any change already pending; verification describes the instance again.
- :class:`EbsExpandVolume` (``aws.ebs_expand_volume``): the seed's ``aws ec2 modify-volume --size``.
  The plan shows the current size, the target and the state of the volume's last modification;
  verification reads ``describe-volumes-modifications`` and the volume's size.

Both act with the *mitigation* identity (``connections.aws_mitigation`` of the profile, from the
environment only) and need only the permissions in ``parameters/rbac/aws-*.json``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from vcci_nb.actions._model import Action, Plan, Verification, flag, real_number
from vcci_nb.config import Profile, ProfileLike, resolve_profile
from vcci_nb.errors import ActionRefused, ConfigError, SourceUnavailable
from vcci_nb.redact import redact
from vcci_nb.sources import aws as aws_source

_DB_CLASS = re.compile(r"^db\.[a-z0-9-]+\.[a-z0-9]+$")
_VOLUME_ID = re.compile(r"^vol-[0-9a-f]{8,17}$")
_RDS_ID = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
#: AWS error codes that mean "this identity may not", turned into a refusal that says so.
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure", "InvalidClientTokenId"}


class _AwsAction(Action):
    """One boto3 client per service, made with the mitigation identity on first use."""

    def __init__(self, *, profile: ProfileLike = None, timeout: float = 10.0) -> None:
        self._profile_arg = profile
        self._timeout = timeout
        self._clients: dict[str, Any] = {}

    @property
    def profile(self) -> Profile:
        return resolve_profile(self._profile_arg)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                self._clients[service] = aws_source.client(
                    service, self.profile, mitigation=True, timeout=self._timeout
                )
            except SourceUnavailable as exc:
                raise ConfigError(f"{self.name}: {exc}") from exc
        return self._clients[service]

    def identity(self) -> str:
        arn = self.client("sts").get_caller_identity().get("Arn")
        return f"aws:{arn}"

    def call(self, service: str, op: str, **kwargs: Any) -> dict[str, Any]:
        """One API call; a permission error becomes an ActionRefused naming the identity and the call."""
        from botocore.exceptions import ClientError

        try:
            result: dict[str, Any] = getattr(self.client(service), op)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("DBInstanceNotFound", "DBInstanceNotFoundFault", "InvalidVolume.NotFound"):
                raise ActionRefused(
                    f"{code}: {redact(str(exc))} Check the name in the profile (aws.*) and the region "
                    f"({self.client(service).meta.region_name})."
                ) from exc
            if code in _DENIED:
                raise ActionRefused(
                    f"AWS refused {service}:{op} for the mitigation identity ({code}): "
                    f"{redact(str(exc))}. Grant it the policy in parameters/rbac/aws-{self.name.split('.')[-1]}.json."
                ) from exc
            raise
        return result

    def close(self) -> None:
        self._clients.clear()


class RdsModifyInstanceClass(_AwsAction):
    """Change the RDS instance's class (seed 4.1 "Scale RDS instance").

    Args:
        instance_class: the target class, e.g. ``db.r5.2xlarge``.
        instance: the DB instance identifier (default: the profile's ``aws.rds_instance``).
        apply_immediately: apply now (the instance restarts; a Multi-AZ instance fails over) rather
            than in the next maintenance window.
        verify_timeout_s: how long verification waits for the new class to show.
    """

    name = "aws.rds_modify_instance_class"

    def __init__(
        self,
        instance_class: str,
        instance: str | None = None,
        *,
        apply_immediately: bool = True,
        verify_timeout_s: float = 60.0,
        profile: ProfileLike = None,
    ) -> None:
        super().__init__(profile=profile)
        self.instance_class = str(instance_class)
        self._instance_arg = instance
        self.apply_immediately: Any = apply_immediately  # converted by preflight
        self.verify_timeout_s: Any = verify_timeout_s

    @property
    def instance(self) -> str:
        name = self._instance_arg or self.profile.get("aws.rds_instance")
        if not name:
            raise ActionRefused("no RDS instance given and none in the profile: set aws.rds_instance or pass instance=")
        return str(name)

    @property
    def target(self) -> str:
        return f"rds/{self._instance_arg or self.profile.get('aws.rds_instance') or '?'}"

    def parameters(self) -> dict[str, Any]:
        return {
            "instance": self._instance_arg,
            "instance_class": self.instance_class,
            "apply_immediately": self.apply_immediately,
        }

    def preflight(self) -> None:
        self.apply_immediately = flag(self.apply_immediately, "apply_immediately")
        self.verify_timeout_s = real_number(self.verify_timeout_s, "verify_timeout_s", minimum=0, maximum=3600)
        if not _DB_CLASS.match(self.instance_class):
            raise ActionRefused(
                f"instance_class={self.instance_class!r} is not an RDS instance class such as db.r5.2xlarge"
            )
        if not _RDS_ID.match(self.instance):
            raise ActionRefused(f"{self.instance!r} is not an RDS instance identifier (letters, digits, hyphens)")

    def _describe(self) -> dict[str, Any]:
        found = self.call("rds", "describe_db_instances", DBInstanceIdentifier=self.instance)
        items = found.get("DBInstances") or []
        if not items:
            raise ActionRefused(f"no RDS instance {self.instance!r} in this account and region")
        return dict(items[0])

    def plan(self) -> Plan:
        db = self._describe()
        current = str(db.get("DBInstanceClass"))
        status = str(db.get("DBInstanceStatus"))
        pending = (db.get("PendingModifiedValues") or {}).get("DBInstanceClass") or ""
        multi_az = bool(db.get("MultiAZ"))
        if status != "available" and current != self.instance_class:
            raise ActionRefused(
                f"{self.instance} is {status!r}, not 'available'; RDS refuses a new modification until it is. "
                "Wait for the current change to finish (describe-db-instances) and plan again."
            )
        warnings = []
        if self.apply_immediately:
            warnings.append(
                "applies now: the instance restarts"
                + (
                    " and fails over to its standby (about a minute of refused connections)"
                    if multi_az
                    else "; single-AZ, expect several minutes without the database"
                )
            )
        else:
            warnings.append("applies in the next maintenance window, not now: it does not help this incident yet")
        if pending:
            warnings.append(f"a class change to {pending} is already pending; this replaces it")
        warnings.append("a larger class costs more per hour; scale back down after the incident")
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"modify {self.instance} from {current} to {self.instance_class}"
            + (" immediately" if self.apply_immediately else " in the maintenance window"),
            changes=[
                {
                    "instance": self.instance,
                    "current_class": current,
                    "target_class": self.instance_class,
                    "apply_immediately": self.apply_immediately,
                    "status": status,
                    "multi_az": multi_az,
                    "pending_class": pending or "none",
                }
            ],
            warnings=warnings,
            destructive=self.apply_immediately,
            noop=current == self.instance_class and not pending,
            details={"current_class": current},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        resp = self.call(
            "rds",
            "modify_db_instance",
            DBInstanceIdentifier=self.instance,
            DBInstanceClass=self.instance_class,
            ApplyImmediately=self.apply_immediately,
        )
        db = resp.get("DBInstance") or {}
        return {
            "status": db.get("DBInstanceStatus"),
            "instance_class": db.get("DBInstanceClass"),
            "pending_class": (db.get("PendingModifiedValues") or {}).get("DBInstanceClass"),
        }

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        v = Verification()
        deadline = time.monotonic() + self.verify_timeout_s
        while True:
            db = self._describe()
            current = db.get("DBInstanceClass")
            pending = (db.get("PendingModifiedValues") or {}).get("DBInstanceClass")
            status = db.get("DBInstanceStatus")
            if not self.apply_immediately or (current == self.instance_class and status == "available"):
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(2.0)
        if self.apply_immediately:
            v.add(
                "instance class",
                current == self.instance_class and status == "available",
                f"describe-db-instances: {current}, status {status}"
                + (f", pending {pending}" if pending else "")
                + ("" if current == self.instance_class else "; still modifying: describe it again in a few minutes"),
            )
        else:
            v.add(
                "change pending for the maintenance window",
                pending == self.instance_class or current == self.instance_class,
                f"describe-db-instances: {current}, pending {pending or 'none'}",
            )
        return v


class EbsExpandVolume(_AwsAction):
    """Grow an EBS volume (seed 4.2 scenario 3, ``aws ec2 modify-volume --volume-id … --size …``).

    Args:
        size_gib: the new size in GiB (EBS volumes never shrink).
        volume_id: the volume; or ``pvc`` (and ``namespace``) to find it from the claim's PV or
            the EBS CSI driver's tags.
        verify_timeout_s: how long verification waits for the modification to reach
            ``optimizing`` or ``completed`` (from then on the new size is usable).
    """

    name = "aws.ebs_expand_volume"

    def __init__(
        self,
        size_gib: int,
        volume_id: str | None = None,
        *,
        pvc: str | None = None,
        namespace: str | None = None,
        verify_timeout_s: float = 60.0,
        profile: ProfileLike = None,
    ) -> None:
        super().__init__(profile=profile)
        self.size_gib = size_gib
        self.volume_id = volume_id
        self.pvc = pvc
        self._namespace = namespace
        self.verify_timeout_s: Any = verify_timeout_s  # converted by preflight
        self._resolved: str | None = volume_id

    @property
    def target(self) -> str:
        vol = self._resolved or self.volume_id or "?"
        return f"ec2/volume/{vol}" + (f" (pvc {self.pvc})" if self.pvc else "")

    def parameters(self) -> dict[str, Any]:
        return {"size_gib": self.size_gib, "volume_id": self.volume_id, "pvc": self.pvc, "namespace": self._namespace}

    def preflight(self) -> None:
        self.verify_timeout_s = real_number(self.verify_timeout_s, "verify_timeout_s", minimum=0, maximum=3600)
        if isinstance(self.size_gib, bool) or not isinstance(self.size_gib, int) or self.size_gib <= 0:
            raise ActionRefused(f"size_gib={self.size_gib!r} is not a whole number of GiB such as 200")
        if self.size_gib > 65536:
            raise ActionRefused(f"size_gib={self.size_gib} is larger than any EBS volume (64 TiB)")
        if self.volume_id is None and not self.pvc:
            raise ActionRefused("give volume_id='vol-…' or pvc='…' (the claim whose EBS volume to grow)")
        if self.volume_id is not None and not _VOLUME_ID.match(self.volume_id):
            raise ActionRefused(f"volume_id={self.volume_id!r} is not an EBS volume ID such as vol-0abc1234def567890")

    def _lookup(self) -> aws_source.EbsLookup:
        ec2 = self.client("ec2")
        if self.volume_id is not None:
            return aws_source.find_ebs_volume(ec2, self.pvc or "", "", ("ebs.csi.aws.com", self.volume_id))
        ns = self._namespace or self.profile.namespace
        assert self.pvc is not None
        pv = aws_source.claim_volumes(self.profile, ns, [self.pvc]).get(self.pvc)
        drivers = (
            *tuple(self.profile.get("aws.ebs_csi_drivers") or aws_source.EBS_CSI_DRIVERS),
            "kubernetes.io/aws-ebs",
        )
        found = aws_source.find_ebs_volume(ec2, self.pvc, ns, pv, drivers)
        if found.volume is None and found.driver and found.driver not in drivers:
            raise ActionRefused(
                f"{ns}/{self.pvc} is not on EBS (its volume's driver is {found.driver}); grow it through the "
                "claim with disk.expand_volume instead"
            )
        return found

    def plan(self) -> Plan:
        try:
            found = self._lookup()
        except ActionRefused:
            raise
        except Exception as exc:
            if "InvalidVolume.NotFound" in str(exc):
                raise ActionRefused(f"no EBS volume {self.volume_id} in this account and region") from exc
            raise
        if found.volume is None:
            raise ActionRefused(
                f"no EBS volume found for {self.volume_id or self.pvc} ({found.found_by}); "
                "pass volume_id= from the PV's csi.volumeHandle"
            )
        vol = found.volume
        self._resolved = str(vol["VolumeId"])
        current = int(vol.get("Size") or 0)
        state = found.modification_state
        if self.size_gib < current:
            raise ActionRefused(
                f"{self._resolved} is {current} GiB; {self.size_gib} GiB would shrink it, which EBS does not allow"
            )
        if state in ("modifying", "optimizing") and self.size_gib != current:
            raise ActionRefused(
                f"{self._resolved} is still {state} from its last change; EBS allows a new modification only after "
                "it completes (and at most once every 6 hours)"
            )
        warnings = [
            "an EBS volume never shrinks again",
            "the filesystem must grow too: with the EBS CSI driver, also expand the claim (disk.expand_volume) so "
            "the kubelet resizes it; elsewhere run resize2fs or xfs_growfs on the node",
            "EBS allows one modification per volume every 6 hours",
        ]
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"expand {self._resolved} from {current} GiB to {self.size_gib} GiB",
            changes=[
                {
                    "volume_id": self._resolved,
                    "pvc": self.pvc or "",
                    "current_gib": current,
                    "target_gib": self.size_gib,
                    "volume_type": vol.get("VolumeType"),
                    "state": vol.get("State"),
                    "last_modification": state,
                    "found_by": found.found_by,
                }
            ],
            warnings=warnings,
            noop=self.size_gib == current,
            details={"volume_id": self._resolved, "current_gib": current},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        resp = self.call("ec2", "modify_volume", VolumeId=plan.details["volume_id"], Size=self.size_gib)
        mod = resp.get("VolumeModification") or {}
        return {"modification_state": mod.get("ModificationState"), "target_size": mod.get("TargetSize")}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        vid = plan.details["volume_id"]
        deadline = time.monotonic() + self.verify_timeout_s
        while True:
            mods = self.call("ec2", "describe_volumes_modifications", VolumeIds=[vid]).get("VolumesModifications") or []
            last = mods[-1] if mods else {}
            state = str(last.get("ModificationState") or "none")
            if state in ("optimizing", "completed", "failed") or time.monotonic() >= deadline:
                break
            time.sleep(2.0)
        vols = self.call("ec2", "describe_volumes", VolumeIds=[vid]).get("Volumes") or [{}]
        size = int(vols[0].get("Size") or 0)
        return (
            Verification()
            .add(
                "modification",
                state in ("optimizing", "completed") and int(last.get("TargetSize") or 0) == self.size_gib,
                f"describe-volumes-modifications: {state}, target {last.get('TargetSize')} GiB",
            )
            .add("volume size", size == self.size_gib, f"describe-volumes: {size} GiB")
        )

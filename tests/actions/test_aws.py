"""AWS against the lab's real AWS API (moto in server mode): the S3 check, RDS class changes, EBS growth.

Every action goes through the gateway: the plan shows what the seed's CLI call would change, a
dry run and an unconfirmed headless run change nothing (the instance's class and the volume's size
are read back with boto3 to show it), a confirmed run is verified by describing the resource.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from vcci_nb.actions import ActionRefused, EbsExpandVolume, RdsModifyInstanceClass, run
from vcci_nb.config import aws_settings
from vcci_nb.kubeapi import KubeClient
from vcci_nb.record import IncidentRecord
from vcci_nb.sources import aws, s3

pytestmark = pytest.mark.lab

NS = "vcci-production"


def _client(env: dict[str, str], service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    ).client(service, endpoint_url=env["AWS_ENDPOINT_URL"])


def _db_class(env: dict[str, str], instance: str = "vcci-production-db") -> str:
    return str(
        _client(env, "rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["DBInstanceClass"]
    )


def _size(env: dict[str, str], vid: str) -> int:
    return int(_client(env, "ec2").describe_volumes(VolumeIds=[vid])["Volumes"][0]["Size"])


def test_s3_check_reaches_the_bucket_named_in_the_profile(lab_env: dict[str, str]) -> None:
    ev = s3.gather_bucket()
    assert ev.status == "ok", ev.message
    row = ev.frame.iloc[0]
    assert row["bucket"] == "vcci-production-data" and row["keys_listed"] == 3
    missing = s3.gather_bucket(bucket="vcci-no-such-bucket")
    # a bucket that does not exist is a setting to fix, named as such (not an unexpected error)
    assert missing.status == "unavailable", missing.message
    assert "the bucket vcci-no-such-bucket does not exist" in missing.message


def test_s3_without_credentials_is_unavailable_and_says_what_to_set(
    lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    ev = s3.gather_bucket()
    assert ev.status == "unavailable"
    assert "AWS_ACCESS_KEY_ID" in ev.message and "AWS_PROFILE" in ev.message


def test_rds_class_change_is_planned_refused_headless_then_applied_and_verified(
    lab_env: dict[str, str], record: IncidentRecord
) -> None:
    before = _db_class(lab_env)
    target = "db.r5.xlarge" if before != "db.r5.xlarge" else "db.r5.2xlarge"
    ev = aws.gather_rds_instance()
    assert ev.status == "ok" and ev.frame.iloc[0]["instance_class"] == before

    planned = run(RdsModifyInstanceClass(target), record.id)
    assert planned.status == "planned"
    change = planned.plan.changes[0]  # type: ignore[union-attr]
    assert change["current_class"] == before and change["target_class"] == target
    assert change["apply_immediately"] is True and planned.plan.destructive  # type: ignore[union-attr]
    assert _db_class(lab_env) == before

    with pytest.raises(ActionRefused, match="headless it runs only with"):
        run(RdsModifyInstanceClass(target), record.id, dry_run=False)
    assert _db_class(lab_env) == before

    done = run(RdsModifyInstanceClass(target), record.id, dry_run=False, confirm=record.id)
    try:
        assert done.status == "succeeded", done.message
        assert _db_class(lab_env) == target
        entry = record.data["actions"][-1]
        assert entry["identity"].startswith("aws:arn:aws:")
        assert entry["verification"]["checks"][0]["detail"].startswith(f"describe-db-instances: {target}")
    finally:
        _client(lab_env, "rds").modify_db_instance(
            DBInstanceIdentifier="vcci-production-db", DBInstanceClass=before, ApplyImmediately=True
        )
    results = [e["result"] for e in record.data["actions"]]
    assert results == ["planned", "refused", "succeeded"]


def test_rds_bad_class_and_unknown_instance_are_refused(lab_env: dict[str, str], record: IncidentRecord) -> None:
    with pytest.raises(ActionRefused, match="not an RDS instance class"):
        run(RdsModifyInstanceClass("r5.large"), record.id)
    with pytest.raises(ActionRefused, match="DBInstance vcci-other-db not found"):
        run(RdsModifyInstanceClass("db.r5.large", "vcci-other-db"), record.id)


@pytest.fixture
def ebs_claim(lab_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """An EBS volume in the lab's AWS account and a claim bound to it through the EBS CSI driver."""
    ec2 = _client(lab_env, "ec2")
    vid = ec2.create_volume(AvailabilityZone=f"{lab_env['AWS_REGION']}a", Size=20, VolumeType="gp3")["VolumeId"]
    kube = KubeClient(lab_env["KUBECONFIG"], "vcci-lab-admin")
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pv-{vid}"},
        "spec": {
            "capacity": {"storage": "20Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "gp3",
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": vid, "fsType": "ext4"},
            "claimRef": {"namespace": NS, "name": "vcci-ebs-data"},
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "vcci-ebs-data", "namespace": NS},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "gp3",
            "resources": {"requests": {"storage": "20Gi"}},
            "volumeName": f"pv-{vid}",
        },
    }
    kube.request("POST", "/api/v1/persistentvolumes", body=pv)
    kube.request("POST", f"/api/v1/namespaces/{NS}/persistentvolumeclaims", body=pvc)
    try:
        yield {"volume_id": vid, "pvc": "vcci-ebs-data"}
    finally:
        kube.delete(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/vcci-ebs-data")
        kube.delete(f"/api/v1/persistentvolumes/pv-{vid}")


def test_ebs_volume_of_a_claim_is_found_planned_and_grown(
    lab_env: dict[str, str], record: IncidentRecord, ebs_claim: dict[str, Any]
) -> None:
    vid = ebs_claim["volume_id"]
    ev = aws.gather_ebs_volumes(pvcs=["vcci-ebs-data", "vcci-api-data"])
    assert ev.status == "ok", ev.message
    rows = {r["pvc"]: r for r in ev.frame.to_dict("records")}
    assert rows["vcci-ebs-data"]["ebs"] and rows["vcci-ebs-data"]["volume_id"] == vid
    assert rows["vcci-ebs-data"]["size_gib"] == 20 and rows["vcci-ebs-data"]["found_by"] == "persistent volume"
    assert not rows["vcci-api-data"]["ebs"] and "cephfs" in rows["vcci-api-data"]["driver"]

    planned = run(EbsExpandVolume(40, pvc="vcci-ebs-data"), record.id)
    change = planned.plan.changes[0]  # type: ignore[union-attr]
    assert (change["volume_id"], change["current_gib"], change["target_gib"]) == (vid, 20, 40)
    assert change["last_modification"] == "none"
    unconfirmed = run(EbsExpandVolume(40, pvc="vcci-ebs-data"), record.id, dry_run=False)
    assert unconfirmed.status == "planned" and _size(lab_env, vid) == 20

    done = run(EbsExpandVolume(40, pvc="vcci-ebs-data"), record.id, dry_run=False, confirm=record.id)
    assert done.status == "succeeded", done.message
    assert _size(lab_env, vid) == 40
    assert [c.ok for c in done.verification.checks] == [True, True]  # type: ignore[union-attr]
    after = aws.gather_ebs_volumes(pvcs=["vcci-ebs-data"]).frame.iloc[0]
    assert after["size_gib"] == 40 and after["modification_state"] in ("optimizing", "completed")

    with pytest.raises(ActionRefused, match="would shrink it"):
        run(EbsExpandVolume(30, vid), record.id)


def test_ebs_refuses_a_claim_that_is_not_on_ebs_and_a_bad_id(lab_env: dict[str, str], record: IncidentRecord) -> None:
    with pytest.raises(ActionRefused, match="not on EBS"):
        run(EbsExpandVolume(40, pvc="vcci-api-data"), record.id)
    with pytest.raises(ActionRefused, match="not an EBS volume ID"):
        run(EbsExpandVolume(40, "vol-xyz"), record.id)
    refused = [e for e in record.data["actions"] if e["result"] == "refused"]
    assert len(refused) == 2


def test_aws_secret_key_never_reaches_the_record_or_reprs(
    lab_env: dict[str, str], record: IncidentRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "canary-AWS-Zq81xP0oR7" + "s" * 20
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary)
    monkeypatch.setenv("VCCI_AWS_MITIGATION_SECRET_ACCESS_KEY", canary)
    settings = aws_settings(mitigation=True)
    assert settings.secret_access_key == canary and canary not in repr(settings)
    ev = s3.gather_bucket()
    assert ev.status == "ok"
    out = run(RdsModifyInstanceClass("db.r5.large"), record.id, dry_run=False, confirm=record.id)
    bad = s3.gather_bucket(bucket="no-such-bucket-" + canary[:10].lower())
    texts = [repr(out), out._repr_html_(), ev.message, bad.message, json.dumps(record.data, default=str)]
    texts.append(record.path.read_text())
    assert all(canary not in t for t in texts)


def _policy_actions(name: str) -> set[str]:
    doc = json.loads((Path(__file__).parents[2] / "parameters" / "rbac" / f"aws-{name}.json").read_text())
    return {a for st in doc["Statement"] for a in st["Action"]}


def _record_calls(action: Any, services: tuple[str, ...]) -> list[str]:
    calls: list[str] = []

    def seen(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.signing_name}:{model.name}")

    for service in services:
        action.client(service).meta.events.register("before-call", seen)
    return calls


def test_each_aws_policy_allows_exactly_the_calls_its_action_makes(
    lab_env: dict[str, str], record: IncidentRecord, ebs_claim: dict[str, Any]
) -> None:
    before = _db_class(lab_env)
    rds = RdsModifyInstanceClass("db.r5.4xlarge")
    rds_calls = _record_calls(rds, ("rds", "sts"))
    try:
        assert run(rds, record.id, dry_run=False, confirm=record.id).status == "succeeded"
    finally:
        _client(lab_env, "rds").modify_db_instance(
            DBInstanceIdentifier="vcci-production-db", DBInstanceClass=before, ApplyImmediately=True
        )
    ebs = EbsExpandVolume(25, pvc=ebs_claim["pvc"])
    ebs_calls = _record_calls(ebs, ("ec2", "sts"))
    assert run(ebs, record.id, dry_run=False, confirm=record.id).status == "succeeded"
    free = {"sts:GetCallerIdentity"}  # needs no permission
    assert set(rds_calls) - free == _policy_actions("rds_modify_instance_class")
    assert set(ebs_calls) - free == _policy_actions("ebs_expand_volume")


def test_disk_full_scenario_offers_ebs_expansion_only_for_a_claim_on_ebs(
    lab_env: dict[str, str], ebs_claim: dict[str, Any]
) -> None:
    ebs = aws.gather_ebs_volumes(pvcs=["vcci-api-data", "vcci-ebs-data"])
    offers = aws.ebs_offer(ebs)
    assert len(offers) == 1 and ebs_claim["volume_id"] in offers[0][1] and "vcci-ebs-data" in offers[0][1]
    assert aws.ebs_offer(aws.gather_ebs_volumes(pvcs=["vcci-api-data"])) == []

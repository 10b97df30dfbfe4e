"""The record store against the real S3 API the lab serves (moto's server on 127.0.0.1)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcci_nb.recordstore import RecordStore, StoreUnavailable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from vcci_lab import _aws

    port = _free_port()
    proc = _aws.start(port, tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield _aws.env(port, "lab-secret-key-for-tests", "us-east-1")
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def store(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> RecordStore:
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    records = RecordStore.from_url("s3://vcci-nb-records-test/runs", region="us-east-1")
    client = records.client()
    if "vcci-nb-records-test" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="vcci-nb-records-test")
    return records


def test_base_in_results_out_manifest_last(store: RecordStore, tmp_path: Path) -> None:
    store.check()
    base = {"id": "INC-20260106-001", "timeline": [], "notebooks": []}
    store.put_base("INC-20260106-001", "vcci-nb-x-1-1", base)
    assert store.get_base("INC-20260106-001", "vcci-nb-x-1-1") == base
    assert store.manifest("INC-20260106-001", "vcci-nb-x-1-1") is None  # no result yet: the run is not done
    folder = tmp_path / "run"
    (folder / "evidence" / "01_triage").mkdir(parents=True)
    (folder / "01_triage.ipynb").write_text('{"cells": []}')
    (folder / "01_triage.html").write_text("<html>triage</html>")
    (folder / "evidence" / "01_triage" / "kube.pods.json").write_text("[]")
    (folder / "record.json").write_text("{}")  # the run's scratch record is not a result file
    (folder / "index.html").write_text("<html>index</html>")
    names = store.put_result("INC-20260106-001", "vcci-nb-x-1-1", folder, {"exit_code": 0, "record": base})
    assert names == ["01_triage.html", "01_triage.ipynb", "evidence/01_triage/kube.pods.json"]
    manifest = store.manifest("INC-20260106-001", "vcci-nb-x-1-1")
    assert manifest is not None and manifest["exit_code"] == 0 and manifest["files"] == names
    dest = tmp_path / "dest"
    store.fetch_files("INC-20260106-001", "vcci-nb-x-1-1", names, dest)
    assert (dest / "01_triage.html").read_text() == "<html>triage</html>"
    assert (dest / "evidence" / "01_triage" / "kube.pods.json").read_text() == "[]"
    store.delete("INC-20260106-001", "vcci-nb-x-1-1")
    assert store.manifest("INC-20260106-001", "vcci-nb-x-1-1") is None


def test_a_missing_bucket_is_named(store: RecordStore) -> None:
    with pytest.raises(StoreUnavailable, match="no-such-bucket"):
        RecordStore.from_url("s3://no-such-bucket/x", region="us-east-1").check()


def test_a_manifest_naming_a_path_outside_the_folder_is_refused(store: RecordStore, tmp_path: Path) -> None:
    from vcci_nb.errors import RecordError

    with pytest.raises(RecordError, match="outside"):
        store.fetch_files("INC-20260106-001", "j", ["../../etc/passwd"], tmp_path)

"""The emulator's pure parts: patches, selectors, the container filesystem, log rendering, durations."""

from __future__ import annotations

import time

import pytest

from vcci_lab.kube import _logs
from vcci_lab.kube._fs import ContainerFS, FileEntry, GiB, MiB, Mount, Volume
from vcci_lab.kube._patch import PatchError, json_patch, merge_patch, strategic_merge
from vcci_lab.kube._selectors import parse_field_selector, parse_label_selector
from vcci_lab.kube._tables import human_duration, pod_row
from vcci_lab.kube._util import ApiError, parse_quantity

DEPLOY = {
    "metadata": {"annotations": {"a": "1"}},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "api",
                        "image": "img:1",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
                    },
                    {"name": "sidecar", "image": "side:1"},
                ]
            }
        }
    },
}


def test_strategic_merge_merges_named_lists_and_honours_directives() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "api"}, {"name": "sidecar"}],
                    "containers": [
                        {
                            "name": "api",
                            "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                            "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                        }
                    ],
                }
            }
        }
    }
    out = strategic_merge(DEPLOY, patch)
    c = out["spec"]["template"]["spec"]["containers"]
    assert [x["name"] for x in c] == ["api", "sidecar"]
    assert c[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]
    assert c[0]["image"] == "img:1" and c[1] == {"name": "sidecar", "image": "side:1"}
    out = strategic_merge(
        DEPLOY, {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    )
    assert [x["name"] for x in out["spec"]["template"]["spec"]["containers"]] == ["api"]
    out = strategic_merge(
        DEPLOY,
        {"spec": {"template": {"spec": {"containers": [{"name": "api", "resources": {"limits": {"memory": "8Gi"}}}]}}}},
    )
    assert out["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "8Gi"}
    out = strategic_merge(DEPLOY, {"metadata": {"annotations": {"a": None, "b": "2"}}})
    assert out["metadata"]["annotations"] == {"b": "2"}
    assert DEPLOY["metadata"]["annotations"] == {"a": "1"}  # the original is untouched


def test_merge_patch_replaces_lists() -> None:
    out = merge_patch(DEPLOY, {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "y"}]}}}})
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "x", "image": "y"}]


def test_json_patch_operations_and_errors() -> None:
    doc = {"metadata": {"annotations": {"x": "1"}}, "list": [1, 2]}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1limit-rps", "value": "50"},
            {"op": "replace", "path": "/list/0", "value": 9},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "remove", "path": "/metadata/annotations/x"},
            {"op": "test", "path": "/list/1", "value": 2},
            {"op": "copy", "from": "/list", "path": "/copy"},
            {"op": "move", "from": "/copy", "path": "/moved"},
        ],
    )
    assert out == {
        "metadata": {"annotations": {"nginx.ingress.kubernetes.io/limit-rps": "50"}},
        "list": [9, 2, 3],
        "moved": [9, 2, 3],
    }
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/nope"}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/list/0", "value": 5}])
    with pytest.raises(PatchError) as err:
        json_patch(doc, {"op": "add"})
    assert err.value.code == 400


def test_label_and_field_selectors() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "vcci-api", "tier": "web"}},
        "status": {"phase": "Running"},
        "spec": {"nodeName": "n1"},
    }
    for sel, want in [
        ("app=vcci-api", True),
        ("app==vcci-api,tier=web", True),
        ("app!=vcci-api", False),
        ("app in (vcci-api, other)", True),
        ("app notin (vcci-api)", False),
        ("tier", True),
        ("!tier", False),
        ("missing", False),
    ]:
        m = parse_label_selector(sel)
        assert m is not None and m(pod) is want, sel
    assert parse_label_selector("") is None
    m = parse_field_selector("status.phase!=Failed,spec.nodeName=n1", "pods", "Pod", "v1")
    assert m is not None and m(pod)
    with pytest.raises(ApiError) as err:
        parse_field_selector("spec.image=x", "pods", "Pod", "v1")
    assert err.value.code == 400


def _fs(now: float) -> tuple[ContainerFS, Volume]:
    pvc = Volume("ceph", 20 * GiB, 0)
    pvc.files["/var/log/vcci/old.log"] = FileEntry(12 * GiB, now - 10 * 86400)
    pvc.files["/var/log/vcci/new.log"] = FileEntry(1 * GiB, now - 3600)
    pvc.files["/var/log/vcci/keep.txt"] = FileEntry(1 * MiB, now - 30 * 86400)
    root = Volume("overlay", 80 * GiB, 10 * GiB)
    root.files["/tmp/a.csv"] = FileEntry(2 * GiB, now)
    root.files["/tmp/b.csv"] = FileEntry(1 * GiB, now)
    return ContainerFS([Mount("/", root), Mount("/var/log", pvc)], hostname="pod-1", env={"A": "1"}), pvc


def test_container_commands() -> None:
    now = time.time()
    fs, pvc = _fs(now)
    df = fs.run(["df", "-h"], now).stdout.splitlines()
    assert df[0].split()[:4] == ["Filesystem", "Size", "Used", "Avail"]
    row = next(line for line in df if line.endswith("/var/log"))
    assert row.split()[1:5] == ["20G", "14G", "7.0G", "66%"]
    found = fs.run(["find", "/var/log", "-type", "f", "-name", "*.log", "-mtime", "+7"], now).stdout.split()
    assert found == ["/var/log/vcci/old.log"]
    r = fs.run(["find", "/var/log", "-type", "f", "-name", "*.log", "-mtime", "+7", "-delete"], now)
    assert r.code == 0 and "/var/log/vcci/old.log" not in pvc.files and "/var/log/vcci/keep.txt" in pvc.files
    literal = fs.run(["rm", "-rf", "/tmp/*"], now)  # no shell, no glob: like kubectl exec
    assert literal.code == 0 and "/tmp/a.csv" in fs.mounts[-1].volume.files
    shell = fs.run(["sh", "-c", "rm -rf /tmp/* && du -sh /tmp"], now)
    assert shell.code == 0 and shell.stdout.startswith("4.0K")
    assert fs.run(["ls", "/nope"], now).code == 2
    assert fs.run(["psql", "-c", "select 1"], now).code == 127
    assert fs.run(["sh", "-c", "ls /var/log/vcci | wc -l"], now).stdout.strip() == "2"
    assert fs.run(["sh", "-c", "false || echo $A"], now).stdout == "1\n"
    assert fs.run(["sh", "-c", "exit 3"], now).code == 3


def test_log_rendering_tail_since_previous() -> None:
    now = time.time()
    inst = _logs.Instance(0, now - 3600, "ok")
    kw = {
        "app": "vcci-api",
        "image": "x:2.14.0",
        "uid": "u1",
        "now": now,
        "timestamps": False,
        "limit_bytes": None,
        "limit_gib": 4.0,
    }
    tail = _logs.render(inst=inst, tail=100, since=None, **kw).splitlines()  # type: ignore[arg-type]
    assert len(tail) == 100
    assert tail == _logs.render(inst=inst, tail=100, since=None, **kw).splitlines()  # type: ignore[arg-type]
    since = _logs.render(inst=inst, tail=None, since=now - 60, **kw).splitlines()  # type: ignore[arg-type]
    assert 38 <= len(since) <= 41
    crashed = _logs.Instance(1, now - 10, "crash", finished_at=now - 9, reason="Error", exit_code=1)
    text = _logs.render(inst=crashed, tail=None, since=None, **kw)  # type: ignore[arg-type]
    assert "ERROR vcci.startup Database connection failed" in text and "Traceback" in text
    levels = {line.split()[1] for line in _logs.render(inst=inst, tail=3000, since=None, **kw).splitlines()}  # type: ignore[arg-type]
    assert levels == {"INFO", "WARN"}, "a healthy vcci-api logs no ERROR lines"


def test_logs_follow_the_lab_s_faults() -> None:
    """While a lab fault is in force, vcci-api logs the error it causes, and only then; an OOM kill
    leaves a MemoryError in the run that was killed."""
    now = time.time()
    inst = _logs.Instance(0, now - 3600, "ok")
    kw = {"app": "vcci-api", "image": "x:2.14.0", "uid": "u1", "now": now, "timestamps": False,
          "limit_bytes": None, "limit_gib": 4.0, "tail": None, "since": now - 600}  # fmt: skip

    def errors(windows: dict[str, list[tuple[float, float | None]]]) -> list[str]:
        text = _logs.render(inst=inst, windows=windows, **kw)  # type: ignore[arg-type]
        return [line for line in text.splitlines() if line.split()[1] == "ERROR"]

    assert errors({}) == []
    pool = errors({"pool-exhaustion": [(now - 300, None)]})
    assert len(pool) > 20 and all('too many connections for role "vcci_app"' in line for line in pool)
    slow = errors({"slow-queries": [(now - 300, None)]})
    assert slow and all("canceling statement due to statement timeout" in line for line in slow)
    down = errors({"external-down": [(now - 300, now - 120)]})
    assert down and all("ExternalAPIError" in line for line in down)
    assert all(line.split()[0] < _logs._fmt(now - 120) for line in down), "only while the provider is down"
    oom = _logs.Instance(0, now - 600, "oom", finished_at=now - 5, reason="OOMKilled", exit_code=137)
    text = _logs.render(inst=oom, windows={}, **{**kw, "since": None})  # type: ignore[arg-type]
    assert "MemoryError" in text and "out of memory" in text.splitlines()[-1]


def test_logs_follow_the_faults_under_the_other_flavour_s_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The other flavour's API deployment (not called vcci-api) logs its faults too: 03_investigate_logs
    found no connection-pool errors there, because the emulator only wrote them for "vcci-api"."""
    from vcci_lab.flavour import OTHER

    monkeypatch.setattr(_logs, "API", OTHER.api)
    now = time.time()
    text = _logs.render(
        inst=_logs.Instance(0, now - 3600, "ok"), windows={"pool-exhaustion": [(now - 300, None)]},
        app=OTHER.api, image="x:2.14.0", uid="u1", now=now, timestamps=False, limit_bytes=None, limit_gib=4.0,
        tail=None, since=now - 600,
    )  # fmt: skip
    errors = [line for line in text.splitlines() if line.split()[1] == "ERROR"]
    assert len(errors) > 20 and all("too many connections" in line for line in errors)


def test_quantities_durations_and_pod_status_column() -> None:
    assert parse_quantity("500m") == 0.5 and parse_quantity("4Gi") == 4 * 1024**3 and parse_quantity("2") == 2
    with pytest.raises(ValueError):
        parse_quantity("4GB")
    assert [human_duration(s) for s in (5, 150, 3 * 3600 + 60, 20 * 3600, 3 * 86400 + 7200, 40 * 86400)] == [
        "5s",
        "2m30s",
        "3h1m",
        "20h",
        "3d2h",
        "40d",
    ]
    now = time.time()
    pod = {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z", "deletionTimestamp": None},
        "spec": {"containers": [{"name": "c"}], "nodeName": "n"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "restartCount": 4,
                    "ready": False,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"finishedAt": "2026-01-01T00:00:00Z"}},
                }
            ],
        },
    }
    cells = pod_row(pod, now)
    assert cells[1:3] == ["0/1", "CrashLoopBackOff"] and cells[3].startswith("4 (")

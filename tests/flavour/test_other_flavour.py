"""The product on a platform whose every name differs from the lab's (issue 13 items 1-3).

The lab's ``other`` flavour (``vcci-nb lab up --flavour other``) renames everything the product
reads from a profile: namespace, deployments, the app label's key and value, containers, metric
names and the 5xx label (``code``, not ``status``), job, ingress, ConfigMap, PVC, database, roles,
application name, Redis key prefix and kube contexts. Its profile is ``lab-other``. A name spelled
anywhere but the profile finds nothing here, and the findings below would not match the faults:
these runs are the test that item 2 holds.

One lab for the module; several faults at once; each notebook runs once:

- serve (no --profile: ``$VCCI_NB_PROFILE``) opens one incident from the real alerts and runs
  triage and the scenario bundles the rules name;
- the notebooks no bundle ran (mitigations in dry run, monitor, resolve, communicate, slow queries)
  run with ``vcci-nb run`` without ``--profile``;
- papermill with no ``-p`` from ``notebooks/``, and the committed parameters cell executed as
  JupyterLab's Run All does, pick the profile from the environment;
- the postmortem measures the impact on the flavour's request counter and ``code`` label.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.alerts._support import start_serve, wait_for
from tests.labs import own_lab
from vcci_lab.flavour import DEFAULT, OTHER
from vcci_nb.config import load_profile

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
FINDING_MIME = "application/vnd.vcci-nb.finding+json"

#: The faults in force while serve runs: the example incident and three scenarios at once.
SERVE_FAULTS = ("pool-exhaustion", "error-spike", "oomkill", "disk-full", "external-down")
#: Bundles the lab's rules name for those faults (by their ``bundle`` label).
SERVE_BUNDLES = {"triage", "connection_pool_exhausted", "memory_leak", "disk_full", "external_api_down"}
#: What each notebook must find on this platform, as on the default lab.
EXPECTED = {
    "03_investigate_database": {"db.pool_exhaustion"},
    "03_investigate_system": {"kube.oomkilled"},
    "03_investigate_dependencies": {"deps.http_down"},
    "03_investigate_changes": {"changes.recent"},
    "connection_pool_exhausted": {"db.pool_exhaustion"},
    "memory_leak": {"kube.oomkilled"},
    "disk_full": {"kube.disk_full"},
    "external_api_down": {"deps.http_down"},
}


def _differs(a: Any, b: Any) -> bool:
    return not (set(a) & set(b)) if isinstance(a, list | tuple) else a != b


def test_the_other_flavour_shares_no_name_with_the_default_and_its_profile_says_so() -> None:
    shared = [k for k, v in DEFAULT.to_dict().items() if k != "name" and not _differs(v, OTHER.to_dict()[k])]
    assert not shared, f"the other flavour keeps the default's {shared}"
    names = load_profile(OTHER.profile).names
    assert (names.namespace, names.api_deployment, names.api_container) == (
        OTHER.namespace,
        OTHER.api,
        OTHER.api_container,
    )
    assert names.app_selector == OTHER.app_selector and names.ingress == OTHER.ingress
    assert (names.maintenance_configmap, names.data_pvc) == (OTHER.maintenance_configmap, OTHER.data_pvc)
    assert (names.database, names.app_role, names.app_name) == (OTHER.database, OTHER.app_role, OTHER.app_name)
    assert (names.diagnostics_role, names.mitigation_role) == (OTHER.diag_role, OTHER.mitigate_role)
    assert names.cache_pattern == OTHER.cache_pattern and names.job == OTHER.job
    assert names.expected_indexes[0][1] == OTHER.index_name
    assert set(names.deployments) == {OTHER.api, OTHER.worker}


@pytest.fixture(scope="module")
def other() -> Iterator[Any]:
    with own_lab("vcci-nb-other-lab-", flavour="other") as lab:
        yield lab


@pytest.fixture(scope="module")
def other_env(other: Any) -> dict[str, str]:
    env = other.env()
    assert env["VCCI_NB_PROFILE"] == "lab-other"
    return env


def _cli(env: dict[str, str], *args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcci_nb", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _keys(findings: list[dict[str, Any]], notebook: str) -> set[str]:
    return {f["key"] for f in findings if Path(str(f.get("notebook") or "")).stem == notebook}


def _nb_findings(path: Path) -> set[str]:
    nb = json.loads(path.read_text())
    return {
        o["data"][FINDING_MIME]["key"]
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if FINDING_MIME in (o.get("data") or {})
    }


def _header(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "".join(
        "".join(o["data"]["text/html"])
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {})
    )


@pytest.mark.timeout(1500)
def test_serve_notebooks_and_postmortem_on_the_other_flavour(
    other: Any, other_env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "serve"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCCI_NB_")} | other_env
    # serve without --profile: the runs take $VCCI_NB_PROFILE (lab-other), never "lab"
    serve = start_serve(root, "--concurrency", "3", real_runner=True, env_extra=other_env)
    outputs = root / "outputs"
    env["VCCI_NB_OUTPUTS"] = str(outputs)
    try:
        other.set_webhook(f"{serve.url}/alertmanager", serve.token)
        for fault in SERVE_FAULTS:
            other.inject(fault)

        def bundles_done() -> dict[str, Any] | None:
            records = serve.records()
            if not records:
                return None
            jobs = [j for j in serve.jobs() if j["incident_id"] == records[0]["id"]]
            if not jobs or any(j["state"] in ("queued", "running") for j in jobs):
                return None
            if any(n.get("status") in ("queued", "running") for n in records[0]["notebooks"]):
                return None
            return records[0] if {j["bundle"] for j in jobs} | skipped(records[0]) >= SERVE_BUNDLES else None

        def skipped(record: dict[str, Any]) -> set[str]:
            # a bundle whose every notebook another bundle already ran is not queued (the timeline says so)
            return {
                str(e["data"].get("bundle")) for e in record.get("timeline", []) if (e.get("data") or {}).get("skipped")
            }

        record = wait_for(bundles_done, timeout=900, interval=2.0, what="serve's bundles on the other flavour")
        incident = record["id"]
        record = json.loads((outputs / incident / "record.json").read_text())
        assert len(serve.records()) == 1, "one fault set, one incident (alerts correlate by the flavour's namespace)"
        namespaces = {(g.get("labels") or {}).get("namespace") for g in record.get("alert_groups", [])}
        assert namespaces == {OTHER.namespace}, namespaces
        failed = [n for n in record["notebooks"] if n.get("status") not in ("succeeded", "skipped")]
        assert not failed, failed
        for nb, keys in EXPECTED.items():
            ran = [n for n in record["notebooks"] if Path(str(n.get("path") or n.get("name"))).stem == nb]
            if ran:
                assert keys <= _keys(record["findings"], nb), (nb, _keys(record["findings"], nb))
        ran_stems = {Path(str(n.get("path") or n.get("name"))).stem for n in record["notebooks"]}
        assert {"01_triage", "03_investigate_database", "memory_leak", "disk_full"} <= ran_stems, ran_stems

        # The notebooks no bundle ran, with `vcci-nb run` and no --profile (the env names lab-other).
        other.heal("pool-exhaustion")  # slow-queries asks its queries as the application's role
        other.inject("slow-queries")
        # (dry runs; the parameters that make a step plan on the ingress and the volume claim)
        rest: list[tuple[str, tuple[str, ...]]] = [
            ("notebooks/scenarios/slow_queries.ipynb", ()),
            ("notebooks/04_mitigate_rollback.ipynb", ()),
            ("notebooks/04_mitigate_restart.ipynb", ()),
            ("notebooks/04_mitigate_scale.ipynb", ()),
            ("notebooks/04_mitigate_cache.ipynb", ()),
            ("notebooks/04_mitigate_database.ipynb", ()),
            ("notebooks/04_mitigate_disk.ipynb", ("-p", "expand_to=40Gi")),
            ("notebooks/04_mitigate_traffic.ipynb", ("-p", "rate_limit_rps=50")),
            ("notebooks/05_monitor.ipynb", ()),
            ("notebooks/02_communicate.ipynb", ()),
        ]

        def run(item: tuple[str, tuple[str, ...]]) -> subprocess.CompletedProcess[str]:
            return _cli(env, "run", item[0], "--incident", incident, "--no-html", *item[1])

        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(run, rest))
        for (nb, _), res in zip(rest, results, strict=True):
            assert res.returncode == 0, f"{nb}: {res.stdout[-1500:]}\n{res.stderr[-1500:]}"
        record = json.loads((outputs / incident / "record.json").read_text())
        assert "db.missing_index" in _keys(record["findings"], "slow_queries")
        missing = [f for f in record["findings"] if f["key"] == "db.missing_index"]
        assert OTHER.index_name in json.dumps(missing), missing
        # the mitigations planned (dry run) on the flavour's objects, named by its profile
        targets = " ".join(str(a.get("target") or "") for a in record["actions"])
        for name in (OTHER.api, OTHER.namespace, OTHER.ingress, OTHER.data_pvc):
            assert name in targets, (name, targets)
        assert not any(n in targets for n in (DEFAULT.api, DEFAULT.namespace, DEFAULT.ingress)), targets
        cache = [a for a in record["actions"] if str(a.get("action")).startswith("redis.")]
        assert cache and OTHER.cache_pattern in json.dumps(cache), cache

        # papermill with no -p, started in notebooks/ (as JupyterLab's folder), picks lab-other
        out = tmp_path / "system.ipynb"
        pm = subprocess.run(
            [sys.executable, "-m", "papermill", "03_investigate_system.ipynb", str(out), "-k", "python3"],
            cwd=ROOT / "notebooks",
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert pm.returncode == 0, pm.stderr[-2000:]
        assert "lab-other" in _header(out) and OTHER.namespace in _header(out)
        assert "kube.oomkilled" in _nb_findings(out)

        # JupyterLab's Run All: the committed parameters cell as it is, no injected cell
        import nbformat
        from nbclient import NotebookClient

        nb = nbformat.read(ROOT / "notebooks" / "03_investigate_system.ipynb", as_version=4)
        old = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(env)
            NotebookClient(
                nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
            ).execute()
        finally:
            os.environ.clear()
            os.environ.update(old)
        run_all = tmp_path / "run_all.ipynb"
        nbformat.write(nb, run_all)
        assert "lab-other" in _header(run_all) and "kube.oomkilled" in _nb_findings(run_all)

        # the postmortem measures the impact on the flavour's counter and its `code` label
        for fault in (*SERVE_FAULTS, "slow-queries"):
            other.heal(fault)
        closed = _cli(env, "incident", "close", incident, "--resolution", "healed the lab's faults")
        assert closed.returncode == 0, closed.stderr
        pm_run = _cli(env, "postmortem", incident)
        assert pm_run.returncode == 0, pm_run.stderr[-2000:]
        text = (outputs / incident / "postmortem.md").read_text()
        assert OTHER.requests_metric in text and 'code=~"5.."' in text, text[-3000:]
        assert "of API requests failing" in text, text[-3000:]
        assert DEFAULT.requests_metric not in text
    finally:
        other.set_webhook(None)
        serve.stop()

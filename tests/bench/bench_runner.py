"""Benchmark the runner against plain papermill, measured in the same run (medians of repeats).

    .venv/bin/python tests/bench/bench_runner.py                 # synthetic notebooks only
    .venv/bin/python tests/bench/bench_runner.py --bundle triage # also a real bundle (lab env exported)

1. **Fixed cost per notebook** (empty notebook): plain ``papermill.execute_notebook`` (in this
   process, imports already paid) vs the runner: per notebook in a run of K empty notebooks with
   the default ``--jobs``; the steady-state interval with ``--jobs 1``; and one single-notebook run.
2. **Bundle speed**: the runner with default ``--jobs`` vs the same notebooks one after another
   with plain papermill defaults. Synthetic bundle: K small notebooks that import pandas/plotly,
   wait on a "source" (sleep) and draw a chart. ``--bundle NAME`` repeats it on a real bundle.
3. **Large outputs**: a notebook whose cells print big outputs: papermill default (save at every
   cell) vs papermill with ``request_save_on_cell_execute=False`` vs the runner (checkpoints).

Not collected by pytest. Prints a table and, with ``--json FILE``, writes the numbers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import yaml

from vcci_nb.record import IncidentRecord
from vcci_nb.runner import default_jobs, resolve_target, run
from vcci_nb.runner.bundles import bundles_file


def _nb(path: Path, cells: list[str], params: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if params is not None:
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


SMALL = [
    "import pandas as pd\nimport plotly.graph_objects as go",
    "import time\ntime.sleep(wait)  # stands in for waiting on a data source",
    "df = pd.DataFrame({'t': range(500), 'v': [i % 17 for i in range(500)]})\ndf.describe()",
    "fig = go.Figure(go.Scatter(x=df.t, y=df.v))\nfig.update_layout(title='v over t')\nfig.show()",
]
LARGE = ["print('x' * 500_000)"] * 20 + [
    "import plotly.graph_objects as go\n"
    "fig = go.Figure(go.Scatter(x=list(range(100_000)), y=[i % 97 for i in range(100_000)]))\nfig.show()"
]


def _project(root: Path, k: int) -> Path:
    (root / "parameters").mkdir(parents=True)
    nbdir = root / "notebooks"
    nbdir.mkdir()
    empty = [str(_nb(nbdir / f"empty{i:02d}.ipynb", [])) for i in range(k)]
    small = [str(_nb(nbdir / f"small{i:02d}.ipynb", SMALL, "wait = 1.0  # seconds")) for i in range(k)]
    large = [str(_nb(nbdir / "large.ipynb", LARGE))]
    spec = {"bundles": {"bench-empty": {"notebooks": empty}, "bench-small": {"notebooks": small}}}
    spec["bundles"]["bench-large"] = {"notebooks": large}
    (root / "parameters" / "bundles.yaml").write_text(yaml.safe_dump(spec))
    return root / "parameters" / "bundles.yaml"


def _papermill_seq(paths: list[Path], out: Path, per_nb: dict[str, list[float]] | None = None, **kw: Any) -> float:
    t = time.perf_counter()
    for i, p in enumerate(paths):
        t_nb = time.perf_counter()
        pm.execute_notebook(str(p), str(out / f"pm{i}.ipynb"), progress_bar=False, **kw)
        if per_nb is not None:
            per_nb.setdefault(p.stem, []).append(time.perf_counter() - t_nb)
    return time.perf_counter() - t


#: Per-notebook phases the runner's workers report (see vcci_nb.runner.worker.run_one).
PHASES = ("kernel_wait", "execute", "kill", "write", "html", "seconds")


def _runner(
    target: str, outputs: Path, bundles: Path | None, phases: dict[str, dict[str, list[float]]] | None = None, **kw: Any
) -> tuple[float, Any]:
    incident = IncidentRecord.open("P3", "bench", outputs=outputs).id

    def progress(event: dict[str, Any]) -> None:
        if phases is not None and event.get("type") == "finished":
            timing = dict(event.get("timing") or {}, seconds=event.get("seconds") or 0.0)
            mine = phases.setdefault(event["name"], {})
            for key in PHASES:
                if key in timing:
                    mine.setdefault(key, []).append(float(timing[key]))
            mine.setdefault("forked", []).append(float(timing.get("forked", 0.0)))

    t = time.perf_counter()
    result = run(target, incident, outputs=outputs, bundles=bundles, progress=progress, **kw)
    return time.perf_counter() - t, result


def _medians(per: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    return {nb: {k: round(statistics.median(v), 3) for k, v in phases.items()} for nb, phases in sorted(per.items())}


def _finish_intervals(result: Any, record_folder: Path) -> list[float]:
    data = json.loads((record_folder / "record.json").read_text())
    from vcci_nb.record import parse_time

    ends = sorted(parse_time(nb["finished_at"]).timestamp() for nb in data["notebooks"] if nb.get("finished_at"))
    return [b - a for a, b in itertools.pairwise(ends)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", help="also time this bundle from parameters/bundles.yaml (e.g. triage)")
    ap.add_argument("-p", "--param", action="append", default=[], help="NAME=VALUE for --bundle")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("-k", type=int, default=6, help="notebooks in the synthetic bundles")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vcci-bench-"))
    os.environ.setdefault("VCCI_NB_ACTOR", "bench")
    bundles = _project(tmp / "proj", args.k)
    outputs = tmp / "outputs"
    pmout = tmp / "pm"
    pmout.mkdir()
    paths = {name: resolve_target(name, bundles)[0] for name in ("bench-empty", "bench-small", "bench-large")}
    res: dict[str, Any] = {"cores": os.cpu_count(), "k": args.k, "default_jobs": default_jobs(args.k)}
    res["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    R = args.repeat

    # warm-up: imports, kernelspec lookup, first kernel
    _papermill_seq(paths["bench-empty"][:1], pmout)
    _runner("bench-empty", outputs, bundles, export_html=True)

    # 1. fixed cost
    pm_empty = [_papermill_seq([p], pmout) for p in (paths["bench-empty"] * R)[: max(R, 5)]]
    ours_default, ours_seq, ours_single = [], [], []
    fixed_phases: dict[str, dict[str, list[float]]] = {}
    for _ in range(R):
        wall, result = _runner("bench-empty", outputs, bundles)
        ours_default.append(wall / args.k)
        wall, result = _runner("bench-empty", outputs, bundles, fixed_phases, jobs=1)
        ours_seq.append(statistics.median(_finish_intervals(result, Path(result.notebooks[0].path).parent)))
        wall, _ = _runner(str(paths["bench-empty"][0]), outputs, bundles)
        ours_single.append(wall)
    res["fixed"] = {
        "papermill_s": statistics.median(pm_empty),
        "runner_per_nb_default_jobs_s": statistics.median(ours_default),
        "runner_per_nb_jobs1_steady_s": statistics.median(ours_seq),
        "runner_single_nb_run_s": statistics.median(ours_single),
        # every empty notebook of the --jobs 1 runs pooled: where a notebook's time goes
        "jobs1_phases_s": {
            key: round(statistics.median([v for ph in fixed_phases.values() for v in ph.get(key, [])]), 3)
            for key in (*PHASES, "forked")
            if any(key in ph for ph in fixed_phases.values())
        },
    }

    # 2. bundle speed
    def bundle_speed(target: str, nbs: list[Path], params: dict[str, str]) -> dict[str, Any]:
        seq, ours = [], []
        pm_nb: dict[str, list[float]] = {}
        phases: dict[str, dict[str, list[float]]] = {}
        for _ in range(R):
            seq.append(_papermill_seq(nbs, pmout, pm_nb, parameters=_typed(nbs, params)))
            where = bundles if target.startswith("bench-") else None
            ours.append(_runner(target, outputs, where, phases, params=params)[0])
        return {
            "papermill_sequential_s": statistics.median(seq),
            "runner_default_jobs_s": statistics.median(ours),
            "ratio": statistics.median(ours) / statistics.median(seq),
            "papermill_per_notebook_s": {k: round(statistics.median(v), 3) for k, v in pm_nb.items()},
            "runner_per_notebook_phases_s": _medians(phases),
        }

    res["bundle_small"] = bundle_speed("bench-small", paths["bench-small"], {})
    if args.bundle:
        params = dict(p.split("=", 1) for p in args.param)
        res[f"bundle_{args.bundle}"] = bundle_speed(args.bundle, resolve_target(args.bundle, bundles_file())[0], params)

    # 3. large outputs
    big = paths["bench-large"][0]
    save_every = [_papermill_seq([big], pmout) for _ in range(R)]
    save_end = [_papermill_seq([big], pmout, request_save_on_cell_execute=False) for _ in range(R)]
    ours_big = [_runner("bench-large", outputs, bundles, export_html=False)[0] for _ in range(R)]
    ours_big_html = [_runner("bench-large", outputs, bundles)[0] for _ in range(R)]
    res["large"] = {
        "papermill_save_every_cell_s": statistics.median(save_every),
        "papermill_no_cell_saves_s": statistics.median(save_end),
        "runner_s": statistics.median(ours_big),
        "runner_with_html_s": statistics.median(ours_big_html),
        "notebook_mb": round((pmout / "pm0.ipynb").stat().st_size / 1e6, 2),
    }

    res["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(res, indent=2))
    f = res["fixed"]
    print(
        f"\nfixed cost, empty notebook: papermill {f['papermill_s']:.2f}s; runner "
        f"{f['runner_per_nb_default_jobs_s']:.2f}s/nb at default jobs ({res['default_jobs']}), "
        f"{f['runner_per_nb_jobs1_steady_s']:.2f}s/nb steady with --jobs 1, "
        f"{f['runner_single_nb_run_s']:.2f}s for a one-notebook run"
    )
    for key in [k for k in res if k.startswith("bundle_")]:
        b = res[key]
        print(
            f"{key}: runner {b['runner_default_jobs_s']:.1f}s vs papermill sequential "
            f"{b['papermill_sequential_s']:.1f}s = {b['ratio']:.2f}x"
        )
    print(f"load average (1, 5, 15 min): start {res['loadavg_start']}, end {res['loadavg_end']}")
    lg = res["large"]
    print(
        f"large outputs: papermill save-every-cell {lg['papermill_save_every_cell_s']:.1f}s, "
        f"no-cell-saves {lg['papermill_no_cell_saves_s']:.1f}s, runner {lg['runner_s']:.1f}s "
        f"(+HTML {lg['runner_with_html_s']:.1f}s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _typed(nbs: list[Path], params: dict[str, str]) -> dict[str, Any]:
    """papermill gets the same parameters, typed as the runner would type them."""
    if not params:
        return {}
    from vcci_nb.runner.params import coerce, declared_parameters

    declared: dict[str, Any] = {}
    for p in nbs:
        declared.update(declared_parameters(nbformat.read(p, as_version=4), p))
    return {k: coerce(declared[k], v, from_string=True) for k, v in params.items() if k in declared}


if __name__ == "__main__":
    sys.exit(main())

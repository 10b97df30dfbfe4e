"""Benchmark: how long each diagnostic notebook takes against the lab, and how big it gets.

Run as a script (not collected by pytest):

    .venv/bin/python tests/bench/bench_notebooks.py [--runs 3] [--lab-dir DIR] [--only NAME ...]

Targets (issue 4): each diagnostic notebook finishes against the lab in under 10 s on a 2-core
machine; an executed notebook is at most 3 MB (not counting one copy of plotly.js, which our
notebooks do not carry: the runner stores it once per incident folder) for a 1-hour window at 15 s
resolution over 50 series.

Method:
- *speed*: papermill, as a plain headless run would use it (``request_save_on_cell_execute=False``,
  as the runner does), the median of ``--runs`` runs per notebook against a started lab. The
  baseline, measured in the same run, is papermill on an empty notebook (kernel start and
  shutdown): the ratio says how much of a notebook's time is its own work.
- *size*: 03_investigate_metrics replayed (``VCCI_NB_EVIDENCE_FROM``) on frozen evidence in which
  every panel has 50 series of 240 points in the window plus 240 in the baseline (1 h at 15 s), so
  the size does not depend on how many pods the lab has. Every notebook's size from the lab runs is
  reported too.

Results are printed and written to ``tests/bench/results/bench_notebooks.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "notebooks"))

from _nbtools import DIAGNOSTIC, errors, run_notebook  # noqa: E402

TARGET_S = 10.0
TARGET_BYTES = 3_000_000


def _empty_notebook(path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [new_code_cell("x = 1", metadata={"tags": ["parameters"]})]
    nbformat.write(nb, path)


def _timed(src: str | Path, out: Path, env: dict[str, str], params: dict[str, Any] | None = None) -> float:
    started = time.perf_counter()
    nb = run_notebook(src, out, params or {}, env=env)
    elapsed = time.perf_counter() - started
    bad = errors(nb)
    if bad:
        raise SystemExit(f"{src} failed: {bad}")
    return elapsed


def _frozen_panels(folder: Path, series: int = 50, step_s: int = 15, hours: float = 1.0) -> datetime:
    """Evidence for every panel of the profile: ``series`` series, window and baseline at ``step_s``."""
    import numpy as np
    import pandas as pd

    from vcci_nb.config import load_profile
    from vcci_nb.evidence import Evidence, Window
    from vcci_nb.sources.prometheus import panel_names, panel_query

    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(hours=hours)
    points = int(hours * 3600 / step_s)
    rng = np.random.default_rng(7)
    profile = load_profile("lab")
    for panel in panel_names(profile):
        query, info = panel_query(profile, panel)
        frames = []
        for period, origin in (("incident", start), ("baseline", start - (end - start))):
            ts = pd.date_range(origin, periods=points, freq=f"{step_s}s", tz="UTC")
            for i in range(series):
                pod = f"vcci-api-7d8f9c6b5d-{i:05d}"
                values = np.abs(rng.normal(1.0 + i / series, 0.1, points))
                frames.append(
                    pd.DataFrame(
                        {
                            "timestamp": ts,
                            "value": values,
                            "series": f'{{pod="{pod}"}}',
                            "pod": pod,
                            "period": period,
                            "offset_s": np.arange(points, dtype=float) * step_s,
                        }
                    )
                )
        frame = pd.concat(frames, ignore_index=True)
        Evidence(
            name=f"prometheus.{panel}",
            source="prometheus",
            query=f"{query}  [step={step_s}s]",
            frame=frame,
            window=Window(start, end),
            meta={**info, "kind": f"prometheus.{panel}", "step_s": step_s},
        ).save(folder)
    return end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per notebook (median reported)")
    parser.add_argument("--lab-dir", default=os.environ.get("VCCI_NB_TEST_LAB_DIR", ""), help="reuse a running lab")
    parser.add_argument("--only", nargs="*", default=[], help="notebooks whose path contains one of these")
    parser.add_argument("--keep", action="store_true", help="keep the executed notebooks (printed path)")
    args = parser.parse_args(argv)

    from vcci_lab import Lab

    work = Path(tempfile.mkdtemp(prefix="vcci-nb-bench-"))
    own_lab = not args.lab_dir
    lab_dir = Path(args.lab_dir) if args.lab_dir else work / "lab"
    if own_lab:
        os.chmod(work, 0o711)
    lab = Lab(lab_dir)
    started = time.perf_counter()
    if not lab.is_up():
        lab.up()
    print(f"lab ready in {time.perf_counter() - started:.1f} s ({lab_dir})", flush=True)
    results: dict[str, Any] = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "runs": args.runs}
    try:
        env = {**lab.env(), "VCCI_NB_OUTPUTS": str(work / "outputs")}
        empty = work / "empty.ipynb"
        _empty_notebook(empty)
        base = [_timed(empty, work / "empty.out.ipynb", env) for _ in range(args.runs)]
        baseline = statistics.median(base)
        results["baseline_empty_notebook_s"] = round(baseline, 3)
        print(f"{'baseline: papermill, empty notebook':48s} {baseline:6.2f} s", flush=True)

        rows = []
        for rel in DIAGNOSTIC:
            if args.only and not any(o in rel for o in args.only):
                continue
            out = work / rel.replace("/", "__")
            times = [_timed(rel, out, env) for _ in range(args.runs)]
            median = statistics.median(times)
            size = out.stat().st_size
            rows.append({"notebook": rel, "median_s": round(median, 3), "min_s": round(min(times), 3),
                         "ratio_to_empty": round(median / baseline, 2), "bytes": size,
                         "under_10s": median < TARGET_S})  # fmt: skip
            print(f"{rel:48s} {median:6.2f} s  ×{median / baseline:4.1f} empty  {size / 1e6:5.2f} MB", flush=True)
        results["notebooks"] = rows

        frozen = work / "frozen-evidence"
        end = _frozen_panels(frozen)
        out = work / "metrics-50-series.ipynb"
        replay_env = {**env, "VCCI_NB_EVIDENCE_FROM": str(frozen)}
        params = {"window_start": (end - timedelta(hours=1)).isoformat(), "window_end": end.isoformat()}
        elapsed = _timed("03_investigate_metrics.ipynb", out, replay_env, params)
        size = out.stat().st_size
        results["size_50_series"] = {
            "notebook": "03_investigate_metrics.ipynb (replayed, every panel 50 series × 480 points)",
            "bytes": size,
            "seconds": round(elapsed, 2),
            "under_3MB": size <= TARGET_BYTES,
        }
        print(
            f"{'03_investigate_metrics, 50 series × 1 h @ 15 s':48s} {elapsed:6.2f} s  {size / 1e6:5.2f} MB", flush=True
        )
    finally:
        if own_lab:
            lab.down()
        if args.keep:
            print(f"executed notebooks kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    slowest = max((r["median_s"] for r in results.get("notebooks", [])), default=0.0)
    print(f"slowest notebook: {slowest:.2f} s (target < {TARGET_S:g} s)")
    out_dir = ROOT / "tests" / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_notebooks.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

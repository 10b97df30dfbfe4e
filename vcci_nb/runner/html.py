"""HTML copies of executed notebooks that draw every Plotly chart offline.

Under papermill, Plotly's default renderer writes only ``application/vnd.plotly.v1+json``, which
nbconvert's HTML drops, so the charts vanish. We give each such output a small ``text/html``
twin (a ``div`` and a ``Plotly.newPlot`` call) for the HTML copy only, and load plotly.js once
per incident folder from ``assets/plotly.min.js`` (copied from the installed ``plotly`` package),
so the folder stays self-contained and each HTML file stays small.
"""

from __future__ import annotations

import copy
import json
import shutil
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from vcci_nb.record import atomic_write_text
from vcci_nb.redact import redact

PLOTLY_MIME = "application/vnd.plotly.v1+json"
ASSET_REL = "assets/plotly.min.js"

# plotly.min.js is a UMD bundle: if a page has require.js (nbconvert's templates may load it from a
# CDN when online), it registers as an AMD module and never sets window.Plotly. Hide `define`
# while it loads so the charts draw both offline and online.
_HEAD_SCRIPTS = (
    "<script>window.__vcciDefine = window.define; window.define = undefined;</script>\n"
    '<script src="{src}"></script>\n'
    "<script>window.define = window.__vcciDefine;</script>\n"
)


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def ensure_plotly_asset(folder: Path) -> Path:
    """Copy plotly.min.js into ``folder/assets/`` once (atomically); return its path."""
    target = folder / ASSET_REL
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        shutil.copyfile(plotly_js_path(), tmp)
        tmp.replace(target)
    return target


def _plot_html(figure: dict[str, Any]) -> str:
    div_id = f"vcci-plot-{uuid.uuid4().hex[:12]}"
    payload = json.dumps(
        {"data": figure.get("data", []), "layout": figure.get("layout", {}), "config": figure.get("config", {})},
        default=str,
    ).replace("</", "<\\/")
    layout_height = (figure.get("layout") or {}).get("height") or 450
    return (
        f'<div id="{div_id}" class="plotly-graph-div" style="height:{int(layout_height)}px; width:100%;"></div>\n'
        f"<script>(function(){{var f={payload};var el=document.getElementById({json.dumps(div_id)});"
        "if(window.Plotly){Plotly.newPlot(el,f.data,f.layout,Object.assign({responsive:true},f.config));}"
        "else{el.textContent='Chart not drawn: assets/plotly.min.js is missing next to this file.';}"
        "})();</script>"
    )


def with_offline_plots(nb: Any) -> tuple[Any, int]:
    """A copy of ``nb`` where every Plotly JSON output also has an offline ``text/html``; and how many."""
    out = copy.deepcopy(nb)
    count = 0
    for cell in out.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            if PLOTLY_MIME in data:
                figure = data[PLOTLY_MIME]
                if isinstance(figure, str):
                    figure = json.loads(figure)
                data["text/html"] = _plot_html(figure)
                count += 1
    return out, count


@lru_cache(maxsize=1)
def _exporter() -> Any:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")  # type: ignore[no-untyped-call]
    return exporter


def export_html(nb: Any, html_path: Path, *, record_folder: Path) -> int:
    """Write ``html_path`` for executed ``nb``; returns the number of Plotly charts in it."""
    prepared, plots = with_offline_plots(nb)
    body, _ = _exporter().from_notebook_node(prepared)
    if plots:
        asset = ensure_plotly_asset(record_folder)
        rel = Path(*([".."] * len(html_path.parent.relative_to(record_folder).parts)), ASSET_REL)
        del asset
        scripts = _HEAD_SCRIPTS.format(src=rel.as_posix())
        body = body.replace("</head>", scripts + "</head>", 1) if "</head>" in body else scripts + body
    atomic_write_text(html_path, redact(body), what="notebook HTML")
    return plots

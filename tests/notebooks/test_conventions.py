"""Every runbook notebook follows the same conventions (no lab needed).

Thin notebooks: prose plus one-line calls into vcci_nb. The first code cell is tagged
``parameters`` and declares the common parameters with defaults that work against the lab; no
SQL, PromQL, shell or client plumbing is written out in a code cell; cells are short; nothing is
committed with outputs; every code cell sits under prose that says what it is for.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path
from typing import Any

import pytest
from _nbtools import DIAGNOSTIC

from vcci_nb.tools.check_notebooks import problems

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

ALL = sorted(str(p.relative_to(NOTEBOOKS)) for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

COMMON_PARAMETERS = {
    "incident_id": "",
    "environment": "",  # empty: $VCCI_NB_PROFILE, else lab (issue 13: a notebook never pins a profile)
    "namespace": "",  # empty: the profile's
    "window_start": "",
    "window_end": "",
    "dry_run": True,
}

#: Statements and lines a code cell may have (the parameters cell excepted): a cell does one thing.
MAX_CELL_STATEMENTS = 6
MAX_CELL_LINES = 14

# What must not be written out in a notebook: the library does it, and shows the query beside the result.
PLUMBING = [
    (re.compile(r"\b(select|insert|update|delete)\b.+\b(from|into|set|where)\b", re.I | re.S), "SQL"),
    (re.compile(r"\bpg_(stat_|terminate|cancel|blocking|locks|database_size|size_pretty)", re.I), "PostgreSQL catalog"),
    (re.compile(r"\b(rate|irate|increase|histogram_quantile|sum by|avg_over_time)\s*\(", re.I), "PromQL"),
    (re.compile(r"\{[a-z_]+=~?\""), "PromQL label matcher"),
    (
        re.compile(r"\b(requests|httpx|urllib|psycopg|redis\.Redis|kubernetes\.client|subprocess|os\.system)\b"),
        "client plumbing",
    ),
    (re.compile(r"https?://"), "hard-coded URL"),
    (re.compile(r"^\s*[!%]", re.M), "shell escape or magic"),
    (re.compile(r"\b(password|secret|token)\s*=", re.I), "credential"),
]


def _load(rel: str) -> dict:
    return json.loads((NOTEBOOKS / rel).read_text())


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _strip_comments(src: str) -> str:
    """The cell without its comments (prose in a comment is fine; code is what is checked)."""
    tokens = tokenize.generate_tokens(io.StringIO(src).readline)
    return tokenize.untokenize((t.type, t.string) for t in tokens if t.type != tokenize.COMMENT)


def _parameters(nb: dict) -> dict[str, object]:
    """The names and literal defaults of the parameters cell, as papermill sees them."""
    tree = ast.parse(_source(_code_cells(nb)[0]))
    out: dict[str, object] = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, "the parameters cell holds only assignments"
        target = node.targets[0]
        assert isinstance(target, ast.Name)
        out[target.id] = ast.literal_eval(node.value)
    return out


def test_every_diagnostic_notebook_exists() -> None:
    missing = [n for n in DIAGNOSTIC if not (NOTEBOOKS / n).exists()]
    assert not missing, f"missing notebooks: {missing}"


def test_committed_without_outputs_and_parameters_tagged() -> None:
    found = problems(NOTEBOOKS)
    assert not found, "\n".join(found)


def test_the_check_catches_an_executed_notebook(tmp_path: Path) -> None:
    """The cleanliness check itself must fail on a notebook with outputs (else it proves nothing)."""
    nb = _load(DIAGNOSTIC[0])
    code = _code_cells(nb)
    code[-1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi"}]
    code[-1]["execution_count"] = 3
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    assert problems(tmp_path)


def test_the_check_keeps_code_one_click_away_and_results_visible(tmp_path: Path) -> None:
    """Import cells start collapsed; the parameters cell, other code and every output stay visible."""

    def check(change: Any) -> list[str]:
        nb = _load("01_triage.ipynb")
        change(nb["cells"])
        (tmp_path / "x.ipynb").write_text(json.dumps(nb))
        return problems(tmp_path)

    def meta(cell: dict[str, Any]) -> dict[str, Any]:
        return cell["metadata"].setdefault("jupyter", {})  # type: ignore[no-any-return]

    assert check(lambda cells: None) == []
    imports = next(
        i for i, c in enumerate(_load("01_triage.ipynb")["cells"]) if "from vcci_nb import" in "".join(c["source"])
    )
    assert "only imports; collapse it" in "".join(check(lambda cells: meta(cells[imports]).pop("source_hidden")))
    assert "parameters cell and is collapsed" in "".join(check(lambda cells: meta(cells[2]).update(source_hidden=True)))
    assert "does more than import" in "".join(check(lambda cells: meta(cells[4]).update(source_hidden=True)))
    assert "hides its outputs" in "".join(check(lambda cells: meta(cells[6]).update(outputs_hidden=True)))


@pytest.mark.parametrize("rel", DIAGNOSTIC)
def test_parameters_cell_declares_the_common_parameters_with_empty_defaults(rel: str) -> None:
    params = _parameters(_load(rel))
    for name, default in COMMON_PARAMETERS.items():
        assert name in params, f"{rel}: parameter {name} missing"
        assert params[name] == default, f"{rel}: {name} defaults to {params[name]!r}, want {default!r}"
    for name, value in params.items():
        assert value is None or isinstance(value, str | int | float | bool), f"{rel}: {name} must be a plain literal"


def _profile_names() -> set[str]:
    """Every name the lab's profile defines (namespace, deployments, job, roles, metric names, …)."""
    from vcci_nb.config import NAME_KEYS, load_profile

    prof = load_profile("lab")
    out: set[str] = set()
    for key in NAME_KEYS:
        value = prof.get(key)
        for v in value if isinstance(value, list) else [value]:
            out.add(str(v))
            out.update(re.findall(r"[a-z_]{6,}(?=\{)", str(v)))  # metric names in a PromQL selector
    for index in prof.get("postgres.expected_indexes") or []:
        out.update({str(index["table"]), str(index["name"])})
    return {n for n in out if len(n) >= 4}


@pytest.mark.parametrize("rel", ALL)
def test_no_platform_name_is_spelled_in_a_code_cell(rel: str) -> None:
    """Names come from the profile: a parameter defaults to empty (the profile's) and code reads
    ``ctx.profile.names``. A cheap static check; the other lab flavour's runs are the real test."""
    names = _profile_names()
    for cell in _code_cells(_load(rel)):
        code = _strip_comments(_source(cell))
        for name in names:
            assert not re.search(rf"[\"'=]{re.escape(name)}[\"',]", code), f"{rel} spells {name!r}:\n{code}"


@pytest.mark.parametrize("rel", ALL)
def test_code_cells_are_thin(rel: str) -> None:
    nb = _load(rel)
    code = _code_cells(nb)
    for i, cell in enumerate(code):
        src = _source(cell)
        ast.parse(src)  # every cell is valid Python on its own
        lines = [ln for ln in src.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        body = ast.parse(src).body
        imports_only = all(isinstance(n, ast.Import | ast.ImportFrom) for n in body)
        if i > 0 and not imports_only:
            statements = len(body)
            assert statements <= MAX_CELL_STATEMENTS, f"{rel} code cell {i} has {statements} statements:\n{src}"
            assert len(lines) <= MAX_CELL_LINES, f"{rel} code cell {i} has {len(lines)} lines:\n{src}"
        code_only = _strip_comments(src)
        for pattern, what in PLUMBING:
            assert not pattern.search(code_only), f"{rel} code cell {i} writes out {what}:\n{src}"
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                assert (module or "").startswith("vcci_nb"), f"{rel}: imports {module}; call vcci_nb instead"


#: Helpers that return a value: a cell ending in a bare call to one would print its repr as Out[].
RETURNS_VALUE = {"record_findings", "ask", "ask_many", "ask_kinds", "derive", "open_incident", "scenario_check"}


@pytest.mark.parametrize("rel", ALL)
def test_no_cell_ends_in_a_stray_repr(rel: str) -> None:
    for i, cell in enumerate(_code_cells(_load(rel))):
        body = ast.parse(_source(cell)).body
        last = body[-1] if body else None
        if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
            func = last.value.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            assert name not in RETURNS_VALUE, f"{rel} code cell {i} ends in a bare {name}(...): assign it"


@pytest.mark.parametrize("rel", ALL)
def test_prose_explains_each_step(rel: str) -> None:
    nb = _load(rel)
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# "), f"{rel}: opens with a title"
    md = [c for c in cells if c["cell_type"] == "markdown"]
    assert len(md) >= 4, f"{rel}: too little prose for a runbook step"
    # A run of more than two code cells with no prose between them is a step nobody explained.
    run = 0
    for cell in cells:
        run = run + 1 if cell["cell_type"] == "code" else 0
        assert run <= 3, f"{rel}: more than three code cells in a row without prose"


def test_runbook_voice_is_rewritten_not_pasted() -> None:
    """The seed's shell blocks must not reappear verbatim in a notebook."""
    seed = Path("/work/shared/seed/incident-response-runbook.md")
    if not seed.exists():
        pytest.skip("the seed runbook is not on this machine")
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", seed.read_text(), re.S)
    lines = {ln.strip() for b in blocks for ln in b.splitlines() if len(ln.strip()) > 40}
    for rel in ALL:
        text = "".join(_source(c) for c in _load(rel)["cells"])
        pasted = [ln for ln in lines if ln in text]
        assert not pasted, f"{rel} pastes the seed: {pasted[:3]}"

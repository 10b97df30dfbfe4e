"""Notebook parameters: read what a notebook declares, check what the caller passes.

papermill writes ``name = value`` lines into a cell and the kernel executes them, so a
parameter is code. Before anything runs we therefore insist that:

- every name is a plain identifier the notebook declares in its ``parameters`` cell;
- every value is a plain literal (str, int, float, bool, None, or a list of those), coerced to
  the type of the notebook's default, and renders to a line that parses as one literal
  assignment;
- Kubernetes names (``namespace``, ``deployment``, ``pod``…, decided by the parameter's name)
  are valid DNS-1123 names, so ``default; rm -rf /`` never reaches a shell or an API call.

The declared parameters are read with :mod:`ast` (never executed), with their defaults, types
and trailing comments, which ``vcci-nb run --help-params`` style listings can show.
"""

from __future__ import annotations

import ast
import io
import keyword
import math
import re
import tokenize
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from vcci_nb.errors import ParameterError
from vcci_nb.kubeapi import is_dns1123_label, is_dns1123_subdomain

#: Parameter names whose values are Kubernetes namespaces (DNS-1123 labels, at most 63 characters).
K8S_LABEL_NAMES = frozenset({"namespace", "container"})
#: Parameter names whose values are other Kubernetes object names (DNS-1123 subdomains).
K8S_SUBDOMAIN_NAMES = frozenset(
    {
        "deployment",
        "pod",
        "service",
        "statefulset",
        "daemonset",
        "replicaset",
        "configmap",
        "node",
        "job",
        "cronjob",
        "pvc",
        "persistentvolumeclaim",
        "ingress",
    }
)

_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


@dataclass(frozen=True)
class Parameter:
    """One parameter a notebook declares: ``name = default  # help``."""

    name: str
    default: Any
    type_name: str  # str, int, float, bool, list, NoneType, or the annotation's text
    help: str = ""
    line: int = 0

    @property
    def nullable(self) -> bool:
        return self.default is None or "None" in self.type_name or "Optional" in self.type_name


def k8s_kind(name: str) -> str | None:
    """``label``/``subdomain`` if a parameter named ``name`` holds Kubernetes names, else None.

    Decided by name: ``namespace``, ``target_namespace``, ``pods`` (a list of pod names), …
    """
    base = name.lower()
    for suffix in (base, base.rsplit("_", 1)[-1]):
        for candidate in (suffix, suffix[:-1] if suffix.endswith("s") else suffix):
            if candidate in K8S_LABEL_NAMES:
                return "label"
            if candidate in K8S_SUBDOMAIN_NAMES:
                return "subdomain"
    return None


def check_k8s_name(param: str, value: str, kind: str) -> None:
    """Refuse a value that is not a valid DNS-1123 label/subdomain, saying what a valid one looks like."""
    if not (is_dns1123_label(value) if kind == "label" else is_dns1123_subdomain(value)):
        limit = 63 if kind == "label" else 253
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ParameterError(
            f"Parameter {param}={shown!r} is not a valid Kubernetes name: it must be a DNS-1123 "
            f"{kind} (lowercase letters, digits and '-'{', dots between parts' if kind == 'subdomain' else ''}; "
            f"start and end with a letter or digit; at most {limit} characters), e.g. vcci-production."
        )


def _comments(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def parameters_cell(nb: dict[str, Any]) -> tuple[int, str] | None:
    """Index and source of the first code cell tagged ``parameters``, or None."""
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        if "parameters" in tags:
            source = cell.get("source", "")
            return index, "".join(source) if isinstance(source, list) else str(source)
    return None


def declared_parameters(nb: dict[str, Any], path: str | Path = "notebook") -> dict[str, Parameter]:
    """The parameters a notebook declares in its ``parameters`` cell, read with ``ast`` (not run)."""
    found = parameters_cell(nb)
    if found is None:
        return {}
    _, source = found
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(
            f"The parameters cell of {path} is not valid Python ({exc.msg}, line {exc.lineno}); fix the notebook."
        ) from exc
    comments = _comments(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value_node, annotation = node.targets[0].id, node.value, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value_node, annotation = node.target.id, node.value, ast.unparse(node.annotation)
        else:
            continue
        try:
            default = ast.literal_eval(value_node)
        except (ValueError, SyntaxError, TypeError):
            default = None  # a computed default: accept str input and let the notebook handle it
            annotation = annotation or "str | None"
        type_name = annotation or type(default).__name__
        params[name] = Parameter(name, default, type_name, comments.get(node.lineno, ""), node.lineno)
    return params


def base_type(param: Parameter) -> str:
    """The declared type as one word: ``str``, ``int``, ``float``, ``bool``, ``list`` or ``NoneType``."""
    text = param.type_name.replace("Optional[", "").replace("typing.", "")
    parts = [p.strip() for p in text.split("|") if p.strip() and p.strip().rstrip("]") != "None"]
    if not parts:
        return "NoneType"
    word = re.split(r"[\[\]]", parts[0])[0].strip()
    return "list" if word in {"list", "List", "tuple", "Tuple", "Sequence"} else word


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(
            v is None or isinstance(v, bool | int | str) or (isinstance(v, float) and math.isfinite(v)) for v in value
        )
    return False


def _parse_loose(text: str) -> Any:
    """A -p string without a typed default: YAML scalar/list rules (``3`` → 3, ``[a, b]`` → list)."""
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text


def coerce(param: Parameter, value: Any, *, from_string: bool) -> Any:
    """Convert ``value`` to the declared type of ``param`` or raise :class:`ParameterError`."""
    base = base_type(param)
    if isinstance(value, datetime | date):
        value = value.isoformat()
    if from_string and isinstance(value, str):
        lowered = value.strip().lower()
        if param.nullable and lowered in {"none", "null", "~"}:
            return None
        if base == "bool":
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ParameterError(f"Parameter {param.name} is a boolean; give true or false, not {value!r}.")
        if base == "int":
            try:
                return int(value.strip())
            except ValueError:
                raise ParameterError(f"Parameter {param.name} is an integer; {value!r} is not one.") from None
        if base == "float":
            try:
                number = float(value.strip())
            except ValueError:
                raise ParameterError(f"Parameter {param.name} is a number; {value!r} is not one.") from None
            if not math.isfinite(number):
                raise ParameterError(f"Parameter {param.name} must be a finite number, not {value!r}.")
            return number
        if base == "list":
            parsed = _parse_loose(value)
            if isinstance(parsed, str):
                parsed = [part.strip() for part in parsed.split(",") if part.strip()]
            value = parsed
        elif base in {"NoneType", ""}:
            parsed = _parse_loose(value)
            # a time stays the text it was given (YAML would make `2026-01-06T14:00:00Z` a datetime)
            value = value if isinstance(parsed, datetime | date) else parsed
        else:
            return value
    # typed values (YAML files, API callers)
    if value is None:
        if param.nullable:
            return None
        raise ParameterError(f"Parameter {param.name} cannot be empty (null); its default is {param.default!r}.")
    if base == "bool" and not isinstance(value, bool):
        raise ParameterError(f"Parameter {param.name} is a boolean; got {type(value).__name__} {value!r}.")
    if base == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ParameterError(f"Parameter {param.name} is an integer; got {type(value).__name__} {value!r}.")
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(f"Parameter {param.name} is a number; got {type(value).__name__} {value!r}.")
        value = float(value)
    if base == "str" and not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        else:
            raise ParameterError(f"Parameter {param.name} is text; got {type(value).__name__} {value!r}.")
    if base == "list" and not isinstance(value, list | tuple):
        raise ParameterError(f"Parameter {param.name} is a list; got {type(value).__name__} {value!r}.")
    if isinstance(value, tuple):
        value = list(value)
    return value


def check_safe(name: str, value: Any) -> None:
    """Refuse anything papermill could turn into code: odd names, non-literal values."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ParameterError(f"{name!r} is not a parameter name (it must be a Python identifier such as namespace).")
    if not _is_plain(value):
        raise ParameterError(
            f"Parameter {name} must be a plain value (text, number, true/false, null or a list of those); "
            f"got {type(value).__name__}."
        )
    kind = k8s_kind(name)
    if kind is not None:
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if not isinstance(item, str):
                raise ParameterError(f"Parameter {name} holds Kubernetes names; {item!r} is not text.")
            check_k8s_name(name, item, kind)
    # Belt and braces: the line papermill will write must parse as exactly `name = <literal>`.
    from papermill.translators import PythonTranslator

    line = PythonTranslator.assign(name, PythonTranslator.translate(value))
    try:
        tree = ast.parse(line)
        ok = (
            len(tree.body) == 1
            and isinstance(tree.body[0], ast.Assign)
            and ast.literal_eval(tree.body[0].value) == value
        )
    except (SyntaxError, ValueError):
        ok = False
    if not ok:
        raise ParameterError(f"Parameter {name}'s value would not be injected as a plain literal; refusing to run it.")


def validate(
    declared: dict[str, Parameter],
    given: dict[str, tuple[Any, bool]],
    path: str | Path,
) -> dict[str, Any]:
    """Check and coerce ``given`` ({name: (value, came_from_string)}) against one notebook's parameters."""
    out: dict[str, Any] = {}
    for name, (value, from_string) in given.items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ParameterError(f"{path} has no parameter {name!r}. Its parameters are: {known}.")
        coerced = coerce(declared[name], value, from_string=from_string)
        check_safe(name, coerced)
        out[name] = coerced
    return out

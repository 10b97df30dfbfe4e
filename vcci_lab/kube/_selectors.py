"""Label and field selectors, parsed the way the API server parses them.

Label selectors support ``=``, ``==``, ``!=``, ``in (...)``, ``notin (...)``, ``key`` and ``!key``.
Field selectors support ``=``, ``==`` and ``!=`` on the fields each resource allows; an unknown
field is a 400 exactly as on a real cluster (``field label not supported``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from vcci_lab.kube._util import JSON, bad_request, get_path

Matcher = Callable[[JSON], bool]

_SET_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> Matcher | None:
    """Return a predicate over an object's labels, or None for "everything"."""
    if not text or not text.strip():
        return None
    reqs: list[tuple[str, str, frozenset[str]]] = []
    for part in _split_top(text):
        m = _SET_RE.match(part)
        if m:
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append((m.group(2), m.group(1), values))
            continue
        for op in ("!=", "==", "="):
            if op in part:
                k, v = (s.strip() for s in part.split(op, 1))
                reqs.append(("!=" if op == "!=" else "=", k, frozenset([v])))
                break
        else:
            if part.startswith("!"):
                reqs.append(("!", part[1:].strip(), frozenset()))
            elif re.match(r"^[A-Za-z0-9./_-]+$", part):
                reqs.append(("exists", part, frozenset()))
            else:
                raise bad_request(f"unable to parse requirement: found '{part}', expected: identifier")

    def one(lb: dict[str, str], op: str, k: str, vs: frozenset[str]) -> bool:
        if op in ("=", "in"):
            return lb.get(k) in vs
        if op in ("!=", "notin"):
            return lb.get(k) not in vs
        if op == "!":
            return k not in lb
        return k in lb

    def match(obj: JSON) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(one(labels, op, k, vs) for op, k, vs in reqs)

    return match


def selector_from_match_labels(selector: JSON | None) -> Matcher | None:
    """A predicate for a LabelSelector object (matchLabels and matchExpressions)."""
    if not selector:
        return None
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(vals)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(vals)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return parse_label_selector(",".join(parts))


def selector_string(selector: JSON | None) -> str:
    if not selector:
        return ""
    return ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))


# Field selectors each resource supports (plus metadata.name and metadata.namespace everywhere).
FIELD_SUPPORT: dict[str, set[str]] = {
    "pods": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "events": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "nodes": {"spec.unschedulable"},
    "namespaces": {"status.phase"},
    "replicasets": {"status.replicas"},
    "secrets": {"type"},
}


def _field_value(obj: JSON, field: str) -> str:
    if field == "source":
        return str(get_path(obj, "source.component") or "")
    v = get_path(obj, field)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def parse_field_selector(text: str | None, resource: str, kind: str, version: str) -> Matcher | None:
    if not text or not text.strip():
        return None
    allowed = {"metadata.name", "metadata.namespace"} | FIELD_SUPPORT.get(resource, set())
    reqs: list[tuple[str, str, str]] = []
    for part in _split_top(text):
        if "!=" in part:
            f, v = part.split("!=", 1)
            op = "!="
        elif "==" in part:
            f, v = part.split("==", 1)
            op = "="
        elif "=" in part:
            f, v = part.split("=", 1)
            op = "="
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        f = f.strip()
        if f not in allowed:
            raise bad_request(f"field label not supported: {f}")
        reqs.append((f, op, v.strip()))

    def match(obj: JSON) -> bool:
        for f, op, v in reqs:
            got = _field_value(obj, f)
            if (got == v) != (op == "="):
                return False
        return True

    return match


def exact_field(text: str | None, field: str) -> str | None:
    """If the selector pins ``field=value`` (e.g. metadata.name), return the value (an index shortcut)."""
    if not text:
        return None
    for part in _split_top(text):
        if "!=" in part:
            continue
        f, _, v = part.replace("==", "=").partition("=")
        if f.strip() == field:
            return v.strip()
    return None


def any_of(*ms: Matcher | None) -> Callable[[Any], bool]:
    real = [m for m in ms if m is not None]

    def match(obj: Any) -> bool:
        return all(m(obj) for m in real)

    return match

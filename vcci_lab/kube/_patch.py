"""The three patch types the API server accepts on PATCH.

- JSON patch (RFC 6902, ``application/json-patch+json``): add, remove, replace, move, copy, test.
- JSON merge patch (RFC 7386, ``application/merge-patch+json``).
- Strategic merge patch (``application/strategic-merge-patch+json``): lists of named things
  (containers, env, volumes, ports, ...) merge by their key instead of being replaced, and the
  directives kubectl emits (``$patch``, ``$setElementOrder/<field>``, ``$retainKeys``,
  ``$deleteFromPrimitiveList/<field>``) are honoured.
"""

from __future__ import annotations

from typing import Any

from vcci_lab.kube._store import copy_json


class PatchError(Exception):
    """The patch cannot be applied; the server answers 422 (or 400 for a malformed document)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


# merge keys for lists, by field name (the same as the Go types' patchMergeKey tags)
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
PRIMITIVE_MERGE = {"finalizers"}


# ---------------------------------------------------------------------------------------------
# JSON patch
# ---------------------------------------------------------------------------------------------
def _unescape(tok: str) -> str:
    return tok.replace("~1", "/").replace("~0", "~")


def _split(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'add operation does not apply: doc is missing path: "{path}": missing value', 422)
    return [_unescape(t) for t in path[1:].split("/")]


def _walk(doc: Any, toks: list[str], op: str, path: str) -> Any:
    cur = doc
    for t in toks:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                cur = cur[int(t)]
            except (ValueError, IndexError) as exc:
                raise PatchError(
                    f'{op} operation does not apply: doc is missing path: "{path}": missing value'
                ) from exc
        else:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return cur


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400)
    doc = copy_json(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("Unexpected kind: missing op", 400)
        kind = op["op"]
        path = op.get("path", "")
        toks = _split(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation does not apply: missing value", 400)
        if kind == "test":
            if _walk(doc, toks, kind, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
            continue
        if kind in ("move", "copy"):
            src_toks = _split(op.get("from", ""))
            value = copy_json(_walk(doc, src_toks, kind, op.get("from", "")))
            if kind == "move":
                doc = _remove(doc, src_toks, op.get("from", ""))
            doc = _add(doc, toks, value, path)
            continue
        if kind == "add":
            doc = _add(doc, toks, copy_json(op["value"]), path)
        elif kind == "remove":
            doc = _remove(doc, toks, path)
        elif kind == "replace":
            if not toks:
                doc = copy_json(op["value"])
                continue
            parent = _walk(doc, toks[:-1], kind, path)
            last = toks[-1]
            if isinstance(parent, dict):
                if last not in parent:
                    raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
                parent[last] = copy_json(op["value"])
            elif isinstance(parent, list):
                try:
                    parent[int(last)] = copy_json(op["value"])
                except (ValueError, IndexError) as exc:
                    raise PatchError(
                        f"replace operation does not apply: doc is missing key: {path}: missing value"
                    ) from exc
            else:
                raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
        else:
            raise PatchError(f"Unexpected kind: {kind}", 400)
    return doc


def _add(doc: Any, toks: list[str], value: Any, path: str) -> Any:
    if not toks:
        return value
    parent = _walk(doc, toks[:-1], "add", path)
    last = toks[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                idx = int(last)
            except ValueError as exc:
                raise PatchError(f'add operation does not apply: doc is missing path: "{path}": missing value') from exc
            if idx < 0 or idx > len(parent):
                raise PatchError(f'add operation does not apply: doc is missing path: "{path}": missing value')
            parent.insert(idx, value)
    else:
        raise PatchError(f'add operation does not apply: doc is missing path: "{path}": missing value')
    return doc


def _remove(doc: Any, toks: list[str], path: str) -> Any:
    if not toks:
        raise PatchError("remove operation does not apply: doc is missing path", 422)
    parent = _walk(doc, toks[:-1], "remove", path)
    last = toks[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'remove operation does not apply: doc is missing path: "{path}": missing value')
        del parent[last]
    elif isinstance(parent, list):
        try:
            del parent[int(last)]
        except (ValueError, IndexError) as exc:
            raise PatchError(f'remove operation does not apply: doc is missing path: "{path}": missing value') from exc
    else:
        raise PatchError(f'remove operation does not apply: doc is missing path: "{path}": missing value')
    return doc


# ---------------------------------------------------------------------------------------------
# merge patch
# ---------------------------------------------------------------------------------------------
def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy_json(patch)
    out = copy_json(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            out[k] = merge_patch(out.get(k), v)
        else:
            out[k] = copy_json(v)
    return out


# ---------------------------------------------------------------------------------------------
# strategic merge patch
# ---------------------------------------------------------------------------------------------
def strategic_merge(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", 400)
    return _sm_map(doc if isinstance(doc, dict) else {}, patch)


def _sm_map(orig: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy_json(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    out: dict[str, Any] = copy_json(orig)
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
            continue
        cur = out.get(k)
        if isinstance(v, dict):
            out[k] = _sm_map(cur if isinstance(cur, dict) else {}, v)
        elif isinstance(v, list):
            out[k] = _sm_list(k, cur if isinstance(cur, list) else [], v)
        else:
            out[k] = copy_json(v)
    if isinstance(retain, list):
        for k in list(out):
            if k not in retain:
                del out[k]
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _apply_order(field, out[field], order)
    return out


def _sm_list(field: str, orig: list[Any], patch: list[Any]) -> list[Any]:
    key = MERGE_KEYS.get(field)
    if field in PRIMITIVE_MERGE and all(not isinstance(x, dict) for x in patch):
        out = list(orig)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    if key is None or not all(isinstance(x, dict) for x in patch):
        # no merge key: the list is replaced, unless the patch asks to replace explicitly
        return [
            copy_json(x) for x in patch if not (isinstance(x, dict) and x.get("$patch") == "replace" and len(x) == 1)
        ]
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy_json({k: v for k, v in x.items() if k != "$patch"}) for x in patch if len(x) > 1]
    out = [copy_json(x) for x in orig]
    for item in patch:
        kv = item.get(key)
        idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == kv), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(_sm_map({}, item))
        else:
            out[idx] = _sm_map(out[idx], item)
    return out


def _apply_order(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    key = MERGE_KEYS.get(field)
    if key is None:
        return items

    def ident(x: Any) -> Any:
        return x.get(key) if isinstance(x, dict) else x

    wanted = [ident(o) for o in order]
    ranked = [x for w in wanted for x in items if ident(x) == w]
    rest = [x for x in items if ident(x) not in wanted]
    return ranked + rest

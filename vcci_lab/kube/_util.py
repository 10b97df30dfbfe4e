"""Small helpers shared by the emulator: times, quantities, names, Status bodies.

Kept free of any emulator state so they can be unit-tested and reused by the exec shell.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import random
import re
from typing import Any

JSON = dict[str, Any]

# The alphabet Kubernetes uses for generated name suffixes and pod-template-hash values
# (k8s.io/apimachinery/pkg/util/rand.SafeEncodeString): no vowels, no confusable characters.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def rfc3339(ts: float) -> str:
    """Format a Unix time the way the API server does in metadata (second precision, Z)."""
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(ts: float) -> str:
    """Format a Unix time with microseconds (events.k8s.io eventTime, MicroTime)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(ts: float) -> str:
    """Format a Unix time like the kubelet prefixes log lines with ``timestamps=true``."""
    whole = int(ts)
    nanos = round((ts - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    base = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def parse_time(value: str) -> float:
    """Parse an RFC 3339 time as the API server writes it."""
    text = value.replace("Z", "+00:00")
    return dt.datetime.fromisoformat(text).timestamp()


def safe_suffix(n: int, rng: random.Random | None = None) -> str:
    r = rng or random
    return "".join(r.choice(SAFE_ALPHABET) for _ in range(n))


def template_hash(template: JSON) -> str:
    """A stable pod-template-hash for a pod template (the label is ignored)."""
    t = prune_empty(copy.deepcopy(template))
    labels = t.get("metadata", {}).get("labels", {})
    labels.pop("pod-template-hash", None)
    digest = hashlib.sha256(json.dumps(t, sort_keys=True).encode()).digest()
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in digest[:10])


def strip_hash(template: JSON) -> JSON:
    """The template without its pod-template-hash label, in comparable (pruned) form."""
    t = copy.deepcopy(template)
    t.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    pruned: JSON = prune_empty(t)
    return pruned


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
    "Pi": 1024.0**5,
    "Ei": 1024.0**6,
}


def parse_quantity(value: Any) -> float:
    """Parse a Kubernetes resource quantity (``500m``, ``4Gi``, ``2``) into a float.

    Raises:
        ValueError: when the text is not a quantity; callers turn it into a 422 Invalid.
    """
    if isinstance(value, bool):
        raise ValueError(f"quantities must match the regular expression; got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = _QUANTITY.match(str(value).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def format_cpu_nanos(cores: float) -> str:
    return f"{max(0, int(cores * 1e9))}n"


def format_mem_ki(nbytes: float) -> str:
    return f"{max(0, int(nbytes / 1024))}Ki"


def human_bytes(n: float) -> str:
    """``df -h`` / ``du -sh`` style sizes (powers of 1024, one decimal below 10)."""
    units = ["", "K", "M", "G", "T", "P"]
    v = float(n)
    i = 0
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    if i == 0:
        return f"{int(v)}"
    if v < 10:
        # df rounds up (ceil) to one decimal.
        import math

        return f"{math.ceil(v * 10) / 10:.1f}{units[i]}"
    import math

    return f"{math.ceil(v)}{units[i]}"


def valid_dns_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def valid_dns_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))


def status_body(
    code: int,
    reason: str,
    message: str,
    *,
    name: str | None = None,
    group: str | None = None,
    kind: str | None = None,
    causes: list[JSON] | None = None,
    retry_after: int | None = None,
) -> JSON:
    """A ``meta.k8s.io/v1`` Status as the API server returns it for failures."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    details: JSON = {}
    if name is not None:
        details["name"] = name
    if group:
        details["group"] = group
    if kind is not None:
        details["kind"] = kind
    if causes:
        details["causes"] = causes
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    if details:
        body["details"] = details
    body["code"] = body.pop("code")  # the API server writes details before code
    if not reason:
        del body["reason"]
    return body


class ApiError(Exception):
    """An API failure carrying the exact Status body to send."""

    def __init__(self, body: JSON) -> None:
        super().__init__(body.get("message", ""))
        self.body = body

    @property
    def code(self) -> int:
        return int(self.body["code"])


def not_found(resource: str, group: str, name: str) -> ApiError:
    qual = f"{resource}.{group}" if group else resource
    return ApiError(status_body(404, "NotFound", f'{qual} "{name}" not found', name=name, group=group, kind=resource))


def already_exists(resource: str, group: str, name: str) -> ApiError:
    qual = f"{resource}.{group}" if group else resource
    return ApiError(
        status_body(409, "AlreadyExists", f'{qual} "{name}" already exists', name=name, group=group, kind=resource)
    )


def conflict(resource: str, group: str, name: str) -> ApiError:
    qual = f"{resource}.{group}" if group else resource
    return ApiError(
        status_body(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {qual} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            name=name,
            group=group,
            kind=resource,
        )
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid with one cause per (field, message)."""
    qual = f"{kind}.{group}" if group else kind
    joined = ", ".join(f"{f}: {m}" for f, m in causes)
    if len(causes) > 1:
        joined = "[" + joined + "]"
    return ApiError(
        status_body(
            422,
            "Invalid",
            f'{qual} "{name}" is invalid: {joined}',
            name=name,
            group=group,
            kind=kind,
            causes=[{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
        )
    )


def bad_request(message: str) -> ApiError:
    return ApiError(status_body(400, "BadRequest", message))


def get_path(obj: Any, dotted: str) -> Any:
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def drop_nulls(obj: Any, *, keep_status: bool = True) -> Any:
    """Remove ``null`` fields the way decoding into the Go types does (``creationTimestamp: null``...).

    ``status`` is left alone: there the API server itself writes nulls (``lastProbeTime: null``).
    """
    if isinstance(obj, dict):
        return {
            k: (v if (keep_status and k == "status") else drop_nulls(v, keep_status=False))
            for k, v in obj.items()
            if v is not None
        }
    if isinstance(obj, list):
        return [drop_nulls(v, keep_status=False) for v in obj]
    return obj


def prune_empty(obj: Any) -> Any:
    """Drop nulls, empty maps and empty lists: the form in which two templates are compared."""
    if isinstance(obj, dict):
        out = {k: prune_empty(v) for k, v in obj.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(obj, list):
        return [prune_empty(v) for v in obj]
    return obj

"""Traffic management of seed 4.1, guarded: rate limit, source ranges, maintenance mode.

The ingress is ingress-nginx's (annotations ``nginx.ingress.kubernetes.io/*``):

- :class:`RateLimit` sets ``limit-rps`` (requests per second per client IP; ``None`` removes it);
- :class:`AllowSourceRanges` sets ``whitelist-source-range`` (the seed's name; only these CIDRs get
  in) and :class:`BlockSourceRanges` sets ``denylist-source-range`` (these CIDRs are kept out).
  Both refuse any change after which nobody could reach the API: an empty allowlist, a blocklist
  covering the whole address space (the seed's "Block specific IP" example sets ``0.0.0.0/0`` — as
  an allowlist that blocks nothing, as a blocklist it blocks everyone), or a blocklist covering
  every allowed range.

Maintenance mode (:class:`MaintenanceMode`) — how the platform learns of it
-------------------------------------------------------------------------------
The switch is the ConfigMap ``vcci-maintenance`` in the application's namespace (the profile's
``kubernetes.maintenance_configmap``)::

    data:
      enabled: "true" | "false"
      message: "Scheduled maintenance …"   # shown to API clients
      incident: INC-YYYYMMDD-NNN            # who turned it on, for the record
      since: 2026-01-06T14:05:00Z

The vcci-api pods mount it as a volume (kubelet refreshes mounted ConfigMaps within about a
minute, no restart needed) and, while ``enabled`` is ``"true"``, answer every request except
``/health`` and ``/metrics`` with 503 and ``Retry-After``. A ConfigMap rather than an ingress
annotation because the application can then keep its health checks and internal routes working,
and because one object is the single source of truth that ``vcci-nb`` and people can read back.
Turning maintenance on takes the service away from customers, so it is destructive (typed
incident ID); turning it off is not.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from vcci_nb.actions._model import Plan, Verification, flag, whole_number
from vcci_nb.actions.kube import _check_name, _KubeAction, now_iso, object_diff
from vcci_nb.config import Profile, load_profile
from vcci_nb.errors import ActionRefused
from vcci_nb.kubeapi import JSON, MERGE_PATCH

PREFIX = "nginx.ingress.kubernetes.io/"
RATE_LIMIT = PREFIX + "limit-rps"
ALLOWLIST = PREFIX + "whitelist-source-range"
DENYLIST = PREFIX + "denylist-source-range"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ranges(cidrs: list[str] | str) -> list[Network]:
    """CIDRs from a list or a comma-separated string, with a clear error for a bad one."""
    items = [c.strip() for c in (cidrs.split(",") if isinstance(cidrs, str) else cidrs) if c and c.strip()]
    out: list[Network] = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ActionRefused(f"{item!r} is not an IP address or CIDR range (e.g. 203.0.113.7/32)") from exc
    return out


def _covers_everything(nets: list[Network]) -> bool:
    v4 = list(ipaddress.collapse_addresses(n for n in nets if isinstance(n, ipaddress.IPv4Network)))
    v6 = list(ipaddress.collapse_addresses(n for n in nets if isinstance(n, ipaddress.IPv6Network)))
    return any(n.prefixlen == 0 for n in v4) or any(n.prefixlen == 0 for n in v6)


def lockout_reason(allow: list[Network] | None, deny: list[Network] | None) -> str | None:
    """Why this allowlist/denylist pair would lock every client out, or None if it would not."""
    if allow is not None and not allow:
        return "an empty allowlist admits nobody"
    if deny and _covers_everything(deny):
        return "the blocklist covers every address (0.0.0.0/0 or ::/0)"
    if allow and deny:
        uncovered = [a for a in allow if not any(a.version == d.version and a.subnet_of(d) for d in deny)]  # type: ignore[arg-type]
        if not uncovered:
            return "every allowed range is also blocked"
    return None


class _IngressAction(_KubeAction):
    def __init__(self, ingress: str | None = None, namespace: str | None = None, **kwargs: Any) -> None:
        super().__init__(namespace, **kwargs)
        self._ingress_arg = ingress

    @property
    def ingress(self) -> str:
        if self._ingress_arg:
            return self._ingress_arg
        prof = self._profile if isinstance(self._profile, Profile) else load_profile(self._profile)
        return str(prof.require("kubernetes.ingress"))

    @property
    def path(self) -> str:
        return f"/apis/networking.k8s.io/v1/namespaces/{self.namespace}/ingresses/{self.ingress}"

    @property
    def target(self) -> str:
        return f"{self.namespace}/ingress/{self.ingress}"

    def preflight(self) -> None:
        super().preflight()
        _check_name(self.ingress, "ingress")

    def new_annotations(self, current: dict[str, str]) -> dict[str, str | None]:
        """The annotations to set (``None`` removes one)."""
        raise NotImplementedError

    def plan(self) -> Plan:
        obj = self.kube.get(self.path)
        current = dict((obj.get("metadata") or {}).get("annotations") or {})
        changes = self.new_annotations(current)
        body = {
            "metadata": {
                "annotations": {**changes, **self.annotations()},
                "resourceVersion": (obj.get("metadata") or {}).get("resourceVersion"),
            }
        }
        after = self.kube.patch(self.path, body, patch_type=MERGE_PATCH, dry_run=True)
        rows = [{"annotation": k, "from": current.get(k), "to": v} for k, v in changes.items()]
        noop = all(current.get(k) == v for k, v in changes.items())
        return Plan(
            action=self.name,
            target=self.target,
            summary=self.describe(changes),
            changes=rows,
            diff=object_diff(obj, after, f"ingress/{self.ingress}"),
            warnings=self.warn(changes, current),
            noop=noop,
            details={"patch": body, "expect": changes},
        )

    def describe(self, changes: dict[str, str | None]) -> str:
        return "; ".join(
            f"{k.removeprefix(PREFIX)}={v}" if v is not None else f"remove {k}" for k, v in changes.items()
        )

    def warn(self, changes: dict[str, str | None], current: dict[str, str]) -> list[str]:
        return []

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        after = self.kube.patch(self.path, plan.details["patch"], patch_type=MERGE_PATCH)
        return {"resource_version": (after.get("metadata") or {}).get("resourceVersion")}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        obj = self.kube.get(self.path)
        have = (obj.get("metadata") or {}).get("annotations") or {}
        v = Verification()
        for k, want in plan.details["expect"].items():
            v.add(k.removeprefix(PREFIX), have.get(k) == want, f"{have.get(k)!r} (wanted {want!r})")
        v.add(
            "incident annotation", have.get("vcci-nb/incident") == self.incident_id, str(have.get("vcci-nb/incident"))
        )
        return v


class RateLimit(_IngressAction):
    """``limit-rps`` on the ingress (seed 4.1 "Enable rate limiting"); ``rps=None`` removes the limit."""

    name = "traffic.rate_limit"

    def __init__(
        self, rps: int | None, ingress: str | None = None, namespace: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(ingress, namespace, **kwargs)
        self.rps: Any = rps  # converted by preflight

    def parameters(self) -> dict[str, Any]:
        return {"rps": self.rps, "ingress": self._ingress_arg, "namespace": self._namespace_arg}

    def preflight(self) -> None:
        super().preflight()
        if self.rps is not None:
            self.rps = whole_number(self.rps, "rps")
        if self.rps is not None and not 1 <= self.rps <= 100_000:
            raise ActionRefused(f"rps={self.rps} is outside 1..100000; 0 would refuse every request")

    def new_annotations(self, current: dict[str, str]) -> dict[str, str | None]:
        return {RATE_LIMIT: None if self.rps is None else str(self.rps)}

    def warn(self, changes: dict[str, str | None], current: dict[str, str]) -> list[str]:
        if self.rps is None:
            return []
        return [f"each client IP gets at most {self.rps} req/s (burst 5x); clients behind one NAT share it"]


class _SourceRanges(_IngressAction):
    annotation = ALLOWLIST

    def __init__(
        self, cidrs: list[str] | str | None, ingress: str | None = None, namespace: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(ingress, namespace, **kwargs)
        self.raw = cidrs
        self.cidrs: list[str] | None = None

    def parameters(self) -> dict[str, Any]:
        return {"cidrs": self.raw, "ingress": self._ingress_arg, "namespace": self._namespace_arg}

    def preflight(self) -> None:
        super().preflight()
        self.cidrs = None if self.raw is None else [str(n) for n in parse_ranges(self.raw)]

    def new_annotations(self, current: dict[str, str]) -> dict[str, str | None]:
        value = None if self.cidrs is None else ",".join(self.cidrs)
        allow_text = value if self.annotation == ALLOWLIST else current.get(ALLOWLIST)
        deny_text = value if self.annotation == DENYLIST else current.get(DENYLIST)
        allow = None if allow_text is None else parse_ranges(allow_text)
        deny = None if deny_text is None else parse_ranges(deny_text)
        reason = lockout_reason(allow, deny)
        if reason:
            raise ActionRefused(
                f"refusing: this would lock every client out of {self.ingress} ({reason}). "
                "To block an address, use BlockSourceRanges(['203.0.113.7/32']); to stop all traffic on "
                "purpose, use MaintenanceMode(True)."
            )
        return {self.annotation: value}


class AllowSourceRanges(_SourceRanges):
    """Only these CIDRs may reach the API (``whitelist-source-range``); ``None`` removes the allowlist."""

    name = "traffic.allow_source_ranges"
    annotation = ALLOWLIST

    def warn(self, changes: dict[str, str | None], current: dict[str, str]) -> list[str]:
        nets = parse_ranges(self.cidrs or [])
        if nets and _covers_everything(nets):
            return ["this allowlist admits every address: it blocks nothing (to block, use BlockSourceRanges)"]
        if self.cidrs:
            return ["every client outside these ranges gets 403, including customers: make sure that is intended"]
        return []


class BlockSourceRanges(_SourceRanges):
    """Keep these CIDRs out (``denylist-source-range``); ``None`` removes the blocklist."""

    name = "traffic.block_source_ranges"
    annotation = DENYLIST


class MaintenanceMode(_KubeAction):
    """Turn maintenance mode on or off through the profile's ``kubernetes.maintenance_configmap``
    ConfigMap (see the module doc)."""

    name = "traffic.maintenance"

    def __init__(
        self,
        enabled: bool,
        message: str = "The VCCI platform is under maintenance. Please try again shortly.",
        *,
        configmap: str | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace, **kwargs)
        self.enabled: Any = enabled  # converted by preflight
        self.message = message
        self._configmap_arg = configmap

    @property
    def configmap(self) -> str:
        if self._configmap_arg:
            return self._configmap_arg
        prof = self._profile if isinstance(self._profile, Profile) else load_profile(self._profile)
        return prof.names.maintenance_configmap

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps/{self.configmap}"

    @property
    def target(self) -> str:
        return f"{self.namespace}/configmap/{self.configmap}"

    def parameters(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "message": self.message, "configmap": self._configmap_arg}

    def preflight(self) -> None:
        super().preflight()
        _check_name(self.configmap, "configmap")
        self.enabled = flag(self.enabled, "enabled")
        if not isinstance(self.message, str):
            raise ActionRefused(f"message={self.message!r} is not text")
        if len(self.message) > 500:
            raise ActionRefused("the maintenance message is longer than 500 characters; keep it short")

    def _data(self) -> dict[str, str]:
        return {
            "enabled": "true" if self.enabled else "false",
            "message": self.message,
            "incident": self.incident_id or "",
            "since": now_iso(),
        }

    def plan(self) -> Plan:
        obj: JSON = self.kube.get(self.path)
        data = dict(obj.get("data") or {})
        new = self._data()
        body = {
            "metadata": {"annotations": self.annotations(), "resourceVersion": obj["metadata"].get("resourceVersion")},
            "data": new,
        }
        after = self.kube.patch(self.path, body, patch_type=MERGE_PATCH, dry_run=True)
        now_on = data.get("enabled", "false").lower() == "true"
        return Plan(
            action=self.name,
            target=self.target,
            summary=f"maintenance mode {'ON' if self.enabled else 'OFF'} (now {'on' if now_on else 'off'})",
            changes=[{"key": k, "from": data.get(k), "to": v} for k, v in new.items()],
            diff=object_diff(obj, after, f"configmap/{self.configmap}"),
            warnings=(
                [
                    "customers get 503 on every API call except /health until it is turned off; tell them first "
                    "(status page)"
                ]
                if self.enabled
                else []
            ),
            destructive=self.enabled and not now_on,
            noop=now_on == self.enabled,
            details={"patch": body, "expect": new["enabled"]},
        )

    def execute(self, plan: Plan, incident_id: str) -> dict[str, Any]:
        after = self.kube.patch(self.path, plan.details["patch"], patch_type=MERGE_PATCH)
        return {"enabled": (after.get("data") or {}).get("enabled")}

    def verify(self, plan: Plan, result: dict[str, Any]) -> Verification:
        obj = self.kube.get(self.path)
        have = (obj.get("data") or {}).get("enabled")
        return Verification().add("maintenance flag", have == plan.details["expect"], f"enabled={have!r}")

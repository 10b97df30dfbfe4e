"""Which bundle an alert runs, with which parameters, at which incident severity.

The rules live in ``parameters/routes.yaml`` so that on-call teams change them without code.
Routes are tried in order and the first whose matchers all hold wins; an alert that matches
none runs the default bundle (``triage``). Label values become notebook parameters only through
an explicit mapping, and each value is checked here (Kubernetes names must be DNS-1123, other
values a short safe token) before anything is queued; the runner checks again. A value that
fails is not run: the plan carries a refusal that the worker records in the incident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcci_nb.config import parameters_dir, read_yaml
from vcci_nb.errors import ConfigError
from vcci_nb.policy import SEVERITIES, is_dns1123_label, is_dns1123_subdomain

#: Anything else: a short token with no quotes, spaces, brackets, backslashes or newlines.
SAFE_TEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@+,=-]{0,127}$")
_INTEGER = re.compile(r"^-?[0-9]{1,12}$")
_BUNDLE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_PROM_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_KINDS = ("dns1123", "dns1123_subdomain", "text", "int")
#: Parameters that name Kubernetes objects get the strict check without being told.
_KIND_BY_NAME = {"namespace": "dns1123", "service": "dns1123", "deployment": "dns1123", "pod": "dns1123_subdomain"}


def check_value(kind: str, value: str) -> str | None:
    """Return why ``value`` is unsafe for a parameter of ``kind``, or None when it is fine."""
    if kind == "dns1123":
        ok = is_dns1123_label(value)
        what = "a DNS-1123 name (lower-case letters, digits and '-', at most 63)"
    elif kind == "dns1123_subdomain":
        ok = is_dns1123_subdomain(value)
        what = "a DNS-1123 subdomain"
    elif kind == "int":
        ok = bool(_INTEGER.match(value))
        what = "an integer"
    else:
        ok = bool(SAFE_TEXT.match(value))
        what = "a short token of letters, digits and _.:/@+,=- (no quotes, spaces or brackets)"
    return None if ok else f"is not {what}"


@dataclass(frozen=True)
class ParamSpec:
    """One notebook parameter filled from one alert label."""

    param: str
    label: str
    kind: str


@dataclass(frozen=True)
class Route:
    """One rule of routes.yaml."""

    name: str
    match: dict[str, tuple[str, ...]] = field(default_factory=dict)
    match_re: dict[str, re.Pattern[str]] = field(default_factory=dict)
    bundle: str | None = None
    bundle_from_label: str | None = None
    params: tuple[ParamSpec, ...] = ()
    profile: str | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        for name, allowed in self.match.items():
            if labels.get(name) not in allowed:
                return False
        return all(pattern.fullmatch(labels.get(name, "")) for name, pattern in self.match_re.items())


@dataclass(frozen=True)
class RunPlan:
    """What to run for an alert: a bundle, its parameters, and a refusal when a label was unsafe."""

    route: str
    bundle: str
    params: dict[str, str]
    profile: str | None
    refusal: str | None = None
    notes: tuple[str, ...] = ()


def _param_specs(raw: Any, where: str) -> list[ParamSpec]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must map notebook parameters to alert labels")
    specs: list[ParamSpec] = []
    for param, spec in raw.items():
        param = str(param)
        if not _PARAM_NAME.match(param):
            raise ConfigError(f"{where}: {param!r} is not a valid notebook parameter name")
        if isinstance(spec, str):
            label, kind = spec, _KIND_BY_NAME.get(param, "text")
        elif isinstance(spec, dict) and isinstance(spec.get("label"), str):
            label = spec["label"]
            kind = str(spec.get("kind") or _KIND_BY_NAME.get(param, "text"))
        else:
            raise ConfigError(f"{where}.{param} must be a label name or {{label: NAME, kind: KIND}}")
        if kind not in _KINDS:
            raise ConfigError(f"{where}.{param}: kind {kind!r} is not one of {', '.join(_KINDS)}")
        specs.append(ParamSpec(param=param, label=label, kind=kind))
    return specs


def _matchers(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must map label names to a value or a list of values")
    out: dict[str, tuple[str, ...]] = {}
    for name, value in raw.items():
        values = value if isinstance(value, list) else [value]
        out[str(name)] = tuple(str(v) for v in values)
    return out


def _regex_matchers(raw: Any, where: str) -> dict[str, re.Pattern[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must map label names to regular expressions")
    out: dict[str, re.Pattern[str]] = {}
    for name, pattern in raw.items():
        try:
            out[str(name)] = re.compile(str(pattern))
        except re.error as exc:
            raise ConfigError(f"{where}.{name}: {pattern!r} is not a valid regular expression: {exc}") from exc
    return out


def known_bundles(path: Path | None = None) -> set[str] | None:
    """Bundle names from ``parameters/bundles.yaml``, or None when that file does not exist yet."""
    path = path or parameters_dir() / "bundles.yaml"
    if not path.exists():
        return None
    data = read_yaml(path) or {}
    if isinstance(data, dict) and isinstance(data.get("bundles"), dict):
        data = data["bundles"]
    if not isinstance(data, dict):
        return None
    return {str(name) for name in data}


class Routes:
    """The parsed routes.yaml: routes, severity mapping, and the incident lifecycle settings.

    ``correlate_window_s`` and ``correlate_by``: a new alert group joins the open incident of the
    same ``correlate_by`` label value (the namespace) opened or last fired within the window,
    instead of opening its own (0 turns this off: one incident per Alertmanager group).
    """

    def __init__(self, data: dict[str, Any], *, source: str = "routes.yaml", bundles: set[str] | None = None) -> None:
        self.source = source
        self.bundles = bundles
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise ConfigError(f"{source}: defaults must be a mapping")
        self.default_bundle = str(defaults.get("bundle") or "triage")
        self.default_profile = str(defaults["profile"]) if defaults.get("profile") else None
        sev = data.get("severity") or {}
        if not isinstance(sev, dict):
            raise ConfigError(f"{source}: severity must map severity label values to P0..P3")
        self.severity_map: dict[str, str] = {}
        for key, value in sev.items():
            if str(value) not in SEVERITIES:
                raise ConfigError(f"{source}: severity.{key} is {value!r}; use one of {', '.join(SEVERITIES)}")
            self.severity_map[str(key).lower()] = str(value)
        self.severity_label = str(data.get("severity_label") or "severity")
        self.default_severity = str(data.get("default_severity") or "P2")
        if self.default_severity not in SEVERITIES:
            raise ConfigError(f"{source}: default_severity must be one of {', '.join(SEVERITIES)}")
        self.common_params = _param_specs(data.get("params"), f"{source}: params")
        incidents = data.get("incidents") or {}
        if not isinstance(incidents, dict):
            raise ConfigError(f"{source}: incidents must be a mapping")
        try:
            self.reopen_window_s = float(incidents.get("reopen_window_s", 3600))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: incidents.reopen_window_s must be a number of seconds") from exc
        try:
            self.correlate_window_s = float(incidents.get("correlate_window_s", 900))
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{source}: incidents.correlate_window_s must be a number of seconds (0 turns correlation off)"
            ) from exc
        if self.correlate_window_s < 0:
            raise ConfigError(f"{source}: incidents.correlate_window_s must not be negative (0 turns correlation off)")
        self.correlate_by = str(incidents.get("correlate_by") or "namespace")
        if not _PROM_LABEL.match(self.correlate_by):
            raise ConfigError(f"{source}: incidents.correlate_by must be one alert label name, like namespace")
        on_resolve = incidents.get("on_resolve") or {}
        if not isinstance(on_resolve, dict):
            raise ConfigError(f"{source}: incidents.on_resolve must be a mapping")
        self.resolve_status = str(on_resolve.get("status") or "resolved")
        if self.resolve_status not in ("resolved", "monitoring"):
            raise ConfigError(f"{source}: incidents.on_resolve.status must be 'resolved' or 'monitoring'")
        self.resolve_bundle = str(on_resolve["bundle"]) if on_resolve.get("bundle") else None
        raw_routes = data.get("routes") or []
        if not isinstance(raw_routes, list):
            raise ConfigError(f"{source}: routes must be a list")
        self.routes: list[Route] = []
        for index, raw in enumerate(raw_routes):
            where = f"{source}: routes[{index}]"
            if not isinstance(raw, dict):
                raise ConfigError(f"{where} must be a mapping")
            unknown = set(raw) - {"name", "match", "match_re", "bundle", "bundle_from_label", "params", "profile"}
            if unknown:
                raise ConfigError(f"{where} has unknown keys {sorted(unknown)}")
            bundle = str(raw["bundle"]) if raw.get("bundle") else None
            self._check_bundle(bundle, where)
            self.routes.append(
                Route(
                    name=str(raw.get("name") or f"route-{index}"),
                    match=_matchers(raw.get("match"), f"{where}.match"),
                    match_re=_regex_matchers(raw.get("match_re"), f"{where}.match_re"),
                    bundle=bundle,
                    bundle_from_label=str(raw["bundle_from_label"]) if raw.get("bundle_from_label") else None,
                    params=tuple(_param_specs(raw.get("params"), f"{where}.params")),
                    profile=str(raw["profile"]) if raw.get("profile") else None,
                )
            )

        self._check_bundle(self.default_bundle, f"{source}: defaults.bundle")
        self._check_bundle(self.resolve_bundle, f"{source}: incidents.on_resolve.bundle")

    def _check_bundle(self, name: str | None, where: str) -> None:
        if name and self.bundles is not None and name not in self.bundles:
            known = ", ".join(sorted(self.bundles))
            raise ConfigError(f"{where}: bundle {name!r} is not in bundles.yaml ({known}); fix the name")

    @classmethod
    def load(cls, path: Path | str | None = None) -> Routes:
        """Read routes.yaml (default ``parameters/routes.yaml``); a missing file means: run triage."""
        path = Path(path) if path else parameters_dir() / "routes.yaml"
        bundles = known_bundles(path.parent / "bundles.yaml")
        if not path.exists():
            return cls({}, source=str(path), bundles=bundles)
        data = read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping at the top level")
        return cls(data, source=str(path), bundles=bundles)

    def severity(self, labels: dict[str, str]) -> str:
        """The incident severity (P0..P3) for an alert's labels."""
        value = labels.get(self.severity_label, "")
        if value.upper() in SEVERITIES:
            return value.upper()
        return self.severity_map.get(value.lower(), self.default_severity)

    def _bundle_ok(self, name: str) -> bool:
        if not _BUNDLE_NAME.match(name):
            return False
        return self.bundles is None or name in self.bundles

    def plan(self, labels: dict[str, str]) -> RunPlan:
        """Pick the route for ``labels`` and build the run, refusing values that fail their check."""
        notes: list[str] = []
        route: Route | None = None
        bundle = self.default_bundle
        for candidate in self.routes:
            if not candidate.matches(labels):
                continue
            if candidate.bundle_from_label and candidate.bundle_from_label in labels:
                wanted = labels[candidate.bundle_from_label]
                if self._bundle_ok(wanted):
                    route, bundle = candidate, wanted
                    break
                notes.append(f"label {candidate.bundle_from_label}={wanted[:80]!r} names no bundle of bundles.yaml")
                if not candidate.bundle:
                    continue  # let a later route (or the default) pick the bundle
            route, bundle = candidate, candidate.bundle or self.default_bundle
            break
        specs = {s.param: s for s in self.common_params}
        for spec in route.params if route else ():
            specs[spec.param] = spec
        params: dict[str, str] = {}
        refusal: str | None = None
        for spec in specs.values():
            if spec.label not in labels:
                continue
            value = labels[spec.label]
            problem = check_value(spec.kind, value)
            if problem:
                refusal = (
                    f"label {spec.label}={value[:120]!r} {problem}; it would become notebook parameter "
                    f"{spec.param!r}, so nothing was run. Fix the alert rule's labels."
                )
                break
            params[spec.param] = value
        return RunPlan(
            route=route.name if route else "default",
            bundle=bundle,
            params=params,
            profile=(route.profile if route else None) or self.default_profile,
            refusal=refusal,
            notes=tuple(notes),
        )

"""HTTP health endpoints of dependencies: the seed's ``curl -I https://external-api.../health``.

Endpoints come from the profile (``dependencies.http``: name, ``url_env`` or ``url``, ``path``).
A 2xx/3xx answer is ``up``; anything else, or no answer within the timeout, is ``down`` with
the reason. The Evidence itself is ``ok`` when every endpoint could be *asked*; the rows say
which are down, so a dead dependency is data, not a broken notebook.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import requests

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, env_secret, resolve_profile
from vcci_nb.evidence import Evidence
from vcci_nb.redact import redact, redact_url
from vcci_nb.sources._core import CAUSE_NAMES, classify, collect, not_configured

SOURCE = "http"


def endpoints(profile: ProfileLike = None) -> list[dict[str, str]]:
    """The profile's health endpoints as ``{name, url}`` (those whose variable is unset get url "")."""
    out = []
    for dep in resolve_profile(profile).get("dependencies.http") or []:
        base = dep.get("url") or (env_secret(str(dep["url_env"])) if dep.get("url_env") else None) or ""
        path = str(dep.get("path") or "")
        url = (base.rstrip("/") + path) if base else ""
        out.append({"name": str(dep.get("name") or base), "url": url, "url_env": str(dep.get("url_env") or "")})
    return out


def check_url(url: str, timeout: float) -> dict[str, Any]:
    """GET one URL: status code, latency, and ``up`` (2xx/3xx) or the reason it is down."""
    started = time.perf_counter()
    try:
        resp = requests.get(url, timeout=(timeout, timeout), allow_redirects=False)
    except Exception as exc:
        failure = classify(exc)
        return {
            "up": False,
            "status_code": None,
            "latency_ms": (time.perf_counter() - started) * 1000,
            "result": failure.status,
            "detail": f"{CAUSE_NAMES.get(failure.cause, failure.cause)}: {failure.detail}",
        }
    return {
        "up": resp.status_code < 400,
        "status_code": resp.status_code,
        "latency_ms": (time.perf_counter() - started) * 1000,
        "result": "ok" if resp.status_code < 400 else f"http {resp.status_code}",
        "detail": redact(resp.text[:200]) if resp.status_code >= 400 else "",
    }


def gather_health(
    profile: ProfileLike = None,
    *,
    urls: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Evidence:
    """Ask every health endpoint at once: ``name, url, up, status_code, latency_ms, result, detail``."""
    targets = [{"name": k, "url": v, "url_env": ""} for k, v in urls.items()] if urls else endpoints(profile)

    def fetch() -> pd.DataFrame:
        def one(t: dict[str, str]) -> dict[str, Any]:
            if not t["url"]:
                why = f"{t['url_env']} is not set" if t["url_env"] else "no URL configured"
                return {"name": t["name"], "url": "", "up": False, "status_code": None, "latency_ms": None,
                        "result": "unavailable", "detail": why}  # fmt: skip
            return {"name": t["name"], "url": redact_url(t["url"]), **check_url(t["url"], timeout)}

        with ThreadPoolExecutor(max_workers=max(len(targets), 1)) as pool:
            rows = list(pool.map(one, targets))
        cols = ["name", "url", "up", "status_code", "latency_ms", "result", "detail"]
        return pd.DataFrame(rows, columns=cols)

    query = "; ".join(f"curl -I {redact_url(t['url']) or '$' + t['url_env']}" for t in targets)
    return collect("http.health", SOURCE, query, fetch, timeout=timeout, meta={"endpoints": len(targets)})


SMOKE_COLUMNS = ["name", "method", "url", "up", "status_code", "latency_ms", "result", "detail"]


def _expect_ok(check: dict[str, Any], resp: requests.Response) -> tuple[bool, str]:
    want = int(check.get("expect_status") or 200)
    if resp.status_code != want:
        return False, f"HTTP {resp.status_code}, expected {want}: {redact(resp.text[:160])}"
    keys = [str(k) for k in check.get("expect_json") or []]
    if keys:
        try:
            body = resp.json()
        except ValueError:
            return False, "the answer is not JSON"
        missing = [k for k in keys if not isinstance(body, dict) or k not in body]
        if missing:
            return False, f"JSON without {', '.join(missing)}"
    return True, ""


def gather_smoke(profile: ProfileLike = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Evidence:
    """The seed's ``smoke-tests.sh`` against the API itself: each check of the profile's ``smoke:``.

    ``smoke.base_url_env`` names the API's base URL, ``smoke.token_env`` a read-only API token (sent
    as ``Authorization: Bearer``; registered as a secret, never shown). Each check has ``name``,
    ``path``, ``method`` (GET), ``auth`` (send the token), ``json`` (a body), ``expect_status``
    (200) and ``expect_json`` (keys the answer must have): typically health, an authenticated read
    and a calculation. A row per check: ``up`` when it answered as expected.
    """
    from vcci_nb.redact import register_secret

    prof = resolve_profile(profile)
    conf = prof.get("smoke") or {}
    checks = list(conf.get("checks") or [])
    base = env_secret(str(conf.get("base_url_env") or "")) if conf.get("base_url_env") else conf.get("base_url")
    token = env_secret(str(conf["token_env"])) if conf.get("token_env") else None
    register_secret(token)
    query = "; ".join(f"{c.get('method', 'GET')} {c.get('path')}" for c in checks)
    if not checks:
        return not_configured("http.smoke", SOURCE, "no smoke checks in the profile (smoke.checks)", query=query)
    if not base:
        var = conf.get("base_url_env") or "smoke.base_url"
        return not_configured("http.smoke", SOURCE, f"{var} is not set: the API's base URL", query=query)

    def fetch() -> pd.DataFrame:
        rows = []
        for c in checks:
            url = str(base).rstrip("/") + str(c.get("path") or "/")
            method = str(c.get("method") or "GET").upper()
            headers = {"Accept": "application/json"}
            if c.get("auth"):
                if not token:
                    rows.append({"name": c.get("name"), "method": method, "url": redact_url(url), "up": False,
                                 "status_code": None, "latency_ms": None, "result": "unavailable",
                                 "detail": f"{conf.get('token_env') or 'smoke.token_env'} is not set"})  # fmt: skip
                    continue
                headers["Authorization"] = f"Bearer {token}"
            started = time.perf_counter()
            try:
                resp = requests.request(
                    method, url, headers=headers, json=c.get("json"), timeout=(timeout, timeout), allow_redirects=False
                )
            except Exception as exc:
                failure = classify(exc)
                cause = CAUSE_NAMES.get(failure.cause, failure.cause)
                rows.append({"name": c.get("name"), "method": method, "url": redact_url(url), "up": False,
                             "status_code": None, "latency_ms": (time.perf_counter() - started) * 1000,
                             "result": failure.status, "detail": f"{cause}: {failure.detail}"})  # fmt: skip
                continue
            ok, why = _expect_ok(c, resp)
            rows.append({"name": c.get("name"), "method": method, "url": redact_url(url), "up": ok,
                         "status_code": resp.status_code, "latency_ms": (time.perf_counter() - started) * 1000,
                         "result": "ok" if ok else "failed", "detail": why})  # fmt: skip
        return pd.DataFrame(rows, columns=SMOKE_COLUMNS)

    budget = timeout * max(len(checks), 1)
    return collect("http.smoke", SOURCE, query, fetch, timeout=budget, meta={"checks": len(checks)})

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
from vcci_nb.sources._core import CAUSE_NAMES, classify, collect

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

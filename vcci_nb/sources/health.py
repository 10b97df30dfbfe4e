"""Is every source reachable from here? The seed's ``quick-health-check.sh``, concurrently.

Each source gets one cheap question (PING, ``SELECT 1``, ``/-/ready``, a one-item pod list...)
in its own daemon thread; after ``deadline`` seconds whatever has not answered is reported as
``timeout``. A hung server therefore costs the deadline, never more, and one source never
waits for another.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import requests

from vcci_nb.config import DEFAULT_TIMEOUT_S, ProfileLike, aws_settings, resolve_profile, service_url
from vcci_nb.evidence import Evidence, utcnow
from vcci_nb.redact import redact, redact_url
from vcci_nb.sources import kube, postgres, rabbitmq, redis, s3
from vcci_nb.sources._core import collect, not_configured

SOURCE = "health"

#: Evidence status -> what ``vcci-nb check`` prints.
REACHABILITY = {
    "ok": "reachable",
    "unavailable": "unreachable",
    "forbidden": "forbidden",
    "timeout": "timeout",
    "error": "error",
}


def _http_ready(profile: ProfileLike, name: str, path: str, timeout: float) -> Evidence:
    url = service_url(profile, name)
    if not url:
        return not_configured(f"{name}.ready", name, f"{name.upper()}_URL is not set", query=f"GET {path}")
    base = url.rstrip("/")

    def fetch() -> pd.DataFrame:
        resp = requests.get(f"{base}{path}", timeout=(timeout, timeout))
        resp.raise_for_status()
        return pd.DataFrame([{"status_code": resp.status_code}])

    return collect(
        f"{name}.ready", name, f"GET {redact_url(base)}{path}", fetch, timeout=timeout, target=redact_url(base)
    )


#: Variables through which boto3 finds credentials without asking an instance's metadata service.
_AWS_CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def _s3_ready(profile: ProfileLike, timeout: float) -> Evidence:
    """List a few keys of the profile's bucket (``dependencies.s3``) with its AWS identity.

    Not configured when the profile names no bucket, or when this environment names no AWS
    credentials (the profile's variables, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, a web identity or
    container credentials, or ``~/.aws/credentials``): ``check`` never asks an instance metadata
    service, which on a laptop costs the whole deadline and leaves this machine for nothing.
    """
    prof = resolve_profile(profile)
    bucket = str(prof.get("dependencies.s3.bucket") or "")
    if not bucket:
        return not_configured("s3.bucket", "s3", "the profile names no bucket (dependencies.s3.bucket)")
    call = f"aws s3 ls s3://{bucket}/"
    settings = aws_settings(prof)
    named = settings.access_key_id or settings.profile_name or any(os.environ.get(v) for v in _AWS_CREDENTIAL_ENV)
    shared = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    if not named and not shared.is_file():
        return not_configured(
            "s3.bucket",
            "s3",
            "no AWS credentials in this environment (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or the variables connections.aws names); an instance role is not probed",
            query=call,
        )
    return s3.gather_bucket(prof, timeout=timeout)


def checks(profile: ProfileLike = None) -> dict[str, Callable[[float], Evidence]]:
    """The one cheap question per source, by source name."""
    prof = resolve_profile(profile)
    out: dict[str, Callable[[float], Evidence]] = {
        "kubernetes": lambda t: kube.gather_version(prof, timeout=t),
        "postgres": lambda t: postgres.gather_ping(prof, timeout=t),
        "redis": lambda t: redis.gather_ping(prof, samples=1, timeout=t),
        "prometheus": lambda t: _http_ready(prof, "prometheus", "/-/ready", t),
        "alertmanager": lambda t: _http_ready(prof, "alertmanager", "/-/ready", t),
        "rabbitmq": lambda t: rabbitmq.gather_overview(prof, timeout=t),
        "s3": lambda t: _s3_ready(prof, t),
    }
    from vcci_nb.sources import http

    for ep in http.endpoints(prof):
        url = ep["url"]
        name = ep["name"]

        def one(t: float, url: str = url, name: str = name, env: str = ep["url_env"]) -> Evidence:
            if not url:
                return not_configured(f"http.{name}", "http", f"{env or 'its URL'} is not set")
            return _check_http(name, url, t)

        out[name] = one
    return out


def _check_http(name: str, url: str, timeout: float) -> Evidence:
    def fetch() -> pd.DataFrame:
        resp = requests.get(url, timeout=(timeout, timeout), allow_redirects=False)
        resp.raise_for_status()
        return pd.DataFrame([{"status_code": resp.status_code}])

    return collect(f"http.{name}", "http", f"GET {redact_url(url)}", fetch, timeout=timeout, target=redact_url(url))


def reachability(
    profile: ProfileLike = None,
    *,
    timeout: float = 2.0,
    deadline: float = 3.0,
    only: list[str] | None = None,
) -> pd.DataFrame:
    """Ask every source at once; ``source, status, latency_ms, detail`` within ``deadline`` seconds."""
    todo = checks(profile)
    if only:
        todo = {k: v for k, v in todo.items() if k in only}
    results: dict[str, Evidence] = {}
    lock = threading.Lock()
    started = time.perf_counter()

    def run(name: str, fn: Callable[[float], Evidence]) -> None:
        try:
            ev = fn(timeout)
        except Exception as exc:  # a bug in one check must not hide the others
            ev = Evidence(
                name=name, source=name, query="", status="error", message=redact(f"{type(exc).__name__}: {exc}")
            )
        with lock:
            results[name] = ev

    threads = [threading.Thread(target=run, args=(n, f), daemon=True, name=f"check-{n}") for n, f in todo.items()]
    for t in threads:
        t.start()
    end = started + deadline
    for t in threads:
        t.join(max(0.0, end - time.perf_counter()))
    rows = []
    with lock:
        for name in todo:
            ev = results.get(name)
            if ev is None:
                rows.append({"source": name, "status": "timeout", "latency_ms": deadline * 1000,
                             "detail": f"no answer within {deadline:g} s"})  # fmt: skip
                continue
            status = REACHABILITY[ev.status]
            if ev.status == "unavailable" and "not configured" in ev.message:
                status = "not configured"
            rows.append({"source": name, "status": status, "latency_ms": round(ev.elapsed_s * 1000, 1),
                         "detail": "" if ev.ok else ev.message[:240]})  # fmt: skip
    return pd.DataFrame(rows, columns=["source", "status", "latency_ms", "detail"])


def gather_reachability(
    profile: ProfileLike = None, *, timeout: float = 2.0, deadline: float = DEFAULT_TIMEOUT_S - 1
) -> Evidence:
    """:func:`reachability` as Evidence (``health.reachability``), for the triage notebook."""
    at = utcnow()
    t0 = time.perf_counter()
    frame = reachability(profile, timeout=timeout, deadline=deadline)
    return Evidence(
        name="health.reachability",
        source=SOURCE,
        query="one cheap question per source, concurrently (vcci-nb check)",
        frame=frame,
        collected_at=at,
        elapsed_s=time.perf_counter() - t0,
        meta={"kind": "health.reachability", "deadline_s": deadline},
    )

"""A small Kubernetes REST transport for actions: raw JSON in and out, dry runs, patches, exec.

Why not the generated ``kubernetes`` API classes: actions need exactly a few verbs with
``dryRun=All``, three patch content types and the exec WebSocket, on plain dicts so that a plan
can diff them. The kubeconfig is still read by the ``kubernetes`` package (contexts, tokens,
certificates, exec plugins), without touching its global configuration.
"""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from vcci_nb.errors import ActionRefused, ConfigError, VcciNbError
from vcci_nb.redact import redact, register_secret

log = logging.getLogger(__name__)

JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class KubeApiError(VcciNbError):
    """The Kubernetes API answered with an error (other than 403/404, which become refusals)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class KubeClient:
    """One kubeconfig context, spoken to over HTTPS with requests."""

    def __init__(self, kubeconfig: str, context: str | None, *, timeout_s: float = 15.0) -> None:
        from kubernetes import client as kclient
        from kubernetes import config as kconfig

        cfg = kclient.Configuration()
        try:
            kconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False
            )
            contexts, active = kconfig.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ConfigError(
                f"cannot load context {context!r} from the kubeconfig {kubeconfig}: {redact(str(exc))}. "
                "Check `kubectl config get-contexts`."
            ) from exc
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        self.context = str(chosen["name"]) if chosen else (context or "?")
        self.user = str((chosen or {}).get("context", {}).get("user", "?"))
        self.host = str(cfg.host).rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        token = cfg.get_api_key_with_prefix("authorization") or cfg.get_api_key_with_prefix("BearerToken")
        if token:
            register_secret(token.split(" ", 1)[-1])
            self.session.headers["Authorization"] = token
        if cfg.username and cfg.password:
            register_secret(cfg.password)
            self.session.auth = (cfg.username, cfg.password)
        if cfg.cert_file and cfg.key_file:
            self.session.cert = (cfg.cert_file, cfg.key_file)
        self.verify: bool | str = cfg.ssl_ca_cert or bool(cfg.verify_ssl)
        self.session.verify = self.verify
        self._cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None

    @property
    def identity(self) -> str:
        return f"kubernetes:{self.context} (user {self.user})"

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSON:
        url = self.host + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        data = json.dumps(body) if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        try:
            # verify= on every request: a session-level value loses to REQUESTS_CA_BUNDLE in requests.
            resp = self.session.request(
                method, url, params=params, data=data, headers=headers, timeout=self.timeout_s, verify=self.verify
            )
        except requests.RequestException as exc:
            raise KubeApiError(
                f"Kubernetes API at {self.host} did not answer {method} {path}: {redact(str(exc))}. "
                "Check the cluster is reachable (kubectl get --raw /readyz).",
                0,
            ) from exc
        if resp.status_code >= 400:
            try:
                status = resp.json()
                message = str(status.get("message") or status.get("reason") or resp.reason)
            except ValueError:
                message = resp.text[:300] or resp.reason
            message = redact(message)
            what = f"{method} {path}" + ("?" + urlencode(params) if params else "")
            if resp.status_code in (401, 403):
                raise ActionRefused(
                    f"Kubernetes refused {what} for {self.identity}: {message} (HTTP {resp.status_code}). "
                    "This identity may not make that change; mitigation uses the mitigation context."
                )
            if resp.status_code == 404:
                raise ActionRefused(f"not found: {what} ({message}); check the name and namespace")
            if resp.status_code == 409 or (method == "PATCH" and "test failed" in message):
                raise KubeApiError(
                    f"{what} conflicted: {message}. The object changed since the plan; run the action again "
                    "to re-plan it.",
                    409,
                )
            raise KubeApiError(f"Kubernetes answered {resp.status_code} to {what}: {message}", resp.status_code)
        if not resp.content:
            return {}
        try:
            out: JSON = resp.json()
        except ValueError as exc:
            raise KubeApiError(f"Kubernetes answered {method} {path} with something that is not JSON", 0) from exc
        return out

    def get(self, path: str, **query: Any) -> JSON:
        return self.request("GET", path, query=query)

    def patch(self, path: str, body: Any, *, patch_type: str = MERGE_PATCH, dry_run: bool = False) -> JSON:
        return self.request(
            "PATCH",
            path,
            query={"dryRun": "All" if dry_run else None, "fieldManager": "vcci-nb"},
            body=body,
            content_type=patch_type,
        )

    def delete(self, path: str, *, dry_run: bool = False, body: Any = None) -> JSON:
        return self.request("DELETE", path, query={"dryRun": "All" if dry_run else None}, body=body)

    def exec(
        self, namespace: str, pod: str, command: list[str], *, container: str | None = None, timeout_s: float = 60.0
    ) -> tuple[int, str, str]:
        """Run ``command`` in a pod over the exec WebSocket (``v4.channel.k8s.io``); (rc, stdout, stderr)."""
        import websocket

        query: list[tuple[str, str]] = [("command", c) for c in command]
        query += [("stdout", "true"), ("stderr", "true")]
        if container:
            query.append(("container", container))
        parts = urlsplit(self.host)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}{parts.path}/api/v1/namespaces/{namespace}/pods/{pod}/exec?{urlencode(query)}"
        headers = []
        auth = self.session.headers.get("Authorization")
        if auth:
            headers.append("Authorization: " + (auth.decode() if isinstance(auth, bytes) else str(auth)))
        sslopt: dict[str, Any] = {}
        if scheme == "wss":
            if self.verify is False:
                sslopt["cert_reqs"] = ssl.CERT_NONE
            elif isinstance(self.verify, str):
                sslopt["ca_certs"] = self.verify
            if self._cert:
                sslopt["certfile"], sslopt["keyfile"] = self._cert
        try:
            ws = websocket.create_connection(
                url,
                header=headers,
                subprotocols=["v4.channel.k8s.io"],
                timeout=timeout_s,
                sslopt=sslopt,
            )
        except websocket.WebSocketBadStatusException as exc:
            code = int(getattr(exc, "status_code", 0) or 0)
            if code in (401, 403):
                raise ActionRefused(
                    f"Kubernetes refused exec in {namespace}/{pod} for {self.identity} (HTTP {code})"
                ) from exc
            raise KubeApiError(f"exec in {namespace}/{pod} failed: HTTP {code}", code) from exc
        except (OSError, websocket.WebSocketException) as exc:
            raise KubeApiError(f"exec in {namespace}/{pod} failed: {redact(str(exc))}", 0) from exc
        out: list[bytes] = []
        err: list[bytes] = []
        status: JSON = {}
        try:
            while True:
                try:
                    frame = ws.recv()
                except websocket.WebSocketConnectionClosedException:
                    break
                if not frame:
                    break
                data = frame.encode() if isinstance(frame, str) else bytes(frame)
                channel, payload = data[0], data[1:]
                if channel == 1:
                    out.append(payload)
                elif channel == 2:
                    err.append(payload)
                elif channel == 3:
                    try:
                        status = json.loads(payload or b"{}")
                    except ValueError:
                        status = {"status": "Failure", "message": payload.decode(errors="replace")}
        finally:
            ws.close()
        rc = 0
        if status.get("status") == "Failure":
            rc = 1
            for cause in (status.get("details") or {}).get("causes") or []:
                if cause.get("reason") == "ExitCode":
                    rc = int(cause.get("message") or 1)
        return rc, b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace")

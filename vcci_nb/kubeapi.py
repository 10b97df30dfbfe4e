"""One Kubernetes API client: the sources' reads and the actions' changes, raw JSON in and out.

Why not the generated ``kubernetes`` API classes: reads want raw JSON (5,000 pods parsed as plain
dicts in a fraction of a second, not model objects in several seconds), and actions need exactly
a few verbs with ``dryRun=All``, three patch content types and the exec WebSocket, on plain dicts
so that a plan can diff them. The kubeconfig is still read by the ``kubernetes`` package
(contexts, tokens, certificates, exec plugins), without touching its global configuration.

The identity is chosen by argument, never by accident: :meth:`KubeClient.connect` with
``mitigation=False`` speaks as the read-only diagnostics identity (``connections.kubernetes``
of the profile), with ``mitigation=True`` as the on-call identity
(``connections.kubernetes_mitigation``). Where the credentials come from is decided in one
place, :func:`vcci_nb.config.kube_settings`: the kubeconfig the profile names (``KUBECONFIG``),
else ``~/.kube/config``, else the pod's service account when running in a cluster.

Errors: the API's refusals of a change (401/403, and 404 for a target that is not there) are
:class:`~vcci_nb.errors.ActionRefused` for the mitigation identity; every other error status is
one :class:`KubeApiError` with the HTTP ``status`` (0 when the server did not answer).
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from vcci_nb.config import KubeSettings, ProfileLike, kube_settings
from vcci_nb.errors import ActionRefused, ConfigError, KubeApiError
from vcci_nb.policy import DNS1123_LABEL as DNS1123_LABEL
from vcci_nb.policy import DNS1123_SUBDOMAIN as DNS1123_SUBDOMAIN
from vcci_nb.policy import is_dns1123_label as is_dns1123_label
from vcci_nb.policy import is_dns1123_subdomain as is_dns1123_subdomain
from vcci_nb.redact import redact, register_secret

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

__all__ = [
    "JSON",
    "JSON_PATCH",
    "MERGE_PATCH",
    "STRATEGIC_PATCH",
    "KubeApiError",
    "KubeClient",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "parse_quantity",
    "quantity",
]

JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


# --------------------------------------------------------------------------------------------
# Names and quantities (one grammar each)

# The DNS-1123 grammar is vcci_nb.policy's (config, below this client, checks profiles with it too);
# re-exported here, where the sources and actions have always found it.


_QUANTITY = re.compile(r"^([+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)([a-zA-Z]*)$")
_SUFFIX: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity (``500m``, ``8Gi``, ``1234n``) exactly; ValueError if it is not one."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return Decimal(str(text))
    m = _QUANTITY.match(str(text).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 2, 500m, 8Gi)")
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2)]
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 2, 500m, 8Gi)") from exc


def parse_quantity(value: str | int | float | None) -> float:
    """A quantity as a plain float for tables; NaN when absent or unreadable."""
    if value is None or value == "":
        return float("nan")
    try:
        return float(quantity(value))
    except ValueError:
        return float("nan")


# --------------------------------------------------------------------------------------------
# The client

_READ_HINTS = {
    401: "the token in the kubeconfig was not accepted",
    403: "the identity in the kubeconfig may not read this (it needs the view role)",
    404: "it does not exist: check the namespace and names in the profile",
}


class KubeClient:
    """One identity (a kubeconfig context, or the pod's service account), spoken to with requests.

    ``KubeClient(kubeconfig, context)`` is the mitigation identity of that context (what the
    actions and their tests use); :meth:`connect` resolves a profile's read-only or on-call identity.
    """

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        settings: KubeSettings | None = None,
        mitigation: bool = True,
        timeout_s: float = 15.0,
    ) -> None:
        import requests  # here, not at import: the name and quantity helpers are used where requests is not

        settings = settings or KubeSettings(kubeconfig=kubeconfig, context=context)
        self.settings = settings
        self.mitigation = mitigation
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self._cert: tuple[str, str] | None = None
        if settings.kubeconfig:
            self._from_kubeconfig(settings.kubeconfig, settings.context)
        elif settings.server:
            self._from_service_account(settings)
        else:
            raise ConfigError(
                "no Kubernetes credentials: KUBECONFIG is not set, ~/.kube/config does not exist and this is not "
                'running in a cluster (no service account). Set KUBECONFIG (in the lab: eval "$(vcci-nb lab env)").'
            )
        self.session.verify = self.verify

    @classmethod
    def connect(
        cls,
        profile: ProfileLike = None,
        *,
        mitigation: bool = False,
        kubeconfig: str | None = None,
        context: str | None = None,
        timeout_s: float = 15.0,
    ) -> KubeClient:
        """The profile's read-only identity, or with ``mitigation=True`` its on-call identity."""
        settings = kube_settings(profile, mitigation=mitigation, kubeconfig=kubeconfig, context=context)
        return cls(settings=settings, mitigation=mitigation, timeout_s=timeout_s)

    def _from_kubeconfig(self, kubeconfig: str, context: str | None) -> None:
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
        token = cfg.get_api_key_with_prefix("authorization") or cfg.get_api_key_with_prefix("BearerToken")
        if token:
            register_secret(token.split(" ", 1)[-1])
            self.session.headers["Authorization"] = token
        if cfg.username and cfg.password:
            register_secret(cfg.password)
            self.session.auth = (cfg.username, cfg.password)
        if cfg.cert_file and cfg.key_file:
            self._cert = (cfg.cert_file, cfg.key_file)
            self.session.cert = self._cert
        self.verify: bool | str = cfg.ssl_ca_cert or bool(cfg.verify_ssl)

    def _from_service_account(self, settings: KubeSettings) -> None:
        self.context = "in-cluster"
        self.user = "serviceaccount"
        self.host = str(settings.server).rstrip("/")
        try:
            token = open(str(settings.token_file)).read().strip()  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(
                f"cannot read the service account token {settings.token_file}: {exc.strerror}. "
                "Mount the pod's service account, or set KUBECONFIG."
            ) from exc
        register_secret(token)
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.verify = str(settings.ca_file) if settings.ca_file else True

    @property
    def identity(self) -> str:
        return f"kubernetes:{self.context} (user {self.user})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def raw(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout_s: float | None = None,
    ) -> bytes:
        """One request; the body as bytes. Error statuses raise (see the module doc)."""
        import requests

        url = self.host + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        data = json.dumps(body) if body is not None else None
        headers = {"Accept": accept}
        if data is not None:
            headers["Content-Type"] = content_type
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            # verify= on every request: a session-level value loses to REQUESTS_CA_BUNDLE in requests.
            resp = self.session.request(
                method, url, params=params, data=data, headers=headers, timeout=timeout, verify=self.verify
            )
        except requests.RequestException as exc:
            raise KubeApiError(
                f"Kubernetes API at {self.host} did not answer {method} {path}: {redact(str(exc))}. "
                "Check the cluster is reachable (kubectl get --raw /readyz).",
                0,
            ) from exc
        if resp.status_code >= 400:
            self._raise(resp, method, path, params)
        return resp.content or b""

    def _raise(self, resp: requests.Response, method: str, path: str, params: dict[str, Any]) -> None:
        try:
            status = resp.json()
            message = str(status.get("message") or status.get("reason") or resp.reason)
        except (ValueError, AttributeError):
            message = resp.text[:300] or str(resp.reason or "")
        message = redact(message)
        code = resp.status_code
        if not self.mitigation:
            hint = _READ_HINTS.get(code, "")
            raise KubeApiError(f"{method} {path} answered {code}: {message}" + (f" ({hint})" if hint else ""), code)
        what = f"{method} {path}" + ("?" + urlencode(params) if params else "")
        if code in (401, 403):
            raise ActionRefused(
                f"Kubernetes refused {what} for {self.identity}: {message} (HTTP {code}). "
                "This identity may not make that change; mitigation uses the mitigation context."
            )
        if code == 404:
            raise ActionRefused(f"not found: {what} ({message}); check the name and namespace")
        if code == 409 or (method == "PATCH" and "test failed" in message):
            raise KubeApiError(
                f"{what} conflicted: {message}. The object changed since the plan; run the action again to re-plan it.",
                409,
            )
        raise KubeApiError(f"Kubernetes answered {code} to {what}: {message}", code)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout_s: float | None = None,
    ) -> JSON:
        """One request; the JSON body as a dict (``{}`` for an empty body)."""
        content = self.raw(method, path, query=query, body=body, content_type=content_type, timeout_s=timeout_s)
        if not content:
            return {}
        try:
            out: JSON = json.loads(content)
        except ValueError as exc:
            raise KubeApiError(f"Kubernetes answered {method} {path} with something that is not JSON", 0) from exc
        return out

    def get(self, path: str, *, timeout_s: float | None = None, **query: Any) -> JSON:
        return self.request("GET", path, query=query, timeout_s=timeout_s)

    def get_text(self, path: str, *, timeout_s: float | None = None, **query: Any) -> str:
        """A text body (container logs)."""
        data = self.raw("GET", path, query=query, accept="text/plain, */*", timeout_s=timeout_s)
        return data.decode("utf-8", "replace")

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


def official_client(settings: KubeSettings) -> Any:
    """A ``kubernetes.client.ApiClient`` (the official client) for the same credentials as :class:`KubeClient`.

    serve's Job executor creates and watches its Jobs through the official client's ``BatchV1Api``
    and ``watch.Watch`` (a handful of small objects, where typed models cost nothing and the
    client's watch handling is the reference); the credentials are still resolved in one place,
    :func:`vcci_nb.config.kube_settings`.
    """
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    if settings.kubeconfig:
        try:
            api: Any = kconfig.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=settings.kubeconfig, context=settings.context, persist_config=False
            )
        except Exception as exc:
            raise ConfigError(
                f"cannot load context {settings.context!r} from the kubeconfig {settings.kubeconfig}: "
                f"{redact(str(exc))}. Check `kubectl config get-contexts`."
            ) from exc
        token = api.configuration.get_api_key_with_prefix("authorization") or ""
        register_secret(token.split(" ", 1)[-1] if token else None)
        return api
    if not settings.server:
        raise ConfigError(
            "no Kubernetes credentials for the Job executor: set KUBECONFIG (and connections.kubernetes_jobs in the "
            "profile), or run serve in the cluster with its service account"
        )
    cfg = kclient.Configuration()
    cfg.host = settings.server
    try:
        token = open(str(settings.token_file)).read().strip()  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"cannot read the service account token {settings.token_file}: {exc.strerror}") from exc
    register_secret(token)
    cfg.api_key = {"authorization": f"Bearer {token}"}
    if settings.ca_file:
        cfg.ssl_ca_cert = str(settings.ca_file)
    return kclient.ApiClient(cfg)

# ruff: noqa: E501  (openssl command lines)
"""TLS for the emulator, because kubectl only sends a kubeconfig's token to an ``https://`` server.

client-go's clientcmd applies user credentials (tokens, client certificates) only when the cluster
URL is ``https``; against ``http://`` kubectl silently sends no ``Authorization`` header. The emulator
therefore makes a small CA and a server certificate for 127.0.0.1 with the ``openssl`` command
(no Python dependency), serves TLS and plain HTTP on the same port (it peeks at the first byte of
each connection: 0x16 opens a TLS handshake), and publishes the CA at ``GET /_lab/ca.crt`` so that
:func:`write_kubeconfig` can embed it.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_EXT = """subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment
basicConstraints=CA:FALSE
"""


def ensure_certs(directory: Path) -> tuple[Path, Path, Path] | None:
    """Create (once) ``ca.crt``, ``tls.crt`` and ``tls.key`` in ``directory``; None without openssl."""
    ca, crt, key = directory / "ca.crt", directory / "tls.crt", directory / "tls.key"
    if ca.exists() and crt.exists() and key.exists():
        return ca, crt, key
    openssl = shutil.which("openssl")
    if openssl is None:
        log.warning("openssl is not installed: the emulator serves plain HTTP only, and kubectl will not send tokens")
        return None
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    ext = directory / "tls.ext"
    ext.write_text(_EXT)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        [openssl, "req", "-x509", "-new", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "3650",
         "-subj", "/CN=vcci-lab-kube-ca", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"],
        [openssl, "req", "-new", *ec, "-keyout", str(key), "-out", str(directory / "tls.csr"), "-subj", "/CN=kube-apiserver"],
        [openssl, "x509", "-req", "-in", str(directory / "tls.csr"), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", "825", "-extfile", str(ext)],
    ]  # fmt: skip
    for cmd in steps:
        cp = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if cp.returncode != 0:
            log.warning("openssl failed (%s); serving plain HTTP only", cp.stderr.strip()[:300])
            return None
    for p in (key, ca_key):
        p.chmod(0o600)
    return ca, crt, key


def server_context(directory: Path | None) -> tuple[ssl.SSLContext, bytes] | None:
    """An SSL context for the server and the CA certificate (PEM) clients should trust."""
    d = directory if directory is not None else Path(tempfile.mkdtemp(prefix="vcci-kube-tls-"))
    made = ensure_certs(d / "tls" if directory is not None else d)
    if made is None:
        return None
    ca, crt, key = made
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(crt), str(key))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx, ca.read_bytes()

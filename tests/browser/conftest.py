"""Browser tests: one JupyterLab server (``vcci-nb jupyter --lab``) and one Chromium for the session.

The server is started exactly as the README tells an engineer to (``vcci-nb jupyter --lab DIR``),
on a free port with a token, with the session's lab and a records folder of its own. Playwright
drives the system Chromium (``/usr/bin/chromium``); no browser is downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.browser._jl import ROOT, SHOTS, JupyterLab

pytestmark = [pytest.mark.lab, pytest.mark.slow]
JUPYTER = [sys.executable, "-m", "vcci_nb", "jupyter"]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NotifyPeers:
    """The Slack incoming webhook (and the other HTTP providers) and the SMTP server the kernels send to."""

    receiver: Any
    smtp: Any
    env: dict[str, str]


@pytest.fixture(scope="session")
def notify_peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotifyPeers]:
    """tests/notify's real protocol peers on 127.0.0.1, started once for the JupyterLab server's kernels."""
    from tests.notify.conftest import CANARY, SLACK_WEBHOOK_PATH, Receiver, _handler_for, _start_smtp

    d = tmp_path_factory.mktemp("notify")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)),
            *("-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    controller, smtp = _start_smtp((cert, key))
    password = d / "smtp-password"
    password.write_text(CANARY["smtp_password"] + "\n")
    env = {
        "VCCI_SLACK_WEBHOOK_URL": receiver.url + SLACK_WEBHOOK_PATH,
        "VCCI_SMTP_HOST": smtp.host,
        "VCCI_SMTP_PORT": str(smtp.port),
        "VCCI_SMTP_USERNAME": "vcci-notify",
        "VCCI_SMTP_CA_FILE": str(smtp.ca_file),
        "VCCI_SMTP_PASSWORD_FILE": str(password),
    }
    try:
        yield NotifyPeers(receiver, smtp, env)
    finally:
        controller.stop()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def jupyterlab(lab: Any, notify_peers: NotifyPeers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    base = tmp_path_factory.mktemp("jupyterlab")
    outputs = base / "outputs"
    outputs.mkdir()
    config = base / "config"
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No "news" and "updates" toasts over the page; every cell in the DOM (no virtual scrolling).
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    tracker = config / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    token = secrets.token_hex(16)
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "JUPYTER_CONFIG_DIR": str(config),
        "VCCI_NB_OUTPUTS": str(outputs),
        "VCCI_NB_ACTOR": "browser-test",
        **notify_peers.env,
    }
    # A copy of the notebooks: JupyterLab saves what the tests type, and the committed ones stay as they are
    # (and their kernels start in a folder that is not the project's: records still land in one place).
    notebooks = base / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    log = base / "jupyterlab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*JUPYTER, "--lab", str(lab.dir), "--notebooks", str(notebooks), "--port", str(port), "--no-browser"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    server = JupyterLab(url, token, outputs, proc, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                server.api("GET", "/api/status")
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield server
    finally:
        with contextlib.suppress(requests.RequestException):
            server.shut_down_kernels()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.fail("no Chromium on PATH: ./dev setup installs the Debian package 'chromium'")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=path,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Any, jupyterlab: JupyterLab, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        if request.node.stash.get(_FAILED, False):  # what the page showed when the test failed
            SHOTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(SHOTS / f"failed-{request.node.name}.png"), full_page=True)
        context.close()
        jupyterlab.shut_down_kernels()

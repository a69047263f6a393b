"""The whole local stack (`hark up`) in a subprocess, driven over HTTP as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from hark.local.emulator import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class LiveStack:
    url: str
    home: Path
    process: subprocess.Popen
    log: Path
    emulator_port: int

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    def token(self, email: str, email_claim: bool = False) -> str:
        """A dev token, by default like Clerk's default session token: no email claim (the notifier asks
        the Backend API for the address); email_claim=True adds one."""
        r = requests.post(f"{self.url}/dev/token", json={"email": email, "email_claim": email_claim}, timeout=10)
        r.raise_for_status()
        return r.json()["token"]

    def api_key(self, token: str, name: str) -> str:
        """A new API key of the token's user (POST /api-keys, as a program's owner would make one)."""
        r = requests.post(
            f"{self.url}/api-keys", json={"name": name}, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert r.status_code == 201, r.text
        return r.json()["key"]

    def env(self) -> dict[str, str]:
        """Environment for a `hark` CLI subprocess that talks to this stack."""
        return {**_clean_env(), "HARK_SERVER": self.url}


def _clean_env() -> dict[str, str]:
    # Settings other tests put in this process's environment must not leak into the stack.
    return {k: v for k, v in os.environ.items() if not k.startswith("HARK_") and not k.startswith("AWS_")}


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory, model_dir):
    home = tmp_path_factory.mktemp("hark-home")
    port, emulator_port = free_port(), free_port()
    log = home / "stack.log"
    env = {
        **_clean_env(),
        "HARK_HOME": str(home),
        "HARK_EMULATOR_PORT": str(emulator_port),
        "HARK_MODEL_DIR": str(model_dir),
        "PYTHONUNBUFFERED": "1",
        # the stack's components record their AWS calls for the session's IAM check (tests/conftest.py)
        "HARK_RECORD_AWS_CALLS": os.environ.get("HARK_RECORD_AWS_CALLS", ""),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hark.client.cli", "up", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as in a terminal: Ctrl-C reaches every process
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        if process.poll() is not None:
            pytest.fail(f"`hark up` exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):  # not listening, or not answering yet
            pass
        if time.time() > deadline:
            process.kill()
            pytest.fail(f"`hark up` did not answer in 90 s:\n{log.read_text()[-4000:]}")
        time.sleep(0.3)
    stack = LiveStack(url=url, home=home, process=process, log=log, emulator_port=emulator_port)
    yield stack
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground process group
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("`hark up` did not stop within 30 s of Ctrl-C")
    said = log.read_text()
    assert "hark: stopped" in said and "restarting" not in said, said[-2000:]  # no worker started again


@pytest.fixture(scope="session")
def live_gateway(live_stack):
    """(base URL, a valid bearer token) for tests that only need the API."""
    return live_stack.url, live_stack.token("schema@example.com")


# -- the browser: Debian's Chromium driven by Playwright (`playwright install` cannot download here) ----
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(extra_args: tuple[str, ...] = ()):
    """A started Playwright and its Chromium: (playwright, browser)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed (`make system-deps` installs it); `playwright install` must not run")
    playwright = sync_playwright().start()
    return playwright, playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


@pytest.fixture(scope="module")
def browser():
    playwright, browser = launch_chromium()
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()

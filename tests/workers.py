"""A worker (`python -m worker.transcription` or `worker.notification`) as a child process of a test,
with its JSON log lines kept on disk to assert on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


class WorkerProcess:
    def __init__(
        self, module: str, log_path: Path, env: dict[str, str], python: Sequence[str] = (sys.executable,), cwd=REPO
    ):
        """`python`: the interpreter and its flags (an image's environment: its venv's python with -I)."""
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [*python, "-m", module], cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def lines(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return out

    def logged(self, message: str) -> list[dict]:
        return [line for line in self.lines() if line.get("message") == message]

    def wait_for(self, message: str, timeout: float = 120) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.logged(message)
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"worker never logged {message!r}:\n{self.log_path.read_text()[-3000:]}")

    def metrics(self) -> list[dict]:
        return [line for line in self.lines() if "_aws" in line]

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL after `timeout`; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class LiveProcess:
    """`python -m worker.live` on `port` or a free one (`python`: as for WorkerProcess), returned once it answers
    (its app's lifespan has started)."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        python: Sequence[str] = (sys.executable,),
        cwd=REPO,
        port: int | None = None,
    ):
        import requests

        from hark.local.emulator import free_port

        port = port or free_port()
        self.url = f"ws://127.0.0.1:{port}"
        self.log_path = log_path
        with open(log_path, "wb") as out:
            self.process = subprocess.Popen(
                [*python, "-m", "worker.live", "--port", str(port)], cwd=cwd, env=env, stdout=out, stderr=out
            )
        while True:  # ready when it answers: a ticket without a credential is refused
            if self.process.poll() is not None:
                pytest.fail(f"worker.live exited with {self.process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.post(f"http://127.0.0.1:{port}/v1/live/tickets", timeout=5).status_code == 401:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait()

"""A Lambda function run from the built asset in its own interpreter, as Lambda runs it.

One long-lived child process per function, like one execution environment: the runtime's Python (the
Lambda's version where this machine has it, else this Python, for which the bundler then builds the asset),
started with `-I -S` and sys.path = the asset, then the Powertools layer's packages, then the runtime's
boto3 (infra/lambda_bundle.py builds both); the function's environment variables and nothing else of this
process's. Invocations go over a pipe, JSON in and out, one at a time (hark.local.lambda_bootstrap). A
child that dies is started afresh at the next invocation, as Lambda replaces a broken environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hark.local.gateway import ACCOUNT
from hark.ops.lambda_runtime import LAMBDA_PYTHON

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
PYENV_ROOT = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


class FunctionError(Exception):
    """The handler raised (or could not be imported): Lambda's function error, with its report."""

    def __init__(self, report: dict):
        self.report = report
        super().__init__(f"{report.get('errorType')}: {report.get('errorMessage')}")


def runtime_python() -> tuple[str, str]:
    """(interpreter, version): the Lambda's Python where this machine has one that runs (a pyenv shim may
    name a version it does not select), else this Python."""
    name = f"python{LAMBDA_PYTHON}"
    candidates = [*sorted(PYENV_ROOT.glob(f"versions/{LAMBDA_PYTHON}.*/bin/{name}")), shutil.which(name)]
    for found in filter(None, candidates):
        if subprocess.run([str(found), "-I", "-S", "-c", ""], capture_output=True).returncode == 0:
            return str(found), LAMBDA_PYTHON
    return sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Runtime:
    """What a function runs on: an interpreter and its sys.path (the asset first)."""

    python: str
    paths: tuple[str, ...]


def build_runtime() -> Runtime:
    """Build the asset with the project's bundler (fast when nothing changed: its stamps) and the layer's
    and runtime's packages, for the runtime's Python."""
    sys.path.insert(0, str(REPO / "infra"))
    try:
        import lambda_bundle  # infra/lambda_bundle.py
    finally:
        sys.path.remove(str(REPO / "infra"))
    python, version = runtime_python()
    return Runtime(python, (str(lambda_bundle.build(version)), str(lambda_bundle.runtime_packages(version))))


class AssetFunction:
    """Call it with an event; it answers what the handler returned, or raises FunctionError."""

    def __init__(
        self,
        runtime: Runtime,
        handler: str,
        name: str,
        environment: dict[str, str],
        *,
        timeout_seconds: float = 29,
        memory_mb: int = 512,
        log: Path | None = None,
    ):
        self.runtime, self.handler, self.name = runtime, handler, name
        self.timeout_seconds, self.memory_mb = timeout_seconds, memory_mb
        region = environment.get("HARK_REGION", "us-east-1")
        # What Lambda sets in every environment beside the function's own variables.
        self.environment = {
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{LAMBDA_PYTHON}",
            "LAMBDA_TASK_ROOT": runtime.paths[0],
            "_HANDLER": handler,
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": os.defpath,
            **environment,
        }
        self.log = log
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> AssetFunction:
        """Start the environment now (its init phase) rather than at the first invocation."""
        with self._lock:
            self._ensure_started()
        return self

    def _ensure_started(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        log = open(self.log, "ab") if self.log is not None else None  # the function's log: its stderr
        try:
            self._process = subprocess.Popen(
                [self.runtime.python, "-I", "-S", str(BOOTSTRAP), self.handler, *self.runtime.paths],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.environment,
                cwd=self.runtime.paths[0],
            )
        finally:
            if log is not None:
                log.close()
        hello = self._read(self._process)
        if not hello.get("ready"):
            raise FunctionError(hello.get("error") or {"errorType": "Runtime.Unknown"})
        return self._process

    def _read(self, process: subprocess.Popen) -> dict:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            code = process.wait()
            raise FunctionError({"errorType": "Runtime.ExitError", "errorMessage": f"{self.name} exited ({code})"})
        return json.loads(line)

    def __call__(self, event: dict) -> Any:
        with self._lock:
            process = self._ensure_started()
            request = {
                "event": event,
                "context": {
                    "function_name": self.name,
                    "invoked_function_arn": (
                        f"arn:aws:lambda:{self.environment['AWS_REGION']}:{ACCOUNT}:function:{self.name}"
                    ),
                    "memory_limit_in_mb": self.memory_mb,
                    "aws_request_id": str(uuid.uuid4()),
                    "deadline": time.time() + self.timeout_seconds,
                },
            }
            assert process.stdin is not None
            try:
                process.stdin.write(json.dumps(request).encode() + b"\n")
                process.stdin.flush()
            except BrokenPipeError:
                pass  # _read reports the exit
            reply = self._read(process)
        if "error" in reply:
            raise FunctionError(reply["error"])
        return reply["result"]

    def stop(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                assert self._process.stdin is not None
                self._process.stdin.close()  # the loop ends at end of input
                try:
                    self._process.wait(5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None

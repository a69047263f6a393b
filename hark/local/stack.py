"""`hark up`: the whole platform on one machine, in the foreground until Ctrl-C.

The AWS emulator and the gateway run in this process. The Lambda functions (API, authorizer,
upload-status) run from the built Lambda asset, each in its own interpreter with the function's
environment, as Lambda runs them (hark.local.lambda_process); `hark up` builds the asset first (the
bundler's stamps make that instant when nothing changed). The transcription, notification and webhook
workers run as child processes, restarted if they die, as ECS would replace a task.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.serving import make_server

from hark.api.http_api import HTTP_API
from hark.local.emulator import LOCAL_CREDENTIALS, Emulator, ensure_free
from hark.local.gateway import ACCOUNT
from hark.local.lambda_process import AssetFunction, build_runtime
from hark.ops.lambda_runtime import function_environment

REPO = Path(__file__).resolve().parents[2]
LOCAL_STACK = "hark-local"


@dataclass
class ChildProcess:
    """One supervised worker process (`python -m worker.transcription` or `worker.notification`)."""

    name: str
    module: str
    log: Path
    env: dict
    process: subprocess.Popen | None = None
    restarts: int = 0

    def start(self) -> None:
        out = open(self.log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module], env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )
        out.close()


@dataclass
class Supervisor:
    workers: list[ChildProcess] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        while not self.stopping.wait(1.0):
            for w in self.workers:
                if w.process and w.process.poll() is not None and not self.stopping.is_set():
                    w.restarts += 1
                    print(f"hark: {w.name} exited ({w.process.returncode}); restarting (see {w.log})", flush=True)
                    w.start()

    def stop(self, timeout: float = 15) -> None:
        self.stopping.set()
        for w in self.workers:
            if w.process and w.process.poll() is None:
                w.process.send_signal(signal.SIGTERM)
        deadline = time.time() + timeout
        for w in self.workers:
            if w.process:
                try:
                    w.process.wait(max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    w.process.kill()


def local_env(port: int, emulator_port: int, home: Path, model_dir: Path) -> dict[str, str]:
    origin = f"http://127.0.0.1:{port}"
    return {
        **LOCAL_CREDENTIALS,
        "HARK_STACK": LOCAL_STACK,
        "HARK_AWS_ENDPOINT_URL": f"http://127.0.0.1:{emulator_port}",
        "HARK_ISSUER": origin,
        "HARK_AUTHORIZED_PARTIES": json.dumps([origin, f"http://localhost:{port}"]),
        "HARK_WEB_URL": origin,
        "HARK_API_URL": origin,  # the links in emails lead through the gateway's /links/{token}
        "HARK_CLERK_API_URL": f"{origin}/clerk",  # the dev issuer's stand-in for Clerk's Backend API
        "HARK_OUTBOX_DIR": str(home / "outbox"),
        "HARK_MODEL_DIR": str(model_dir),
        # Webhook receivers on this machine (a test's server, `nc -l`): http and loopback, never link-local.
        "HARK_WEBHOOK_REQUIRE_HTTPS": "false",
        "HARK_WEBHOOK_ALLOW_LOOPBACK": "true",
    }


# The Lambda functions `hark up` runs: service (POWERTOOLS_SERVICE_NAME, the name's suffix) -> handler, and
# timeout in seconds, as the CDK app deploys them (hark_infra/api.py).
LAMBDA_FUNCTIONS = {
    "authorizer": (HTTP_API.authorizer.handler, 10),
    "api": (HTTP_API.api_handler, 29),
}
# Passed on to the functions when set: the tests' record of each component's AWS calls (hark.domain.aws).
INSTRUMENTATION = ("HARK_RECORD_AWS_CALLS",)


def lambda_environment(service: str, local: dict[str, str]) -> dict[str, str]:
    """A function's variables as the CDK app sets them (hark.ops.lambda_runtime) with this stack's values, and
    the local stack's own (`local`: the emulator's endpoint and credentials, the dev issuer's stand-ins)."""
    from hark.domain.settings import get_settings

    settings = get_settings()
    return {
        **function_environment(
            stack=settings.stack,
            service=service,
            account=ACCOUNT,
            region=settings.region,
            issuer=settings.issuer,
            jwks_url=settings.resolved_jwks_url,
            authorized_parties=settings.authorized_parties,
            web_url=settings.web_url,
            max_upload_bytes=settings.max_upload_bytes,
        ),
        **local,
        **{k: os.environ[k] for k in INSTRUMENTATION if os.environ.get(k)},
    }


def run(port: int, emulator_port: int, home: Path, transcription_workers: int = 1) -> int:
    from hark.domain import aws, bundled_model
    from hark.domain.settings import get_settings

    try:
        ensure_free("127.0.0.1", port, "local gateway; HARK_PORT changes it")
        ensure_free("127.0.0.1", emulator_port, "AWS emulator; HARK_EMULATOR_PORT changes it")
    except Exception as err:
        print(f"hark: {err}", file=sys.stderr)
        return 1

    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    (home / "outbox").mkdir(exist_ok=True)
    started = time.time()
    model_dir = Path(os.environ.get("HARK_MODEL_DIR") or bundled_model.install())
    print("hark: building the Lambda asset (infra/lambda_bundle.py)...", flush=True)
    try:
        lambda_runtime = build_runtime()
    except subprocess.CalledProcessError as err:  # pip's own message is above
        print(f"hark: the Lambda asset could not be built ({' '.join(err.cmd[:4])} ... failed)", file=sys.stderr)
        return 1

    emulator = Emulator(emulator_port).start()
    env = local_env(port, emulator_port, home, model_dir)
    os.environ.update(env)
    aws.reset()
    settings = get_settings()

    from hark.local.gateway import Gateway
    from hark.local.issuer import DevIssuer
    from hark.local.provision import provision

    provision(aws.client, aws.stack_resources(), web_origins=settings.authorized_parties, region=settings.region)
    # The upload-status function, in-process behind its SQS event source (as the gateway runs the API's
    # handlers): jobs turn QUEUED the moment their upload lands, whatever the workers are doing.
    from hark.domain.resources import upload_status_function
    from hark.local.event_source import SqsEventSource

    def lambda_function(service: str, handler: str, timeout: int) -> AssetFunction:
        return AssetFunction(
            lambda_runtime,
            handler,
            f"{settings.stack}-{service}",
            lambda_environment(service, env),
            timeout_seconds=timeout,
            log=home / "logs" / f"lambda-{service}.log",
        )

    functions = {service: lambda_function(service, *spec) for service, spec in LAMBDA_FUNCTIONS.items()}
    status_def = upload_status_function(aws.stack_resources())
    functions["upload-status"] = lambda_function("upload-status", status_def.handler, status_def.timeout_seconds)
    # Their init phases overlap the rest of the start.
    init_errors: dict[str, Exception] = {}

    def init(service: str) -> None:
        try:
            functions[service].start()
        except Exception as err:
            init_errors[service] = err

    init_threads = [threading.Thread(target=init, args=(s,), daemon=True) for s in functions]
    for thread in init_threads:
        thread.start()
    upload_status = SqsEventSource(status_def, settings.region, lambda_function=functions["upload-status"]).start()

    child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    supervisor = Supervisor()
    for i in range(1, transcription_workers + 1):
        supervisor.workers.append(
            ChildProcess(
                f"transcription worker {i}", "worker.transcription", home / "logs" / f"transcription-{i}.log", child_env
            )
        )
    supervisor.workers.append(
        ChildProcess("notification worker", "worker.notification", home / "logs" / "notification.log", child_env)
    )
    supervisor.workers.append(
        ChildProcess("webhook worker", "worker.webhooks", home / "logs" / "webhooks.log", child_env)
    )
    for w in supervisor.workers:
        w.start()
    threading.Thread(target=supervisor.watch, daemon=True, name="supervisor").start()

    origin = f"http://127.0.0.1:{port}"
    config = {
        "apiBase": "",
        "devAuth": True,
        "clerkPublishableKey": None,
        "webOrigin": origin,
        "authorizedParties": settings.authorized_parties,
    }
    gateway = Gateway(
        DevIssuer(origin, home / "issuer-key.pem"),
        REPO / "frontend",
        config,
        settings.region,
        connect_sources=(emulator.endpoint,),
        api_function=functions["api"],
        authorizer_function=functions["authorizer"],
    )
    for thread in init_threads:
        thread.join()
    for service, error in init_errors.items():
        print(f"hark: the {service} function does not start from the Lambda asset: {error}", file=sys.stderr)
    # Listening only now: a request accepted before serve_forever would wait unanswered.
    server = make_server("127.0.0.1", port, gateway, threaded=True)

    print(
        f"""
Hark is running (ready in {time.time() - started:.1f}s). Ctrl-C stops everything.

  web app          {origin}/
  API              {origin}/jobs            (Authorization: Bearer $(hark token --email you@example.com))
  JWKS (dev)       {origin}/.well-known/jwks.json
  AWS emulator     {emulator.endpoint}   (moto: S3, SNS, SQS, DynamoDB, SES, Secrets Manager; stack "{LOCAL_STACK}")
  Lambda functions API, authorizer, upload-status (jobs QUEUED as their upload lands): the built asset
                   {lambda_runtime.paths[0]} under {lambda_runtime.python}
  workers          {len(supervisor.workers) - 2} transcription (model {model_dir}), 1 notification, 1 webhook
  logs             {home / "logs"} (workers and Lambda functions)
  emails (outbox)  {home / "outbox"}

Try:  hark transcribe recording.mp3
""",
        flush=True,
    )

    def on_stop(signum, frame):
        # Ctrl-C reaches the workers too (one process group): they exit at once, and the supervisor must not
        # take that for a crash and start them again.
        supervisor.stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_stop)
    # A shell starts background jobs with SIGINT ignored; Ctrl-C (or kill -INT) must still stop us.
    signal.signal(signal.SIGINT, on_stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print("hark: stopping...", flush=True)
        server.server_close()
        upload_status.stop()
        for function in functions.values():
            function.stop()
        supervisor.stop()
        emulator.stop()
        print("hark: stopped", flush=True)
    return 0

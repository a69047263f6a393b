"""The AWS emulator of the embedded default: moto's server, in this process, on loopback."""

from __future__ import annotations

import logging
import socket
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

# Dummy credentials: the emulator accepts any, and boto3 must find some.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "hark-local",
    "AWS_SECRET_ACCESS_KEY": "hark-local-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class PortInUse(RuntimeError):
    pass


def ensure_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the servers themselves bind: connections of a stack just stopped (TIME_WAIT) don't count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise PortInUse(f"port {port} is already in use ({what}); free it or set a different port") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OneDynamoDBRequestAtATime:
    """DynamoDB applies each request atomically: a conditional write's check and write are one step, so
    of N parallel "take a place if fewer than L" updates exactly the right number succeed. moto's server
    runs requests on threads and checks a condition apart from the write, so here its DynamoDB requests
    run one at a time (every other service as before)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))  # the whole answer, inside the lock


class Emulator:
    """moto's server mode standing in for S3, SNS, SQS, DynamoDB, SES and Secrets Manager."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        """moto's server (as moto's own ThreadedMotoServer builds it), its DynamoDB made atomic per request."""
        ensure_free(self.host, self.port, "AWS emulator")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = OneDynamoDBRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

"""The AWS emulator of the embedded default: moto's server, in this process, on loopback."""

from __future__ import annotations

import logging
import socket

from moto.server import ThreadedMotoServer

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


class Emulator:
    """moto's server mode standing in for S3, SNS, SQS, DynamoDB, SES and Secrets Manager."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        ensure_free(self.host, self.port, "AWS emulator")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

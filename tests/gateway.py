"""The local gateway (real API and authorizer handlers, the dev issuer and its Clerk Backend API stand-in)
served on a free loopback port in a thread of the test process."""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from werkzeug.serving import make_server

from hark.domain import aws
from hark.local.emulator import free_port
from hark.local.gateway import Gateway
from hark.local.issuer import DevIssuer

REPO = Path(__file__).resolve().parents[1]


@dataclass
class LocalGateway:
    url: str
    issuer: DevIssuer

    @property
    def clerk_api_url(self) -> str:
        return f"{self.url}/clerk"

    def token(self, email: str, email_claim: bool = False) -> dict:
        r = requests.post(f"{self.url}/dev/token", json={"email": email, "email_claim": email_claim}, timeout=10)
        r.raise_for_status()
        return r.json()


@contextmanager
def running_gateway(state_dir: Path):
    """The gateway with this process's settings trusting its dev issuer (HARK_ISSUER and parties).
    Needs the emulator provisioned (the `stack` fixture)."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("HARK_ISSUER", "HARK_AUTHORIZED_PARTIES")}
    os.environ.update({"HARK_ISSUER": origin, "HARK_AUTHORIZED_PARTIES": json.dumps([origin])})
    aws.reset()
    # Clerk's side of the secret key: the one provisioned now (a later change in Secrets Manager is a
    # key Clerk does not know).
    clerk_key = aws.secret(aws.stack_resources().clerk_secret)
    issuer = DevIssuer(origin, state_dir / "issuer-key.pem", backend_secret_key=lambda: clerk_key)
    config = {
        "apiBase": "",
        "devAuth": True,
        "clerkPublishableKey": None,
        "webOrigin": origin,
        "authorizedParties": [origin],
    }
    server = make_server("127.0.0.1", port, Gateway(issuer, REPO / "frontend", config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="gateway")
    thread.start()
    try:
        yield LocalGateway(url=origin, issuer=issuer)
    finally:
        server.shutdown()
        thread.join(10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        aws.reset()

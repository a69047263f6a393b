"""The local gateway's own answers: the web app's security headers, the dev sign-in's reach, and the CORS
headers of API Gateway's own answers."""

from __future__ import annotations

from pathlib import Path

from werkzeug.test import Client

from hark.local.gateway import Gateway
from hark.local.issuer import DevIssuer

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "http://127.0.0.1:8000"
EMULATOR = "http://127.0.0.1:8001"


def client(tmp_path, parties: tuple[str, ...] = (ORIGIN,)) -> Client:
    config = {
        "apiBase": "",
        "devAuth": True,
        "clerkPublishableKey": None,
        "webOrigin": ORIGIN,
        "authorizedParties": list(parties),
    }
    return Client(
        Gateway(DevIssuer(ORIGIN, tmp_path / "key.pem"), REPO / "frontend", config, connect_sources=(EMULATOR,))
    )


def directives(csp: str) -> dict[str, set[str]]:
    return {d.split()[0]: set(d.split()[1:]) for d in csp.split(";")}


def test_web_app_files_carry_the_security_headers(tmp_path):
    page = client(tmp_path).get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    csp = directives(page.headers["Content-Security-Policy"])
    assert csp["frame-ancestors"] == {"'none'"} and csp["object-src"] == {"'none'"}
    assert csp["script-src"] == {"'self'"}  # no Clerk key locally: no third-party script
    assert csp["connect-src"] == {"'self'", EMULATOR}  # the API (same origin) and the presigned uploads
    assert csp["media-src"] == {"'self'", EMULATOR}  # the viewer's player: presigned GETs of the audio


def test_dev_sign_in_answers_only_loopback_hosts(tmp_path):
    c = client(tmp_path)
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        ok = c.post("/dev/token", json={"email": "ada@example.com"}, headers={"Host": host})
        assert ok.status_code == 200 and ok.json["token"], host
    for host in ("hark.example.com", "192.0.2.10:8000", "127.0.0.1.nip.io:8000"):
        refused = c.post("/dev/token", json={"email": "ada@example.com"}, headers={"Host": host})
        assert refused.status_code == 403, host
        assert refused.json["error"]["code"] == "dev_sign_in_loopback_only"


def test_gateway_answers_carry_the_origin_as_the_stage_maps_it(tmp_path):
    """One authorized party: API Gateway's own 401 names it whatever the request's Origin; several: the
    stage copies the request's Origin (a gateway response cannot choose from a list, infra/hark_infra/api.py)
    and says Vary: Origin; a request without Origin gets no Access-Control-Allow-Origin."""
    other = "https://app.example.com"
    one = client(tmp_path).get("/jobs", headers={"Origin": other})
    assert one.status_code == 401 and one.headers["Access-Control-Allow-Origin"] == ORIGIN
    several = client(tmp_path, (ORIGIN, other))
    answer = several.get("/jobs", headers={"Origin": other})
    assert answer.status_code == 401 and answer.json["error"]["code"] == "unauthorized"
    assert answer.headers["Access-Control-Allow-Origin"] == other and answer.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in several.get("/jobs").headers

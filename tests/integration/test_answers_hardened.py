"""Every answer of the local web server over real HTTP (issue 21): the web app's files, its 404s and
405s, config.json, healthz, the dev issuer's JWKS and sign-in, the Clerk stand-in, CORS preflights,
API Gateway's own answers and the API Lambda's, each carries hark.api.webapp.HARDENING_HEADERS; a 404 does
not repeat the path it was asked for; the files answer GET and HEAD only."""

from __future__ import annotations

import pytest
import requests

from hark.api.webapp import HARDENING_HEADERS
from tests.conftest import fresh_stack
from tests.gateway import running_gateway

MARKER = "x<script>hark-marker</script>"


@pytest.fixture(scope="module")
def gateway(emulator, tmp_path_factory):
    """One gateway over one freshly provisioned stack for the module: its tests ask and change nothing
    (pages, 404s, refused methods, HEAD, a listing), so they share them: a gateway and a stack for each
    took the module from 28 to 15 CPU-seconds."""
    fresh_stack(emulator)
    with running_gateway(tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


def assert_hardened(response: requests.Response, what: str) -> None:
    for name, value in HARDENING_HEADERS.items():
        assert response.headers.get(name) == value, (what, name, dict(response.headers))


def test_every_answer_carries_the_hardening_headers(gateway):
    url = gateway.url
    token = gateway.token("ada@example.com")["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    answers = {
        "the page": (requests.get(f"{url}/", timeout=10), 200),
        "a script": (requests.get(f"{url}/app.js", timeout=10), 200),
        "config.json": (requests.get(f"{url}/config.json", timeout=10), 200),
        "healthz": (requests.get(f"{url}/healthz", timeout=10), 200),
        "jwks": (requests.get(f"{url}/.well-known/jwks.json", timeout=10), 200),
        "a static 404": (requests.get(f"{url}/{MARKER}", timeout=10), 404),
        "a 405": (requests.put(f"{url}/index.html", data=b"x", timeout=10), 405),
        "dev sign-in": (requests.post(f"{url}/dev/token", json={"email": "bo@example.com"}, timeout=10), 200),
        "dev sign-in refused": (requests.post(f"{url}/dev/token", json={"email": "nope"}, timeout=10), 400),
        "the Clerk stand-in": (requests.get(f"{gateway.clerk_api_url}/v1/users/user_x", timeout=10), 401),
        "a preflight": (
            requests.options(
                f"{url}/jobs",
                headers={"Origin": url, "Access-Control-Request-Method": "POST"},
                timeout=10,
            ),
            204,
        ),
        "API Gateway's 401": (requests.get(f"{url}/jobs", timeout=10), 401),
        "API Gateway's 404": (requests.get(f"{url}/jobs/a/b/c", headers=bearer, timeout=10), 404),
        "the API's 200": (requests.get(f"{url}/jobs", headers=bearer, timeout=10), 200),
        "the API's 404": (requests.get(f"{url}/jobs/j_{'0' * 26}", headers=bearer, timeout=10), 404),
        "the API's 403 link": (requests.get(f"{url}/links/not-a-token", timeout=10), 403),
    }
    for what, (response, status) in answers.items():
        assert response.status_code == status, (what, response.status_code, response.text[:300])
        assert_hardened(response, what)
    page = answers["the page"][0]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]  # the files' own CSP too


def test_a_404_does_not_repeat_the_path(gateway):
    response = requests.get(f"{gateway.url}/{MARKER}", timeout=10)
    assert response.status_code == 404 and response.headers["Content-Type"] == "application/json"
    assert "hark-marker" not in response.text and "script" not in response.text
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/", "/index.html", "/app.js", "/config.json", "/healthz", "/.well-known/jwks.json"])
@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH", "TRACE", "OPTIONS"])
def test_files_answer_get_and_head_only(gateway, method, path):
    response = requests.request(method, f"{gateway.url}{path}", data=b"<html>overwrite</html>", timeout=10)
    assert response.status_code == 405, response.text[:300]
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"  # an error, never the file
    assert_hardened(response, f"{method} {path}")


def test_head_answers_the_headers_of_get_without_the_body(gateway):
    got = requests.get(f"{gateway.url}/index.html", timeout=10)
    head = requests.head(f"{gateway.url}/index.html", timeout=10)
    assert head.status_code == got.status_code == 200 and head.content == b"" and got.content
    assert head.headers["Content-Type"] == got.headers["Content-Type"] == "text/html; charset=utf-8"
    assert head.headers["Content-Security-Policy"] == got.headers["Content-Security-Policy"]
    assert_hardened(head, "HEAD /index.html")

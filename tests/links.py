"""Following an email link as API Gateway would: a REST proxy event for GET /links/{token}, no authorizer."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

from hark.local.gateway import LambdaContext
from lambdas.api import handler as api
from tests.events import rest_proxy_event


def link_event(token: str) -> dict:
    """What API Gateway sends for an unauthenticated GET /links/{token}: no Authorization, no authorizer."""
    return rest_proxy_event(
        "GET",
        "/links/{token}",
        f"/links/{token}",
        path_params={"token": token},
        headers={"Accept": "*/*", "User-Agent": "mail-client"},
    )


def token_of(url: str) -> str:
    path = urlsplit(url).path
    assert "/links/" in path, url
    return path.rsplit("/links/", 1)[1]


def follow(url_or_token: str) -> tuple[int, dict, dict | None]:
    """(status, headers, JSON body or None) of the API Lambda's answer to the link."""
    token = token_of(url_or_token) if "/" in url_or_token else url_or_token
    return invoke(link_event(token))


def invoke(event: dict) -> tuple[int, dict, dict | None]:
    result = api.handler(event, LambdaContext("hark-api"))
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = values[-1]
    body = result.get("body")
    return result["statusCode"], headers, (json.loads(body) if body else None)


def _payload(url: str) -> dict:
    """A link's payload, read without checking it (what anyone holding the link can see)."""
    part = token_of(url).split(".")[0] if "/" in url else url.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def link_format(url: str) -> str:
    return _payload(url)["f"]


def link_expiry(url: str) -> int:
    return _payload(url)["e"]

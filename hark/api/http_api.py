"""The one definition of Hark's HTTP surface: routes, the authorizer, CORS, throttling.

The CDK API stack (infra/hark_infra/api.py) builds API Gateway from this, and the local gateway
(hark.local.gateway) answers HTTP exactly as API Gateway does for the same definition: the
authorizer event of the configured kind, its result cache, the REST proxy (v1) event for the API
Lambda, CORS preflight answered without the authorizer. The contract tests (tests/contract/) drive
the real handlers with the events AWS documents for what the synthesised template says.

Handlers are named by module path, the way Lambda names them, so nothing here imports them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from hark.api.webapp import HARDENING_HEADERS

AuthorizerKind = Literal["TOKEN", "REQUEST"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway's syntax: /jobs/{id}
    authorized: bool = True  # False: no authorizer (the link itself is the credential)

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))


@dataclass(frozen=True)
class Authorizer:
    kind: AuthorizerKind
    handler: str  # module.function, as Lambda's Handler setting
    identity_header: str
    # API Gateway caches an Allow per identity-source value for this long. Clerk session tokens live
    # 60 s (refreshed by the browser SDK before they expire): a cached Allow must not outlive its token.
    result_cache_seconds: int


@dataclass(frozen=True)
class Cors:
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    max_age_seconds: int


@dataclass(frozen=True)
class Throttle:
    rate_limit: int  # requests per second, steady, per stage
    burst_limit: int


@dataclass(frozen=True)
class HttpApi:
    stage: str
    api_handler: str
    authorizer: Authorizer
    routes: tuple[Route, ...]
    cors: Cors
    throttle: Throttle

    def route(self, method: str, path: str) -> Route:
        for r in self.routes:
            if r.method == method and r.path == path:
                return r
        raise KeyError(f"{method} {path}")

    @property
    def resource_paths(self) -> tuple[str, ...]:
        """Every resource, parents first, once each."""
        seen: dict[str, None] = {}
        for r in self.routes:
            parts = r.path.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                seen.setdefault("/" + "/".join(parts[:i]))
        return tuple(seen)


@dataclass(frozen=True)
class GatewayResponse:
    """What API Gateway itself answers for one response type (AWS::ApiGateway::GatewayResponse).

    The body is the API Lambda's error shape, {"error": {"code", "message"}}, so a client reads every
    refusal the same way, whoever answered. `message` is a literal sentence, or for the catch-all
    types API Gateway's own text through `$context.error.messageString` (already a quoted JSON string).
    """

    response_type: str  # API Gateway's name: UNAUTHORIZED, ACCESS_DENIED, DEFAULT_4XX, ...
    status: int | None  # None: keep the status API Gateway chose (DEFAULT_4XX/5XX cover many)
    code: str
    message: str | None = None  # a literal sentence; None: API Gateway's own message
    headers: tuple[tuple[str, str], ...] = ()  # static headers of this response, besides GATEWAY_RESPONSE_HEADERS

    @property
    def template(self) -> str:
        """The response template (application/json): literal JSON, or JSON with the one $context variable."""
        if self.message is None:
            return json.dumps({"error": {"code": self.code, "message": "MESSAGE"}}).replace(
                '"MESSAGE"', "$context.error.messageString"
            )
        return json.dumps({"error": {"code": self.code, "message": self.message}})

    @property
    def body(self) -> dict:
        """The literal body (the local gateway sends it); only for responses with a literal message."""
        if self.message is None:
            raise ValueError(f"{self.response_type}: the message is API Gateway's own")
        return {"error": {"code": self.code, "message": self.message}}


def gateway_response_cors(origins: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Access-Control-Allow-Origin on API Gateway's own answers (401, 403, 404, 429, ...), as mapping
    expressions. One origin is written as it is. A gateway response cannot choose among several (its
    headers are static or copied from the request), so with several it copies the request's Origin:
    these bodies are API Gateway's fixed error texts, sent without Access-Control-Allow-Credentials (the
    API takes a bearer token, never cookies), so any page reading them learns nothing; the API Lambda's
    own answers and the preflight allow the authorized parties only."""
    if len(origins) == 1:
        return {"Access-Control-Allow-Origin": f"'{origins[0]}'"}
    return {"Access-Control-Allow-Origin": "method.request.header.Origin", "Vary": "'Origin'"}


# API Gateway's own answers, in the one error shape. A specific type replaces DEFAULT_4XX entirely
# (headers included), so every one of them carries GATEWAY_RESPONSE_HEADERS and the CORS origin.
UNAUTHORIZED = GatewayResponse(  # no token, or the authorizer raised "Unauthorized"
    "UNAUTHORIZED",
    401,
    "unauthorized",
    "Your session token is missing, expired or not valid: sign in again.",
)
ACCESS_DENIED = GatewayResponse(  # the authorizer's policy does not cover the request
    "ACCESS_DENIED",
    403,
    "access_denied",
    "Your session may not use this API: sign in again.",
)
# API Gateway's answer for a resource or method it does not have: the same 404 the API Lambda gives an
# unknown route (API Gateway's default is 403 "Missing Authentication Token", which misleads).
MISSING_AUTHENTICATION_TOKEN = GatewayResponse(
    "MISSING_AUTHENTICATION_TOKEN",
    404,
    "route_not_found",
    "No such route; see the API reference (docs/api.md) for the routes.",
)
# The stage's throttle (HTTP_API.throttle, a token bucket refilled every second) answers 429: try again in a
# second. Static, as gateway responses are: the limit is the whole stage's, so no per-client remainder.
THROTTLE_RETRY_AFTER_SECONDS = 1
THROTTLED = GatewayResponse(
    "THROTTLED",
    429,
    "too_many_requests",
    "Too many requests: slow down and retry after the number of seconds in the Retry-After header.",
    headers=(("Retry-After", str(THROTTLE_RETRY_AFTER_SECONDS)),),
)
GATEWAY_RESPONSES: tuple[GatewayResponse, ...] = (
    UNAUTHORIZED,
    ACCESS_DENIED,
    MISSING_AUTHENTICATION_TOKEN,
    THROTTLED,
    # A request too large (413), an integration timeout (504), ...: API Gateway's text.
    GatewayResponse("DEFAULT_4XX", None, "request_refused"),
    GatewayResponse("DEFAULT_5XX", None, "gateway_error"),
)
# Headers on every gateway response (besides Access-Control-Allow-Origin, which is per deployment).
GATEWAY_RESPONSE_HEADERS = {**HARDENING_HEADERS, "Cache-Control": "no-store"}

HTTP_API = HttpApi(
    stage="v1",
    api_handler="lambdas.api.handler.handler",
    authorizer=Authorizer(
        kind="TOKEN",
        handler="lambdas.authorizer.handler.handler",
        identity_header="Authorization",
        result_cache_seconds=60,
    ),
    routes=(
        Route("POST", "/jobs"),
        Route("GET", "/jobs"),
        Route("GET", "/jobs/{id}"),
        Route("DELETE", "/jobs/{id}"),
        Route("GET", "/jobs/{id}/transcript"),
        Route("GET", "/jobs/{id}/audio"),
        Route("GET", "/links/{token}", authorized=False),
        Route("GET", "/webhook-secret"),
        Route("POST", "/webhook-secret"),
        Route("GET", "/webhook-settings"),
        Route("PUT", "/webhook-settings"),
    ),
    cors=Cors(
        allow_methods=("GET", "POST", "PUT", "DELETE", "OPTIONS"),
        allow_headers=("Authorization", "Content-Type", "Idempotency-Key"),
        max_age_seconds=3600,
    ),
    # Sized for the spike day's busiest minute: every uploader's tab polling (docs/scaling.md, "The control
    # plane"); the burst is API Gateway's regional account maximum.
    throttle=Throttle(rate_limit=3000, burst_limit=5000),
)

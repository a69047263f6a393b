"""The one definition of Hark's HTTP surface: routes, the authorizer, CORS, throttling.

The CDK API stack (infra/hark_infra/api.py) builds API Gateway from this, and the local gateway
(hark.local.gateway) answers HTTP exactly as API Gateway does for the same definition: the
authorizer event of the configured kind, its result cache, the REST proxy (v1) event for the API
Lambda, CORS preflight answered without the authorizer. The contract tests (tests/contract/) drive
the real handlers with the events AWS documents for what the synthesised template says.

Handlers are named by module path, the way Lambda names them, so nothing here imports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

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


# API Gateway's own answers (its default gateway responses), when the authorizer refuses.
UNAUTHORIZED_BODY = {"message": "Unauthorized"}  # no token, or the authorizer raised "Unauthorized"
ACCESS_DENIED_BODY = {"message": "User is not authorized to access this resource"}  # a Deny policy

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
        Route("GET", "/links/{token}", authorized=False),
    ),
    cors=Cors(
        allow_methods=("GET", "POST", "DELETE", "OPTIONS"),
        allow_headers=("Authorization", "Content-Type", "Idempotency-Key"),
        max_age_seconds=3600,
    ),
    # Sized for the spike day's busiest minute: every uploader's tab polling (docs/scaling.md, "The control
    # plane"); the burst is API Gateway's regional account maximum.
    throttle=Throttle(rate_limit=3000, burst_limit=5000),
)

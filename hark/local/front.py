"""`hark up`'s one HTTP front on HARK_PORT: /v1/* (the OpenAI-compatible endpoint, later the live WebSocket)
goes to the live service's ASGI app, everything else to the werkzeug gateway, run by a2wsgi's WSGI-in-ASGI
adapter, so the API and the live service share one origin locally as they share one domain in AWS.

a2wsgi, not Starlette's own WSGIMiddleware (deprecated in favour of a2wsgi) nor a second port: the gateway
stays the WSGI app its tests drive directly, and one uvicorn serves both (docs/architecture.md)."""

from __future__ import annotations

from a2wsgi import WSGIMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

LIVE_PREFIX = "/v1"
# Requests the gateway serves at once (each a thread: the werkzeug server it replaces had one per request).
GATEWAY_THREADS = 32


def front(live: ASGIApp, gateway) -> ASGIApp:
    wsgi = WSGIMiddleware(gateway, workers=GATEWAY_THREADS)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "lifespan" or path == LIVE_PREFIX or path.startswith(LIVE_PREFIX + "/"):
            await live(scope, receive, send)
        else:
            await wsgi(scope, receive, send)  # type: ignore[arg-type]

    return app

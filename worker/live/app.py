"""The live service's ASGI app (Starlette, served by uvicorn): `create_app` joins the routes to what they
share, the engine (loaded at the first request unless one is given), the credential check and the settings.

Locally `hark up` serves it on the API's port (hark/local/front.py routes /v1/* here); in AWS it is the
"live" ECS service behind an Application Load Balancer (`python -m worker.live`)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from hark.domain.settings import Settings, get_settings
from worker.live import openai_api
from worker.live.service import Authenticate, Live, authenticate
from worker.transcription.engine import Engine


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, authenticate: Authenticate = authenticate
) -> Starlette:
    live = Live(settings or get_settings(), authenticate, engine)

    async def healthz(request: Request) -> PlainTextResponse:  # the load balancer's health check
        return PlainTextResponse("ok\n")

    app = Starlette(routes=[*openai_api.routes(live), Route("/healthz", healthz, methods=["GET"])])
    app.state.live = live
    return app

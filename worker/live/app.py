"""The live service's ASGI app (Starlette, served by uvicorn): `create_app` joins the routes to what they
share, the engine (loaded at the first request unless one is given), the credential check and the settings.

Locally `hark up` serves it on the API's port (hark/local/front.py routes /v1/* here); in AWS it is the
"live" ECS service behind an Application Load Balancer (`python -m worker.live`), which also reports the task's
load every `report_seconds` (worker/live/load.py) for the scaling policy and, given the balancer's target group
(settings.live_target_group_arn), watches its own target there to end its streams when it drains
(worker/live/target.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from hark.api.http_api import HTTP_API
from hark.domain.settings import Settings, get_settings
from hark.domain.transcript import Transcript
from worker.live import openai_api, websocket
from worker.live.load import report_every
from worker.live.service import Authenticate, Live, authenticate
from worker.live.target import TargetWatch
from worker.live.websocket import LiveService
from worker.transcription.engine import DecodeOptions, Engine


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    authenticate: Authenticate = authenticate,
    report_seconds: float | None = None,
    port: int | None = None,
) -> Starlette:
    """`port`: the one it is served on, its target's port in the balancer's target group (default the
    container's port, settings.live_port)."""
    settings = settings or get_settings()
    port = port or settings.live_port
    live = Live(settings, authenticate, engine)

    def decode(samples: np.ndarray, options: DecodeOptions) -> Transcript:
        # streams share the engine's priority lane with sync requests: packed before batch work
        return live.engine().run(samples, options, interactive=True).transcript

    async def healthz(request: Request) -> PlainTextResponse:  # the load balancer's health check
        return PlainTextResponse("ok\n")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        background = []
        if report_seconds is not None:  # in AWS only (python -m worker.live): CloudWatch reads the task's log
            background.append(report_every(report_seconds, app.state.streams.sessions, live))
        if settings.live_target_group_arn:  # in AWS only: behind the balancer (worker/live/target.py)
            target = TargetWatch(
                settings.live_target_group_arn, settings.ecs_metadata_uri, port, app.state.streams.restart
            )
            await target.look()  # before the first request: a stream's task knows its target from the start
            background.append(target.watch())
        tasks = [asyncio.create_task(work) for work in background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks)

    routes = [*openai_api.routes(live), *websocket.ROUTES, Route("/healthz", healthz, methods=["GET"])]
    app = Starlette(routes=routes, middleware=cors(settings.live_cors_origins), lifespan=lifespan)
    app.state.live = live
    app.state.streams = LiveService(decode, live.authenticate)
    return app


def cors(origins: list[str]) -> list[Middleware]:
    """The web page's origins may call the live service from another host (AWS: tickets, the OpenAI-compatible
    routes), with the API's own CORS headers and cache time; a preflight is answered without a credential, and
    one from any other origin is refused (400, no Access-Control-Allow-Origin). None locally (one origin)."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],  # the live routes' methods (the WebSocket is not CORS's)
            allow_headers=list(HTTP_API.cors.allow_headers),
            max_age=HTTP_API.cors.max_age_seconds,
        )
    ]

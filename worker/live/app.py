"""The live service's ASGI app: Starlette routes over one Engine shared by every connection."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from starlette.applications import Starlette

from hark.api.auth import Identity, verifier_for
from hark.domain.settings import Settings
from hark.domain.transcript import Transcript
from worker.transcription.engine import DecodeOptions, Engine

from . import websocket
from .websocket import LiveService


def settings_verifier(settings: Settings) -> Callable[[str], Identity]:
    """The API's own check of a bearer token (hark.api.auth), in process: the live service has no authorizer."""

    def verify(token: str) -> Identity:
        verifier = verifier_for(
            settings.resolved_jwks_url, settings.issuer, tuple(settings.authorized_parties), settings.jwt_leeway_seconds
        )
        return verifier.verify(token)

    return verify


def create_app(engine: Engine, verify: Callable[[str], Identity]) -> Starlette:
    def decode(samples: np.ndarray, options: DecodeOptions) -> Transcript:
        return engine.run(samples, options).transcript

    app = Starlette(routes=list(websocket.ROUTES))
    app.state.live = LiveService(decode, verify)
    return app

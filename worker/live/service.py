"""What the live service's routes share (`Live`: the engine, the credential check, the settings) and its one
credential check."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio

from hark.api.auth import Identity, bearer_token, identify
from hark.domain import aws
from hark.domain.settings import Settings, get_settings
from worker.transcription.engine import Engine

Authenticate = Callable[[Mapping[str, str]], Identity]


def authenticate(headers: Mapping[str, str]) -> Identity:
    """The live service's one credential check: `Authorization: Bearer <session token or API key>`, the same
    check as the API's authorizer (hark.api.auth.identify), in-process; an API key's request is then counted
    against its rate limit, as the API counts it. Raises hark.api.auth.Unauthorized or
    hark.domain.api_keys.RateLimited. Blocking (a JWKS fetch, a table read): call it from a worker thread."""
    identity = identify(bearer_token(headers))
    if identity.key_id is not None:
        aws.api_key_store().take_request(identity.key_id, get_settings().api_key_requests_per_minute)
    return identity


def live_engine(settings: Settings) -> Engine:
    """The live service's engine: the batch workers' own, in `live_model_replicas` replicas (settings.py says why)."""
    return Engine(settings.model_copy(update={"model_replicas": settings.live_model_replicas}))


@dataclass
class Live:
    """What the live routes share."""

    settings: Settings
    authenticate: Authenticate
    _engine: Engine | None = None
    _loading: threading.Lock = field(default_factory=threading.Lock)
    # Requests transcribing at once (each holds its decoded audio in memory); more wait their turn.
    limiter: anyio.CapacityLimiter | None = None
    in_flight: int = 0  # requests being answered, waiting for a slot included (worker/live/load.py reports it)

    def engine(self) -> Engine:
        """The engine, loaded by the first request that needs it (blocking: from a worker thread)."""
        with self._loading:
            if self._engine is None:
                self._engine = live_engine(self.settings)
            return self._engine

    def slots(self) -> anyio.CapacityLimiter:
        if self.limiter is None:  # created inside the event loop that uses it
            self.limiter = anyio.CapacityLimiter(self.settings.live_max_requests)
        return self.limiter

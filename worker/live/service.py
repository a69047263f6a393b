"""What the live service's routes share (`Live`: the engine, the credential check, the settings) and its one
credential check."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio

from hark.api.auth import Identity, bearer_token, verifier_for
from hark.domain.settings import Settings, get_settings
from worker.transcription.engine import Engine

Authenticate = Callable[[Mapping[str, str]], Identity]


def authenticate(headers: Mapping[str, str]) -> Identity:
    """The live service's one credential check: `Authorization: Bearer <session token>`, verified in-process
    as the API's authorizer verifies it (hark.api.auth: issuer, JWKS, azp). Raises hark.api.auth.Unauthorized.
    Blocking (a JWKS fetch on a new key): call it from a worker thread, never on the event loop."""
    settings = get_settings()
    verifier = verifier_for(
        settings.resolved_jwks_url, settings.issuer, tuple(settings.authorized_parties), settings.jwt_leeway_seconds
    )
    return verifier.verify(bearer_token(headers))


@dataclass
class Live:
    """What the live routes share."""

    settings: Settings
    authenticate: Authenticate
    _engine: Engine | None = None
    _loading: threading.Lock = field(default_factory=threading.Lock)
    # Requests transcribing at once (each holds its decoded audio in memory); more wait their turn.
    limiter: anyio.CapacityLimiter | None = None

    def engine(self) -> Engine:
        """The engine, loaded by the first request that needs it (blocking: from a worker thread)."""
        with self._loading:
            if self._engine is None:
                self._engine = Engine(self.settings)
            return self._engine

    def slots(self) -> anyio.CapacityLimiter:
        if self.limiter is None:  # created inside the event loop that uses it
            self.limiter = anyio.CapacityLimiter(self.settings.live_max_requests)
        return self.limiter

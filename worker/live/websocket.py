"""The live WebSocket (issue 24; the protocol is in docs/api.md, "Live transcription").

`GET /v1/live?sample_rate=16000[&language=][&prompt=]` upgraded to a WebSocket. A program authenticates
with `Authorization: Bearer <token>`; a browser, which cannot set headers on a WebSocket, with `?ticket=`
from `POST /v1/live/tickets`: single use, 30 seconds, so no lasting credential is ever in a URL; kept in a
table every live task shares (hark.domain.live_tickets), so whichever task the balancer sends the WebSocket to
redeems it. The client sends binary frames of PCM s16le mono at `sample_rate` and a text `{"type": "stop"}`;
the server sends `partial`, `final` and, on stop, `done` (every final's text) before closing with 1000.

Refusals and bad frames are an `error` frame, then a close code (CLOSE below). The connection is accepted
before a refusal, so a browser (which sees no HTTP status of a failed handshake) can read why. Whatever
ends a stream other than the client going away, the audio received until then still gets its finals first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

import anyio.to_thread
import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from hark.api.auth import Identity, Unauthorized
from hark.api.control import rate_limited
from hark.domain import aws
from hark.domain.api_keys import RateLimited
from hark.domain.api_schemas import PROMPT_MAX_CHARS, LanguageName
from hark.domain.live_tickets import TICKET_SECONDS, LiveTickets, TicketHolder
from worker.transcription.audio import SAMPLE_RATE

from .streaming import Decode, Event, Stream

# The close codes a client must tell apart (RFC 6455's, and 4000-4999 for the application's own).
CLOSE = {
    "done": 1000,  # after `done`: every final was sent
    "unsupported": 1003,  # a text frame other than {"type": "stop"}
    "bad_audio": 1007,  # a binary frame that is not whole s16le samples
    "internal": 1011,  # a bug or a failed decode: the finals so far were sent
    "restart": 1012,  # the server is going away (scale-in, deploy): reconnect and go on
    "overloaded": 1013,  # the audio arrives faster than this server can transcribe it: try again later
    "rate_limited": 1013,  # the API key made its requests of this minute: try again after `retry_after` seconds
    "bad_request": 4400,  # a bad query parameter
    "unauthorized": 4401,  # no credential, or one that does not verify (an expired or used ticket)
}
STEP_SECONDS = 1.0  # decode when this much new audio came in since the last step began (whisper_streaming's)
MAX_BACKLOG_SECONDS = 30.0  # audio received but not yet decoded: more, and the stream is refused as overloaded


class Refusal(Exception):
    def __init__(self, reason: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.code, self.message, self.retry_after = CLOSE[reason], message, retry_after


def restart_refusal() -> Refusal:
    return Refusal("restart", "The server is restarting: reconnect to go on.")


class LiveParams(BaseModel):
    """The query of GET /v1/live (the ticket apart)."""

    model_config = ConfigDict(extra="ignore")

    sample_rate: Annotated[int, Field(ge=8000, le=48000)]
    language: LanguageName = "auto"
    prompt: Annotated[str | None, Field(max_length=PROMPT_MAX_CHARS)] = None


def stream_params(query: dict[str, str]) -> LiveParams:
    try:
        return LiveParams.model_validate(query)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "query"
        raise Refusal("bad_request", f"{where}: {first['msg']}.") from None


class Tickets:
    """The browser tickets (hark.domain.live_tickets: in a table every live task shares, so a ticket issued by
    one task opens a stream on any) in the routes' terms: issued to an Identity, redeemed for one or refused as
    Unauthorized. `store`: the deployment's table unless given. Blocking (a table call): from a worker thread."""

    def __init__(self, store: LiveTickets | None = None):
        self._store = store

    @property
    def store(self) -> LiveTickets:
        return self._store or aws.live_tickets()

    def issue(self, identity: Identity) -> str:
        return self.store.issue(TicketHolder(identity.user_id, identity.email))

    def redeem(self, ticket: str) -> Identity:
        holder = self.store.redeem(ticket)
        if holder is None:
            raise Unauthorized("unknown, used or expired ticket")
        return Identity(holder.user_id, holder.email)


class Pcm:
    """Binary frames of s16le mono at `rate` -> float32 samples at 16 kHz (PyAV's resampler, which keeps
    its state from frame to frame)."""

    def __init__(self, rate: int):
        self.rate = rate
        self._resampler = (
            av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE) if rate != SAMPLE_RATE else None
        )

    def samples(self, data: bytes) -> np.ndarray:
        if len(data) % 2:
            raise Refusal("bad_audio", f"A binary frame of {len(data)} bytes is not whole 16-bit samples.")
        pcm = np.frombuffer(data, dtype="<i2")
        if self._resampler is None:
            return pcm.astype(np.float32) / 32768.0
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)


@dataclass(eq=False)
class Session:
    """One connection's stream: frames in, events out, and how it ends."""

    websocket: WebSocket
    stream: Stream
    pcm: Pcm
    ending: Refusal | None = None  # set once: why the stream ends (None while it goes on)
    stopped: bool = False  # the client sent stop
    gone: bool = False  # the client went away: nothing more to send
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # closed, or the client is gone
    _more: asyncio.Event = field(default_factory=asyncio.Event)

    def end(self, why: Refusal | None = None, *, stop: bool = False, gone: bool = False) -> None:
        self.stopped, self.gone = self.stopped or stop, self.gone or gone
        if self.ending is None and why is not None:
            self.ending = why
        self._more.set()

    @property
    def over(self) -> bool:
        return self.stopped or self.gone or self.ending is not None

    async def receive(self) -> None:
        try:
            while not self.over:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    self.end(gone=True)
                elif message.get("bytes") is not None:
                    self.stream.feed(self.pcm.samples(message["bytes"]))
                    if self.stream.unstepped_seconds > MAX_BACKLOG_SECONDS:
                        raise Refusal("overloaded", "The audio arrives faster than this server transcribes it.")
                    if self.stream.unstepped_seconds >= STEP_SECONDS:
                        self._more.set()
                elif _is_stop(message.get("text")):
                    self.end(stop=True)
                else:
                    raise Refusal("unsupported", 'A text frame must be {"type": "stop"}; audio goes in binary frames.')
        except Refusal as refusal:
            self.end(refusal)
        except WebSocketDisconnect:
            self.end(gone=True)

    async def decode(self) -> None:
        """Steps while audio comes, then the rest as finals, sent as they are made."""
        while not self.over:
            await self._more.wait()
            self._more.clear()
            if not self.over:
                await self.send(await anyio.to_thread.run_sync(self.stream.step))
        if not self.gone:
            await self.send(await anyio.to_thread.run_sync(self.stream.finish))

    async def send(self, events: list[Event]) -> None:
        for event in events:
            if not self.gone:
                await self.websocket.send_json(event.message())

    async def run(self) -> None:
        receiving = asyncio.create_task(self.receive())
        try:
            await self.decode()
        except Exception as err:  # a failed decode: say so, keep what was sent
            self.end(Refusal("internal", f"The stream could not be transcribed: {type(err).__name__}."))
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving
        if self.gone:
            return
        with contextlib.suppress(WebSocketDisconnect):  # the client left while the last finals were made
            if self.ending is None:
                await self.websocket.send_json({"type": "done", "text": self.stream.text})
                await self.websocket.close(CLOSE["done"])
            else:
                await refuse(self.websocket, self.ending)


def _is_stop(text: str | None) -> bool:
    try:
        message = json.loads(text or "")
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "stop"


async def refuse(websocket: WebSocket, refusal: Refusal) -> None:
    error: dict = {"type": "error", "message": refusal.message}
    if refusal.retry_after is not None:
        error["retry_after"] = refusal.retry_after
    await websocket.send_json(error)
    await websocket.close(refusal.code)


class LiveService:
    """What the routes share: the decoder (the engine), the credential check, tickets, open sessions."""

    def __init__(self, decode: Decode, authenticate: Callable[[Mapping[str, str]], Identity]):
        # authenticate: the live service's one credential check (worker.live.service), headers in
        self.decode, self.authenticate = decode, authenticate
        self.tickets = Tickets()
        self.sessions: set[Session] = set()
        self.restarting = False  # set by restart: a stream that opens after it is refused with 1012

    async def identify(self, websocket: WebSocket) -> Identity:
        ticket = websocket.query_params.get("ticket")
        try:
            if ticket is not None and "authorization" not in websocket.headers:
                return await anyio.to_thread.run_sync(self.tickets.redeem, ticket)
            return await anyio.to_thread.run_sync(self.authenticate, dict(websocket.headers))  # may fetch the JWKS
        except Unauthorized:
            raise Refusal("unauthorized", "A valid credential is needed: Authorization: Bearer, or ?ticket=.") from None
        except RateLimited as limited:
            raise Refusal("rate_limited", rate_limited(limited).message, limited.retry_after) from None

    async def restart(self) -> None:
        """Scale-in or deploy (the task's target drains, or SIGTERM): no new stream, every open one ends with
        its finals and 1012 (reconnect); returns when all did."""
        self.restarting = True
        sessions = list(self.sessions)
        for session in sessions:
            session.end(restart_refusal())
        await asyncio.gather(*(s.finished.wait() for s in sessions))


async def live(websocket: WebSocket) -> None:
    service: LiveService = websocket.app.state.streams
    await websocket.accept()
    try:
        await service.identify(websocket)
        params = stream_params(dict(websocket.query_params))
        if service.restarting:  # checked after the last await: no stream joins the sessions restart ends
            raise restart_refusal()
    except Refusal as refusal:
        await refuse(websocket, refusal)
        return
    language = None if params.language == "auto" else params.language
    session = Session(websocket, Stream(service.decode, language, params.prompt), Pcm(params.sample_rate))
    service.sessions.add(session)
    try:
        await session.run()
    finally:
        service.sessions.discard(session)
        session.finished.set()


async def create_ticket(request: Request) -> JSONResponse:
    service: LiveService = request.app.state.streams
    try:
        identity = await anyio.to_thread.run_sync(service.authenticate, dict(request.headers))
    except Unauthorized:
        return JSONResponse({"error": {"code": "unauthorized", "message": "Unauthorized"}}, status_code=401)
    except RateLimited as limited:
        error = rate_limited(limited)  # the API's own 429
        body = {"error": {"code": error.code, "message": error.message}}
        return JSONResponse(body, status_code=error.status, headers=error.headers)
    ticket = await anyio.to_thread.run_sync(service.tickets.issue, identity)
    return JSONResponse({"ticket": ticket, "expires_in": TICKET_SECONDS}, status_code=201)


ROUTES = [
    Route("/v1/live/tickets", create_ticket, methods=["POST"]),
    WebSocketRoute("/v1/live", live),
]

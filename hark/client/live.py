"""A client of the live WebSocket (docs/api.md, "Live transcription"): audio sent in real time, 100 ms a
frame as a microphone sends it, and every message the server says with its arrival time. bench/live.py and
tests/e2e/test_live_stream.py speak the protocol through it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

FRAME_SECONDS = 0.1
RECONNECT = 1012  # the close code of a server going away (docs/api.md, "Live transcription")


def pcm(path: Path, rate: int) -> bytes:
    """A recording as the protocol's audio: s16le mono at `rate` (decoded with PyAV, the worker's decoder)."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        frames = [f.to_ndarray().reshape(-1) for frame in container.decode(audio=0) for f in resampler.resample(frame)]
    return np.concatenate(frames).astype("<i2").tobytes()


@dataclass
class Heard:
    """What the server sent, in order, each with its arrival in seconds since the session began."""

    messages: list[dict] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    close_code: int | None = None
    began: float = field(default_factory=time.monotonic)

    @property
    def reconnect(self) -> bool:
        """The server closed with 1012: it is going away (scale-in, a deploy) and sent the finals of all the
        audio it received first. Nothing is lost: open a new stream to go on (this client does not do it)."""
        return self.close_code == RECONNECT

    def of(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]

    def arrived(self, kind: str) -> list[float]:
        return [t for m, t in zip(self.messages, self.arrivals, strict=True) if m["type"] == kind]


Send = Callable[[ClientConnection, Heard], Awaitable[None]]


async def send_paced(ws: ClientConnection, audio: bytes, rate: int, heard: Heard) -> None:
    """`audio` in frames of FRAME_SECONDS, each sent when its time comes (from heard.began: no drift)."""
    size = int(rate * FRAME_SECONDS) * 2
    for n, i in enumerate(range(0, len(audio), size)):
        await asyncio.sleep(max(0.0, heard.began + n * FRAME_SECONDS - time.monotonic()))
        await ws.send(audio[i : i + size])


def paced(audio: bytes, rate: int) -> Send:
    """Send `audio` in real time, then stop."""

    async def send(ws: ClientConnection, heard: Heard) -> None:
        await send_paced(ws, audio, rate, heard)
        await ws.send(json.dumps({"type": "stop"}))

    return send


async def _listen(ws: ClientConnection, heard: Heard) -> None:
    try:
        async for message in ws:
            heard.arrivals.append(time.monotonic() - heard.began)
            heard.messages.append(json.loads(message))
    except ConnectionClosed:
        pass
    heard.close_code = ws.close_code


async def session(url: str, headers: dict[str, str] | None = None, send: Send | None = None) -> Heard:
    """Connect, run `send` beside a listener, and return everything heard up to the server's close."""
    async with connect(url, additional_headers=headers or {}, max_size=2**22) as ws:
        heard = Heard()
        listener = asyncio.create_task(_listen(ws, heard))
        if send is not None:
            try:
                await send(ws, heard)
            except ConnectionClosed:  # the server closed first: the listener has its reason
                pass
        await listener
    return heard

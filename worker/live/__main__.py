"""`python -m worker.live [--host H] [--port P]`: the live service under uvicorn, until SIGTERM or Ctrl-C.

On SIGTERM (ECS stopping the task at scale-in or a deploy) every open stream first gets the finals of the
audio it sent and a close with 1012, which tells its client to reconnect; then uvicorn shuts down. The
streams get HARK_STOP_TIMEOUT_SECONDS less the workers' margin (worker/runtime.py) for that; uvicorn closes
any still open after it with 1012 too, without their last finals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import uvicorn

from hark.domain.settings import get_settings
from worker.runtime import stop_margin
from worker.transcription.engine import Engine

from .app import create_app, settings_verifier
from .websocket import LiveService


class DrainingServer(uvicorn.Server):
    """uvicorn would close open WebSockets at once (1012 without the last finals): streams end first."""

    def __init__(self, config: uvicorn.Config, live: LiveService, stop_timeout: float):
        super().__init__(config)
        self.live = live
        self.drain_seconds = stop_timeout - stop_margin(stop_timeout)

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:  # no new stream while the open ones end
            server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.live.restart(), self.drain_seconds)
        await super().shutdown(sockets)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m worker.live", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    settings = get_settings()
    app = create_app(Engine(settings), settings_verifier(settings))
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info")
    DrainingServer(config, app.state.live, settings.stop_timeout_seconds).run()


if __name__ == "__main__":
    main()

"""`python -m worker.live [--host H] [--port P]`: the live service under uvicorn (by default on
HARK_LIVE_PORT, the ECS task's container port), until SIGTERM or Ctrl-C.

ECS stops a task (scale-in, a deploy) in two steps (docs/scaling.md, "The live service"): the load balancer drains
its target first, breaking the connections still open when the deregistration delay ends, and only then does
ECS send SIGTERM. So the service ends its streams at the first step: behind the balancer
(HARK_LIVE_TARGET_GROUP_ARN) it watches its own target (worker/live/target.py), and once the target drains no
new stream opens and every open one gets the finals of the audio it sent, then a close with 1012, which tells
its client to reconnect (to a task that is not leaving). Sync requests go on meanwhile.

SIGTERM does the same for any stream still open (none, behind the balancer), then uvicorn shuts down. The
streams get HARK_STOP_TIMEOUT_SECONDS less the workers' margin (worker/runtime.py) for that; uvicorn closes any
still open after it with 1012 too, without their last finals. Every minute it reports the task's load for the
scaling policy (worker/live/load.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import uvicorn

from hark.domain import live_metrics
from hark.domain.settings import get_settings
from worker.live.app import create_app
from worker.live.websocket import LiveService
from worker.runtime import stop_margin


class DrainingServer(uvicorn.Server):
    """uvicorn would close open WebSockets at once (1012 without the last finals): streams end first."""

    def __init__(self, config: uvicorn.Config, streams: LiveService, stop_timeout: float):
        super().__init__(config)
        self.streams = streams
        self.drain_seconds = stop_timeout - stop_margin(stop_timeout)

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:  # no new stream while the open ones end
            server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.streams.restart(), self.drain_seconds)
        await super().shutdown(sockets)


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m worker.live", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")  # behind the load balancer, in the task's own network
    parser.add_argument("--port", type=int, default=settings.live_port)
    args = parser.parse_args()
    # the scaling policy's input; the port is its target's in the balancer's target group
    app = create_app(settings, report_seconds=live_metrics.REPORT_SECONDS, port=args.port)
    # The load balancer terminates TLS; its idle timeout is the longer one, so a kept-alive connection is never
    # closed here while the balancer still uses it.
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info", timeout_keep_alive=75)
    DrainingServer(config, app.state.streams, settings.stop_timeout_seconds).run()


if __name__ == "__main__":
    main()

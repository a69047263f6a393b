"""`python -m worker.live`: the live service on HARK_LIVE_PORT (the ECS task's container port)."""

from __future__ import annotations

import uvicorn

from hark.domain.settings import get_settings
from worker.live.app import create_app


def main() -> None:
    settings = get_settings()
    # Behind the load balancer (it terminates TLS); its idle timeout is the longer one, so a kept-alive
    # connection is never closed here while the balancer still uses it.
    uvicorn.run(create_app(settings), host="0.0.0.0", port=settings.live_port, timeout_keep_alive=75)


if __name__ == "__main__":
    main()

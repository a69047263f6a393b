"""`python -m worker.webhooks`: consume the webhook queue until SIGTERM (worker/runtime.py)."""

from __future__ import annotations

from worker.runtime import block_stop_signals, serve

block_stop_signals()  # before any thread exists, as in worker.notification

from hark.domain.settings import get_settings  # noqa: E402
from worker.webhooks.worker import webhook_consumer  # noqa: E402


def main() -> None:
    settings = get_settings()
    serve(webhook_consumer(settings), settings.stop_timeout_seconds)


if __name__ == "__main__":
    main()

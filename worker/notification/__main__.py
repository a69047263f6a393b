"""`python -m worker.notification`: consume the notify queue until SIGTERM (worker/runtime.py)."""

from __future__ import annotations

from worker.runtime import block_stop_signals, serve

block_stop_signals()  # before any thread exists, as in worker.transcription

from hark.domain.settings import get_settings  # noqa: E402
from worker.notification.worker import notify_consumer  # noqa: E402


def main() -> None:
    settings = get_settings()
    serve(notify_consumer(settings), settings.stop_timeout_seconds)


if __name__ == "__main__":
    main()

"""`python -m worker.transcription`: load the model once, then consume the transcribe queue.

SIGTERM (ECS stopping the task) or SIGINT: take no new message, finish the current one if it ends
before the stop timeout, otherwise hand it back (visibility 0) and exit before ECS sends SIGKILL
(worker/runtime.py).
"""

from __future__ import annotations

from worker.runtime import block_stop_signals, serve

block_stop_signals()  # before any thread exists: CTranslate2 starts its own when the model loads

from hark.domain.settings import get_settings  # noqa: E402

from .consumer import transcribe_consumer  # noqa: E402
from .engine import Engine  # noqa: E402


def main() -> None:
    settings = get_settings()
    engine = Engine(settings)
    consumer = transcribe_consumer(settings, engine)
    serve(
        consumer,
        settings.stop_timeout_seconds,
        model=engine.name,
        device=engine.device,
        compute_type=engine.compute_type,
        load_seconds=round(engine.load_seconds, 2),
    )


if __name__ == "__main__":
    main()

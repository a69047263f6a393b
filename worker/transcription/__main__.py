"""`python -m worker.transcription`: load the model once, then consume the transcribe queue.

SIGTERM (ECS stopping the task) or SIGINT: take no new message, finish the current one if it ends
before the stop timeout, otherwise hand it back (visibility 0) and exit before ECS sends SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

# Block the stop signals before any thread exists (CTranslate2 starts its own), so they wait for
# the watcher thread below instead of interrupting the main thread, which may be deep in C code
# where a Python signal handler would only run after the current batch.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

from hark.settings import get_settings  # noqa: E402

from .consumer import Worker, logger  # noqa: E402
from .engine import Engine  # noqa: E402


def stop_margin(timeout: float) -> float:
    """Time kept back from the stop timeout for handing the message back and exiting."""
    return min(10.0, timeout * 0.2)


def watch_signals(worker: Worker, timeout: float) -> None:
    received = signal.sigwait(STOP_SIGNALS)
    deadline = time.monotonic() + timeout - stop_margin(timeout)
    logger.info("stop signal: finishing the current message", signal=signal.Signals(received).name,
                seconds_left=round(deadline - time.monotonic(), 1))
    worker.stop()
    if worker.polling and worker.current is None:
        # Idle in a long poll: nothing to finish, so don't sit out the rest of the poll. A message
        # arriving in this very instant stays hidden for its lease, then returns to the queue.
        logger.info("worker stopped while idle")
        sys.stdout.flush()
        os._exit(0)
    if worker.finished.wait(max(0.0, deadline - time.monotonic())):
        return
    worker.hand_back()
    logger.info("worker stopped before the stop timeout")
    sys.stdout.flush()
    os._exit(0)  # the main thread may be inside the model for a while yet


def main() -> None:
    settings = get_settings()
    engine = Engine(settings)
    worker = Worker(settings, engine)
    threading.Thread(target=watch_signals, args=(worker, settings.stop_timeout_seconds),
                     name="signals", daemon=True).start()
    worker.run()


if __name__ == "__main__":
    main()

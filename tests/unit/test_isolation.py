"""worker.transcription.consumer.Isolation: a message received before runs with nothing else in hand."""

from __future__ import annotations

import threading

from worker.transcription.consumer import Isolation


def test_alone_waits_for_those_running_and_holds_back_those_after_it():
    isolation = Isolation()
    order: list[str] = []
    first_in, release_first = threading.Event(), threading.Event()

    def shared(name: str, started: threading.Event | None = None, release: threading.Event | None = None):
        with isolation.shared():
            order.append(f"{name} in")
            if started:
                started.set()
            if release:
                release.wait()
            order.append(f"{name} out")

    def alone():
        with isolation.alone():
            order.append("alone in")
            order.append("alone out")

    first = threading.Thread(target=shared, args=("first", first_in, release_first))
    first.start()
    first_in.wait()
    # Each blocks on the isolation's condition while "first" runs: the lone one for "first" to end, the
    # later one behind the lone one (the condition's own count of waiting threads is the signal).
    waiting = isolation._changed._waiters  # type: ignore[attr-defined]
    lone = threading.Thread(target=alone)
    later = threading.Thread(target=shared, args=("later",))
    for n, thread in enumerate((lone, later), start=1):
        thread.start()
        while len(waiting) < n:
            threading.Event().wait(0.01)
    assert order == ["first in"]
    release_first.set()
    for t in (first, lone, later):
        t.join()
    assert order == ["first in", "first out", "alone in", "alone out", "later in", "later out"]

"""worker.transcription.consumer.Isolation: a message a worker may have died holding runs with nothing else in hand."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from botocore.exceptions import ClientError

from hark.domain.messages import ChunkMessage
from hark.domain.settings import Settings
from worker.runtime import Delivery
from worker.transcription.consumer import Isolation, TranscribeHandler


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


def test_a_message_received_again_whose_job_cannot_be_read_runs_alone():
    """Whether a worker died holding it is read from the job; when DynamoDB cannot answer (throttled), the
    message is taken for one that may have: it runs alone, as every message received again once did."""

    class Unreadable:
        def get(self, job_id):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetItem")

    handler = TranscribeHandler(
        SimpleNamespace(settings=Settings(), last_attempt=4, store=SimpleNamespace(jobs=Unreadable()))
    )
    chunk = ChunkMessage(job_id="j1", user_id="u1", index=0, total=2, offset=0.0, duration=300.0, key="chunks/0.flac")
    again, first = (Delivery(id="m1", receipt="r", body="", receive_count=n) for n in (2, 1))
    assert handler.may_have_killed(again, chunk)
    assert not handler.may_have_killed(first, chunk)  # a first receive is never suspect: no read

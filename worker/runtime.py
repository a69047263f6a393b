"""The SQS consumer runtime every worker runs on: `python -m worker.transcription`, `worker.notification`
and `worker.webhooks`.

What it owns, so that the workers only decide what a message means:
- the loop: long-poll receive with a short visibility lease (HARK_VISIBILITY_LEASE_SECONDS), each message
  handed to the worker's handler, which answers with an Outcome: one at a time, or with `concurrency`
  above 1 up to that many at once, each in a thread of a pool (a receive asks for no more than the free
  threads, so nothing received waits unstarted);
- the lease: a heartbeat re-extends every message in hand every third of the lease, so a long job is
  never handed to a second worker, while a killed worker's messages are visible again within one lease;
- the fates: DONE deletes the message; RETRY hides it for a delay (Backoff, by receive count);
  DEAD_LETTER makes it visible at once, so SQS's redrive moves it to the DLQ on its next receive.
  A handler that raises gets RETRY with the backoff: nothing is lost to a bug or an outage;
- SIGTERM/SIGINT (ECS stopping the task): no new message; messages received but not started go back
  at once; those in hand finish if they can before HARK_STOP_TIMEOUT_SECONDS less a margin, else every
  unfinished one is handed back (visibility 0) and the process exits before ECS's SIGKILL. An idle worker
  exits at once;
- one logging style (Powertools JSON, extra keys as keyword arguments, `message_id` and `worker` on
  every line; per thread, so messages handled at once keep their own) and EMF metrics flushed after
  every message.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from hark.domain import aws
from hark.domain.settings import Settings

MAX_VISIBILITY = 12 * 3600  # SQS's limit for ChangeMessageVisibility
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def block_stop_signals() -> None:
    """Call first thing in `__main__`, before any thread exists (CTranslate2 starts its own): the stop
    signals then wait for the watcher thread of `serve` instead of interrupting the main thread, which
    may be deep in C code where a Python signal handler would only run after the current batch."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


@dataclass(frozen=True)
class Delivery:
    """One receipt of an SQS message. The same message comes back as a new delivery (same id, new
    receipt handle, receive count one higher)."""

    id: str
    receipt: str
    body: str
    receive_count: int

    @classmethod
    def from_sqs(cls, raw: Mapping[str, Any]) -> Delivery:
        return cls(
            id=raw["MessageId"],
            receipt=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        )


class Fate(StrEnum):
    DONE = "done"  # delete the message
    RETRY = "retry"  # hide it for `delay` seconds, then another attempt
    DEAD_LETTER = "dead-letter"  # visible at once: the redrive policy moves it to the DLQ


@dataclass(frozen=True)
class Outcome:
    fate: Fate
    delay: int | None = None  # RETRY only; None: the consumer's backoff for this receive count


DONE = Outcome(Fate.DONE)
DEAD_LETTER = Outcome(Fate.DEAD_LETTER)


def retry(delay: int | None = None) -> Outcome:
    return Outcome(Fate.RETRY, delay)


@dataclass(frozen=True)
class Backoff:
    """Seconds a message waits after a failed attempt, by its receive count n (1 for the first).

    Either listed steps (the delay after the 1st, 2nd, ... receive; the last repeats), or
    base * 2^(n-1); both capped at `cap` and at SQS's 12 hours.
    """

    steps: tuple[int, ...] = ()
    base: float = 1
    cap: int = MAX_VISIBILITY

    @classmethod
    def listed(cls, steps: list[int] | tuple[int, ...]) -> Backoff:
        return cls(steps=tuple(steps))

    @classmethod
    def exponential(cls, base: float, cap: int) -> Backoff:
        return cls(base=base, cap=cap)

    def delay(self, receive_count: int) -> int:
        n = max(1, receive_count)
        value = self.steps[min(n, len(self.steps)) - 1] if self.steps else self.base * 2 ** min(n - 1, 30)
        return int(max(1, min(value, self.cap, MAX_VISIBILITY)))


class Telemetry:
    """A worker's logger and EMF metrics; metrics are flushed once per message, only when there are some."""

    def __init__(self, logger: Logger, metrics: Metrics):
        self.logger, self.metrics = logger, metrics
        self._pending = False
        self._lock = threading.Lock()  # messages handled at once share the metric set

    def metric(self, name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
        with self._lock:
            self.metrics.add_metric(name=name, unit=unit, value=value)
            self._pending = True

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                # Powertools prints the EMF document, then its newline: two writes to stdout. A log record
                # from another message's thread written between them would spoil both lines (CloudWatch
                # would read neither: the metrics lost). Records are written under their handler's lock.
                handler = self.logger.registered_handler
                handler.acquire()
                try:
                    self.metrics.flush_metrics()
                finally:
                    handler.release()
                self._pending = False


Handler = Callable[[Delivery], Outcome]


class QueueConsumer:
    """Receives from one queue and settles each delivery as its handler says (module docstring)."""

    def __init__(
        self,
        *,
        queue_url: str,
        handler: Handler,
        settings: Settings,
        telemetry: Telemetry,
        backoff: Backoff,
        batch_size: int = 1,
        concurrency: int = 1,
        message_keys: tuple[str, ...] = (),
        on_hand_back: Callable[[Delivery], None] | None = None,
    ):
        self.queue_url, self.handler, self.backoff = queue_url, handler, backoff
        self.on_hand_back = on_hand_back  # told of each message handed back unfinished, before it is visible
        self.telemetry = telemetry
        self.logger = telemetry.logger
        self.sqs = aws.client("sqs")
        self.lease = settings.visibility_lease_seconds
        self.poll_wait = settings.poll_wait_seconds
        self.batch_size = max(1, min(10, batch_size))
        self.concurrency = max(1, concurrency)
        self._free = threading.Semaphore(self.concurrency)  # threads not handling a message
        self.message_keys = ("message_id", *message_keys)  # the handler's per-message log keys, cleared after it
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()  # guards `in_hand` between the loop, the heartbeat and the hand-back
        self.in_hand: list[Delivery] = []  # received and not yet settled, the current one first
        self.polling = False  # inside an idle long poll: nothing in hand to finish or hand back
        self.logger.append_keys(worker=f"{socket.gethostname()}:{os.getpid()}")

    # -- the loop --------------------------------------------------------------------------------
    def run(self, **ready_details) -> None:
        self.logger.info("worker ready", queue_url=self.queue_url, lease_seconds=self.lease, **ready_details)
        beat_stop = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(beat_stop,), name="heartbeat", daemon=True)
        heartbeat.start()
        errors = 0
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="message") if self.concurrency > 1 else None
        try:
            while not self.stopping.is_set():
                free = self._take_free() if pool else self.batch_size
                if not free:
                    continue
                try:
                    batch = self._receive(free)
                    errors = 0
                except (ClientError, BotoCoreError):
                    errors += 1
                    self.logger.exception("receive failed; polling again shortly")
                    self.stopping.wait(min(30, 2**errors))
                    batch = []
                if pool:
                    for _ in range(free - len(batch)):
                        self._free.release()
                for delivery in batch:
                    if self.stopping.is_set():  # received during the last poll: not started, give it back
                        self._settle(delivery, Outcome(Fate.RETRY, 0))
                        self.logger.info("stopping: message handed back unstarted", message_id=delivery.id)
                        if pool:
                            self._free.release()
                        continue
                    if pool:
                        pool.submit(self._handle_in_pool, delivery)
                    else:
                        self.handle(delivery)
        finally:
            if pool:
                pool.shutdown(wait=True)  # the messages in hand finish (or SIGTERM's deadline hands them back)
            beat_stop.set()
            self.finished.set()
            self.logger.info("worker stopped")

    def _take_free(self) -> int:
        """Wait for a free thread (waking for a stop signal), then take every free one: how many to receive."""
        if not self._free.acquire(timeout=1):
            return 0
        taken = 1
        while taken < min(10, self.concurrency) and self._free.acquire(blocking=False):
            taken += 1
        return taken

    def _handle_in_pool(self, delivery: Delivery) -> None:
        try:
            self.handle(delivery)
        finally:
            self._free.release()

    def _receive(self, count: int) -> list[Delivery]:
        self.polling = True  # set before `stopping` is read; the signal watcher sets them the other way round
        try:
            if self.stopping.is_set():
                return []
            reply = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max(1, min(10, count)),
                WaitTimeSeconds=self.poll_wait,
                VisibilityTimeout=self.lease,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            batch = [Delivery.from_sqs(raw) for raw in reply.get("Messages", [])]
            with self._lock:
                self.in_hand.extend(batch)
            return batch
        finally:
            self.polling = False

    def handle(self, delivery: Delivery) -> None:
        self.logger.thread_safe_append_keys(message_id=delivery.id)
        try:
            try:
                outcome = self.handler(delivery)
            except Exception:  # a bug or an outage the handler did not expect: try again later
                outcome = retry()
                self.logger.exception(
                    "message failed: retrying later",
                    receive_count=delivery.receive_count,
                    retry_in_seconds=self.backoff.delay(delivery.receive_count),
                )
            self._settle(delivery, outcome)
        finally:
            self.telemetry.flush()
            self.logger.thread_safe_remove_keys(list(self.message_keys))
            self.logger.remove_keys(list(self.message_keys))

    def _settle(self, delivery: Delivery, outcome: Outcome) -> None:
        with self._lock:
            if delivery not in self.in_hand:
                return  # handed back meanwhile (out of time after SIGTERM): no longer ours to settle
            self.in_hand.remove(delivery)
            try:
                if outcome.fate == Fate.DONE:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt)
                else:
                    seconds = (
                        0
                        if outcome.fate == Fate.DEAD_LETTER
                        else (self.backoff.delay(delivery.receive_count) if outcome.delay is None else outcome.delay)
                    )
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=delivery.receipt,
                        VisibilityTimeout=int(max(0, min(seconds, MAX_VISIBILITY))),
                    )
            except (ClientError, BotoCoreError):
                # The message comes back when its lease runs out; the handlers are idempotent.
                self.logger.exception(
                    "could not settle the message; it returns after its lease", fate=outcome.fate.value
                )

    # -- the lease -------------------------------------------------------------------------------
    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 3):
            with self._lock:
                held = list(self.in_hand)
                if not held:
                    continue
                for start in range(0, len(held), 10):  # ChangeMessageVisibilityBatch takes 10 at most
                    try:
                        self.sqs.change_message_visibility_batch(
                            QueueUrl=self.queue_url,
                            Entries=[
                                {"Id": str(i), "ReceiptHandle": d.receipt, "VisibilityTimeout": self.lease}
                                for i, d in enumerate(held[start : start + 10])
                            ],
                        )
                    except Exception:  # a missed beat only risks a duplicate, which the handlers absorb
                        self.logger.warning("heartbeat failed", exc_info=True)

    # -- stopping --------------------------------------------------------------------------------
    def stop(self) -> None:
        self.stopping.set()

    def hand_back(self) -> None:
        """Out of time after SIGTERM: make every message in hand (all of them, with several at once)
        visible again for another worker."""
        with self._lock:
            held, self.in_hand = self.in_hand, []
            for delivery in held:
                if self.on_hand_back:
                    try:
                        self.on_hand_back(delivery)
                    except Exception:  # the hand-back matters more than its record
                        self.logger.exception("could not record the hand-back", message_id=delivery.id)
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt, VisibilityTimeout=0
                    )
                    self.logger.warning("out of time: message handed back", message_id=delivery.id)
                except Exception:
                    self.logger.exception(
                        "hand-back failed; the message returns when its lease expires", message_id=delivery.id
                    )


def stop_margin(timeout: float) -> float:
    """Time kept back from the stop timeout for handing the message back and exiting."""
    return min(10.0, timeout * 0.2)


def _watch_signals(consumer: QueueConsumer, timeout: float) -> None:
    received = signal.sigwait(STOP_SIGNALS)
    deadline = time.monotonic() + timeout - stop_margin(timeout)
    consumer.logger.info(
        "stop signal: finishing the messages in hand",
        signal=signal.Signals(received).name,
        seconds_left=round(deadline - time.monotonic(), 1),
    )
    consumer.stop()
    if consumer.polling and not consumer.in_hand:
        # Idle in a long poll: nothing to finish, so don't sit out the rest of the poll. A message
        # arriving in this very instant stays hidden for its lease, then returns to the queue.
        consumer.logger.info("worker stopped while idle")
        sys.stdout.flush()
        os._exit(0)
    if consumer.finished.wait(max(0.0, deadline - time.monotonic())):
        return
    consumer.hand_back()
    consumer.logger.info("worker stopped before the stop timeout")
    sys.stdout.flush()
    os._exit(0)  # the main thread may be inside the model or an SES call for a while yet


def serve(consumer: QueueConsumer, stop_timeout: float, **ready_details) -> None:
    """Run `consumer` in this (main) thread until a stop signal; block_stop_signals() must have run."""
    threading.Thread(target=_watch_signals, args=(consumer, stop_timeout), name="signals", daemon=True).start()
    consumer.run(**ready_details)

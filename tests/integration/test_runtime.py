"""The consumer runtime (worker/runtime.py) with several messages in flight, against the emulator's SQS:
as many handled at once as allowed and no more, every one kept hidden by the heartbeat past its lease
(more than ChangeMessageVisibilityBatch's 10 at once), each settled as its handler said."""

from __future__ import annotations

import threading
import time

from aws_lambda_powertools import Logger, Metrics

from hark.domain import aws
from hark.domain.settings import Settings
from worker.runtime import DONE, Backoff, Delivery, Outcome, QueueConsumer, Telemetry, retry


def visible_and_hidden(url: str) -> tuple[int, int]:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_many_in_flight_each_leased_and_settled(stack):
    url = aws.queue_url(stack.transcribe_queue.name)
    sqs = aws.client("sqs")
    concurrency, total, lease = 12, 14, 3
    total += visible_and_hidden(url)[0]  # what provisioning left there (S3's test event): handled too
    for n in range(14):
        sqs.send_message(QueueUrl=url, MessageBody=f"message {n}" if n else "retry me")
    release = threading.Event()
    lock = threading.Lock()
    in_hand: set[str] = set()
    most = 0

    def handler(delivery: Delivery) -> Outcome:
        nonlocal most
        with lock:
            in_hand.add(delivery.id)
            most = max(most, len(in_hand))
        release.wait(60)
        with lock:
            in_hand.discard(delivery.id)
        return retry(600) if delivery.body == "retry me" else DONE

    consumer = QueueConsumer(
        queue_url=url,
        handler=handler,
        settings=Settings(visibility_lease_seconds=lease, poll_wait_seconds=1),
        telemetry=Telemetry(Logger(service="runtime-test"), Metrics(namespace="HarkTest", service="runtime-test")),
        backoff=Backoff.listed([600]),
        concurrency=concurrency,
    )
    runner = threading.Thread(target=consumer.run, daemon=True)
    runner.start()
    try:
        deadline = time.time() + 60
        while most < concurrency:
            assert time.time() < deadline, f"only {most} messages handled at once"
            time.sleep(0.1)
        # Three leases later every message in hand is still hidden: the heartbeat renewed all twelve.
        time.sleep(3 * lease)
        assert most == concurrency  # never more than allowed at once
        assert visible_and_hidden(url) == (total - concurrency, concurrency)
        release.set()
        deadline = time.time() + 60
        while visible_and_hidden(url) != (0, 1):  # all deleted but "retry me", hidden for its delay
            assert time.time() < deadline, visible_and_hidden(url)
            time.sleep(0.2)
    finally:
        release.set()
        consumer.stop()
        runner.join(30)
    assert not runner.is_alive() and consumer.in_hand == []


def test_out_of_time_each_message_is_recorded_then_handed_back_even_if_its_record_fails(stack):
    """The hand-back after SIGTERM: the consumer's recorder hears of each message in hand while it is still
    hidden (so no other worker can take it before its record), then the message is visible at once; a
    recorder that fails keeps no message from going back."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="runtime-hand-back-test")["QueueUrl"]
    for n in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"message {n}")
    release = threading.Event()
    recorded: list[tuple[str, tuple[int, int]]] = []

    def record(delivery: Delivery) -> None:
        recorded.append((delivery.body, visible_and_hidden(url)))
        if len(recorded) == 1:
            raise RuntimeError("the job table is unreachable")

    consumer = QueueConsumer(
        queue_url=url,
        handler=lambda delivery: DONE if release.wait(60) else retry(),
        settings=Settings(visibility_lease_seconds=30, poll_wait_seconds=1),
        telemetry=Telemetry(Logger(service="runtime-test"), Metrics(namespace="HarkTest", service="runtime-test")),
        backoff=Backoff.listed([600]),
        concurrency=2,
        on_hand_back=record,
    )
    runner = threading.Thread(target=consumer.run, daemon=True)
    runner.start()
    try:
        deadline = time.time() + 60
        while len(consumer.in_hand) < 2:
            assert time.time() < deadline, consumer.in_hand
            time.sleep(0.1)
        consumer.stop()
        consumer.hand_back()
        # Each recorded while hidden: the first before anything went back, the second after the first did.
        assert sorted(body for body, _ in recorded) == ["message 0", "message 1"]
        assert [seen for _, seen in recorded] == [(0, 2), (1, 1)]
        assert visible_and_hidden(url) == (2, 0) and consumer.in_hand == []
    finally:
        release.set()
        consumer.stop()
        runner.join(30)
    assert not runner.is_alive()
    assert visible_and_hidden(url) == (2, 0)  # the handlers' DONE came too late: no longer theirs to settle

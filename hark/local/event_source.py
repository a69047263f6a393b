"""Lambda's SQS event source mapping, on the laptop: long-poll a queue, hand each batch to a Lambda
handler as the SQS event AWS documents, delete what it did not report as failed.

https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html: the event's Records carry messageId,
receiptHandle, body, attributes, messageAttributes, md5OfBody, eventSource, eventSourceARN and
awsRegion; with ReportBatchItemFailures the handler answers {"batchItemFailures": [{"itemIdentifier":
messageId}]}, and those records come back after the queue's visibility timeout (the redrive policy
moves them to the DLQ in the end). A handler that raises fails the whole batch the same way.
`hark up` runs one for the upload-status function from the built asset, as the gateway runs the API
handlers; the tests that drive it with their own environment run the handler in process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from hark.domain import aws
from hark.domain.resources import QueueFunctionDef
from hark.local.gateway import LambdaFunction
from hark.local.provision import queue_arn


class SqsEventSource:
    def __init__(
        self,
        function: QueueFunctionDef,
        region: str,
        poll_wait_seconds: int = 1,
        lambda_function: Callable[[dict], Any] | None = None,
    ):
        """`lambda_function`: what runs the handler (`hark up`: from the built asset; default: in this
        process)."""
        self.function = function
        self.region = region
        self.poll_wait = poll_wait_seconds
        self.lambda_function = lambda_function or LambdaFunction(function.handler)
        self.sqs = aws.client("sqs")
        self.url = aws.queue_url(function.queue.name)
        self.arn = queue_arn(region, function.queue.name)
        self.stopping = threading.Event()
        self.invocations = 0
        self._thread: threading.Thread | None = None

    def start(self) -> SqsEventSource:
        self._thread = threading.Thread(target=self._run, name=f"event-source-{self.function.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # the emulator going away at shutdown, or a blip: poll again
                if not self.stopping.wait(1.0):
                    continue

    def poll_once(self) -> int:
        reply = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=self.function.batch_size,
            WaitTimeSeconds=self.poll_wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = reply.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self.record(m) for m in messages]}
        self.invocations += 1
        try:
            answer = self.lambda_function(event)
            failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
        except Exception:
            failed = {m["MessageId"] for m in messages}  # the whole batch comes back after its visibility
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attributes.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                "ApproximateFirstReceiveTimestamp": attributes.get(
                    "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                ),
            },
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": self.region,
        }

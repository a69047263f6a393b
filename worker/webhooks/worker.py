"""The webhook worker: one signed POST per finished job that asked for a webhook (Standard Webhooks).

Per webhook message (worker/runtime.py receives, leases and settles it): read the job -> check its URL
again (DNS can change since creation; hark.domain.webhooks.check_url) -> sign the body with the owner's secret(s)
-> wait for the receiver's turn (ReceiverTurns) -> POST to the checked address (pinned: hark.domain.webhooks.post)
within a HARK_WEBHOOK_TIMEOUT_SECONDS deadline for the whole attempt -> record the attempt on the job
(GET /jobs/{id} shows it) -> settle:
- a 2xx answer: delivered (webhook_delivered_at), DONE; a later copy of the message is dropped;
- any other answer, or none: the message is hidden for the next HARK_WEBHOOK_RETRY_DELAYS_SECONDS step
  (30 s, 2 min, 10 min, 1 h, 3 h, 6 h, 12 h: about a day); after the last attempt (the queue's
  maxReceiveCount) it goes to the DLQ at once, from where `hark dlq replay webhooks` brings it back;
- a URL that now resolves to a refused address: recorded with the reason, not retried (DONE);
- 410 Gone: the receiver says the endpoint is gone for good (Standard Webhooks: stop sending), so it is
  recorded and not retried (DONE); `hark dlq` has nothing to replay for it.
Messages are handled HARK_WEBHOOK_CONCURRENCY at once, each in its own thread, and shared fairly among
receivers: a receiver that answers slowly (or drips its answer a byte at a time until the deadline cuts it
off) holds only its own share of the threads, so it delays no one else's webhooks.
One message owns a job's delivery (JobStore.claim_webhook): a second copy (a re-sent notification, SQS's
at-least-once) is dropped, so there is one chain of attempts per job; a copy replayed from the DLQ takes
over once the owner gave up. Every attempt carries the same webhook-id (msg_<job id>) all the same, so a
receiver can drop duplicates.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from hark.domain import aws, webhooks
from hark.domain.api_schemas import job_view
from hark.domain.jobs import Job, JobStore, WebhookAttempt, now_iso, signing_secrets
from hark.domain.messages import BrokenMessage, parse_webhook_body
from hark.domain.settings import Settings
from worker.runtime import DEAD_LETTER, DONE, Backoff, Delivery, Outcome, QueueConsumer, Telemetry, retry

SERVICE = "webhooks"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Hark", service=SERVICE)


def message_id(job: Job) -> str:
    """The webhook-id of a job's delivery: the same on every attempt (the receiver's idempotency key)."""
    return f"msg_{job.job_id}"


def payload(job: Job, view: dict, timestamp: int) -> str:
    """The Standard Webhooks envelope: the event type, when it happened, and the job as GET /jobs/{id} shows it."""
    event = {
        "type": f"job.{job.status.value.lower()}",
        "timestamp": datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "data": view,
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def _iso_in(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds").replace("+00:00", "Z")


class ReceiverTurns:
    """Fair shares of the worker's attempts among receivers (a receiver: a URL's origin). At most
    `at_once` attempts to one receiver run at a time; as many more of its messages may wait for a turn,
    each for one attempt deadline at most (by then a running attempt has ended); a message beyond those,
    or whose wait runs out, is not attempted now but goes back to the queue for one deadline. So a
    receiver, however slow and however many messages it has, holds at most 2 x at_once threads.
    A deferral is a receive like any other (SQS counts receives for the redrive), so only a burst of more
    than 2 x at_once messages for one receiver spends any of its messages' receives on waiting."""

    def __init__(self, at_once: int, wait_seconds: float):
        self.at_once, self.wait_seconds = at_once, wait_seconds
        self._running: Counter[str] = Counter()
        self._waiting: Counter[str] = Counter()
        self._changed = threading.Condition()

    def take(self, receiver: str) -> bool:
        """A turn for an attempt to `receiver` (give it back after), or False: defer the message."""
        with self._changed:
            if self._running[receiver] >= self.at_once:
                if self._waiting[receiver] >= self.at_once:
                    return False
                self._waiting[receiver] += 1
                try:
                    free = self._changed.wait_for(lambda: self._running[receiver] < self.at_once, self.wait_seconds)
                finally:
                    self._waiting[receiver] -= 1
                    if not self._waiting[receiver]:
                        del self._waiting[receiver]
                if not free:
                    return False
            self._running[receiver] += 1
            return True

    def give_back(self, receiver: str) -> None:
        with self._changed:
            self._running[receiver] -= 1
            if not self._running[receiver]:
                del self._running[receiver]
            self._changed.notify_all()


class WebhookHandler:
    def __init__(self, settings: Settings, store: JobStore | None = None, resolver: webhooks.Resolver | None = None):
        self.settings = settings
        self.store = store or aws.job_store()
        self.s3 = aws.client("s3")
        res = aws.stack_resources()
        self.transcripts_bucket = res.transcripts_bucket.name
        self.max_attempts = res.webhook_queue.max_receive_count
        self.resolver = resolver
        self.telemetry = Telemetry(logger, metrics)
        self.backoff = Backoff.listed(settings.webhook_retry_delays_seconds)
        self.turns = ReceiverTurns(settings.webhook_attempts_per_receiver, settings.webhook_timeout_seconds)
        self.defer_seconds = math.ceil(settings.webhook_timeout_seconds)  # a turn is free by then

    def __call__(self, delivery: Delivery) -> Outcome:
        try:
            note = parse_webhook_body(delivery.body)
        except BrokenMessage as err:
            logger.error("broken webhook message: left for the dead-letter queue", reason=str(err))
            return DEAD_LETTER
        logger.append_keys(job_id=note.job_id)
        job = self.store.get(note.job_id)
        if job is None:
            logger.warning("job no longer exists: message dropped")
            return DONE
        if job.webhook_delivered_at:
            logger.info("webhook already delivered: duplicate message dropped")
            return DONE
        if "webhook" not in job.notify or not job.webhook_url:
            logger.info("the job asked for no webhook: message dropped")
            return DONE
        if not job.status.finished:  # queued only at the end; a hand-made message may be early
            return retry(self.backoff.delay(delivery.receive_count))
        if not self.store.claim_webhook(job.job_id, delivery.id):
            logger.info("another message delivers this job's webhook: duplicate dropped")
            return DONE
        return self.attempt(job, delivery.receive_count)

    def attempt(self, job: Job, receive_count: int) -> Outcome:
        s = self.settings
        at = now_iso()
        try:
            target = webhooks.check_url(
                job.webhook_url or "",
                require_https=s.webhook_require_https,
                allow_loopback=s.webhook_allow_loopback,
                resolver=self.resolver,
            )
        except webhooks.UnresolvableHost as err:  # DNS trouble may pass: retried like a failed POST
            return self._failed(job, receive_count, WebhookAttempt(at=at, error=str(err)))
        except webhooks.UrlRefused as err:
            self.store.record_webhook_attempt(job.job_id, WebhookAttempt(at=at, error=f"refused: {err}"))
            self.telemetry.metric("WebhooksRefused", 1)
            logger.warning("webhook URL refused at delivery: not retried", reason=str(err))
            return DONE
        item = self.store.webhook_settings(job.user_id)
        if not item.get("secret"):  # the owner never read it: create it now, GET /webhook-secret shows it
            item = self.store.ensure_webhook_secret(job.user_id, webhooks.new_secret())
        view = job_view(job, self.s3, self.transcripts_bucket, s.transcript_link_ttl_seconds)
        if not self.turns.take(target.receiver):
            if receive_count >= self.max_attempts:  # no receive left to defer to: a failed attempt, recorded
                busy = WebhookAttempt(at=at, error="not attempted: the receiver was busy with other deliveries")
                return self._failed(job, receive_count, busy)
            self.telemetry.metric("WebhooksDeferred", 1)
            logger.info(
                "the receiver is busy with other deliveries: deferred, not attempted",
                receiver=target.receiver,
                retry_in_seconds=self.defer_seconds,
            )
            return retry(self.defer_seconds)
        at = now_iso()  # the attempt starts now, after any wait for a turn
        try:
            timestamp = int(time.time())
            body = payload(job, view.model_dump(mode="json", by_alias=True), timestamp)
            headers = webhooks.headers(signing_secrets(item, timestamp), message_id(job), timestamp, body)
            status = webhooks.post(target, body.encode("utf-8"), headers, s.webhook_timeout_seconds)
        except webhooks.DeliveryFailed as err:
            return self._failed(job, receive_count, WebhookAttempt(at=at, error=str(err)))
        finally:
            self.turns.give_back(target.receiver)
        if 200 <= status < 300:
            self.store.record_webhook_attempt(job.job_id, WebhookAttempt(at=at, status_code=status), delivered=True)
            self.telemetry.metric("WebhooksDelivered", 1)
            logger.info("webhook delivered", status_code=status, attempt=receive_count)
            return DONE
        if status == HTTPStatus.GONE:
            gone = WebhookAttempt(at=at, status_code=status, error="the receiver answered 410 Gone: not retried")
            self.store.record_webhook_attempt(job.job_id, gone, gave_up=True)
            self.telemetry.metric("WebhooksGone", 1)
            logger.warning("webhook receiver is gone (410): not retried", attempt=receive_count)
            return DONE
        return self._failed(job, receive_count, WebhookAttempt(at=at, status_code=status))

    def _failed(self, job: Job, receive_count: int, attempt: WebhookAttempt) -> Outcome:
        self.telemetry.metric("WebhookAttemptsFailed", 1, MetricUnit.Count)
        if receive_count >= self.max_attempts:
            self.store.record_webhook_attempt(job.job_id, attempt, gave_up=True)
            logger.error(
                "webhook not delivered after the last attempt: to the dead-letter queue",
                status_code=attempt.status_code,
                error=attempt.error,
                attempt=receive_count,
            )
            return DEAD_LETTER
        delay = self.backoff.delay(receive_count)
        self.store.record_webhook_attempt(job.job_id, attempt.model_copy(update={"next_attempt_at": _iso_in(delay)}))
        logger.warning(
            "webhook attempt failed: retrying later",
            status_code=attempt.status_code,
            error=attempt.error,
            attempt=receive_count,
            retry_in_seconds=delay,
        )
        return retry(delay)


def webhook_consumer(settings: Settings, store: JobStore | None = None) -> QueueConsumer:
    handler = WebhookHandler(settings, store)
    return QueueConsumer(
        queue_url=aws.queue_url(aws.stack_resources().webhook_queue.name),
        handler=handler,
        settings=settings,
        telemetry=handler.telemetry,
        backoff=handler.backoff,
        concurrency=settings.webhook_concurrency,
        message_keys=("job_id",),
    )

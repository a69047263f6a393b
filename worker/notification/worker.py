"""The notification worker: one email per finished job, sent through SES.

Per notify message (worker/runtime.py receives, leases and settles it): read the job -> take the
send right (JobStore.claim_notification) -> build the email -> SES send_raw_email -> outbox copy
(local) -> JobStore.mark_notified -> DONE.

Exactly one email per job, with at-least-once queues and several workers:
- the send right is a lease in the job record (HARK_NOTIFY_LEASE_SECONDS), so two deliveries of the
  same message (or two notify messages for one job) cannot both send; `notified_at` makes every
  later delivery a no-op. A delivery that finds the lease held waits until it runs out, so a sender
  killed mid-send delays the email by at most the lease;
- an SES error releases the lease and hides the message for base * 2^(n-1) seconds (n = its receive
  count, capped), so an outage costs retries, never emails; after the queue's maxReceiveCount the
  message goes to the DLQ, from where `hark dlq replay notify` brings it back.
The one window left is a crash after SES accepted the email and before mark_notified: the lease then
expires and the email is sent again. That is the at-least-once end of the trade; it cannot lose one.
"""

from __future__ import annotations

import os
import tempfile
import time
from email.policy import SMTP as _SMTP  # CRLF line ends, as RFC 5322 and SES want
from pathlib import Path

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from hark.domain import aws
from hark.domain.jobs import Job, JobStatus, JobStore
from hark.domain.keys import transcript_key
from hark.domain.links import signing_key
from hark.domain.messages import BrokenMessage, parse_notify_body
from hark.domain.settings import Settings
from worker.notification.emails import (
    completed_email,
    email_links,
    failed_email,
    no_speech_email,
    preview_of,
    with_recipient,
)
from worker.notification.recipients import LookupFailed, NoRecipient
from worker.runtime import DEAD_LETTER, DONE, Backoff, Delivery, Outcome, QueueConsumer, Telemetry, retry

SERVICE = "notification"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Hark", service=SERVICE)


class SendFailed(Exception):
    """SES did not accept the email (throttled, down, unreachable): retry later."""


def write_outbox(folder: str, job_id: str, data: bytes) -> Path:
    """{folder}/{job_id}.eml, written atomically (a reader never sees half a message)."""
    target = Path(folder) / f"{job_id}.eml"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{job_id}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


class NotifyHandler:
    def __init__(self, settings: Settings, store: JobStore | None = None):
        self.settings = settings
        self.store = store or aws.job_store()
        self.s3 = aws.client("s3")
        self.ses = aws.client("ses")
        self.transcripts_bucket = aws.stack_resources().transcripts_bucket.name
        self.telemetry = Telemetry(logger, metrics)
        self.backoff = Backoff.exponential(settings.notify_backoff_base_seconds, settings.notify_backoff_max_seconds)

    def __call__(self, delivery: Delivery) -> Outcome:
        receive_count = delivery.receive_count
        try:
            note = parse_notify_body(delivery.body)
        except BrokenMessage as err:
            # Visible again at once: SQS's redrive moves it to the DLQ after maxReceiveCount receives.
            logger.error(
                "broken notify message: left for the dead-letter queue", reason=str(err), receive_count=receive_count
            )
            return DEAD_LETTER

        logger.append_keys(job_id=note.job_id)
        claimed = False
        try:
            job = self.store.get(note.job_id)
            if job is None:
                logger.warning("job no longer exists: message dropped")
                return DONE
            if job.notified_at:
                logger.info("already notified: duplicate message dropped")
                return DONE
            if not job.status.finished:
                delay = self.backoff.delay(receive_count)
                logger.warning(
                    "job is not finished yet: retrying later", status=job.status.value, retry_in_seconds=delay
                )
                return retry(delay)
            if "email" not in job.notify:  # created with notify without "email" (POST /jobs)
                logger.info("the job asked for no email: nothing to send")
                self.store.mark_notified(job.job_id, "not-requested")
                return DONE
            if not self.store.claim_notification(job.job_id, self.settings.notify_lease_seconds):
                fresh = self.store.get(job.job_id)
                if fresh is None or fresh.notified_at:
                    logger.info("already notified: duplicate message dropped")
                    return DONE
                # Another sender holds the lease: usually it finishes in a moment (then this message
                # is a duplicate); if it died, this message comes back as its lease runs out and sends.
                delay = max(1, (fresh.notify_lease_until or 0) - int(time.time()) + 1)
                logger.info(
                    "another sender holds this job's email: retrying when its lease ends", retry_in_seconds=delay
                )
                return retry(delay)
            claimed = True
            try:
                job = with_recipient(job)  # the token's address, else Clerk's (LookupFailed: retried below)
            except NoRecipient as err:
                logger.warning("job has no email address: nothing to send", extra={"reason": str(err)})
                self.store.mark_notified(job.job_id, "no-recipient")
                return DONE

            raw = self.build(job).as_bytes(policy=_SMTP)
            ses_id = self._send(job, raw)
            if self.settings.outbox_dir:
                path = write_outbox(self.settings.outbox_dir, job.job_id, raw)
                logger.info("email written to the outbox", path=str(path))
            self.store.mark_notified(job.job_id, ses_id)
            self.telemetry.metric("EmailsSent", 1, MetricUnit.Count)
            logger.info("email sent", ses_message_id=ses_id, status=job.status.value, receive_count=receive_count)
            return DONE
        except Exception as err:  # SES down, or DynamoDB/S3 trouble: retry later, never lose it
            delay = self.backoff.delay(receive_count)
            if claimed:
                self._release(note.job_id)
            if isinstance(err, LookupFailed):
                logger.warning(
                    "recipient lookup failed: retrying later",
                    error=str(err),
                    receive_count=receive_count,
                    retry_in_seconds=delay,
                )
            elif isinstance(err, SendFailed):
                self.telemetry.metric("EmailsFailed", 1, MetricUnit.Count)
                logger.warning(
                    "SES did not take the email: retrying later",
                    error=str(err),
                    receive_count=receive_count,
                    retry_in_seconds=delay,
                )
            else:
                logger.exception(
                    "notification failed: retrying later", receive_count=receive_count, retry_in_seconds=delay
                )
            return retry(delay)

    def build(self, job: Job):
        s = self.settings
        if job.status == JobStatus.FAILED:
            return failed_email(job, sender=s.email_sender, web_url=s.web_url)
        if job.no_speech:  # nothing to download or preview: say so instead of sending an empty transcript
            return no_speech_email(job, sender=s.email_sender, web_url=s.web_url)
        links = email_links(
            job, api_url=s.api_url, ttl_seconds=s.email_link_ttl_seconds, key=signing_key(), web_url=s.web_url
        )
        return completed_email(job, sender=s.email_sender, links=links, preview=self._preview(job))

    def _preview(self, job: Job) -> str | None:
        limit = self.settings.email_preview_chars
        try:
            obj = self.s3.get_object(
                Bucket=self.transcripts_bucket,
                Key=transcript_key(job.user_id, job.job_id, "txt"),
                Range=f"bytes=0-{limit * 4 + 64}",  # UTF-8: at most 4 bytes a character
            )
        except ClientError as err:
            # InvalidRange: an empty transcript (nothing was said) has no byte 0 to read.
            if aws.s3_not_found(err) or err.response.get("Error", {}).get("Code") == "InvalidRange":
                logger.warning("transcript.txt not found: email without a preview")
                return None
            raise
        text = obj["Body"].read().decode("utf-8", errors="ignore")
        return preview_of(text, limit) or None

    def _send(self, job: Job, raw: bytes) -> str:
        assert job.email is not None  # with_recipient gave the job its address or raised NoRecipient
        try:
            response = self.ses.send_raw_email(
                Source=self.settings.email_sender, Destinations=[job.email], RawMessage={"Data": raw}
            )
        except (BotoCoreError, ClientError) as err:
            raise SendFailed(f"{type(err).__name__}: {err}") from err
        return response["MessageId"]

    def _release(self, job_id: str) -> None:
        try:
            self.store.release_notification(job_id)
        except (BotoCoreError, ClientError):
            logger.exception("could not release the send lease: it runs out by itself")


def notify_consumer(settings: Settings, store: JobStore | None = None) -> QueueConsumer:
    handler = NotifyHandler(settings, store)
    return QueueConsumer(
        queue_url=aws.queue_url(aws.stack_resources().notify_queue.name),
        handler=handler,
        settings=settings,
        telemetry=handler.telemetry,
        backoff=handler.backoff,
        batch_size=settings.notify_batch_size,
        message_keys=("job_id",),
    )

"""The notification worker: one email per finished job, sent through SES.

Loop: long-poll the notify queue -> for each NotifyMessage read the job -> take the send right
(JobStore.claim_notification) -> build the email -> SES send_raw_email -> outbox copy (local) ->
JobStore.mark_notified -> delete the message.

Exactly one email per job, with at-least-once queues and several workers:
- the send right is a lease in the job record, so two deliveries of the same message (or two notify
  messages for one job) cannot both send; `notified_at` makes every later delivery a no-op;
- an SES error releases the lease and hides the message for base * 2^(n-1) seconds (n = its receive
  count, capped), so an outage costs retries, never emails; after the queue's maxReceiveCount the
  message goes to the DLQ, from where `hark dlq replay notify` brings it back.
The one window left is a crash after SES accepted the email and before mark_notified: the lease then
expires and the email is sent again. That is the at-least-once end of the trade; it cannot lose one.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from email.policy import SMTP as _SMTP  # CRLF line ends, as RFC 5322 and SES want
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from hark import aws
from hark.jobs import Job, JobStatus, JobStore
from hark.keys import transcript_key
from hark.links import signing_key
from hark.messages import BrokenMessage, parse_notify_body
from hark.recipients import LookupFailed, NoRecipient
from hark.settings import Settings, get_settings
from worker.notification.emails import completed_email, email_links, failed_email, preview_of, with_recipient

SERVICE = "notification"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Hark", service=SERVICE)

MAX_VISIBILITY = 12 * 3600  # SQS's limit for ChangeMessageVisibility


class SendFailed(Exception):
    """SES did not accept the email (throttled, down, unreachable): retry later."""


class _Stop(BaseException):
    """Raised from the SIGTERM handler to leave an idle long poll at once."""


def backoff_seconds(receive_count: int, settings: Settings) -> int:
    """How long a message waits before its next attempt: base * 2^(n-1), capped."""
    n = max(1, receive_count)
    delay = settings.notify_backoff_base_seconds * (2 ** min(n - 1, 30))
    return int(max(1, min(delay, settings.notify_backoff_max_seconds, MAX_VISIBILITY)))


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


class NotificationWorker:
    def __init__(self, settings: Settings | None = None, store: JobStore | None = None):
        self.settings = settings or get_settings()
        self.store = store or aws.job_store()
        self.sqs = aws.client("sqs")
        self.s3 = aws.client("s3")
        self.ses = aws.client("ses")
        res = aws.stack_resources()
        self.transcripts_bucket = res.transcripts_bucket.name
        self.queue_url = aws.queue_url(res.notify_queue.name)
        self.stopping = False
        self._polling = False

    # -- the loop -----------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        logger.info("stop requested: finishing the current message", extra={"signal": signal.Signals(signum).name})
        self.stopping = True
        if self._polling:  # nothing in hand: leave the long poll now
            raise _Stop()

    def run(self) -> None:
        logger.info("notification worker started", extra={"queue_url": self.queue_url})
        idle_errors = 0
        try:
            while not self.stopping:
                try:
                    messages = self._receive()
                    idle_errors = 0
                except (BotoCoreError, ClientError):
                    idle_errors += 1
                    logger.exception("receive failed")
                    time.sleep(min(30, 2**idle_errors))
                    continue
                for i, message in enumerate(messages):
                    if self.stopping:  # hand back what we have not started
                        self._release_unstarted(messages[i:])
                        break
                    self.handle(message)
        except _Stop:
            pass
        logger.info("notification worker stopped")

    def _receive(self) -> list[dict[str, Any]]:
        self._polling = True
        try:
            if self.stopping:
                return []
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max(1, min(10, self.settings.notify_batch_size)),
                WaitTimeSeconds=self.settings.poll_wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        finally:
            self._polling = False
        return response.get("Messages", [])

    def _release_unstarted(self, messages: list[dict[str, Any]]) -> None:
        for m in messages:
            self._set_visibility(m, 0)

    # -- one message --------------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> str:
        """Process one SQS message; returns what happened (for tests and logs)."""
        receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            note = parse_notify_body(message.get("Body", ""))
        except BrokenMessage as err:
            # Visible again at once: SQS's redrive moves it to the DLQ after maxReceiveCount receives.
            logger.error("broken notify message: left for the dead-letter queue",
                         extra={"message_id": message.get("MessageId"), "reason": str(err),
                                "receive_count": receive_count})
            self._set_visibility(message, 0)
            return "broken"

        logger.append_keys(job_id=note.job_id)
        claimed = False
        try:
            job = self.store.get(note.job_id)
            if job is None:
                logger.warning("job no longer exists: message dropped")
                self._delete(message)
                return "gone"
            if job.notified_at:
                logger.info("already notified: duplicate message dropped")
                self._delete(message)
                return "duplicate"
            if not job.status.finished:
                delay = backoff_seconds(receive_count, self.settings)
                logger.warning("job is not finished yet: retrying later",
                               extra={"status": job.status.value, "retry_in_seconds": delay})
                self._set_visibility(message, delay)
                return "not-finished"
            if not self.store.claim_notification(job.job_id, self.settings.notify_lease_seconds):
                if (fresh := self.store.get(job.job_id)) is None or fresh.notified_at:
                    logger.info("already notified: duplicate message dropped")
                    self._delete(message)
                    return "duplicate"
                # Another sender holds the lease: usually it finishes in a moment (then this message
                # is a duplicate); if it died, the lease runs out and a later retry sends.
                delay = backoff_seconds(receive_count, self.settings)
                logger.info("another sender holds this job's email: retrying later",
                            extra={"retry_in_seconds": delay})
                self._set_visibility(message, delay)
                return "leased"
            claimed = True
            try:
                job = with_recipient(job)  # the token's address, else Clerk's (LookupFailed: retried below)
            except NoRecipient as err:
                logger.warning("job has no email address: nothing to send", extra={"reason": str(err)})
                self.store.mark_notified(job.job_id, "no-recipient")
                claimed = False
                self._delete(message)
                return "no-recipient"

            raw = self.build(job).as_bytes(policy=_SMTP)
            ses_id = self._send(job, raw)
            if self.settings.outbox_dir:
                path = write_outbox(self.settings.outbox_dir, job.job_id, raw)
                logger.info("email written to the outbox", extra={"path": str(path)})
            self.store.mark_notified(job.job_id, ses_id)
            claimed = False
            self._delete(message)
            metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=1)
            logger.info("email sent", extra={"ses_message_id": ses_id, "status": job.status.value,
                                             "receive_count": receive_count})
            return "sent"
        except Exception as err:  # SES down, or DynamoDB/S3 trouble: retry later, never lose it
            delay = backoff_seconds(receive_count, self.settings)
            if claimed:
                self._release(note.job_id)
            if isinstance(err, LookupFailed):
                logger.warning("recipient lookup failed: retrying later",
                               extra={"error": str(err), "receive_count": receive_count, "retry_in_seconds": delay})
            elif isinstance(err, SendFailed):
                metrics.add_metric(name="EmailsFailed", unit=MetricUnit.Count, value=1)
                logger.warning("SES did not take the email: retrying later",
                               extra={"error": str(err), "receive_count": receive_count, "retry_in_seconds": delay})
            else:
                logger.exception("notification failed: retrying later",
                                 extra={"receive_count": receive_count, "retry_in_seconds": delay})
            self._set_visibility(message, delay)
            return "retry"
        finally:
            metrics.flush_metrics(raise_on_empty_metrics=False)
            logger.remove_keys(["job_id"])

    def build(self, job: Job):
        s = self.settings
        if job.status == JobStatus.FAILED:
            return failed_email(job, sender=s.email_sender, web_url=s.web_url)
        links = email_links(job, api_url=s.api_url, ttl_seconds=s.email_link_ttl_seconds, key=signing_key(),
                            web_url=s.web_url)
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
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "InvalidRange"):
                logger.warning("transcript.txt not found: email without a preview")
                return None
            raise
        text = obj["Body"].read().decode("utf-8", errors="ignore")
        return preview_of(text, limit) or None

    def _send(self, job: Job, raw: bytes) -> str:
        try:
            response = self.ses.send_raw_email(
                Source=self.settings.email_sender, Destinations=[job.email], RawMessage={"Data": raw}
            )
        except (BotoCoreError, ClientError) as err:
            raise SendFailed(f"{type(err).__name__}: {err}") from err
        return response["MessageId"]

    # -- SQS and lease helpers: a failure here must not stop the loop ---------------------------
    def _set_visibility(self, message: dict[str, Any], seconds: int) -> None:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=int(seconds)
            )
        except (BotoCoreError, ClientError):
            logger.exception("could not change the message's visibility: it returns after the queue's timeout")

    def _delete(self, message: dict[str, Any]) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _release(self, job_id: str) -> None:
        try:
            self.store.release_notification(job_id)
        except (BotoCoreError, ClientError):
            logger.exception("could not release the send lease: it runs out by itself")
